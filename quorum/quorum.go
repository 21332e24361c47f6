// Package quorum turns probe results into votes and votes into a check's
// cluster-wide state. It is pure logic: no sockets, no goroutines, no clock of
// its own (every call takes the current time), so every rule is tested
// deterministically.
//
// Rules:
//
//   - A region's vote on a check comes from consecutive results (Streak): it
//     becomes down after FailAfter consecutive failures and up again after
//     RecoverAfter consecutive successes. Before its first result a region
//     abstains.
//   - A region's vote combines the votes of its alive nodes (Region): the
//     fresh up/down votes of nodes whose canaries pass are counted, and the
//     region votes down when more of them say down than up (a tie is not a
//     down vote: the region cannot confirm the outage).
//   - A region is eligible to vote when its vote is fresh (made within
//     MaxAge of now) and it is not abstaining for another reason (canaries,
//     membership: set by the caller through RegionInput.Eligible).
//   - Only regions listed in Params.Regions count; the denominator never
//     shrinks with the cluster, so losing nodes never makes paging easier.
//   - The state is maintenance inside a maintenance window; otherwise down
//     when at least Quorum eligible regions vote down (and the deciding node
//     sees a majority of the regions), unknown when fewer than Quorum regions
//     are eligible, up otherwise.
//   - From down, the state returns to up only after the down-votes stayed
//     below quorum for RecoverRounds consecutive rounds (distinct evaluation
//     times at least one round apart).
//   - An incident opens when the state becomes down and closes only when the
//     state is up again: unknown or maintenance keep it open. Its id is a
//     hash of the check name and its start: the quorum-th earliest time at
//     which a region's vote turned down (DownStart), taken from the gossiped
//     votes. Nodes that decide on partial views may compute different
//     starts, so the cluster settles the id outside this package: every
//     node takes the designated sender's id (Tracker.Opens tells a node that
//     it is about to open an incident and should wait for it; Tracker.Force
//     installs it), and an id already paged never changes.
package quorum

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"
)

// Vote is a region's opinion of a check.
type Vote string

// Votes.
const (
	VoteUp      Vote = "up"
	VoteDown    Vote = "down"
	VoteAbstain Vote = "abstain"
)

// State is a check's cluster-wide state.
type State string

// States.
const (
	StateUp          State = "up"
	StateDown        State = "down"
	StateUnknown     State = "unknown"
	StateMaintenance State = "maintenance"
)

// Streak derives a region's vote from consecutive probe outcomes.
// The zero value abstains until configured and observed.
type Streak struct {
	fails, oks int
	vote       Vote
}

// Observe records one probe outcome and returns the resulting vote. The first
// outcome decides an initial up (a failure alone is not yet a down vote: it
// takes failAfter of them).
func (s *Streak) Observe(ok bool, failAfter, recoverAfter int) Vote {
	if failAfter < 1 {
		failAfter = 1
	}
	if recoverAfter < 1 {
		recoverAfter = 1
	}
	if s.vote == "" || s.vote == VoteAbstain {
		s.vote = VoteUp
	}
	if ok {
		s.oks++
		s.fails = 0
		if s.vote == VoteDown && s.oks >= recoverAfter {
			s.vote = VoteUp
		}
	} else {
		s.fails++
		s.oks = 0
		if s.vote == VoteUp && s.fails >= failAfter {
			s.vote = VoteDown
		}
	}
	return s.vote
}

// Vote returns the current vote (abstain before the first outcome).
func (s *Streak) Vote() Vote {
	if s.vote == "" {
		return VoteAbstain
	}
	return s.vote
}

// Failures returns the current run of consecutive failures.
func (s *Streak) Failures() int { return s.fails }

// Successes returns the current run of consecutive successes.
func (s *Streak) Successes() int { return s.oks }

// Params are a check's voting parameters.
type Params struct {
	Regions       []string      // the configured regions: the denominator
	Quorum        int           // regions that must vote down
	Round         time.Duration // the check's interval: one voting round
	MaxAge        time.Duration // a vote older than this abstains
	RecoverRounds int           // rounds below quorum before down turns up
}

// RegionInput is one region's current vote as seen by the deciding node.
type RegionInput struct {
	Vote     Vote
	At       time.Time // when the vote was made
	Eligible bool      // alive in gossip and canaries passing
}

// Input is everything one evaluation looks at.
type Input struct {
	Now          time.Time
	Regions      map[string]RegionInput
	Maintenance  bool
	SeesMajority bool // the deciding node sees a majority of Regions alive
	// DownSince is when the down-quorum formed (see DownStart); it names a
	// new incident. Zero: the start of the current round.
	DownSince time.Time
}

// DownStart returns the time a down-quorum formed: the q-th earliest of the
// times at which the regions voting down turned down. Zero when fewer than q
// times are given.
func DownStart(q int, since []time.Time) time.Time {
	if q < 1 {
		q = 1
	}
	if len(since) < q {
		return time.Time{}
	}
	s := append([]time.Time(nil), since...)
	slices.SortFunc(s, func(a, b time.Time) int { return a.Compare(b) })
	return s[q-1].UTC()
}

// Tally is the vote count of one evaluation.
type Tally struct {
	Eligible  []string // regions eligible to vote, in Params.Regions order
	Down      []string // eligible regions voting down
	Up        []string // eligible regions voting up
	Abstained []string // regions not eligible
}

// Count tallies the votes of in against p.
func Count(p Params, in Input) Tally {
	var t Tally
	for _, r := range p.Regions {
		ri, ok := in.Regions[r]
		if !ok || !Eligible(p, in.Now, ri) {
			t.Abstained = append(t.Abstained, r)
			continue
		}
		t.Eligible = append(t.Eligible, r)
		if ri.Vote == VoteDown {
			t.Down = append(t.Down, r)
		} else {
			t.Up = append(t.Up, r)
		}
	}
	return t
}

// Eligible reports whether a region's input may vote at now.
func Eligible(p Params, now time.Time, ri RegionInput) bool {
	if !ri.Eligible || (ri.Vote != VoteUp && ri.Vote != VoteDown) {
		return false
	}
	if p.MaxAge > 0 && now.Sub(ri.At) > p.MaxAge {
		return false
	}
	return true
}

// NodeVote is one node's latest vote on a check.
type NodeVote struct {
	Node      string
	Vote      Vote
	At        time.Time // when the vote was made
	DownSince time.Time // when the node's vote turned down
	Healthy   bool      // the node's canaries pass
}

// Region combines the votes of one region's alive nodes. ok is false when
// no node has a fresh up or down vote: the region is not eligible. downSince
// is the earliest DownSince of the nodes voting down, when the region does.
func Region(p Params, now time.Time, votes []NodeVote) (in RegionInput, downSince time.Time, ok bool) {
	var up, down int
	var at time.Time
	for _, v := range votes {
		if !v.Healthy || (p.MaxAge > 0 && now.Sub(v.At) > p.MaxAge) {
			continue
		}
		switch v.Vote {
		case VoteDown:
			down++
			ds := v.DownSince
			if ds.IsZero() {
				ds = v.At
			}
			if downSince.IsZero() || ds.Before(downSince) {
				downSince = ds
			}
		case VoteUp:
			up++
		default:
			continue
		}
		if v.At.After(at) {
			at = v.At
		}
	}
	if up+down == 0 {
		return RegionInput{}, time.Time{}, false
	}
	if down > up {
		return RegionInput{Vote: VoteDown, At: at, Eligible: true}, downSince, true
	}
	return RegionInput{Vote: VoteUp, At: at, Eligible: true}, time.Time{}, true
}

// Transition describes a state change made by Tracker.Update.
type Transition struct {
	From, To State
	At       time.Time
	// IncidentID is the incident this change belongs to: the one opened,
	// kept open or resolved by it ("" if none).
	IncidentID string
	Opened     bool // an incident opened with this change
	Resolved   bool // an incident closed with this change
	Tally      Tally
}

// Tracker holds one check's state between evaluations.
type Tracker struct {
	Check string

	state      State
	since      time.Time
	incident   string
	incStart   time.Time
	below      int
	lastBelowR int64
}

// NewTracker returns a tracker in state unknown.
func NewTracker(check string, now time.Time) *Tracker {
	return &Tracker{Check: check, state: StateUnknown, since: now}
}

// State returns the current state and when it began.
func (t *Tracker) State() (State, time.Time) { return t.state, t.since }

// Incident returns the open incident's id and start ("" if none).
func (t *Tracker) Incident() (string, time.Time) { return t.incident, t.incStart }

// Restore sets the state and open incident, e.g. after a restart.
func (t *Tracker) Restore(s State, since time.Time, incidentID string, incidentStart time.Time) {
	t.state, t.since, t.incident, t.incStart = s, since, incidentID, incidentStart
}

// Opens reports whether Update(p, in) would open an incident, without
// changing anything.
func (t *Tracker) Opens(p Params, in Input) bool {
	return t.incident == "" && !in.Maintenance && in.SeesMajority && len(Count(p, in).Down) >= max(p.Quorum, 1)
}

// Force replaces the open incident's id and start: with the designated
// sender's, or with an id that was already paged, which is final. It returns the replaced id and true when
// it changed anything.
func (t *Tracker) Force(id string, start time.Time) (string, bool) {
	if t.incident == "" || id == t.incident {
		return "", false
	}
	old := t.incident
	t.incident, t.incStart = id, start.UTC()
	return old, true
}

// Update evaluates one round and returns the transition, if any.
func (t *Tracker) Update(p Params, in Input) (Transition, bool) {
	tally := Count(p, in)
	q := p.Quorum
	if q < 1 {
		q = 1
	}
	next := t.state
	switch {
	case in.Maintenance:
		next = StateMaintenance
	case len(tally.Down) >= q && in.SeesMajority:
		next = StateDown
	case len(tally.Eligible) < q:
		next = StateUnknown
	default:
		next = StateUp
	}
	// Hysteresis: a down check needs RecoverRounds rounds below quorum.
	if t.state == StateDown && next == StateUp && p.RecoverRounds > 1 {
		r := roundIndex(in.Now, p.Round)
		if t.below == 0 || r != t.lastBelowR {
			t.below++
			t.lastBelowR = r
		}
		if t.below < p.RecoverRounds {
			next = StateDown
		}
	} else if next != StateUp {
		t.below = 0
	}
	if next == t.state {
		return Transition{}, false
	}
	tr := Transition{From: t.state, To: next, At: in.Now, Tally: tally}
	t.state, t.since, t.below = next, in.Now, 0
	switch {
	case next == StateDown && t.incident == "":
		start := in.DownSince.UTC()
		if in.DownSince.IsZero() {
			start = roundStart(in.Now, p.Round)
		}
		t.incident, t.incStart = IncidentID(t.Check, start), start
		tr.Opened = true
	case next == StateUp && t.incident != "":
		tr.Resolved = true
		tr.IncidentID = t.incident
		t.incident, t.incStart = "", time.Time{}
		return tr, true
	}
	tr.IncidentID = t.incident
	return tr, true
}

func roundIndex(now time.Time, round time.Duration) int64 {
	if round <= 0 {
		return now.UnixNano()
	}
	return now.UnixNano() / int64(round)
}

func roundStart(now time.Time, round time.Duration) time.Time {
	if round <= 0 {
		return now.UTC()
	}
	return now.UTC().Truncate(round)
}

// IncidentID is the id of the incident of check opened in the round that
// starts at start: the same on every node that computes it.
func IncidentID(check string, start time.Time) string {
	h := sha256.Sum256([]byte(check + "|" + start.UTC().Format(time.RFC3339Nano)))
	return hex.EncodeToString(h[:8])
}
