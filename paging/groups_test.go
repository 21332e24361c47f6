package paging

import (
	"slices"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/notifier"
	"github.com/vantage-dev/vantage/quorum"
	"github.com/vantage-dev/vantage/verdict"
)

// groupConfig: checks a, b, c and d of group shop (d also notifies chat
// itself), solo without a group; the first route groups shop's outages
// for pager with group_wait 30s (and reminders every repeat, when set).
func groupConfig(repeat time.Duration) func(*config.Config) {
	return func(cfg *config.Config) {
		check := func(name, group string, notify ...string) config.Check {
			return config.Check{Name: name, Type: "http", URL: "http://" + name + "/", Interval: 10 * time.Second,
				Group: group, Severity: "warning", Notify: notify}
		}
		cfg.Checks = []config.Check{check("a", "shop"), check("b", "shop"), check("c", "shop"),
			check("d", "shop", "chat"), check("solo", "", "pager")}
		cfg.Checks[2].Severity = "critical"
		cfg.Routes = []config.Route{
			{Match: config.RouteMatch{Group: "shop"}, Notify: []string{"pager"}, GroupBy: []string{"group"},
				GroupWait: 30 * time.Second, Repeat: repeat, RepeatSet: repeat > 0},
		}
	}
}

func newGroupRig(t *testing.T, self string, repeat time.Duration) *rig {
	r := newRig(t, self, groupConfig(repeat))
	r.mesh.Retain(map[string]bool{"a": true, "b": true, "c": true, "d": true, "solo": true})
	return r
}

// lastEvent is the latest event queued.
func (r *rig) lastEvent() notifier.Event {
	r.t.Helper()
	r.outbox.mu.Lock()
	defer r.outbox.mu.Unlock()
	if len(r.outbox.evs) == 0 {
		r.t.Fatal("nothing queued")
	}
	return r.outbox.evs[len(r.outbox.evs)-1]
}

// memberNames lists a grouped page's checks, "+" marking the new ones.
func memberNames(ev notifier.Event) []string {
	var out []string
	for _, m := range ev.Members {
		s := m.Check
		if m.New {
			s += "+"
		}
		if m.ResolvedAt != nil {
			s += "(up)"
		}
		out = append(out, s)
	}
	return out
}

func expectMembers(t *testing.T, step string, ev notifier.Event, id string, want ...string) {
	t.Helper()
	if ev.IncidentID != id || ev.Kind != notifier.KindGroup || ev.Group != "shop" || ev.Check != "" {
		t.Fatalf("%s: event %s of kind %q group %q check %q, want group shop's %s", step, ev.IncidentID, ev.Kind, ev.Group, ev.Check, id)
	}
	if got := memberNames(ev); !slices.Equal(got, want) {
		t.Fatalf("%s: members %q, want %q", step, got, want)
	}
}

// Outages of one group's checks that begin within group_wait of the first
// reach the grouping route's notifier as one page: the trigger waits
// group_wait collecting members, a member that joins later but began
// within group_wait of the first updates the page under its id, one that
// began later opens another page, and the page resolves when the last of
// its checks is up. A check's own notifiers and checks without a group
// page as before.
func TestGroupedPage(t *testing.T) {
	r := newGroupRig(t, "aa-1", 0)
	r.sweep()
	r.at(10 * time.Second)
	r.open("a", "inc-a", t0.Add(9*time.Second))
	r.open("solo", "inc-solo", t0.Add(9*time.Second))
	r.at(11 * time.Second)
	expect(t, "a joins; solo pages alone", r.sweep(), "trigger/solo:pager")
	r.at(20 * time.Second)
	r.open("b", "inc-b", t0.Add(19*time.Second))
	r.at(21 * time.Second)
	expect(t, "b joins", r.sweep())
	r.at(39 * time.Second)
	expect(t, "group_wait after a opened", r.sweep())

	r.at(40 * time.Second)
	expect(t, "one page for a and b", r.sweep(), "group:trigger/:pager")
	first := notifier.GroupID(0, "shop", t0.Add(9*time.Second))
	ev := r.lastEvent()
	expectMembers(t, "trigger", ev, first, "a", "b")
	if !ev.StartedAt.Equal(t0.Add(9*time.Second)) || ev.Severity != "warning" {
		t.Fatalf("trigger started %s severity %q", ev.StartedAt, ev.Severity)
	}
	if ev.Members[0].IncidentID != "inc-a" || ev.Members[0].Regions["eu"].Vote != "down" {
		t.Fatalf("member a %+v", ev.Members[0])
	}
	r.at(41 * time.Second)
	expect(t, "nothing twice", r.sweep())

	// c's outage began at 30s, within group_wait of a's, but is decided
	// only now: the page is updated, under its id.
	r.at(45 * time.Second)
	r.open("c", "inc-c", t0.Add(30*time.Second))
	r.at(46 * time.Second)
	expect(t, "c updates the page", r.sweep(), "group:update#3/:pager")
	ev = r.lastEvent()
	expectMembers(t, "update", ev, first, "a", "b", "c+")
	if ev.Severity != "critical" {
		t.Fatalf("update at %q, want the members' highest severity", ev.Severity)
	}

	// d's began 40s after a's: a page of its own after group_wait; its own
	// notifier pages d alone, as before.
	r.at(50 * time.Second)
	r.open("d", "inc-d", t0.Add(49*time.Second))
	r.at(51 * time.Second)
	expect(t, "d's own notifier", r.sweep(), "trigger/d:chat")

	r.at(60 * time.Second)
	r.resolve("a", "inc-a", t0.Add(9*time.Second))
	r.resolve("solo", "inc-solo", t0.Add(9*time.Second))
	expect(t, "a up, b and c down", r.sweep(), "resolve/solo:pager")
	r.at(70 * time.Second)
	r.resolve("b", "inc-b", t0.Add(19*time.Second))
	expect(t, "b up, c down", r.sweep())
	r.at(75 * time.Second)
	r.resolve("c", "inc-c", t0.Add(30*time.Second))
	expect(t, "the last one up", r.sweep(), "group:resolve/:pager")
	ev = r.lastEvent()
	expectMembers(t, "resolve", ev, first, "a(up)", "b(up)", "c(up)")
	if ev.ResolvedAt == nil || !ev.ResolvedAt.Equal(t0.Add(75*time.Second)) {
		t.Fatalf("resolved at %v", ev.ResolvedAt)
	}

	r.at(80 * time.Second)
	expect(t, "d's page", r.sweep(), "group:trigger/:pager")
	expectMembers(t, "d's page", r.lastEvent(), notifier.GroupID(0, "shop", t0.Add(49*time.Second)), "d")
	r.at(90 * time.Second)
	r.resolve("d", "inc-d", t0.Add(49*time.Second))
	expect(t, "d up", r.sweep(), "resolve/d:chat", "group:resolve/:pager")
	r.at(100 * time.Second)
	expect(t, "done", r.sweep())
}

// A group that resolves while it waits still pages: its trigger, then its
// resolve, as a single check's page does.
func TestGroupedPageResolvedWhileWaiting(t *testing.T) {
	r := newGroupRig(t, "aa-1", 0)
	r.sweep()
	r.open("a", "inc-a", t0)
	r.at(2 * time.Second)
	expect(t, "waiting", r.sweep())
	r.at(5 * time.Second)
	r.resolve("a", "inc-a", t0)
	expect(t, "up while waiting", r.sweep())
	r.at(30 * time.Second)
	expect(t, "group_wait", r.sweep(), "group:trigger/:pager")
	r.at(31 * time.Second)
	expect(t, "resolve", r.sweep(), "group:resolve/:pager")
}

// A grouped page's reminders follow the route's repeat, from the group's
// start, while one of its checks is down; the checks' own reminders skip
// the grouped notifiers.
func TestGroupedPageReminders(t *testing.T) {
	r := newGroupRig(t, "aa-1", time.Minute)
	r.sweep()
	r.open("a", "inc-a", t0)
	r.at(2 * time.Second)
	r.open("b", "inc-b", t0.Add(2*time.Second))
	r.at(30 * time.Second)
	expect(t, "trigger", r.sweep(), "group:trigger/:pager")
	r.at(59 * time.Second)
	expect(t, "before the first", r.sweep())
	r.at(61 * time.Second)
	expect(t, "one reminder for the group", r.sweep(), "group:repeat#1/:pager")
	if ev := r.lastEvent(); ev.Seq != 1 || len(ev.Members) != 2 || !ev.At.Equal(r.now) {
		t.Fatalf("reminder %+v", ev)
	}
	r.at(62 * time.Second)
	expect(t, "not twice", r.sweep())
	r.resolve("a", "inc-a", t0)
	r.at(2*time.Minute + time.Second)
	expect(t, "b still down", r.sweep(), "group:repeat#2/:pager")
	r.resolve("b", "inc-b", t0.Add(2*time.Second))
	expect(t, "resolve", r.sweep(), "group:resolve/:pager")
	r.at(3*time.Minute + time.Second)
	expect(t, "no reminder once up", r.sweep())
}

// gossip hands from's sent log and claims to to, as the mesh does.
func gossip(t *testing.T, from, to *rig) {
	t.Helper()
	b, _ := from.mesh.Sent.MarshalBinary()
	if err := to.mesh.Sent.Merge(from.p.o.Self, b); err != nil {
		t.Fatal(err)
	}
	b, _ = from.mesh.Claims.MarshalBinary()
	if err := to.mesh.Claims.Merge(from.p.o.Self, b); err != nil {
		t.Fatal(err)
	}
}

// delivered records, as the outbox's log does, what from's outbox queued.
func delivered(from *rig) {
	l := OutboxLog{Sent: from.mesh.Sent}
	from.outbox.mu.Lock()
	defer from.outbox.mu.Unlock()
	for _, ev := range from.outbox.evs {
		l.Delivered(ev, "pager")
	}
}

// The sender changes mid-group: the new one computes the group's id from
// the incidents it knows (or takes the one the sent log shows under
// another member's start) and sends only what was not sent: an update for
// a member that joined after the last page, then the resolve.
func TestGroupedPageSenderChange(t *testing.T) {
	for _, c := range []struct {
		name string
		// run drives both nodes (aa-1 the sender, ap-1 taking over at
		// 60s) up to the change and returns what ap-1 must send after it.
		run  func(t *testing.T, both func(time.Duration, func(*rig)), old *rig, die func()) []string
		last []string // the members of ap-1's last page before the resolve
	}{
		{"nothing new", func(t *testing.T, both func(time.Duration, func(*rig)), old *rig, die func()) []string {
			both(10*time.Second, func(r *rig) { r.open("a", "inc-a", t0.Add(9*time.Second)) })
			both(20*time.Second, func(r *rig) { r.open("b", "inc-b", t0.Add(19*time.Second)) })
			both(40*time.Second, nil)
			expect(t, "old sender's page", old.outbox.take(), "group:trigger/:pager")
			return nil
		}, []string{"a", "b"}},
		{"a member joined", func(t *testing.T, both func(time.Duration, func(*rig)), old *rig, die func()) []string {
			both(10*time.Second, func(r *rig) { r.open("a", "inc-a", t0.Add(9*time.Second)) })
			both(40*time.Second, nil)
			both(45*time.Second, func(r *rig) { r.open("b", "inc-b", t0.Add(19*time.Second)) })
			both(46*time.Second, nil)
			expect(t, "old sender's pages", old.outbox.take(), "group:trigger/:pager", "group:update#2/:pager")
			// c joins at 55s; the old sender dies before its next sweep.
			die()
			both(55*time.Second, func(r *rig) { r.open("c", "inc-c", t0.Add(30*time.Second)) })
			return []string{"group:update#3/:pager"}
		}, []string{"a", "b", "c"}},
		{"another member's start", func(t *testing.T, both func(time.Duration, func(*rig)), old *rig, die func()) []string {
			// The old sender paged b alone (start 19s); a, whose outage
			// began earlier (5s), joined it later. The new sender knows
			// both from the start: its own id would be a's start's.
			both(20*time.Second, func(r *rig) { r.open("b", "inc-b", t0.Add(19*time.Second)) })
			both(50*time.Second, nil)
			both(55*time.Second, func(r *rig) { r.open("a", "inc-a", t0.Add(5*time.Second)) })
			both(56*time.Second, nil)
			expect(t, "old sender's pages", old.outbox.take(), "group:trigger/:pager", "group:update#2/:pager")
			return nil
		}, []string{"a", "b"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			old, next := newGroupRig(t, "aa-1", 0), newGroupRig(t, "ap-1", 0)
			rigs := []*rig{old, next}
			alive := true
			// both moves both nodes to d, applies do to each and sweeps
			// each (the old sender while alive), then gossips: each
			// delivery of the old sender is recorded and shared.
			both := func(d time.Duration, do func(*rig)) {
				for _, r := range rigs {
					r.at(d)
					if do != nil {
						do(r)
					}
				}
				if alive {
					old.p.Sweep(t.Context())
					delivered(old)
					gossip(t, old, next)
				}
				next.p.Sweep(t.Context())
				if got := next.outbox.take(); len(got) > 0 {
					t.Fatalf("at %s the new sender queued %q before the change", d, got)
				}
			}
			both(0, nil)
			want := c.run(t, both, old, func() { alive = false })
			firstID := old.lastEvent().IncidentID

			alive = false
			next.checks.members("ap-1", "us-1", "ap-1")
			var got []string
			for d := 60 * time.Second; d <= 70*time.Second; d += time.Second {
				next.at(d)
				got = append(got, next.sweep()...)
			}
			expect(t, "after the change", got, want...)
			if len(want) > 0 {
				expectMembers(t, "the new sender's update", next.lastEvent(), firstID, c.last...)
			}
			next.at(80 * time.Second)
			for _, m := range []string{"a", "b", "c"} {
				if st, _, id, start, _ := next.checks.State(m); st == quorum.StateDown {
					next.resolve(m, id, start)
				}
			}
			expect(t, "the resolve", next.sweep(), "group:resolve/:pager")
			if ev := next.lastEvent(); ev.IncidentID != firstID {
				t.Fatalf("resolved %s, the old sender paged %s", ev.IncidentID, firstID)
			}
		})
	}
}

// The new sender does not send a page a live peer claims: it waits, then
// finds it delivered.
func TestGroupedPageClaimedByPeer(t *testing.T) {
	r := newGroupRig(t, "aa-1", 0)
	r.sweep()
	r.open("a", "inc-a", t0)
	id := notifier.GroupID(0, "shop", t0)
	peer := mesh.New(mesh.Options{Self: "us-1", Now: func() time.Time { return r.now }, Logger: quiet})
	if err := peer.Claims.Claim(id, "trigger", []string{"pager"}); err != nil {
		t.Fatal(err)
	}
	b, _ := peer.Claims.MarshalBinary()
	if err := r.mesh.Claims.Merge("us-1", b); err != nil {
		t.Fatal(err)
	}
	r.at(30 * time.Second)
	expect(t, "claimed by us-1", r.sweep())
	if err := peer.Sent.Record(mesh.Sent{Incident: id, Start: t0, Action: "trigger", Notifier: "pager"}); err != nil {
		t.Fatal(err)
	}
	if err := peer.Sent.Record(mesh.Sent{Incident: id, Start: t0, Action: "update#1", Notifier: "pager"}); err != nil {
		t.Fatal(err)
	}
	b, _ = peer.Sent.MarshalBinary()
	if err := r.mesh.Sent.Merge("us-1", b); err != nil {
		t.Fatal(err)
	}
	r.at(31 * time.Second)
	expect(t, "delivered by us-1", r.sweep())
	r.at(32 * time.Second)
	expect(t, "nor updated", r.sweep())
	r.resolve("a", "inc-a", t0)
	expect(t, "resolve", r.sweep(), "group:resolve/:pager")
}

// A member whose check leaves the config counts as up: the page resolves
// once the others are, and the removed check's own notifiers get its
// resolve as before.
func TestGroupedPageCheckRemoved(t *testing.T) {
	r := newGroupRig(t, "aa-1", 0)
	r.sweep()
	r.open("a", "inc-a", t0)
	r.open("d", "inc-d", t0)
	r.at(30 * time.Second)
	expect(t, "trigger", r.sweep(), "trigger/d:chat", "group:trigger/:pager")
	r.at(40 * time.Second)
	cfg := *r.cfg
	cfg.Checks = slices.DeleteFunc(slices.Clone(cfg.Checks), func(c config.Check) bool { return c.Name == "d" })
	r.p.Removed(t.Context(), []verdict.Closed{{Check: &r.cfg.Checks[3], IncidentID: "inc-d", Start: t0}})
	r.p.SetConfig(&cfg)
	expect(t, "d removed", r.outbox.take(), "resolve/d:chat")
	expect(t, "a still down", r.sweep())
	r.at(50 * time.Second)
	r.resolve("a", "inc-a", t0)
	expect(t, "a up", r.sweep(), "group:resolve/:pager")
	ev := r.lastEvent()
	expectMembers(t, "resolve", ev, notifier.GroupID(0, "shop", t0), "a(up)", "d(up)")
	if !ev.Members[1].ResolvedAt.Equal(t0.Add(40 * time.Second)) {
		t.Fatalf("d up at %v, want when it was removed", ev.Members[1].ResolvedAt)
	}
}

// A group lists a check once: a check that recovers and fails again
// within the window is listed with its newer incident.
func TestGroupedPageListsACheckOnce(t *testing.T) {
	r := newGroupRig(t, "aa-1", 0)
	r.sweep()
	r.open("a", "a1", t0)
	r.open("b", "inc-b", t0)
	r.at(2 * time.Second)
	expect(t, "a and b join", r.sweep())
	r.at(10 * time.Second)
	r.resolve("a", "a1", t0)
	expect(t, "a up", r.sweep())
	r.at(16 * time.Second)
	r.open("a", "a2", t0.Add(15*time.Second))
	r.at(17 * time.Second)
	expect(t, "a again", r.sweep())
	r.at(30 * time.Second)
	expect(t, "one page", r.sweep(), "group:trigger/:pager")
	ev := r.lastEvent()
	expectMembers(t, "trigger", ev, notifier.GroupID(0, "shop", t0), "b", "a")
	if ev.Members[1].IncidentID != "a2" {
		t.Fatalf("a listed with %s, want its newer incident a2", ev.Members[1].IncidentID)
	}
	r.at(40 * time.Second)
	r.resolve("b", "inc-b", t0)
	expect(t, "b up, a down", r.sweep())
	r.resolve("a", "a2", t0.Add(15*time.Second))
	expect(t, "both up", r.sweep(), "group:resolve/:pager")
}
