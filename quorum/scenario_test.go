package quorum

import (
	"testing"
	"time"
)

// A node's view in a scenario: per region, the votes of its alive nodes.
type scenario struct {
	name         string
	regions      map[string][]NodeVote
	seesMajority bool
	want         State
}

func nv(node string, v Vote, at time.Time) NodeVote {
	return NodeVote{Node: node, Vote: v, At: at, DownSince: at, Healthy: true}
}

func evalScenario(p Params, now time.Time, sc scenario) (State, Transition) {
	in := Input{Now: now, Regions: map[string]RegionInput{}, SeesMajority: sc.seesMajority}
	var since []time.Time
	for r, votes := range sc.regions {
		ri, ds, ok := Region(p, now, votes)
		if !ok {
			continue
		}
		if ri.Vote == VoteDown {
			since = append(since, ds)
		}
		in.Regions[r] = ri
	}
	in.DownSince = DownStart(p.Quorum, since)
	tr := NewTracker("api", now)
	t, _ := tr.Update(p, in)
	s, _ := tr.State()
	return s, t
}

func TestScenarios(t *testing.T) {
	p := params()
	now := t0
	blind := func(node string) NodeVote { // canaries failing: abstains
		v := nv(node, VoteDown, now)
		v.Healthy = false
		return v
	}
	cases := []scenario{
		{"one region cut from the target only", map[string][]NodeVote{
			"eu": {nv("eu-1", VoteDown, now)}, "us": {nv("us-1", VoteUp, now)}, "ap": {nv("ap-1", VoteUp, now)}}, true, StateUp},
		{"one region blind while the target is down everywhere else", map[string][]NodeVote{
			"eu": {blind("eu-1")}, "us": {nv("us-1", VoteDown, now)}, "ap": {nv("ap-1", VoteDown, now)}}, true, StateDown},
		{"two regions blind: nobody can tell", map[string][]NodeVote{
			"eu": {blind("eu-1")}, "us": {blind("us-1")}, "ap": {nv("ap-1", VoteDown, now)}}, true, StateUnknown},
		{"2/1 partition, majority side sees the outage", map[string][]NodeVote{
			"eu": {nv("eu-1", VoteDown, now)}, "us": {nv("us-1", VoteDown, now)}}, true, StateDown},
		{"2/1 partition, minority side never decides down", map[string][]NodeVote{
			"ap": {nv("ap-1", VoteDown, now)}}, false, StateUnknown},
		{"clock skew ±2s: votes still fresh", map[string][]NodeVote{
			"eu": {nv("eu-1", VoteDown, now.Add(2*time.Second))}, "us": {nv("us-1", VoteDown, now.Add(-2*time.Second))},
			"ap": {nv("ap-1", VoteUp, now)}}, true, StateDown},
		{"a region with two nodes that disagree does not vote down", map[string][]NodeVote{
			"eu": {nv("eu-1", VoteDown, now), nv("eu-2", VoteUp, now)}, "us": {nv("us-1", VoteDown, now)},
			"ap": {nv("ap-1", VoteUp, now)}}, true, StateUp},
		{"a region whose two nodes agree votes down", map[string][]NodeVote{
			"eu": {nv("eu-1", VoteDown, now), nv("eu-2", VoteDown, now)}, "us": {nv("us-1", VoteDown, now)},
			"ap": {nv("ap-1", VoteUp, now)}}, true, StateDown},
		{"two of three nodes of a region down", map[string][]NodeVote{
			"eu": {nv("eu-1", VoteDown, now), nv("eu-2", VoteDown, now), nv("eu-3", VoteUp, now)},
			"us": {nv("us-1", VoteDown, now)}}, true, StateDown},
		{"stale votes abstain", map[string][]NodeVote{
			"eu": {nv("eu-1", VoteDown, now.Add(-p.MaxAge-time.Second))}, "us": {nv("us-1", VoteDown, now)},
			"ap": {nv("ap-1", VoteUp, now)}}, true, StateUp},
	}
	for _, sc := range cases {
		t.Run(sc.name, func(t *testing.T) {
			got, _ := evalScenario(p, now, sc)
			if got != sc.want {
				t.Fatalf("state %s, want %s", got, sc.want)
			}
		})
	}
}

// TestClockSkewSameIncidentID: two nodes whose clocks differ by ±2 s decide
// the same outage at different local times; the incident id comes from the
// votes' down-since times, so it is the same.
func TestClockSkewSameIncidentID(t *testing.T) {
	p := params()
	votes := map[string][]NodeVote{
		"eu": {nv("eu-1", VoteDown, t0)}, "us": {nv("us-1", VoteDown, t0.Add(700*time.Millisecond))}, "ap": {nv("ap-1", VoteUp, t0)},
	}
	_, a := evalScenario(p, t0.Add(2*time.Second), scenario{regions: votes, seesMajority: true})
	_, b := evalScenario(p, t0.Add(-2*time.Second+time.Second), scenario{regions: votes, seesMajority: true})
	if a.IncidentID == "" || a.IncidentID != b.IncidentID {
		t.Fatalf("skewed nodes computed ids %q and %q", a.IncidentID, b.IncidentID)
	}
}

// TestFlappingTarget: a target failing every other probe never makes a
// region vote down with fail_after 2, so it never pages.
func TestFlappingTarget(t *testing.T) {
	var s Streak
	for i := range 100 {
		if v := s.Observe(i%2 == 0, 2, 2); v == VoteDown {
			t.Fatalf("probe %d: a flapping target made the region vote down", i)
		}
	}
	// Two failures in a row do.
	s.Observe(false, 2, 2)
	if v := s.Observe(false, 2, 2); v != VoteDown {
		t.Fatalf("two consecutive failures: vote %s", v)
	}
}

func TestRegionCombine(t *testing.T) {
	p := params()
	if _, _, ok := Region(p, t0, nil); ok {
		t.Fatal("a region without votes is eligible")
	}
	if _, _, ok := Region(p, t0, []NodeVote{{Node: "a", Vote: VoteAbstain, At: t0, Healthy: true}}); ok {
		t.Fatal("an abstaining region is eligible")
	}
	early, late := t0.Add(-time.Minute), t0.Add(-time.Second)
	ri, since, ok := Region(p, t0, []NodeVote{
		{Node: "a", Vote: VoteDown, At: t0, DownSince: late, Healthy: true},
		{Node: "b", Vote: VoteDown, At: t0.Add(-time.Second), DownSince: early, Healthy: true},
	})
	if !ok || ri.Vote != VoteDown || !since.Equal(early) || !ri.At.Equal(t0) {
		t.Fatalf("region %+v since %v ok %v", ri, since, ok)
	}
}
