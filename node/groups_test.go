package node

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/statuspage"
)

// Three in-process nodes: thirty checks of one group behind one target
// that fails page the grouping route's receiver once, as one page listing
// them all (updates of it allowed), then one resolve once all are up;
// nothing goes out per check. A check of the group that also names the
// receiver itself still pages alone.
func TestMeshGroupedPages(t *testing.T) {
	target, failing := switchableTarget(t)
	hook, own := newHookRecorder(t), newHookRecorder(t)
	var checks strings.Builder
	const n = 30
	for i := range n {
		fmt.Fprintf(&checks, "  - {name: c%02d, type: http, url: %s/c%02d, group: shop}\n", i, target.URL, i)
	}
	fmt.Fprintf(&checks, "  - {name: own, type: http, url: %s/own, group: shop, notify: [own]}\n", target.URL)
	cfg := fmt.Sprintf(`
cluster:
  regions: [eu, us, ap]
  quorum: 2
  gossip: local
defaults:
  interval: 2s
  fail_after: 2
  recover_after: 2
checks:
%snotifiers:
  - {name: hook, type: webhook, url: %s}
  - {name: own, type: webhook, url: %s}
routes:
  - match: {group: shop}
    notify: [hook]
    group_by: [group]
    group_wait: 8s
`, checks.String(), hook.srv.URL, own.srv.URL)
	nodes := startMesh(t, cfg, []string{"eu", "us", "ap"})
	all := func(state string) func(*statuspage.Status) bool {
		return func(st *statuspage.Status) bool {
			for i := range n {
				if c := checkByName(st, fmt.Sprintf("c%02d", i)); c == nil || c.State != state {
					return false
				}
			}
			return checkByName(st, "own").State == state
		}
	}
	waitMesh(t, nodes, "every check up everywhere", all("up"))

	failing.Store(true)
	waitMesh(t, nodes, "every check down everywhere", all("down"))
	waitGroup(t, hook, "the group's page", "down")
	// Every check is listed once the page and its updates are in (a node
	// under load may hand its changes to the pager late).
	deadline := time.Now().Add(60 * time.Second)
	for {
		if groupListed(hook) == n+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group's page lists %d checks, want %d; events %v", groupListed(hook), n+1, groupEvents(hook))
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitEvents(t, own, "own's page", func(evs []string) bool { return has(evs, "down/own") })

	failing.Store(false)
	waitMesh(t, nodes, "every check up everywhere again", all("up"))
	waitGroup(t, hook, "the group's resolve", "up")
	waitEvents(t, own, "own's resolve", func(evs []string) bool { return has(evs, "up/own") })
	// Let a duplicate from a second sender arrive, bounded by the sent
	// log's propagation: wait until every node knows the group's resolve.
	for _, m := range nodes {
		deadline := time.Now().Add(10 * time.Second)
		for {
			k := 0
			for _, e := range m.n.mesh.Sent.All() {
				if e.Action == "resolve" && strings.HasPrefix(e.Incident, "group-") {
					k++
				}
			}
			if k >= 1 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	evs := hook.all()
	var kinds []string
	id := evs[0]["incident_id"]
	for _, ev := range evs {
		kinds = append(kinds, fmt.Sprint(ev["event"]))
		if ev["kind"] != "group" || ev["group"] != "shop" || ev["check"] != "" || ev["incident_id"] != id {
			t.Fatalf("event %v, want every event about group shop's page %v", ev, id)
		}
	}
	if len(kinds) < 2 || kinds[0] != "down" || kinds[len(kinds)-1] != "up" {
		t.Fatalf("the receiver got %v, want one down, updates, one up", kinds)
	}
	for _, k := range kinds[1 : len(kinds)-1] {
		if k != "update" {
			t.Fatalf("the receiver got %v, want one down, updates, one up", kinds)
		}
	}
	last := evs[len(evs)-1]
	if ms, _ := last["members"].([]any); len(ms) != n+1 || last["resolved_at"] == nil {
		t.Fatalf("the resolve lists %d checks (resolved_at %v), want %d", len(ms), last["resolved_at"], n+1)
	}
	if oe := events(own); len(oe) != 2 || oe[0] != "down/own" || oe[1] != "up/own" {
		t.Fatalf("own's receiver got %v, want own's page alone", oe)
	}
	t.Logf("the group's receiver got %v", kinds)
}

// groupEvents lists a receiver's events as "event#seq@id[checks listed]".
func groupEvents(h *hookRecorder) []string {
	var out []string
	for _, ev := range h.all() {
		s := fmt.Sprint(ev["event"])
		if seq, ok := ev["seq"]; ok {
			s += fmt.Sprintf("#%v", seq)
		}
		var names []string
		ms, _ := ev["members"].([]any)
		for _, m := range ms {
			if m, ok := m.(map[string]any); ok {
				names = append(names, fmt.Sprint(m["check"]))
			}
		}
		out = append(out, fmt.Sprintf("%s@%v%v", s, ev["incident_id"], names))
	}
	return out
}

// waitGroup waits until h got an event named event.
func waitGroup(t *testing.T, h *hookRecorder, what, event string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, ev := range h.all() {
			if ev["event"] == event {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; got %v", what, groupEvents(h))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupListed is the number of checks the group's latest page (trigger or
// update) listed.
func groupListed(h *hookRecorder) int {
	most := 0
	for _, ev := range h.all() {
		if ms, ok := ev["members"].([]any); ok && len(ms) > most {
			most = len(ms)
		}
	}
	return most
}
