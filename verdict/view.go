package verdict

import (
	"slices"
	"time"
)

// Member states, as the cluster reports them.
const (
	MemberAlive   = "alive"
	MemberSuspect = "suspect"
	MemberDead    = "dead"
	MemberLeft    = "left"
)

// Member is one node as gossip sees it.
type Member struct {
	Name, Region, State string
}

// View is one moment's membership, as the verdict uses it: which nodes of
// which regions can vote, whether this node sees a majority of the
// configured regions, and who the designated sender is. It is immutable.
type View struct {
	// Regions are the configured regions: the quorum's denominator.
	Regions []string
	Quorum  int
	// Alive lists, per region, the nodes alive or suspect (this node
	// included).
	Alive        map[string][]string
	SeesMajority bool
	// Sender is the designated sender: the first by name of the alive
	// nodes of the configured regions that can write their data directory,
	// while this node sees a majority; "" otherwise.
	Sender string
	// MajoritySince is when this node last came to see a majority (zero
	// when it does not, or in a view built by NewView).
	MajoritySince time.Time

	regionOf map[string]string // alive or suspect node -> region
}

// NewView computes the view of members (this node, self of region, is
// always alive) against the configured regions and quorum.
func NewView(self, region string, members []Member, regions []string, quorum int) *View {
	return newView(self, region, members, regions, quorum, nil)
}

// newView: nodes in degraded (they cannot write their data directory) are
// not the sender.
func newView(self, region string, members []Member, regions []string, quorum int, degraded map[string]bool) *View {
	v := &View{Regions: regions, Quorum: quorum, Alive: map[string][]string{}, regionOf: map[string]string{}}
	var names []string
	add := func(name, r string, alive bool) {
		v.Alive[r] = append(v.Alive[r], name)
		v.regionOf[name] = r
		if alive && slices.Contains(regions, r) && !degraded[name] {
			names = append(names, name)
		}
	}
	for _, m := range members {
		if m.Name == self {
			continue
		}
		if m.State == MemberAlive || m.State == MemberSuspect {
			add(m.Name, m.Region, m.State == MemberAlive)
		}
	}
	add(self, region, true)
	seen := 0
	for _, r := range regions {
		if len(v.Alive[r]) > 0 {
			seen++
		}
	}
	v.SeesMajority = seen*2 > len(regions)
	slices.Sort(names)
	if v.SeesMajority && len(names) > 0 {
		v.Sender = names[0]
	}
	return v
}

// IsAlive reports whether node is alive (or only suspect) in gossip.
func (v *View) IsAlive(node string) bool {
	_, ok := v.regionOf[node]
	return ok
}

// RegionOf returns the region of an alive or suspect node.
func (v *View) RegionOf(node string) (string, bool) {
	r, ok := v.regionOf[node]
	return r, ok
}

// same reports whether two views agree on everything the verdict uses.
func (v *View) same(o *View) bool {
	if o == nil || v.SeesMajority != o.SeesMajority || v.Sender != o.Sender || v.Quorum != o.Quorum ||
		!slices.Equal(v.Regions, o.Regions) || len(v.regionOf) != len(o.regionOf) {
		return false
	}
	for n, r := range v.regionOf {
		if o.regionOf[n] != r {
			return false
		}
	}
	return true
}
