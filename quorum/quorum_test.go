package quorum

import (
	"testing"
	"time"
)

func TestStreak(t *testing.T) {
	var s Streak
	if s.Vote() != VoteAbstain {
		t.Fatalf("zero streak votes %s, want abstain", s.Vote())
	}
	steps := []struct {
		ok   bool
		want Vote
	}{
		{false, VoteUp}, // one failure is not yet down (fail_after 2)
		{false, VoteDown},
		{false, VoteDown},
		{true, VoteDown}, // one success is not yet up (recover_after 3)
		{true, VoteDown},
		{false, VoteDown}, // a failure resets the success run
		{true, VoteDown},
		{true, VoteDown},
		{true, VoteUp},
		{false, VoteUp},
		{true, VoteUp}, // a success resets the failure run
		{false, VoteUp},
		{false, VoteDown},
	}
	for i, st := range steps {
		if got := s.Observe(st.ok, 2, 3); got != st.want {
			t.Fatalf("step %d (ok=%v): vote %s, want %s", i, st.ok, got, st.want)
		}
	}
}

func TestStreakFailAfterOne(t *testing.T) {
	var s Streak
	if got := s.Observe(false, 1, 1); got != VoteDown {
		t.Fatalf("fail_after 1: first failure votes %s, want down", got)
	}
	if got := s.Observe(true, 1, 1); got != VoteUp {
		t.Fatalf("recover_after 1: first success votes %s, want up", got)
	}
}

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func params() Params {
	return Params{Regions: []string{"eu", "us", "ap"}, Quorum: 2, Round: 30 * time.Second, MaxAge: 70 * time.Second, RecoverRounds: 1}
}

func in(now time.Time, votes map[string]Vote) Input {
	m := map[string]RegionInput{}
	for r, v := range votes {
		m[r] = RegionInput{Vote: v, At: now, Eligible: true}
	}
	return Input{Now: now, Regions: m, SeesMajority: true}
}

func TestStates(t *testing.T) {
	cases := []struct {
		name  string
		votes map[string]Vote
		want  State
	}{
		{"all up", map[string]Vote{"eu": VoteUp, "us": VoteUp, "ap": VoteUp}, StateUp},
		{"one region cut from target", map[string]Vote{"eu": VoteDown, "us": VoteUp, "ap": VoteUp}, StateUp},
		{"quorum down", map[string]Vote{"eu": VoteDown, "us": VoteDown, "ap": VoteUp}, StateDown},
		{"only one region eligible", map[string]Vote{"eu": VoteDown, "us": VoteAbstain}, StateUnknown},
		{"votes from unconfigured regions ignored", map[string]Vote{"eu": VoteDown, "xx": VoteDown, "yy": VoteDown}, StateUnknown},
		{"two eligible, one down", map[string]Vote{"eu": VoteDown, "us": VoteUp}, StateUp},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := NewTracker("api", t0)
			tr.Update(params(), in(t0, c.votes))
			if s, _ := tr.State(); s != c.want {
				t.Fatalf("state %s, want %s", s, c.want)
			}
		})
	}
}

func TestStaleVoteAbstains(t *testing.T) {
	p := params()
	input := in(t0, map[string]Vote{"eu": VoteDown, "us": VoteDown, "ap": VoteUp})
	input.Now = t0.Add(p.MaxAge + time.Second)
	tr := NewTracker("api", t0)
	tr.Update(p, input)
	if s, _ := tr.State(); s != StateUnknown {
		t.Fatalf("state with stale votes %s, want unknown", s)
	}
}

func TestNoMajorityNeverDown(t *testing.T) {
	input := in(t0, map[string]Vote{"eu": VoteDown, "us": VoteDown})
	input.SeesMajority = false
	tr := NewTracker("api", t0)
	tr.Update(params(), input)
	if s, _ := tr.State(); s == StateDown {
		t.Fatal("a node without a majority decided down")
	}
}

func TestIncidentLifecycle(t *testing.T) {
	p := params()
	p.RecoverRounds = 2
	tr := NewTracker("api", t0)
	if _, ok := tr.Update(p, in(t0, map[string]Vote{"eu": VoteUp, "us": VoteUp, "ap": VoteUp})); !ok {
		t.Fatal("unknown → up: no transition")
	}
	now := t0.Add(45 * time.Second)
	trn, ok := tr.Update(p, in(now, map[string]Vote{"eu": VoteDown, "us": VoteDown, "ap": VoteUp}))
	if !ok || trn.To != StateDown || !trn.Opened || trn.IncidentID == "" {
		t.Fatalf("down transition %+v", trn)
	}
	id := trn.IncidentID
	if want := IncidentID("api", t0.Add(30*time.Second)); id != want {
		t.Fatalf("incident id %s, want %s (round start)", id, want)
	}
	// Unknown keeps the incident open.
	now = now.Add(30 * time.Second)
	trn, _ = tr.Update(p, in(now, map[string]Vote{"eu": VoteDown}))
	if trn.To != StateUnknown || trn.IncidentID != id || trn.Resolved {
		t.Fatalf("unknown transition %+v", trn)
	}
	// Back to down: same incident, not a new one.
	now = now.Add(30 * time.Second)
	trn, _ = tr.Update(p, in(now, map[string]Vote{"eu": VoteDown, "us": VoteDown}))
	if trn.To != StateDown || trn.Opened || trn.IncidentID != id {
		t.Fatalf("re-down transition %+v", trn)
	}
	// Recovery needs two rounds below quorum.
	now = now.Add(30 * time.Second)
	if _, ok := tr.Update(p, in(now, map[string]Vote{"eu": VoteUp, "us": VoteUp})); ok {
		t.Fatal("recovered after one round with recover rounds 2")
	}
	// A second evaluation in the same round does not count.
	if _, ok := tr.Update(p, in(now.Add(time.Second), map[string]Vote{"eu": VoteUp, "us": VoteUp})); ok {
		t.Fatal("two evaluations in one round counted as two rounds")
	}
	now = now.Add(30 * time.Second)
	trn, ok = tr.Update(p, in(now, map[string]Vote{"eu": VoteUp, "us": VoteUp}))
	if !ok || trn.To != StateUp || !trn.Resolved || trn.IncidentID != id {
		t.Fatalf("resolve transition %+v", trn)
	}
	if cur, _ := tr.Incident(); cur != "" {
		t.Fatalf("incident %s still open after resolve", cur)
	}
}

func TestMaintenanceKeepsIncident(t *testing.T) {
	p := params()
	tr := NewTracker("api", t0)
	trn, _ := tr.Update(p, in(t0, map[string]Vote{"eu": VoteDown, "us": VoteDown}))
	id := trn.IncidentID
	m := in(t0.Add(time.Minute), map[string]Vote{"eu": VoteDown, "us": VoteDown})
	m.Maintenance = true
	trn, _ = tr.Update(p, m)
	if trn.To != StateMaintenance || trn.IncidentID != id || trn.Resolved {
		t.Fatalf("maintenance transition %+v", trn)
	}
}

func TestIncidentIDDeterministic(t *testing.T) {
	a := IncidentID("api", t0)
	if a != IncidentID("api", t0.In(time.FixedZone("x", 3600))) {
		t.Fatal("incident id depends on time zone")
	}
	if a == IncidentID("db", t0) || a == IncidentID("api", t0.Add(time.Second)) {
		t.Fatal("incident ids collide")
	}
}

func TestDownStartAndForce(t *testing.T) {
	eu, us, ap := t0.Add(2100*time.Millisecond), t0.Add(2200*time.Millisecond), t0.Add(2300*time.Millisecond)
	if got := DownStart(2, []time.Time{ap, eu}); !got.Equal(ap) {
		t.Fatalf("partial view: %v, want %v", got, ap)
	}
	if got := DownStart(2, []time.Time{ap, us, eu}); !got.Equal(us) {
		t.Fatalf("full view: %v, want %v", got, us)
	}
	if !DownStart(2, []time.Time{eu}).IsZero() {
		t.Fatal("start without a quorum of times")
	}
	// Two nodes decide on different partial views; the second takes the
	// first's id, as a node takes the designated sender's.
	p := params()
	a, b := NewTracker("api", t0), NewTracker("api", t0)
	ia := in(t0.Add(3*time.Second), map[string]Vote{"eu": VoteDown, "us": VoteDown})
	ia.DownSince = DownStart(2, []time.Time{eu, us})
	ib := in(t0.Add(3*time.Second), map[string]Vote{"eu": VoteDown, "ap": VoteDown})
	ib.DownSince = DownStart(2, []time.Time{eu, ap})
	if !a.Opens(p, ia) || !b.Opens(p, ib) {
		t.Fatal("Opens: a quorum of down votes should open an incident")
	}
	ta, _ := a.Update(p, ia)
	tb, _ := b.Update(p, ib)
	if a.Opens(p, ia) {
		t.Fatal("Opens with an incident already open")
	}
	if ta.IncidentID == tb.IncidentID {
		t.Fatal("test premise: partial views should differ")
	}
	if ta.IncidentID != IncidentID("api", us) {
		t.Fatal("incident not named by its down start")
	}
	aid, astart := a.Incident()
	if _, ok := a.Force(aid, astart); ok {
		t.Fatal("Force with the same id reported a change")
	}
	if old, ok := b.Force(aid, astart); !ok || old != tb.IncidentID {
		t.Fatalf("b did not take a's incident (old %q, ok %v)", old, ok)
	}
	if bid, bstart := b.Incident(); bid != aid || !bstart.Equal(astart) {
		t.Fatalf("ids did not converge: %s vs %s", bid, aid)
	}
	if NewTracker("api", t0).Opens(p, in(t0, map[string]Vote{"eu": VoteDown, "us": VoteUp, "ap": VoteUp})) {
		t.Fatal("Opens below quorum")
	}
	blind := in(t0, map[string]Vote{"eu": VoteDown, "us": VoteDown})
	blind.SeesMajority = false
	if NewTracker("api", t0).Opens(p, blind) {
		t.Fatal("Opens without a majority in sight")
	}
}
