package node

import (
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/statuspage"
)

// Three nodes, a route with notify_maintenance and a webhook: a window of
// the config file and one POSTed to /api/v1/maintenance each reach the
// webhook once when they start and once when they end, though the sender
// that announced their starts stops meanwhile (after its sent log reached
// its peers); the runtime window, cancelled on another node, ends at
// once, marked cancelled.
func TestMeshMaintenanceNotices(t *testing.T) {
	target, _ := switchableTarget(t)
	hook := newHookRecorder(t) // incidents (none: the target stays up)
	chat := newHookRecorder(t) // maintenance notices
	start := time.Now().UTC().Truncate(time.Second).Add(6 * time.Second)
	end := start.Add(10 * time.Second)
	path := writeFile(t, "maint-notify.yaml", fmt.Sprintf(`
cluster:
  regions: [eu, us, ap]
  quorum: 2
  gossip: local
defaults: {interval: 1s, fail_after: 2, recover_after: 2}
checks:
  - {name: api, type: http, url: "%s/health", severity: critical, notify: [hook]}
notifiers:
  - {name: hook, type: webhook, url: "%s"}
  - {name: chat, type: webhook, url: "%s"}
routes:
  - match: {severity: critical}
    notify: [chat]
    notify_maintenance: true
statuspage:
  title: Mesh Status
  api_token: %s
maintenance:
  - {title: Config window, checks: [api], start: %s, end: %s}
`, target.URL, hook.srv.URL, chat.srv.URL, meshToken, start.Format(time.RFC3339), end.Format(time.RFC3339)))
	key := make([]byte, 32)
	rand.Read(key)
	eu := addMeshNode(t, path, key, "eu-1", "eu", "")
	nodes := []*meshNode{eu, addMeshNode(t, path, key, "us-1", "us", eu.n.GossipAddr()),
		addMeshNode(t, path, key, "ap-1", "ap", eu.n.GossipAddr())}
	waitMesh(t, nodes, "a whole mesh", func(st *statuspage.Status) bool { return aliveCount(st) == 3 })
	srv := map[string]*httptest.Server{}
	for _, mn := range nodes {
		s := httptest.NewServer(mn.n.Handler())
		t.Cleanup(s.Close)
		srv[mn.n.o.Name] = s
	}

	// A runtime window, running from now for ten minutes.
	now := time.Now().UTC()
	body := fmt.Sprintf(`{"checks":["api"],"title":"Runtime window","start":%q,"end":%q}`,
		now.Add(-time.Second).Format(time.RFC3339), now.Add(10*time.Minute).Format(time.RFC3339))
	code, _, m := apiPost(t, srv["eu-1"], "/api/v1/maintenance", meshToken, body)
	if code != 201 {
		t.Fatalf("schedule: %d %v", code, m)
	}
	windowID := m["id"].(string)

	// byKind finds the notice of window title with event ev.
	find := func(title, ev string) map[string]any {
		for _, e := range chat.all() {
			if w, ok := e["maintenance"].(map[string]any); ok && w["title"] == title && e["event"] == ev {
				return e
			}
		}
		return nil
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(40 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; the webhook got %v", what, chat.all())
			}
		}
	}
	waitFor("both windows' starts", func() bool {
		return find("Runtime window", "maintenance_started") != nil && find("Config window", "maintenance_started") != nil
	})

	// The sender stops once every peer's sent log shows both starts.
	var sender *meshNode
	for _, mn := range nodes {
		if v := mn.n.ev.View(); v.Sender == mn.n.o.Name {
			sender = mn
		}
	}
	if sender == nil {
		t.Fatal("no node is the designated sender")
	}
	var rest []*meshNode
	for _, mn := range nodes {
		if mn != sender {
			rest = append(rest, mn)
		}
	}
	for _, title := range []string{"Runtime window", "Config window"} {
		id := find(title, "maintenance_started")["incident_id"].(string)
		waitFor("the peers' sent logs", func() bool {
			for _, mn := range rest {
				if _, ok := mn.n.mesh.Sent.DeliveredBy(id, "trigger", "chat"); !ok {
					return false
				}
			}
			return true
		})
	}
	if err := sender.n.Close(); err != nil {
		t.Fatal(err)
	}
	waitMesh(t, rest, "the sender gone", func(st *statuspage.Status) bool { return aliveCount(st) == 2 })

	// Cancelled on a surviving node: its end at once; the config window's
	// at its end.
	if code, m := apiDo(t, srv[rest[0].n.o.Name], "DELETE", "/api/v1/maintenance/"+windowID, meshToken); code != 200 {
		t.Fatalf("cancel: %d %v", code, m)
	}
	waitFor("both windows' ends", func() bool {
		return find("Runtime window", "maintenance_ended") != nil && find("Config window", "maintenance_ended") != nil
	})
	// Nothing more comes: every surviving node sweeps three more times.
	base := map[*meshNode]uint64{}
	for _, mn := range rest {
		base[mn] = mn.n.pager.Sweeps()
	}
	waitFor("three more sweeps", func() bool {
		for _, mn := range rest {
			if mn.n.pager.Sweeps() < base[mn]+3 {
				return false
			}
		}
		return true
	})
	evs := chat.all()
	if len(evs) != 4 {
		t.Fatalf("the webhook got %d notices, want 4 (each window's start and end once): %v", len(evs), evs)
	}
	seen := map[string]bool{}
	for _, e := range evs {
		k := fmt.Sprint(e["incident_id"], e["event"])
		if seen[k] {
			t.Fatalf("sent twice: %v", e)
		}
		seen[k] = true
		if e["severity"] != "info" {
			t.Errorf("severity %v: %v", e["severity"], e)
		}
	}
	cfgEnd := find("Config window", "maintenance_ended")
	if w := cfgEnd["maintenance"].(map[string]any); w["cancelled"] == true || cfgEnd["resolved_at"] != end.Format(time.RFC3339) ||
		w["start"] != start.Format(time.RFC3339) {
		t.Errorf("the config window's end: %v", cfgEnd)
	}
	rtEnd := find("Runtime window", "maintenance_ended")
	if w := rtEnd["maintenance"].(map[string]any); w["cancelled"] != true || w["window_id"] != windowID {
		t.Errorf("the runtime window's end: %v", rtEnd)
	}
	if evs := hook.all(); len(evs) != 0 {
		t.Errorf("the incident notifier got %v", evs)
	}
}
