package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/checker"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/statuspage"
)

// events lists a recorder's webhook events as "event/check" (with "#seq"
// for reminders).
func events(h *hookRecorder) []string {
	var out []string
	for _, ev := range h.all() {
		s := fmt.Sprintf("%v/%v", ev["event"], ev["check"])
		if seq, ok := ev["seq"]; ok {
			s += fmt.Sprintf("#%v", seq)
		}
		out = append(out, s)
	}
	return out
}

func waitEvents(t *testing.T, h *hookRecorder, what string, cond func([]string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs := events(h)
		if cond(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; got %v", what, evs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func has(evs []string, want string) bool {
	for _, e := range evs {
		if e == want {
			return true
		}
	}
	return false
}

// Three in-process nodes: routes send the critical check to one receiver
// (with reminders every 2s while it stays down) and the warning check to
// another, each exactly once cluster-wide.
func TestMeshRoutesAndReminders(t *testing.T) {
	apiTarget, apiFailing := switchableTarget(t)
	webTarget, webFailing := switchableTarget(t)
	pager, chat := newHookRecorder(t), newHookRecorder(t)
	cfg := fmt.Sprintf(`
cluster:
  regions: [eu, us, ap]
  quorum: 2
  gossip: local
defaults:
  interval: 1s
  fail_after: 2
  recover_after: 2
checks:
  - {name: api, type: http, url: %s/health, severity: critical}
  - {name: web, type: http, url: %s/health, severity: warning}
notifiers:
  - {name: pager, type: webhook, url: %s}
  - {name: chat, type: webhook, url: %s}
routes:
  - match: {severity: critical}
    notify: [pager]
    repeat: 2s
  - match: {severity: warning}
    notify: [chat]
`, apiTarget.URL, webTarget.URL, pager.srv.URL, chat.srv.URL)
	nodes := startMesh(t, cfg, []string{"eu", "us", "ap"})
	waitMesh(t, nodes, "both checks up everywhere", func(st *statuspage.Status) bool {
		return checkByName(st, "api").State == "up" && checkByName(st, "web").State == "up"
	})

	apiFailing.Store(true)
	webFailing.Store(true)
	waitMesh(t, nodes, "both checks down everywhere", func(st *statuspage.Status) bool {
		return checkByName(st, "api").State == "down" && checkByName(st, "web").State == "down"
	})
	waitEvents(t, pager, "the api trigger and two reminders", func(evs []string) bool {
		n := 0
		for _, e := range evs {
			if strings.HasPrefix(e, "repeat/api#") {
				n++
			}
		}
		return has(evs, "down/api") && n >= 2
	})
	waitEvents(t, chat, "the web trigger", func(evs []string) bool { return has(evs, "down/web") })

	apiFailing.Store(false)
	webFailing.Store(false)
	waitEvents(t, pager, "the api resolve", func(evs []string) bool { return has(evs, "up/api") })
	waitEvents(t, chat, "the web resolve", func(evs []string) bool { return has(evs, "up/web") })
	// Let a duplicate from a second sender arrive, bounded by the sent log's
	// propagation: wait until every node knows both resolves.
	for _, m := range nodes {
		deadline := time.Now().Add(10 * time.Second)
		for {
			k := 0
			for _, e := range m.n.mesh.Sent.All() {
				if e.Action == "resolve" {
					k++
				}
			}
			if k >= 2 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	pe, ce := events(pager), events(chat)
	// pager: one trigger, reminders each once, numbered by the time since
	// the start (consecutive unless a sweep came late: a node that just
	// took over as sender waits for the sent log), one resolve; nothing
	// about web.
	if len(pe) < 4 || pe[0] != "down/api" || pe[len(pe)-1] != "up/api" {
		t.Fatalf("pager got %v", pe)
	}
	last := 0
	for i, e := range pe[1 : len(pe)-1] {
		var seq int
		if _, err := fmt.Sscanf(e, "repeat/api#%d", &seq); err != nil || seq <= last {
			t.Fatalf("pager event %d is %s after reminder %d (all: %v)", i+1, e, last, pe)
		}
		last = seq
	}
	// chat: the warning check only, no reminders.
	if strings.Join(ce, " ") != "down/web up/web" {
		t.Fatalf("chat got %v, want exactly one down and one up for web", ce)
	}
	for _, ev := range pager.all() {
		if ev["event"] == "repeat" {
			if msg, _ := ev["message"].(string); !strings.HasPrefix(msg, "api still DOWN for ") {
				t.Fatalf("reminder message %q", msg)
			}
		}
	}
}

// switchProber answers every probe ok, or with a connect timeout while
// failing is set; while blocked it answers nothing: the probe hangs, past
// its timeout, so the region has no fresh vote.
type switchProber struct {
	failing atomic.Bool
	blocked atomic.Bool
}

func (p *switchProber) Probe(ctx context.Context, c *config.Check) checker.Result {
	for p.blocked.Load() {
		time.Sleep(10 * time.Millisecond)
	}
	if p.failing.Load() {
		return checker.Result{Start: time.Now(), Code: checker.CodeConnectTimeout, Message: "failing (test)"}
	}
	return checker.Result{Start: time.Now(), OK: true, Latency: time.Millisecond}
}

// soloNode runs one node without gossip (a single region) on cfg.
func soloNode(t *testing.T, cfgText string, p checker.Prober) *Node {
	t.Helper()
	cfg, err := config.Load(writeFile(t, "solo.yaml", cfgText))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n, err := New(context.Background(), Options{Config: cfg, Name: "solo", Region: "local",
		DBPath: filepath.Join(dir, "v.db"), OutboxPath: filepath.Join(dir, "o.db"), Logger: log, Prober: p})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func waitState(t *testing.T, n *Node, check, state string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c := checkByName(n.Status(), check); c != nil && c.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s to be %s", check, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A check that flaps sends one flapping notice, nothing while it flaps,
// and once stable for flap_window the notice's end and the final state.
func TestNodeFlapDampening(t *testing.T) {
	p := &switchProber{}
	hook := newHookRecorder(t)
	n := soloNode(t, fmt.Sprintf(`
defaults: {interval: 1s, fail_after: 1, recover_after: 1}
checks:
  - {name: api, type: http, url: "http://127.0.0.1:9/", flap_threshold: 2, flap_window: 15s}
notifiers:
  - {name: hook, type: webhook, url: %s}
routes:
  - notify: [hook]
`, hook.srv.URL), p)
	waitState(t, n, "api", "up")
	p.failing.Store(true) // change 1: sent
	waitState(t, n, "api", "down")
	waitEvents(t, hook, "the first trigger", func(evs []string) bool { return has(evs, "down/api") })
	p.failing.Store(false) // change 2: sent
	waitState(t, n, "api", "up")
	waitEvents(t, hook, "the first resolve", func(evs []string) bool { return has(evs, "up/api") })
	// The window is wide enough that a loaded machine, which may take
	// seconds to deliver each page before the next change, still makes
	// the three changes within it (paging's unit tests cover the window's
	// edges on a fake clock).
	p.failing.Store(true) // change 3: more than 2 in 15s: flapping
	waitState(t, n, "api", "down")
	evs := waitEvents(t, hook, "the flapping notice", func(evs []string) bool { return has(evs, "flapping/api") })
	if strings.Join(evs, " ") != "down/api up/api flapping/api" {
		t.Fatalf("events %v", evs)
	}
	// Stable (down) for the window: the end of the notice, then the held
	// trigger of the open incident.
	evs = waitEvents(t, hook, "the final state", func(evs []string) bool { return len(evs) >= 5 })
	if strings.Join(evs, " ") != "down/api up/api flapping/api stable/api down/api" {
		t.Fatalf("events %v", evs)
	}
	all := hook.all()
	if all[0]["incident_id"] == all[4]["incident_id"] || all[2]["severity"] != "warning" ||
		!strings.HasPrefix(all[2]["incident_id"].(string), "flapping-") || all[3]["incident_id"] != all[2]["incident_id"] {
		t.Fatalf("events %v", all)
	}
	if msg := all[2]["message"]; msg != "api is flapping: 3 changes in 15s; notifications paused until it is stable" {
		t.Fatalf("flapping message %q", msg)
	}
	p.failing.Store(false) // a normal change again
	waitEvents(t, hook, "the resolve of the final incident", func(evs []string) bool { return len(evs) >= 6 })
	if e := events(hook); e[5] != "up/api" || hook.all()[5]["incident_id"] != all[4]["incident_id"] {
		t.Fatalf("events %v", e)
	}
}

// A check unknown for unknown_after sends a coverage alert (warning, its
// own id, never a down event) to coverage.notify only, and its resolve
// when the check is seen again.
func TestNodeCoverageAlert(t *testing.T) {
	p := &switchProber{}
	p.blocked.Store(true) // no results: the check stays unknown
	hook, chat := newHookRecorder(t), newHookRecorder(t)
	n := soloNode(t, fmt.Sprintf(`
defaults: {interval: 1s, fail_after: 1, recover_after: 1, unknown_after: 2s}
checks:
  - {name: api, type: http, url: "http://127.0.0.1:9/", notify: [hook]}
notifiers:
  - {name: hook, type: webhook, url: %s}
  - {name: chat, type: webhook, url: %s}
coverage:
  notify: [chat]
`, hook.srv.URL, chat.srv.URL), p)
	t.Cleanup(func() { p.blocked.Store(false) }) // before the node closes
	evs := waitEvents(t, chat, "the coverage alert", func(evs []string) bool { return len(evs) >= 1 })
	if evs[0] != "coverage_lost/api" {
		t.Fatalf("chat got %v", evs)
	}
	ev := chat.all()[0]
	if ev["severity"] != "warning" || !strings.HasPrefix(ev["incident_id"].(string), "coverage-") ||
		ev["message"] != "monitoring coverage lost: only 0 of 1 regions can see api" || ev["regions_total"] != 1.0 {
		t.Fatalf("coverage alert %v", ev)
	}
	p.blocked.Store(false)
	waitState(t, n, "api", "up")
	evs = waitEvents(t, chat, "the coverage resolve", func(evs []string) bool { return len(evs) >= 2 })
	if strings.Join(evs, " ") != "coverage_lost/api coverage_restored/api" || chat.all()[1]["incident_id"] != ev["incident_id"] {
		t.Fatalf("chat got %v", chat.all())
	}
	if h := events(hook); len(h) != 0 {
		t.Fatalf("the check's own notifier got %v: coverage alerts go to coverage.notify only", h)
	}
}

// depends_on on a node: when a target's host and its web check fail
// together, the web check's incident is shown suppressed by the host
// (suppressed_by, parent_incident_id) and only the host pages.
func TestNodeDependsOn(t *testing.T) {
	p := &switchProber{}
	hook := newHookRecorder(t)
	n := soloNode(t, fmt.Sprintf(`
defaults: {interval: 1s, fail_after: 1, recover_after: 1}
checks:
  - {name: host, type: tcp, target: "127.0.0.1:9", notify: [hook]}
  - {name: web, type: http, url: "http://127.0.0.1:9/", depends_on: [host], depends_wait: 3s, notify: [hook]}
notifiers:
  - {name: hook, type: webhook, url: %s}
`, hook.srv.URL), p)
	waitState(t, n, "web", "up")
	p.failing.Store(true)
	waitState(t, n, "host", "down")
	waitState(t, n, "web", "down")
	deadline := time.Now().Add(20 * time.Second)
	var webID, hostID string
	for {
		st := n.Status()
		w, h := checkByName(st, "web"), checkByName(st, "host")
		if len(w.SuppressedBy) == 1 && w.SuppressedBy[0] == "host" && w.ParentIncidentID == h.IncidentID && w.IncidentID != "" {
			webID, hostID = w.IncidentID, h.IncidentID
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web not shown suppressed by host: %+v", w)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The stored incident (what /api/v1/incidents serves) names its parent.
	for {
		inc, err := n.store.Incident(context.Background(), webID)
		if err == nil && inc.ParentIncidentID == hostID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web's stored incident %+v (%v), want parent_incident_id %s", inc, err, hostID)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitEvents(t, hook, "the host's trigger", func(evs []string) bool { return has(evs, "down/host") })
	seen := n.PagerSweeps()
	for n.PagerSweeps() < seen+5 { // the child's depends_wait and more
		time.Sleep(20 * time.Millisecond)
	}
	if evs := events(hook); strings.Join(evs, " ") != "down/host" {
		t.Fatalf("events %v, want only the host's trigger", evs)
	}
}
