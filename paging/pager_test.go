package paging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/notifier"
	"github.com/vantage-dev/vantage/quorum"
	"github.com/vantage-dev/vantage/verdict"
)

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeChecks is the verdict as the pager reads it: a view and states the
// test sets.
type fakeChecks struct {
	mu     sync.Mutex
	view   *verdict.View
	states map[string]fakeState
}

type fakeState struct {
	state    quorum.State
	since    time.Time
	incident string
	start    time.Time
}

func (f *fakeChecks) View() *verdict.View {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.view
}

func (f *fakeChecks) State(name string) (quorum.State, time.Time, string, time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.states[name]
	return s.state, s.since, s.incident, s.start, ok
}

func (f *fakeChecks) Check(name string) (verdict.CheckView, bool) {
	st, since, id, start, ok := f.State(name)
	if !ok {
		return verdict.CheckView{}, false
	}
	vote := quorum.VoteUp
	if st == quorum.StateDown {
		vote = quorum.VoteDown
	}
	regions := map[string]verdict.RegionView{}
	for _, r := range []string{"eu", "us", "ap"} {
		regions[r] = verdict.RegionView{Vote: vote, Eligible: st != quorum.StateUnknown, Code: map[bool]string{true: "http_503"}[vote == quorum.VoteDown]}
	}
	return verdict.CheckView{State: st, Since: since, IncidentID: id, IncidentStart: start, Regions: regions}, true
}

func (f *fakeChecks) Params(c *config.Check) quorum.Params {
	return quorum.Params{Regions: []string{"eu", "us", "ap"}, Quorum: 2}
}

func (f *fakeChecks) set(name string, s fakeState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states[name] = s
}

// regionOf places the test's nodes; aa-1 sorts first: the designated
// sender while alive.
var regionOf = map[string]string{"aa-1": "eu", "us-1": "us", "ap-1": "ap"}

// members makes the view: self plus the alive peers.
func (f *fakeChecks) members(self string, alive ...string) {
	ms := []verdict.Member{}
	for _, n := range alive {
		ms = append(ms, verdict.Member{Name: n, Region: regionOf[n], State: verdict.MemberAlive})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.view = verdict.NewView(self, regionOf[self], ms, []string{"eu", "us", "ap"}, 2)
}

// fakeOutbox records what is queued; fail makes Enqueue fail.
type fakeOutbox struct {
	mu   sync.Mutex
	got  []string // "action/check/notifier..." in order
	evs  []notifier.Event
	fail bool
}

func (o *fakeOutbox) Enqueue(_ context.Context, e notifier.Event, ns ...string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fail {
		return errors.New("disk full (test)")
	}
	o.got = append(o.got, fmt.Sprintf("%s/%s:%s", e.Kind+map[bool]string{true: ":"}[e.Kind != ""]+e.Key(), e.Check, strings.Join(ns, ",")))
	o.evs = append(o.evs, e)
	return nil
}

func (o *fakeOutbox) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	g := o.got
	o.got = nil
	return g
}

// rig is one pager on a fixed clock: node self of aa-1, us-1 and ap-1.
type rig struct {
	t      *testing.T
	now    time.Time
	checks *fakeChecks
	mesh   *mesh.Mesh
	outbox *fakeOutbox
	p      *Pager
	cfg    *config.Config
}

func newRig(t *testing.T, self string, cfgMod func(*config.Config)) *rig {
	r := &rig{t: t, now: t0, checks: &fakeChecks{states: map[string]fakeState{}}, outbox: &fakeOutbox{}}
	clock := func() time.Time { return r.now }
	r.mesh = mesh.New(mesh.Options{Self: self, Region: "eu", Now: clock, Logger: quiet})
	r.mesh.Retain(map[string]bool{"api": true, "web": true})
	r.checks.members(self, "aa-1", "us-1", "ap-1")
	r.cfg = &config.Config{
		Checks: []config.Check{
			{Name: "api", Type: "http", URL: "http://api/", Interval: 10 * time.Second, Notify: []string{"pager"}, FlapThreshold: 0},
			{Name: "web", Type: "http", URL: "http://web/", Interval: 10 * time.Second, Notify: []string{"pager"}},
		},
		Notifiers: []config.Notifier{{Name: "pager", Type: "webhook"}, {Name: "chat", Type: "webhook"}},
	}
	if cfgMod != nil {
		cfgMod(r.cfg)
	}
	for _, c := range r.cfg.Checks {
		r.checks.set(c.Name, fakeState{state: quorum.StateUp, since: t0})
	}
	r.p = New(Options{Self: self, Now: clock, Checks: r.checks, Sent: r.mesh.Sent, Claims: r.mesh.Claims,
		Incidents: r.mesh.Incidents, Outbox: r.outbox, Logger: quiet})
	r.p.SetConfig(r.cfg)
	return r
}

func (r *rig) at(d time.Duration) { r.now = t0.Add(d) }

func (r *rig) sweep() []string {
	r.p.Sweep(context.Background())
	return r.outbox.take()
}

// open opens an incident of check now (its start: start).
func (r *rig) open(check, id string, start time.Time) {
	r.checks.set(check, fakeState{state: quorum.StateDown, since: r.now, incident: id, start: start})
	r.p.Apply(verdict.Change{Check: check, From: quorum.StateUp, To: quorum.StateDown, At: r.now, IncidentID: id,
		Start: start, Opened: true})
}

func (r *rig) resolve(check, id string, start time.Time) {
	r.checks.set(check, fakeState{state: quorum.StateUp, since: r.now})
	r.p.Apply(verdict.Change{Check: check, From: quorum.StateDown, To: quorum.StateUp, At: r.now, IncidentID: id,
		Start: start, Resolved: true})
}

func expect(t *testing.T, step string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: queued %q, want %q", step, got, want)
	}
}

// The designated sender pages a trigger once the incident settled, and
// the resolve after it; nothing is queued twice.
func TestSettleTriggerResolve(t *testing.T) {
	r := newRig(t, "aa-1", nil)
	r.sweep() // becomes the sender at t0
	r.at(10 * time.Second)
	r.open("api", "inc1", t0.Add(9*time.Second))
	steps := []struct {
		at   time.Duration
		do   func()
		want []string
	}{
		{10*time.Second + 500*time.Millisecond, nil, nil}, // settle
		{11 * time.Second, nil, []string{"trigger/api:pager"}},
		{12 * time.Second, nil, nil},
		{20 * time.Second, func() { r.resolve("api", "inc1", t0.Add(9*time.Second)) }, []string{"resolve/api:pager"}},
		{21 * time.Second, nil, nil},
	}
	for i, s := range steps {
		r.at(s.at)
		if s.do != nil {
			s.do()
		}
		expect(t, fmt.Sprintf("step %d at %s", i, s.at), r.sweep(), s.want...)
	}
	if a, ok := r.mesh.Incidents.Get("api", "aa-1"); ok && !a.Paged {
		t.Fatalf("own announcement not marked paged: %+v", a)
	}
}

// A node that is not the designated sender queues nothing.
func TestOnlyTheSenderPages(t *testing.T) {
	r := newRig(t, "ap-1", nil) // aa-1 sorts first
	r.sweep()
	r.open("api", "inc1", t0)
	r.at(5 * time.Second)
	expect(t, "non-sender", r.sweep())
	// aa-1 dies: ap-1 is the sender, and waits Takeover for the sent log
	// of an incident that began before.
	r.checks.members("ap-1", "us-1", "ap-1")
	r.at(6 * time.Second)
	expect(t, "takeover starts", r.sweep())
	r.at(6*time.Second + Takeover - time.Millisecond)
	expect(t, "within takeover", r.sweep())
	r.at(6*time.Second + Takeover)
	expect(t, "after takeover", r.sweep(), "trigger/api:pager")
}

// What the sent log shows delivered is not sent again; the page counts as
// triggered, so its resolve follows.
func TestDedupAgainstSentLog(t *testing.T) {
	r := newRig(t, "aa-1", nil)
	r.sweep()
	r.open("api", "inc1", t0)
	peer := mesh.New(mesh.Options{Self: "us-1", Now: func() time.Time { return r.now }, Logger: quiet})
	if err := peer.Sent.Record(mesh.Sent{Incident: "inc1", Check: "api", Start: t0, Action: "trigger", Notifier: "pager"}); err != nil {
		t.Fatal(err)
	}
	b, _ := peer.Sent.MarshalBinary()
	if err := r.mesh.Sent.Merge("us-1", b); err != nil {
		t.Fatal(err)
	}
	r.at(2 * time.Second)
	expect(t, "delivered by a peer", r.sweep())
	r.at(3 * time.Second)
	r.resolve("api", "inc1", t0)
	expect(t, "resolve", r.sweep(), "resolve/api:pager")
}

// A live claim of an alive peer holds the send; a lapsed claim, or a dead
// claimer's, does not.
func TestClaims(t *testing.T) {
	for _, c := range []struct {
		name  string
		after func(r *rig)
	}{
		{"lapsed", func(r *rig) { r.at(2*time.Second + mesh.ClaimLease) }},
		{"claimer dead", func(r *rig) { r.checks.members("aa-1", "aa-1", "ap-1"); r.at(3 * time.Second) }},
		{"released", func(r *rig) { claim(t, r, true); r.at(3 * time.Second) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, "aa-1", nil)
			r.sweep()
			r.open("api", "inc1", t0)
			claim(t, r, false)
			r.at(2 * time.Second)
			expect(t, "claimed by us-1", r.sweep())
			c.after(r)
			expect(t, "after", r.sweep(), "trigger/api:pager")
		})
	}
}

// claim delivers us-1's claim (or its release) on api's trigger.
func claim(t *testing.T, r *rig, release bool) {
	t.Helper()
	peer := mesh.New(mesh.Options{Self: "us-1", Now: func() time.Time { return r.now }, Logger: quiet})
	if err := peer.Claims.Claim("inc1", "trigger", []string{"pager"}); err != nil {
		t.Fatal(err)
	}
	if release {
		if err := peer.Claims.Release("inc1", "trigger"); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := peer.Claims.MarshalBinary()
	if err := r.mesh.Claims.Merge("us-1", b); err != nil {
		t.Fatal(err)
	}
}

// A page whose outbox write fails is not marked sent: its claim is
// released and the next sweep tries again.
func TestEnqueueFailureRetries(t *testing.T) {
	r := newRig(t, "aa-1", nil)
	r.sweep()
	r.open("api", "inc1", t0)
	r.outbox.fail = true
	r.at(2 * time.Second)
	expect(t, "disk full", r.sweep())
	if cs := r.mesh.Claims.Own(); len(cs) != 0 {
		t.Fatalf("claims after a failed enqueue: %+v (want released)", cs)
	}
	r.outbox.fail = false
	r.at(3 * time.Second)
	expect(t, "disk back", r.sweep(), "trigger/api:pager")
	if cs := r.mesh.Claims.Own(); len(cs) != 1 || cs[0].Action != "trigger" {
		t.Fatalf("claims after the enqueue: %+v", cs)
	}
	// The claim is renewed while the sent log lacks the delivery, dropped
	// once it shows it.
	r.at(3*time.Second + mesh.ClaimRenew)
	r.sweep()
	if cs := r.mesh.Claims.Own(); len(cs) != 1 || !cs[0].At.Equal(r.now) {
		t.Fatalf("claim not renewed: %+v", cs)
	}
	if err := r.mesh.Sent.Record(mesh.Sent{Incident: "inc1", Check: "api", Start: t0, Action: "trigger", Notifier: "pager"}); err != nil {
		t.Fatal(err)
	}
	r.sweep()
	if cs := r.mesh.Claims.Own(); len(cs) != 0 {
		t.Fatalf("claim kept after delivery: %+v", cs)
	}
}

// Reminders go out every repeat interval of the notifier while the
// incident stays open, numbered from 1.
func TestReminders(t *testing.T) {
	r := newRig(t, "aa-1", func(c *config.Config) { c.Notifiers[0].Repeat = time.Minute })
	r.sweep()
	r.open("api", "inc1", t0)
	r.at(2 * time.Second)
	expect(t, "trigger", r.sweep(), "trigger/api:pager")
	r.at(59 * time.Second)
	expect(t, "before the first", r.sweep())
	r.at(61 * time.Second)
	expect(t, "first", r.sweep(), "repeat#1/api:pager")
	r.at(62 * time.Second)
	expect(t, "not twice", r.sweep())
	r.at(3*time.Minute + time.Second)
	expect(t, "third", r.sweep(), "repeat#3/api:pager")
}

// A flapping check sends one notice instead of its changes, holds its
// pages, then sends the notice's end and the final state.
func TestFlapDampening(t *testing.T) {
	r := newRig(t, "aa-1", func(c *config.Config) { c.Checks[0].FlapThreshold, c.Checks[0].FlapWindow = 2, time.Minute })
	r.sweep()
	r.open("api", "a", t0)
	r.at(2 * time.Second)
	expect(t, "change 1", r.sweep(), "trigger/api:pager")
	r.at(10 * time.Second)
	r.resolve("api", "a", t0)
	expect(t, "change 2", r.sweep(), "resolve/api:pager")
	r.at(20 * time.Second)
	r.open("api", "b", r.now)
	r.at(22 * time.Second)
	expect(t, "change 3: flapping", r.sweep(), "flapping:trigger/api:pager")
	r.at(30 * time.Second)
	expect(t, "held", r.sweep())
	r.at(20*time.Second + time.Minute)
	got := r.sweep()
	expect(t, "stable, down", got, "flapping:resolve/api:pager", "trigger/api:pager")
	if ev := r.outbox.evs[len(r.outbox.evs)-1]; ev.IncidentID != "b" {
		t.Fatalf("final trigger of %s, want b", ev.IncidentID)
	}
}

// Only changes within flap_window count: a third change after the first
// has left the window is paged as usual, one that falls inside it is a
// flapping notice.
func TestFlapWindowEdge(t *testing.T) {
	r := newRig(t, "aa-1", func(c *config.Config) { c.Checks[0].FlapThreshold, c.Checks[0].FlapWindow = 2, time.Minute })
	r.sweep()
	r.open("api", "a", t0)
	r.at(2 * time.Second)
	expect(t, "change 1 at 0s", r.sweep(), "trigger/api:pager")
	r.at(40 * time.Second)
	r.resolve("api", "a", t0)
	expect(t, "change 2 at 40s", r.sweep(), "resolve/api:pager")
	r.at(61 * time.Second)
	r.open("api", "b", r.now)
	r.at(63 * time.Second)
	expect(t, "change 3 at 61s: change 1 has left the window", r.sweep(), "trigger/api:pager")
	r.at(90 * time.Second)
	r.resolve("api", "b", t0.Add(61*time.Second))
	expect(t, "change 4 at 90s: three within the minute", r.sweep(), "flapping:trigger/api:pager")
}

// A check unknown for unknown_after (at least two intervals + 5 s) sends a
// coverage alert to coverage.notify, and its resolve once known again.
func TestCoverage(t *testing.T) {
	r := newRig(t, "aa-1", func(c *config.Config) {
		c.Checks[0].UnknownAfter = time.Minute
		c.Coverage.Notify = []string{"chat"}
	})
	r.sweep()
	r.checks.set("api", fakeState{state: quorum.StateUnknown, since: r.now})
	r.p.Apply(verdict.Change{Check: "api", From: quorum.StateUp, To: quorum.StateUnknown, At: r.now})
	r.at(59 * time.Second)
	expect(t, "before unknown_after", r.sweep())
	r.at(60 * time.Second)
	expect(t, "lost", r.sweep(), "coverage:trigger/api:chat")
	r.at(70 * time.Second)
	expect(t, "still unknown", r.sweep())
	r.checks.set("api", fakeState{state: quorum.StateUp, since: r.now})
	r.p.Apply(verdict.Change{Check: "api", From: quorum.StateUnknown, To: quorum.StateUp, At: r.now})
	expect(t, "restored", r.sweep(), "coverage:resolve/api:chat")
	r.at(80 * time.Second)
	expect(t, "done", r.sweep())
}

// The outbox's log and gate: deliveries recorded for the cluster, holds
// while this node sees no majority.
func TestOutboxLogAndGate(t *testing.T) {
	r := newRig(t, "aa-1", nil)
	l := OutboxLog{Sent: r.mesh.Sent}
	l.Delivered(notifier.Event{Action: notifier.ActionTrigger, IncidentID: "inc1", Check: "api", StartedAt: t0}, "pager")
	l.Delivered(notifier.Event{Action: notifier.ActionTrigger, Kind: notifier.KindFlapping, IncidentID: "flapping-x", Check: "api", StartedAt: t0}, "pager")
	if by, ok := l.DeliveredBy("inc1", "trigger", "pager"); !ok || by != "aa-1" {
		t.Fatalf("delivered by %q %v", by, ok)
	}
	if s, ok := r.mesh.Sent.Paged("api"); !ok || s.Incident != "inc1" {
		t.Fatalf("paged %+v: a notice's id must never count as the check's paged incident", s)
	}
	g := Gate{Checks: r.checks}
	if _, held := g.Hold(); held {
		t.Fatal("held while seeing every region")
	}
	r.checks.members("aa-1", "aa-1")
	if why, held := g.Hold(); !held || why == "" {
		t.Fatal("not held while seeing one region of three")
	}
}

// depends_on: the child's trigger waits depends_wait for a parent to go
// down; while a parent is down the child pages nothing (shown as
// suppressed); once no parent is down, a child still down pages after
// another depends_wait, under its own id.
func TestDependsOn(t *testing.T) {
	r := newRig(t, "aa-1", func(c *config.Config) {
		c.Checks[1].DependsOn, c.Checks[1].DependsWait = []string{"api"}, 10*time.Second // web depends on api
	})
	r.sweep()
	r.open("web", "child", t0)
	r.at(2 * time.Second)
	expect(t, "child waits depends_wait", r.sweep())
	r.at(3 * time.Second)
	r.open("api", "parent", t0.Add(3*time.Second))
	r.at(5 * time.Second)
	expect(t, "the parent pages", r.sweep(), "trigger/api:pager")
	if s := r.p.Suppressions()["web"]; len(s.By) != 1 || s.By[0] != "api" || s.ParentIncident != "parent" {
		t.Fatalf("suppression %+v", s)
	}
	r.at(30 * time.Second)
	expect(t, "suppressed", r.sweep())
	r.resolve("api", "parent", t0.Add(3*time.Second))
	expect(t, "the parent resolves", r.sweep(), "resolve/api:pager")
	r.at(39 * time.Second)
	expect(t, "the child waits depends_wait again", r.sweep())
	if len(r.p.Suppressions()) != 0 {
		t.Fatal("shown suppressed with no parent down")
	}
	r.at(41 * time.Second)
	expect(t, "the child still down pages", r.sweep(), "trigger/web:pager")
	if ev := r.outbox.evs[len(r.outbox.evs)-1]; ev.IncidentID != "child" {
		t.Fatalf("the child paged under %s, want its own id", ev.IncidentID)
	}
	r.at(50 * time.Second)
	r.resolve("web", "child", t0)
	expect(t, "its resolve", r.sweep(), "resolve/web:pager")

	// A child whose parent stays down until both recover pages nothing.
	r.at(60 * time.Second)
	r.open("web", "child2", r.now)
	r.open("api", "parent2", r.now)
	r.at(62 * time.Second)
	expect(t, "parent2", r.sweep(), "trigger/api:pager")
	r.at(80 * time.Second)
	r.resolve("web", "child2", t0.Add(60*time.Second))
	r.resolve("api", "parent2", t0.Add(60*time.Second))
	expect(t, "only the parent's resolve", r.sweep(), "resolve/api:pager")
	r.at(100 * time.Second)
	expect(t, "nothing after", r.sweep())
}

// A child's incident names the parent incident that suppresses it: at once
// when it opens while the parent is down (Parent, for the store's row), and
// through Options.Suppressed when the parent goes down later or its id
// changes, once per incident and parent, again at the next sweep when the
// incident was not stored yet.
func TestDependsOnTellsParent(t *testing.T) {
	type told struct{ check, incident, parent string }
	var got []told
	fail := true
	r := newRig(t, "us-1", func(c *config.Config) { // not the sender: every node records it
		c.Checks[1].DependsOn, c.Checks[1].DependsWait = []string{"api"}, 10*time.Second
	})
	r.p.o.Suppressed = func(check, incident, parent string) error {
		got = append(got, told{check, incident, parent})
		if fail {
			return errors.New("not stored yet")
		}
		return nil
	}
	r.sweep()
	r.open("api", "parent", t0)
	r.open("web", "child", t0)
	if p := r.p.Parent("child"); p != "parent" {
		t.Fatalf("a child opened while its parent is down: Parent %q, want the parent's incident", p)
	}
	if p := r.p.Parent("parent"); p != "" {
		t.Fatalf("the parent's Parent: %q", p)
	}
	r.sweep()
	fail = false
	r.at(time.Second)
	r.sweep()
	r.at(2 * time.Second)
	r.sweep()
	want := []told{{"web", "child", "parent"}, {"web", "child", "parent"}}
	if !slices.Equal(got, want) {
		t.Fatalf("told %v, want %v (again after an error, then not)", got, want)
	}

	// The cluster names the parent's outage differently: told again.
	r.at(3 * time.Second)
	r.checks.set("api", fakeState{state: quorum.StateDown, since: t0, incident: "parent-b", start: t0})
	r.p.Apply(verdict.Change{Check: "api", From: quorum.StateDown, To: quorum.StateDown, At: r.now, IncidentID: "parent-b",
		Replaced: "parent", Start: t0})
	r.sweep()
	if want = append(want, told{"web", "child", "parent-b"}); !slices.Equal(got, want) {
		t.Fatalf("told %v, want %v", got, want)
	}

	// A child that opened before its parent went down is told when it
	// does, not before.
	r.at(10 * time.Second)
	r.resolve("api", "parent-b", t0)
	r.resolve("web", "child", t0)
	r.sweep()
	r.at(20 * time.Second)
	r.open("web", "child2", r.now)
	r.sweep()
	if p := r.p.Parent("child2"); p != "" || len(got) != len(want) {
		t.Fatalf("a child with no parent down: Parent %q, told %v", p, got)
	}
	r.at(22 * time.Second)
	r.open("api", "parent2", r.now)
	r.sweep()
	if want = append(want, told{"web", "child2", "parent2"}); !slices.Equal(got, want) || r.p.Parent("child2") != "parent2" {
		t.Fatalf("told %v, want %v", got, want)
	}
}

// A certificate close to expiry sends one warning (kind cert, its own id,
// warning severity) through the check's notifiers, however often it is
// seen, and its resolve once a newer certificate is served; the check's
// state is not touched.
func TestCertWarnings(t *testing.T) {
	r := newRig(t, "aa-1", nil)
	r.sweep()
	old := notifier.CertInfo{Subject: "CN=api", Serial: "0a1b", NotAfter: t0.Add(10 * 24 * time.Hour)}
	r.p.Cert("api", notifier.CertInfo{Subject: "CN=api", Serial: "ffff", NotAfter: t0.Add(300 * 24 * time.Hour)}, false, r.now)
	expect(t, "far from expiry", r.sweep())
	r.p.Cert("api", old, true, r.now)
	expect(t, "expiring", r.sweep(), "cert:trigger/api:pager")
	ev := r.outbox.evs[len(r.outbox.evs)-1]
	if ev.IncidentID != notifier.CertID("api", "0A1B") || ev.Severity != notifier.NoticeSeverity || ev.Cert == nil || ev.Cert.Serial != "0A1B" {
		t.Fatalf("warning %+v", ev)
	}
	r.at(time.Hour)
	r.p.Cert("api", old, true, r.now)
	expect(t, "seen again", r.sweep())
	r.at(2 * time.Hour)
	r.p.Cert("api", notifier.CertInfo{Subject: "CN=api", Serial: "0c0d", NotAfter: t0.Add(90 * 24 * time.Hour)}, false, r.now)
	expect(t, "renewed", r.sweep(), "cert:resolve/api:pager")
	if ev := r.outbox.evs[len(r.outbox.evs)-1]; ev.Renewed == nil || ev.Renewed.Serial != "0C0D" || ev.IncidentID != notifier.CertID("api", "0A1B") {
		t.Fatalf("resolve %+v", ev)
	}
	r.at(3 * time.Hour)
	expect(t, "done", r.sweep())
	if st, _, _, _, _ := r.checks.State("api"); st != quorum.StateUp {
		t.Fatalf("a certificate warning changed the state to %s", st)
	}
}

// A node that has just come to see a majority (back from a restart or a
// partition) holds its outbox for Takeover, so that the cluster's sent log
// reaches it before anything pending is sent again.
func TestGateHoldsAfterJoining(t *testing.T) {
	now := t0
	v := *verdict.NewView("aa-1", "eu", []verdict.Member{{Name: "us-1", Region: "us", State: verdict.MemberAlive}}, []string{"eu", "us", "ap"}, 2)
	v.MajoritySince = now
	g := Gate{Checks: &fakeChecks{view: &v}, Now: func() time.Time { return now }}
	if why, held := g.Hold(); !held || !strings.Contains(why, "sent log") {
		t.Fatalf("just joined: held %v (%q)", held, why)
	}
	now = t0.Add(Takeover)
	if _, held := g.Hold(); held {
		t.Fatal("still held after Takeover")
	}
}
