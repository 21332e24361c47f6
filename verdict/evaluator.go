// Package verdict decides checks' states. Probe results of this node and
// the vote table shared by the mesh go in; state changes come out, in
// order, as Change values (Run). Each evaluation looks at one check: its
// votes, the canary health of their nodes and the membership, so the work
// per result is O(nodes of the check), never O(checks). The rules are
// quorum's; this package adds what needs the cluster: a region's vote from
// its alive nodes, the incident id the designated sender names, and
// adopting an id that was already paged.
//
// Nothing here assumes that every node probes every check: a region's
// vote is the majority of the fresh votes of whichever of its alive nodes
// voted on the check.
package verdict

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/vantage-dev/vantage/checker"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/quorum"
)

const (
	// VoteSlack is added to 2 × interval before a vote counts as stale.
	VoteSlack = 5 * time.Second
	// IDSettle is how long a node other than the designated sender waits
	// for the sender's incident id before it shows a check down under its
	// own.
	IDSettle = 3 * time.Second
)

// Change is a check's state change, or the replacement of its incident's
// id by the designated sender's.
type Change struct {
	Check    string
	From, To quorum.State
	At       time.Time
	// IncidentID is the incident the change belongs to: the one opened,
	// kept open or resolved by it ("" if none); Start is its start.
	IncidentID string
	Start      time.Time
	Opened     bool // an incident opened with this change
	Resolved   bool // an incident closed with this change
	// Replaced is the id this change replaced with IncidentID (adopted
	// from the designated sender, or an id already paged); From and To are
	// equal when this is all that changed.
	Replaced string
	Tally    quorum.Tally
	// View is the check as it stands after the change.
	View CheckView
}

// RegionView is one region's vote on a check as this node sees it.
type RegionView struct {
	Vote      quorum.Vote // abstain when the region has no fresh vote
	At        time.Time   // when its freshest vote was made
	Eligible  bool        // its vote counts now
	LatencyMS float64     // of its freshest vote
	Code      string      // error code of its freshest vote
	Node      string      // the node of its freshest vote
}

// CheckView is one check as this node sees it.
type CheckView struct {
	Config        *config.Check
	State         quorum.State
	Since         time.Time
	IncidentID    string
	IncidentStart time.Time
	// Regions holds every configured region.
	Regions map[string]RegionView
	// Last is this node's latest result (HaveLast false before the first).
	Last     checker.Result
	HaveLast bool
	// Failures is this node's run of consecutive failures.
	Failures int
}

// Options configure an Evaluator.
type Options struct {
	Self, Region string
	Now          func() time.Time
	Votes        *mesh.Votes
	Health       *mesh.Health
	Incidents    *mesh.Incidents
	Sent         *mesh.SentLog
	Receipts     *mesh.Receipts // push checks' reports
	Logger       *slog.Logger
	// Maintenance, when set, reports whether a runtime maintenance window
	// (scheduled through the API) covers check at t; consulted alongside
	// the config's windows. It must not block or call into the evaluator.
	Maintenance func(check string, t time.Time) bool
	// Canary, when set, gates this node's down votes (cluster.canaries):
	// it reports the verdict of a canary round that began at or after
	// since, known false until one has completed (and then asks for one).
	Canary func(since time.Time) (ok, known bool)
}

// checkState is what the evaluator keeps per check.
type checkState struct {
	cfg       *config.Check
	streak    quorum.Streak
	downSince time.Time
	lastFail  string // code of the latest failed probe
	tracker   *quorum.Tracker
	last      checker.Result
	have      bool
	// pendingDown is when this node first saw a quorum of down votes while
	// waiting for the designated sender's incident id.
	pendingDown time.Time
	// The last incident resolved here, so a late announcement of it is not
	// taken for the next one.
	lastResolvedID    string
	lastResolvedStart time.Time
	// due is when time alone could change the verdict (a counted vote
	// going stale, the wait for the sender's id ending); zero: never.
	due time.Time
	// maint: the check has maintenance windows (evaluated every sweep).
	maint bool
	// rtMaint: a runtime window covered the check at its last evaluation
	// (evaluated every sweep, so its end or cancellation is seen).
	rtMaint bool
	// published is the vote this node last shared; gate, when set, is the
	// start of the failing probe whose down vote waits for a canary round
	// that began after it.
	published quorum.Vote
	gate      time.Time
	// key is the check's ProbeKey: the settings this node probes with.
	key uint64
}

// Evaluator holds every check's verdict state.
type Evaluator struct {
	o   Options
	log *slog.Logger

	mu       sync.Mutex
	cfg      *config.Config
	checks   map[string]*checkState
	names    []string // in config order
	members  []Member
	degraded map[string]bool
	view     *View
	queue    []Change
	kick     chan struct{}
	gated    map[string]bool // checks whose down vote waits for the canaries
	started  time.Time       // push checks that never reported are late from here
	// odd holds the (node, check) pairs whose votes were left out because
	// the node probes the check with other settings (logged once each).
	odd map[[2]string]bool
	// senderSince is when this node last became the designated sender:
	// for IDSettle after, it too waits for peers' ids before naming an
	// incident (it may have just joined a cluster mid-incident).
	senderSince time.Time
}

// New returns an evaluator with no checks; call SetConfig.
func New(o Options) *Evaluator {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	e := &Evaluator{o: o, log: o.Logger, cfg: &config.Config{}, started: o.Now(), checks: map[string]*checkState{}, kick: make(chan struct{}, 1),
		gated: map[string]bool{}, odd: map[[2]string]bool{}}
	e.setViewLocked(newView(o.Self, o.Region, nil, e.regions(), 1, nil))
	return e
}

func (e *Evaluator) regions() []string {
	if rs := e.cfg.Cluster.Regions; len(rs) > 0 {
		return rs
	}
	return []string{e.o.Region}
}

func (e *Evaluator) quorum() int {
	if q := e.cfg.Cluster.Quorum; q >= 1 {
		return q
	}
	return len(e.regions())/2 + 1
}

// Params are a check's voting parameters under the running config.
func (e *Evaluator) Params(c *config.Check) quorum.Params {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.paramsLocked(c)
}

func (e *Evaluator) paramsLocked(c *config.Check) quorum.Params {
	return quorum.Params{Regions: e.view.Regions, Quorum: e.view.Quorum, Round: c.Interval,
		MaxAge: 2*c.Interval + VoteSlack, RecoverRounds: 1}
}

// View returns the current membership view.
func (e *Evaluator) View() *View {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.view
}

// SetMembers replaces the membership and reports whether the view
// changed (who can vote, the sender, the majority): then call
// EvaluateAll.
func (e *Evaluator) SetMembers(ms []Member) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	v := newView(e.o.Self, e.o.Region, ms, e.regions(), e.quorum(), e.degraded)
	changed := !v.same(e.view)
	e.setViewLocked(v)
	e.members = ms
	return changed
}

// setViewLocked installs a view, noting when this node became the
// designated sender.
func (e *Evaluator) setViewLocked(v *View) {
	if v.Sender == e.o.Self && (e.view == nil || e.view.Sender != e.o.Self) {
		e.senderSince = e.o.Now()
	}
	switch {
	case !v.SeesMajority:
	case e.view == nil || !e.view.SeesMajority:
		v.MajoritySince = e.o.Now()
	default:
		v.MajoritySince = e.view.MajoritySince
	}
	e.view = v
}

// SetDegraded replaces the set of nodes that cannot write their data
// directory (they step aside as sender) and reports whether the view
// changed.
func (e *Evaluator) SetDegraded(nodes map[string]bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.degraded = nodes
	v := newView(e.o.Self, e.o.Region, e.members, e.regions(), e.quorum(), e.degraded)
	changed := !v.same(e.view)
	e.setViewLocked(v)
	return changed
}

// Diff says what SetConfig changed.
type Diff struct {
	Added, Removed, Changed []string
	// Reset lists the checks whose probe changed: their streak restarted.
	Reset []string
	// Closed lists the open incidents of removed checks.
	Closed []Closed
}

// Closed is the open incident of a check removed from the config.
type Closed struct {
	Check      *config.Check // its last definition
	IncidentID string
	Start      time.Time
}

// SetConfig applies a config: checks added start unknown; a check that
// stays keeps its votes, state and open incident, and restarts its streak
// when its probe changed (old results say nothing about the new probe); a
// removed check's open incident is reported in Diff.Closed.
func (e *Evaluator) SetConfig(cfg *config.Config) Diff {
	var d Diff
	now := e.o.Now()
	e.mu.Lock()
	checks := make(map[string]*checkState, len(cfg.Checks))
	names := make([]string, 0, len(cfg.Checks))
	for i := range cfg.Checks {
		c := &cfg.Checks[i]
		names = append(names, c.Name)
		cs, ok := e.checks[c.Name]
		if !ok {
			checks[c.Name] = &checkState{cfg: c, tracker: quorum.NewTracker(c.Name, now)}
			d.Added = append(d.Added, c.Name)
			continue
		}
		if !cs.cfg.Same(c) {
			d.Changed = append(d.Changed, c.Name)
			if !cs.cfg.SameProbe(c) {
				cs.streak, cs.downSince, cs.lastFail, cs.have = quorum.Streak{}, time.Time{}, "", false
				cs.published, cs.gate = "", time.Time{}
				delete(e.gated, c.Name)
				d.Reset = append(d.Reset, c.Name)
			}
		}
		cs.cfg = c
		checks[c.Name] = cs
	}
	for name, cs := range e.checks {
		if _, ok := checks[name]; ok {
			continue
		}
		d.Removed = append(d.Removed, name)
		if id, start := cs.tracker.Incident(); id != "" {
			d.Closed = append(d.Closed, Closed{Check: cs.cfg, IncidentID: id, Start: start})
		}
	}
	inWindow := map[string]bool{}
	for _, w := range cfg.Maintenance {
		for _, name := range w.Checks {
			inWindow[name] = true
		}
	}
	for name, cs := range checks {
		cs.maint, cs.due, cs.key = inWindow[name], time.Time{}, cs.cfg.ProbeKey()
	}
	clear(e.odd)
	e.cfg, e.checks, e.names = cfg, checks, names
	e.setViewLocked(newView(e.o.Self, e.o.Region, e.members, e.regions(), e.quorum(), e.degraded))
	e.mu.Unlock()
	for _, name := range d.Reset {
		e.o.Votes.Forget(name) // our vote was about the old probe
	}
	return d
}

// Restore reopens, after a restart, an incident that was open: an incident
// ends only when its check is seen up again.
func (e *Evaluator) Restore(check, id string, start time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	cs, ok := e.checks[check]
	if ok {
		cs.tracker.Restore(quorum.StateDown, start, id, start)
		e.announce(check, id, start)
	}
	return ok
}

// Observation is what one result did to this node's vote.
type Observation struct {
	Prev, Vote quorum.Vote
	Failures   int
	Successes  int
	// State is the check's state before the result.
	State quorum.State
}

// Observe records this node's result of a probe of check, shares the
// vote (abstain while the canaries fail: healthy false) and re-evaluates
// the check. ok is false for a check not in the config.
func (e *Evaluator) Observe(check string, r checker.Result, healthy bool) (Observation, bool) {
	now := e.o.Now()
	e.mu.Lock()
	cs, ok := e.checks[check]
	if !ok {
		e.mu.Unlock()
		return Observation{}, false
	}
	c := cs.cfg
	prev := cs.streak.Vote()
	vote := cs.streak.Observe(r.OK, c.FailAfter, c.RecoverAfter)
	switch {
	case vote == quorum.VoteDown && prev != quorum.VoteDown:
		cs.downSince = now
	case vote != quorum.VoteDown:
		cs.downSince = time.Time{}
	}
	cs.last, cs.have = r, true
	if !r.OK {
		cs.lastFail = r.Code
	}
	start := r.Start
	if start.IsZero() {
		start = now
	}
	publish := e.gateLocked(check, cs, vote, !r.OK, start)
	if !healthy {
		publish = quorum.VoteAbstain
	}
	state, _ := cs.tracker.State()
	obs := Observation{Prev: prev, Vote: vote, Failures: cs.streak.Failures(), Successes: cs.streak.Successes(), State: state}
	v := e.voteLocked(cs, publish, r, now)
	e.mu.Unlock()
	if err := e.o.Votes.Put(v); err != nil {
		e.log.Warn("share vote", "check", check, "err", err)
	}
	e.Evaluate(check)
	return obs, true
}

// gateLocked is the canary gate: the vote this node may share when its
// streak says vote. A region votes down only on the evidence of a canary
// round that began after the failing probe began: until that round's
// verdict is in, it keeps its previous vote; if the canaries failed, it
// abstains. So two regions that go blind together never make a quorum,
// however fast confirmation runs.
//
// Only a failing probe can turn the shared vote down: a success that the
// streak still counts as down (recover_after) keeps the shared vote, so a
// region that abstained while blind does not vote down once its network
// heals.
func (e *Evaluator) gateLocked(check string, cs *checkState, vote quorum.Vote, failed bool, probeStart time.Time) quorum.Vote {
	if e.o.Canary == nil || vote != quorum.VoteDown || cs.published == quorum.VoteDown {
		cs.gate = time.Time{}
		delete(e.gated, check)
		return vote
	}
	if !failed {
		cs.gate = time.Time{}
		delete(e.gated, check)
		if cs.published == "" {
			return quorum.VoteAbstain
		}
		return cs.published
	}
	since := probeStart
	if !cs.gate.IsZero() && cs.gate.Before(since) {
		since = cs.gate // the first failing probe still waits: keep its place
	}
	ok, known := e.o.Canary(since)
	switch {
	case !known:
		cs.gate = since
		e.gated[check] = true
		if cs.published == "" {
			return quorum.VoteAbstain
		}
		return cs.published
	case !ok:
		cs.gate = time.Time{}
		delete(e.gated, check)
		return quorum.VoteAbstain
	}
	cs.gate = time.Time{}
	delete(e.gated, check)
	return quorum.VoteDown
}

// voteLocked is the vote this node shares on cs, and records it.
func (e *Evaluator) voteLocked(cs *checkState, vote quorum.Vote, r checker.Result, now time.Time) mesh.Vote {
	cs.published = vote
	code := r.Code
	if vote == quorum.VoteDown && code == "" {
		code = cs.lastFail // a down vote names the failure behind it
	}
	v := mesh.Vote{Check: cs.cfg.Name, Vote: string(vote), At: now, Failures: cs.streak.Failures(), Code: code,
		LatencyMS: ms(r.Latency), Key: cs.key}
	if vote == quorum.VoteDown {
		v.DownSince = cs.downSince
	}
	return v
}

// CanaryRound takes a completed canary round: the checks whose down vote
// waited for it now vote down (the canaries passed) or abstain.
func (e *Evaluator) CanaryRound() {
	now := e.o.Now()
	var votes []mesh.Vote
	e.mu.Lock()
	for check := range e.gated {
		cs := e.checks[check]
		if cs == nil {
			delete(e.gated, check)
			continue
		}
		if cs.streak.Vote() != quorum.VoteDown {
			cs.gate = time.Time{}
			delete(e.gated, check)
			continue
		}
		gate := cs.gate
		publish := e.gateLocked(check, cs, quorum.VoteDown, true, gate)
		if cs.gate.Equal(gate) && e.gated[check] {
			continue // still waiting
		}
		votes = append(votes, e.voteLocked(cs, publish, cs.last, now))
	}
	e.mu.Unlock()
	for _, v := range votes {
		if err := e.o.Votes.Put(v); err != nil {
			e.log.Warn("share vote", "check", v.Check, "err", err)
		}
		e.Evaluate(v.Check)
	}
}

// ms converts a duration to float milliseconds, rounded to 0.1 ms.
func ms(d time.Duration) float64 {
	return float64(d.Round(100*time.Microsecond)) / float64(time.Millisecond)
}

// EvaluateAll re-evaluates every check: stale votes, maintenance windows,
// membership and canary changes.
func (e *Evaluator) EvaluateAll() {
	e.mu.Lock()
	names := e.names
	e.mu.Unlock()
	for _, name := range names {
		e.Evaluate(name)
	}
}

// EvaluateDue re-evaluates the checks whose verdict time alone may have
// changed since their last evaluation: a vote that counted has gone stale,
// the wait for the designated sender's id is over, or a maintenance window
// may have begun or ended. Checks with fresh results are evaluated as the
// results come; this sweep costs O(checks) comparisons, not evaluations.
func (e *Evaluator) EvaluateDue() {
	now := e.o.Now()
	e.mu.Lock()
	var due []string
	for _, name := range e.names {
		cs := e.checks[name]
		if cs.maint || cs.rtMaint || e.runtimeMaint(name, now) || (!cs.due.IsZero() && !now.Before(cs.due)) {
			due = append(due, name)
		}
	}
	e.mu.Unlock()
	for _, name := range due {
		e.Evaluate(name)
	}
}

// runtimeMaint reports whether a runtime maintenance window covers check
// at t (Options.Maintenance).
func (e *Evaluator) runtimeMaint(check string, t time.Time) bool {
	return e.o.Maintenance != nil && e.o.Maintenance(check, t)
}

// Evaluate decides one check's state from the vote table.
func (e *Evaluator) Evaluate(name string) {
	e.mu.Lock()
	cs, ok := e.checks[name]
	if !ok {
		e.mu.Unlock()
		return
	}
	now := e.o.Now()
	p := e.paramsLocked(cs.cfg)
	view := e.view
	var regions map[string]quorum.RegionInput
	var downSince []time.Time
	if cs.cfg.Type == config.TypePush {
		regions, downSince = e.pushInputsLocked(cs, p, now)
	} else {
		var oldest time.Time
		regions, downSince, oldest = e.regionInputsLocked(cs.cfg.Name, p, view, now)
		cs.due = time.Time{}
		if !oldest.IsZero() {
			cs.due = oldest.Add(p.MaxAge + time.Millisecond) // the oldest counted vote goes stale
		}
	}
	cs.rtMaint = e.runtimeMaint(name, now)
	in := quorum.Input{
		Now: now, Regions: regions, Maintenance: e.cfg.InMaintenance(name, now) || cs.rtMaint,
		SeesMajority: view.SeesMajority, DownSince: quorum.DownStart(p.Quorum, downSince),
	}
	// Every node names an incident as the designated sender does: a node
	// about to open one waits (up to IDSettle) for the sender's id.
	opens := cs.tracker.Opens(p, in)
	auth, haveAuth := e.authorityLocked(cs, view, opens)
	if opens && !haveAuth && (view.Sender != e.o.Self || now.Sub(e.senderSince) < IDSettle) {
		if cs.pendingDown.IsZero() {
			cs.pendingDown = now
			e.log.Debug("quorum down; waiting for the designated sender's incident id", "check", name, "sender", view.Sender)
		}
		if now.Sub(cs.pendingDown) < IDSettle {
			if end := cs.pendingDown.Add(IDSettle); cs.due.IsZero() || end.Before(cs.due) {
				cs.due = end
			}
			e.mu.Unlock()
			return
		}
	}
	cs.pendingDown = time.Time{}
	_, prevStart := cs.tracker.Incident()
	tr, changed := cs.tracker.Update(p, in)
	var replaced string // the id this evaluation replaced with auth's
	if id, _ := cs.tracker.Incident(); id != "" && haveAuth && id != auth.ID {
		old, _ := cs.tracker.Force(auth.ID, auth.Start)
		if changed && tr.Opened {
			tr.IncidentID = auth.ID // opened in this very round: nothing holds the old id yet
		} else {
			replaced = old
		}
	}
	if changed && tr.Resolved {
		cs.lastResolvedID, cs.lastResolvedStart = tr.IncidentID, prevStart
	}
	if !changed && replaced == "" {
		e.mu.Unlock()
		return
	}
	ch := Change{Check: name, From: tr.From, To: tr.To, At: tr.At, IncidentID: tr.IncidentID, Opened: tr.Opened,
		Resolved: tr.Resolved, Replaced: replaced, Tally: tr.Tally}
	if !changed {
		st, _ := cs.tracker.State()
		ch.From, ch.To, ch.At, ch.IncidentID = st, st, now, auth.ID
	}
	ch.Start = prevStart
	if !tr.Resolved {
		_, ch.Start = cs.tracker.Incident()
	}
	ch.View = e.viewLocked(cs, p, view, e.shownInputs(cs, regions), now)
	e.queue = append(e.queue, ch)
	// Under the lock, so that the table follows this check's changes in
	// their order.
	switch {
	case ch.Resolved:
		e.o.Incidents.Forget(name)
	case ch.Opened || ch.Replaced != "":
		e.announce(name, ch.IncidentID, ch.Start)
	}
	e.mu.Unlock()
	select {
	case e.kick <- struct{}{}:
	default:
	}
	if replaced != "" {
		e.log.Info("incident id taken from the designated sender", "check", name, "old", replaced, "incident_id", auth.ID, "start", auth.Start)
	}
}

// announce tells the cluster the incident this node holds open.
func (e *Evaluator) announce(check, id string, start time.Time) {
	if err := e.o.Incidents.Announce(check, id, start, e.o.Sent.Triggered(id)); err != nil {
		e.log.Warn("announce incident", "check", check, "incident_id", id, "err", err)
	}
}

// regionInputsLocked turns the vote table into each region's vote on check
// (quorum.Region over its alive nodes), the regions' down-since times, and
// when the oldest vote that counted was made.
func (e *Evaluator) regionInputsLocked(check string, p quorum.Params, view *View, now time.Time) (map[string]quorum.RegionInput, []time.Time, time.Time) {
	var buf [8]mesh.Vote
	var oldest time.Time
	byRegion := map[string][]quorum.NodeVote{}
	votes := e.o.Votes.Of(check, buf[:0])
	key := e.majorityKeyLocked(check, votes, view)
	for _, v := range votes {
		r, alive := view.RegionOf(v.Node)
		if !alive {
			continue
		}
		if v.Key != key {
			if pair := [2]string{v.Node, check}; !e.odd[pair] && len(e.odd) < 10_000 {
				e.odd[pair] = true
				e.log.Warn("a node probes this check with other settings than the majority: its votes do not count",
					"check", check, "node", v.Node)
			}
			continue
		}
		healthy, _ := e.o.Health.Healthy(v.Node)
		// Peers' clocks are not ours: a vote counts from when it was made
		// on this node's clock (mesh.Vote.Recv), and so does its down-since.
		at, downSince := localTimes(v)
		byRegion[r] = append(byRegion[r], quorum.NodeVote{Node: v.Node, Vote: quorum.Vote(v.Vote), At: at,
			DownSince: downSince, Healthy: healthy})
		if healthy && (v.Vote == mesh.VoteUp || v.Vote == mesh.VoteDown) && now.Sub(at) <= p.MaxAge &&
			(oldest.IsZero() || at.Before(oldest)) {
			oldest = at
		}
	}
	in := make(map[string]quorum.RegionInput, len(p.Regions))
	var downSince []time.Time
	for _, r := range p.Regions {
		ri, since, ok := quorum.Region(p, now, byRegion[r])
		if !ok {
			continue
		}
		if ri.Vote == quorum.VoteDown {
			downSince = append(downSince, since)
		}
		in[r] = ri
	}
	return in, downSince, oldest
}

// localTimes places a vote and its down-since on this node's clock.
func localTimes(v mesh.Vote) (at, downSince time.Time) {
	at = v.Recv
	if at.IsZero() {
		at = v.At
	}
	if !v.DownSince.IsZero() {
		downSince = at.Add(-v.At.Sub(v.DownSince))
	}
	return at, downSince
}

// pushInputsLocked is a push check's verdict as the quorum rules take it:
// no region votes; the check is up while some node took a report of its
// job within period + grace, down after that (also when none came since
// this node started), unknown before. The whole cluster's receipts count,
// so every node decides alike.
func (e *Evaluator) pushInputsLocked(cs *checkState, p quorum.Params, now time.Time) (map[string]quorum.RegionInput, []time.Time) {
	limit := cs.cfg.Period + cs.cfg.Grace
	from, reported := time.Time{}, false
	if e.o.Receipts != nil {
		from, reported = e.o.Receipts.Last(cs.cfg.Name)
	}
	if !reported {
		from = e.started
	}
	late := from.Add(limit)
	vote := quorum.VoteDown
	if !now.After(late) {
		cs.due = late.Add(time.Millisecond)
		if !reported {
			return nil, nil // too soon to tell
		}
		vote = quorum.VoteUp
	} else {
		cs.due = time.Time{}
	}
	in := make(map[string]quorum.RegionInput, len(p.Regions))
	var downSince []time.Time
	for _, r := range p.Regions {
		in[r] = quorum.RegionInput{Vote: vote, At: now, Eligible: true}
		if vote == quorum.VoteDown {
			downSince = append(downSince, late)
		}
	}
	return in, downSince
}

// shownInputs are the region votes shown for a check: none for a push
// check, whose regions do not vote.
func (e *Evaluator) shownInputs(cs *checkState, in map[string]quorum.RegionInput) map[string]quorum.RegionInput {
	if cs.cfg.Type == config.TypePush {
		return nil
	}
	return in
}

// majorityKeyLocked is the settings digest most alive voters on check
// probe it with; a tie goes to this node's own.
func (e *Evaluator) majorityKeyLocked(check string, votes []mesh.Vote, view *View) uint64 {
	own := e.checks[check].key
	counts := map[uint64]int{}
	for _, v := range votes {
		if view.IsAlive(v.Node) {
			counts[v.Key]++
		}
	}
	best, n := own, counts[own]
	for k, c := range counts {
		if c > n {
			best, n = k, c
		}
	}
	return best
}

// authorityLocked is the incident id a check's open or opening incident
// must carry: one already paged, else the designated sender's. The sender
// itself names a new incident, except when it opens one that alive peers
// already hold (it joined or took over mid-incident): it takes theirs (the
// earliest start, then the least id). It reports false when there is none.
// Announcements of the incident resolved last are ignored, however late
// they arrive.
func (e *Evaluator) authorityLocked(cs *checkState, view *View, opening bool) (mesh.Announcement, bool) {
	name := cs.cfg.Name
	usable := func(a mesh.Announcement) bool {
		return a.ID != "" && a.ID != cs.lastResolvedID && a.Start.After(cs.lastResolvedStart)
	}
	if s, ok := e.o.Sent.Paged(name); ok {
		if a := (mesh.Announcement{Node: s.Node, Check: name, ID: s.Incident, Start: s.Start, Paged: true}); usable(a) {
			return a, true
		}
	}
	var buf [8]mesh.Announcement
	anns := e.o.Incidents.Of(name, buf[:0])
	for _, a := range anns {
		if a.Paged && usable(a) {
			return a, true
		}
	}
	switch view.Sender {
	case "":
		return mesh.Announcement{}, false
	case e.o.Self:
		if !opening {
			return mesh.Announcement{}, false
		}
		var best mesh.Announcement
		found := false
		for _, a := range anns {
			if !usable(a) || !view.IsAlive(a.Node) || a.Node == e.o.Self {
				continue
			}
			if c := a.Start.Compare(best.Start); !found || c < 0 || (c == 0 && a.ID < best.ID) {
				best, found = a, true
			}
		}
		return best, found
	}
	for _, a := range anns {
		if a.Node == view.Sender && usable(a) {
			return a, true
		}
	}
	return mesh.Announcement{}, false
}

// viewLocked describes cs for readers.
func (e *Evaluator) viewLocked(cs *checkState, p quorum.Params, view *View, inputs map[string]quorum.RegionInput, now time.Time) CheckView {
	state, since := cs.tracker.State()
	id, start := cs.tracker.Incident()
	cv := CheckView{Config: cs.cfg, State: state, Since: since, IncidentID: id, IncidentStart: start,
		Regions: make(map[string]RegionView, len(p.Regions)), Last: cs.last, HaveLast: cs.have, Failures: cs.streak.Failures()}
	var buf [8]mesh.Vote
	votes := e.o.Votes.Of(cs.cfg.Name, buf[:0])
	for _, r := range p.Regions {
		rv := RegionView{Vote: quorum.VoteAbstain}
		if ri, ok := inputs[r]; ok {
			rv.Vote, rv.At, rv.Eligible = ri.Vote, ri.At, quorum.Eligible(p, now, ri)
		}
		// Latency and error of the region's freshest vote.
		var best mesh.Vote
		for _, v := range votes {
			if vr, ok := view.RegionOf(v.Node); ok && vr == r && v.Recv.After(best.Recv) {
				best = v
			}
		}
		rv.LatencyMS, rv.Code, rv.Node = best.LatencyMS, best.Code, best.Node
		cv.Regions[r] = rv
	}
	return cv
}

// Check returns one check as this node sees it now.
func (e *Evaluator) Check(name string) (CheckView, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	cs, ok := e.checks[name]
	if !ok {
		return CheckView{}, false
	}
	now := e.o.Now()
	p := e.paramsLocked(cs.cfg)
	var inputs map[string]quorum.RegionInput
	if cs.cfg.Type != config.TypePush {
		inputs, _, _ = e.regionInputsLocked(name, p, e.view, now)
	}
	return e.viewLocked(cs, p, e.view, inputs, now), true
}

// State returns a check's state, since when, and its open incident,
// cheaply.
func (e *Evaluator) State(name string) (state quorum.State, since time.Time, incident string, start time.Time, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	cs, ok := e.checks[name]
	if !ok {
		return "", time.Time{}, "", time.Time{}, false
	}
	state, since = cs.tracker.State()
	incident, start = cs.tracker.Incident()
	return state, since, incident, start, true
}

// Names lists the checks in config order.
func (e *Evaluator) Names() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.names
}

// Missing counts the checks without a result of this node yet.
func (e *Evaluator) Missing() (missing, total int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, cs := range e.checks {
		if !cs.have {
			missing++
		}
	}
	return missing, len(e.checks)
}

// Run hands the changes, in the order they were decided, to sink until
// ctx ends; sink runs on Run's goroutine and may take its time.
func (e *Evaluator) Run(ctx context.Context, sink func(Change)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.kick:
		}
		for q := e.Drain(); len(q) > 0; q = e.Drain() {
			for _, ch := range q {
				if ctx.Err() != nil {
					return // stopping: what is left is not handed on
				}
				sink(ch)
			}
		}
	}
}

// Drain takes the changes decided since the last Drain, in order (Run
// does this; tests call it directly).
func (e *Evaluator) Drain() []Change {
	e.mu.Lock()
	defer e.mu.Unlock()
	q := e.queue
	e.queue = nil
	return q
}
