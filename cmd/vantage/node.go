package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vantage-dev/vantage/checker"
	"github.com/vantage-dev/vantage/cluster"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/notifier"
	"github.com/vantage-dev/vantage/quorum"
	"github.com/vantage-dev/vantage/scheduler"
	"github.com/vantage-dev/vantage/statuspage"
	"github.com/vantage-dev/vantage/store"
)

const (
	// voteSlack is added to 2 × interval before a vote counts as stale.
	voteSlack = 5 * time.Second
	// confirmRetry is the delay of the re-probe after a failure.
	confirmRetry = 2 * time.Second
	// pageSettle is how long the designated sender waits after an incident
	// opens before paging, so that the cluster agrees on its id.
	pageSettle = time.Second
	// takeoverAfter is how long a node that becomes the sender waits for an
	// earlier sender's sent log before paging what it finds unsent.
	takeoverAfter = 5 * time.Second
	// idSettle is how long a node other than the designated sender waits for
	// the sender's incident id before it shows a check down under its own.
	idSettle = 3 * time.Second
)

type nodeOptions struct {
	Config *config.Config
	Name   string
	Region string
	DBPath string
	// OutboxPath is the notification outbox's SQLite file.
	OutboxPath string
	Logger     *slog.Logger
	// Gossip settings; a nil Gossip runs without a cluster (tests).
	Gossip *cluster.Config
	// Prober overrides the real checker (tests).
	Prober checker.Prober
	// Now overrides the clock (tests).
	Now func() time.Time
	// APIToken is the status page's write API token (VANTAGE_API_TOKEN
	// resolved); "" takes the config's statuspage.api_token.
	APIToken string
}

// checkState is what a node knows about one check.
type checkState struct {
	cfg        *config.Check
	streak     quorum.Streak
	downSince  time.Time
	lastFail   string // code of the latest failed probe
	tracker    *quorum.Tracker
	last       checker.Result
	have       bool
	alongside  bool      // a probe started by probeAlongside is running
	confirming time.Time // when a peer last asked this node to confirm a failure
	// pendingDown is when this node first saw a quorum of down votes while
	// waiting for the designated sender's incident id.
	pendingDown time.Time
	// The last incident resolved here, so a late announcement of it is not
	// taken for the next one.
	lastResolvedID    string
	lastResolvedStart time.Time
}

// node is one probe node: it runs the checks, shares its votes with the
// cluster, decides the checks' states and pages.
type node struct {
	opts    nodeOptions
	log     *slog.Logger
	store   *store.Store
	outbox  *notifier.Outbox
	sched   *scheduler.Scheduler
	http    *statuspage.Server
	metrics *nodeMetrics
	canary  *canaries
	cl      atomic.Pointer[cluster.Cluster] // set by Start; callbacks may come first
	now     func() time.Time
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	evalCh  chan string
	sweeps  atomic.Uint64 // sweepPages passes, for tests to wait on

	mu          sync.Mutex
	cfg         *config.Config
	checks      map[string]*checkState
	votes       map[string]map[string]cluster.VoteMsg // check -> node -> vote
	health      map[string]healthMsg                  // node -> canary verdict
	members     []cluster.Member
	sent        map[sentKey]sentMsg
	pages       map[string]*page                  // incident id -> paging record
	hints       map[string]map[string]incidentMsg // check -> node -> its open incident
	pagedIDs    map[string]incidentMsg            // check -> the incident whose trigger went out
	claims      map[claimKey]claimMsg
	lastConfirm map[string]time.Time
	senderSince time.Time
	wasSender   bool
	alerts      alertState // routing, reminders, flapping, coverage (alerts.go)

	upd updateShare // operators' incident updates shared with the cluster (updates.go)

	closeOnce sync.Once
	closeErr  error
}

func newNode(ctx context.Context, o nodeOptions) (*node, error) {
	n := &node{
		opts: o, log: o.Logger, cfg: o.Config, now: o.Now, checks: map[string]*checkState{},
		votes: map[string]map[string]cluster.VoteMsg{}, health: map[string]healthMsg{},
		sent: map[sentKey]sentMsg{}, pages: map[string]*page{}, hints: map[string]map[string]incidentMsg{},
		pagedIDs: map[string]incidentMsg{}, claims: map[claimKey]claimMsg{},
		lastConfirm: map[string]time.Time{}, evalCh: make(chan string, 4096),
	}
	if n.now == nil {
		n.now = time.Now
	}
	if o.Prober == nil {
		n.opts.Prober = checker.New(checker.Options{Logger: o.Logger})
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.metrics = newNodeMetrics()
	st, err := store.Open(o.DBPath, store.Options{
		Logger:       o.Logger,
		RetainRaw:    forever(o.Config.Store.RetainRaw),
		RetainMinute: forever(o.Config.Store.RetainMinute),
		RetainDaily:  forever(o.Config.Store.RetainDaily),
	})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	n.store = st
	providers, err := notifier.NewAll(o.Config.Notifiers, notifier.Options{Logger: o.Logger})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("notifiers: %w", err)
	}
	for i, p := range providers {
		providers[i] = gatedProvider{Provider: p, n: n}
	}
	ob, err := notifier.OpenOutbox(o.OutboxPath, providers, notifier.OutboxOptions{
		Logger: o.Logger, Fallbacks: notifier.FallbacksFrom(o.Config.Notifiers),
		OnAttempt: func(a notifier.Attempt) { n.metrics.attempt(a); n.onAttempt(a) },
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	n.outbox = ob
	for i := range o.Config.Checks {
		c := &o.Config.Checks[i]
		n.checks[c.Name] = &checkState{cfg: c, tracker: quorum.NewTracker(c.Name, n.now())}
		n.votes[c.Name] = map[string]cluster.VoteMsg{}
	}
	if err := n.restoreIncidents(ctx); err != nil {
		n.Close()
		return nil, err
	}
	cn, err := newCanaries(o.Config.Cluster.Canaries, n.opts.Prober, o.Logger, n.now)
	if err != nil {
		n.Close()
		return nil, err
	}
	cn.onChange = n.onCanaryChange
	n.canary = cn
	sched, err := scheduler.New(n.probe, scheduler.Options{Logger: o.Logger})
	if err != nil {
		n.Close()
		return nil, err
	}
	n.sched = sched
	n.metrics.reg.MustRegister(nodeCollector{n})
	n.http = statuspage.New(statuspage.Options{
		Source: n, Logger: o.Logger, History: st, Page: statuspage.PageFromConfig(o.Config),
		// Live state reaches browsers over /ws at once; the HTML and JSON
		// documents are re-rendered at most every 2 s, and every minute for
		// uptime numbers: a render reads 90 days of rollups per check.
		MinRefreshGap: 2 * time.Second, RefreshInterval: time.Minute,
		// Renders for state changes (an outage: many, 2 s apart) reuse
		// uptime numbers and bars read in the last 30 s; the 7/30/90 day
		// numbers and past days are re-read every 10 minutes, the 24 h
		// number and today's cell every render after that.
		HistoryTTL: 30 * time.Second, HistorySlowTTL: 10 * time.Minute,
		Extra:  map[string]http.Handler{"GET /metrics": n.metrics.handler()},
		Writer: n, APIToken: apiToken(o),
	})
	return n, nil
}

// forever maps the config's "0 = keep forever" to the store's negative value.
func forever(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// restoreIncidents reopens, after a restart, the incidents that were open:
// an incident ends only when its check is seen up again.
func (n *node) restoreIncidents(ctx context.Context) error {
	incs, err := n.store.OpenIncidents(ctx)
	if err != nil {
		return fmt.Errorf("load open incidents: %w", err)
	}
	for _, inc := range incs {
		cs, ok := n.checks[inc.Check]
		if !ok {
			continue
		}
		cs.tracker.Restore(quorum.StateDown, inc.StartedAt, inc.ID, inc.StartedAt)
		n.pages[inc.ID] = &page{check: inc.Check, trigger: n.eventLocked(cs, inc.ID, inc.StartedAt, nil), openedAt: inc.StartedAt}
		n.log.Info("open incident restored", "check", inc.Check, "incident_id", inc.ID, "since", inc.StartedAt)
	}
	return nil
}

// Start joins the cluster, then schedules the checks and the canaries.
func (n *node) Start() error {
	if n.opts.Gossip != nil {
		gc := *n.opts.Gossip
		gc.ConfigHash = configHash(n.cfg)
		cl, err := cluster.New(gc, n)
		if err != nil {
			return fmt.Errorf("start gossip: %w", err)
		}
		n.cl.Store(cl)
		n.refreshMembers()
	}
	if err := n.sched.Set(n.cfg.Checks); err != nil {
		return err
	}
	n.sched.Start()
	n.wg.Add(3)
	go func() { defer n.wg.Done(); n.http.Run(n.ctx) }()
	go func() { defer n.wg.Done(); n.canary.run(n.ctx) }()
	go func() { defer n.wg.Done(); n.evaluator() }()
	return nil
}

// Close leaves the cluster, stops the probes, then flushes and closes the
// outbox and the store.
func (n *node) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		if cl := n.cl.Load(); cl != nil {
			if err := cl.Leave(2 * time.Second); err != nil {
				n.log.Warn("leave cluster", "err", err)
			}
			if err := cl.Shutdown(); err != nil {
				n.log.Warn("gossip shutdown", "err", err)
			}
		}
		if n.sched != nil {
			if err := n.sched.Shutdown(); err != nil {
				n.closeErr = err
			}
		}
		n.wg.Wait()
		if err := n.outbox.Close(); err != nil {
			n.closeErr = errors.Join(n.closeErr, fmt.Errorf("close outbox: %w", err))
		}
		if err := n.store.Close(); err != nil {
			n.closeErr = errors.Join(n.closeErr, fmt.Errorf("close store: %w", err))
		}
	})
	return n.closeErr
}

// Handler is the node's HTTP interface.
func (n *node) Handler() http.Handler { return n.http }

// GossipAddr is the address peers reach this node at ("" without gossip).
func (n *node) GossipAddr() string {
	if cl := n.cl.Load(); cl != nil {
		return cl.LocalAddr()
	}
	return ""
}

func (n *node) probe(ctx context.Context, c *config.Check) {
	slow := time.AfterFunc(n.slowProbeAfter(c), func() { n.probeAlongside(c) })
	r := n.opts.Prober.Probe(ctx, c)
	slow.Stop()
	if ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled) && !r.OK {
		return // shut down mid-probe: not a result
	}
	n.observe(c, r)
}

// params are the voting parameters of a check.
func (n *node) params(c *config.Check) quorum.Params {
	regions := n.cfg.Cluster.Regions
	if len(regions) == 0 {
		regions = []string{n.opts.Region}
	}
	q := n.cfg.Cluster.Quorum
	if q < 1 {
		q = len(regions)/2 + 1
	}
	return quorum.Params{Regions: regions, Quorum: q, Round: c.Interval, MaxAge: 2*c.Interval + voteSlack, RecoverRounds: 1}
}

// observe records one probe result, shares the region's vote and
// re-evaluates the check.
func (n *node) observe(c *config.Check, r checker.Result) {
	result := "ok"
	if !r.OK {
		result = r.Code
	}
	n.metrics.probes.WithLabelValues(c.Name, result).Inc()
	n.store.Add(store.Result{
		Node: n.opts.Name, Region: n.opts.Region, Check: c.Name, Time: r.Start, OK: r.OK,
		Latency: r.Latency, DNS: r.Phases.DNS, Connect: r.Phases.Connect, TLS: r.Phases.TLS,
		FirstByte: r.Phases.FirstByte, Code: r.Code, Message: r.Message,
	})
	healthy, _ := n.canary.Healthy()
	n.mu.Lock()
	cs, ok := n.checks[c.Name]
	if !ok {
		n.mu.Unlock()
		return
	}
	now := n.now()
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
	code := r.Code
	if vote == quorum.VoteDown && code == "" {
		code = cs.lastFail // a down vote names the failure behind it
	}
	failures := cs.streak.Failures()
	msg := cluster.VoteMsg{
		Node: n.opts.Name, Region: n.opts.Region, Check: c.Name, Vote: string(vote), At: now,
		Failures: failures, Code: code, LatencyMS: statuspage.MS(r.Latency), DownSince: cs.downSince,
	}
	if !healthy {
		msg.Vote = string(quorum.VoteAbstain)
	}
	n.votes[c.Name][n.opts.Name] = msg
	n.mu.Unlock()

	if cl := n.cl.Load(); cl != nil {
		if err := cl.Broadcast(msg); err != nil {
			n.log.Warn("gossip vote", "check", c.Name, "err", err)
		}
	}
	if !r.OK {
		n.log.Debug("probe failed", "check", c.Name, "code", r.Code, "msg", r.Message, "failures", failures)
		if vote != quorum.VoteDown && failures < c.FailAfter {
			n.confirm(c, failures == 1)
		}
	}
	if vote != prev {
		n.log.Info("region vote changed", "check", c.Name, "region", n.opts.Region, "from", prev, "to", vote, "code", r.Code, "msg", r.Message)
	}
	n.evaluate(c.Name)
}

// confirm re-probes a failing check after confirmRetry instead of waiting
// for its next interval, and on the first failure asks every other node to
// probe it now (fast confirmation).
func (n *node) confirm(c *config.Check, ask bool) {
	name := c.Name
	time.AfterFunc(confirmRetry, func() {
		if n.ctx.Err() == nil {
			n.sched.RunNow(name)
		}
	})
	if ask {
		n.askConfirm(name)
	}
}

// askConfirm asks every other node to probe a check now.
func (n *node) askConfirm(name string) {
	if cl := n.cl.Load(); cl != nil {
		b, _ := json.Marshal(confirmMsg{Node: n.opts.Name, Check: name})
		if err := cl.BroadcastMessage(kindConfirm, "confirm/"+name, b); err != nil {
			n.log.Warn("gossip confirm request", "check", name, "err", err)
		}
	}
}

// evaluator re-evaluates checks whose votes changed, and every check once a
// second (stale votes, maintenance windows, membership), then pages.
func (n *node) evaluator() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case name := <-n.evalCh:
			n.evaluate(name)
		case <-t.C:
			n.refreshMembers()
			for _, name := range n.checkNames() {
				n.evaluate(name)
			}
			n.sweepPages()
		}
	}
}

// checkNames lists the configured checks (the config may be reloaded).
func (n *node) checkNames() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	names := make([]string, 0, len(n.cfg.Checks))
	for _, c := range n.cfg.Checks {
		names = append(names, c.Name)
	}
	return names
}

func (n *node) refreshMembers() {
	cl := n.cl.Load()
	if cl == nil {
		return
	}
	ms := cl.Members()
	n.mu.Lock()
	n.members = ms
	n.mu.Unlock()
}

// evaluate decides one check's state from the vote table.
func (n *node) evaluate(name string) {
	n.mu.Lock()
	cs, ok := n.checks[name]
	if !ok {
		n.mu.Unlock()
		return
	}
	now := n.now()
	p := n.params(cs.cfg)
	view := n.viewLocked(p.Regions)
	regions, downSince := n.regionInputsLocked(cs.cfg, p, view, now)
	in := quorum.Input{
		Now: now, Regions: regions, Maintenance: n.cfg.InMaintenance(name, now),
		SeesMajority: view.seesMajority, DownSince: quorum.DownStart(p.Quorum, downSince),
	}
	// Every node names an incident as the designated sender does: a node
	// about to open one waits (up to idSettle) for the sender's id.
	opens := cs.tracker.Opens(p, in)
	auth, haveAuth := n.authorityLocked(cs, view.sender, opens)
	if opens && !haveAuth && view.sender != n.opts.Name {
		if cs.pendingDown.IsZero() {
			cs.pendingDown = now
			n.log.Debug("quorum down; waiting for the designated sender's incident id", "check", name, "sender", view.sender)
		}
		if now.Sub(cs.pendingDown) < idSettle {
			n.mu.Unlock()
			return
		}
	}
	cs.pendingDown = time.Time{}
	tr, changed := cs.tracker.Update(p, in)
	var replaced string // the id this evaluation replaced with auth's
	if id, _ := cs.tracker.Incident(); id != "" && haveAuth && id != auth.ID {
		old, _ := cs.tracker.Force(auth.ID, auth.Start)
		n.movePageLocked(old, auth.ID, auth.Start)
		if changed && tr.Opened {
			tr.IncidentID = auth.ID // opened in this very round: nothing holds the old id yet
		} else {
			replaced = old
		}
	}
	var announce *incidentMsg
	if changed {
		if tr.Opened {
			id, start := cs.tracker.Incident()
			n.pages[id] = &page{check: name, trigger: n.eventLocked(cs, id, start, nil), openedAt: now}
			announce = &incidentMsg{Node: n.opts.Name, Check: name, ID: id, Start: start}
		}
		if tr.Resolved {
			if pg, ok := n.pages[tr.IncidentID]; ok {
				at := tr.At.UTC()
				ev := n.eventLocked(cs, tr.IncidentID, pg.trigger.StartedAt, &at)
				pg.resolve = &ev
				cs.lastResolvedStart = pg.trigger.StartedAt
			}
			cs.lastResolvedID = tr.IncidentID
			delete(n.hints, name)
			delete(n.pagedIDs, name)
		}
	}
	if replaced != "" {
		a := auth
		a.Node, a.Paged = n.opts.Name, false
		announce = &a
	}
	n.mu.Unlock()

	if old := replaced; old != "" {
		n.log.Info("incident id taken from the designated sender", "check", name, "old", old, "incident_id", auth.ID, "start", auth.Start)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := n.store.ReplaceIncident(ctx, old, auth.ID, auth.Start); err != nil && !errors.Is(err, store.ErrNotFound) {
			n.log.Error("replace incident", "check", name, "err", err)
		}
		cancel()
	}
	if changed {
		n.recordTransition(cs.cfg, tr)
		if tr.Opened {
			n.metrics.incidents.WithLabelValues(name).Inc()
		}
		n.publish(name)
	} else if replaced != "" {
		n.publish(name)
	}
	if cl := n.cl.Load(); announce != nil && cl != nil {
		b, _ := json.Marshal(announce)
		if err := cl.BroadcastMessage(kindIncident, "incident/"+name, b); err != nil {
			n.log.Warn("gossip incident", "check", name, "err", err)
		}
	}
	if changed && (tr.Opened || tr.Resolved) {
		n.sweepPages()
	}
}

// movePageLocked renames a paging record when the incident id changes.
func (n *node) movePageLocked(old, id string, start time.Time) {
	pg, ok := n.pages[old]
	if !ok {
		return
	}
	delete(n.pages, old)
	pg.trigger.IncidentID, pg.trigger.StartedAt = id, start
	n.pages[id] = pg
}

// pagedLocked reports whether a trigger of incident id went out.
func (n *node) pagedLocked(id string) bool {
	if pg, ok := n.pages[id]; ok && pg.triggered {
		return true
	}
	for k := range n.sent {
		if k.incident == id && k.action == string(notifier.ActionTrigger) {
			return true
		}
	}
	return false
}

// eventLocked describes an incident for the notifiers.
func (n *node) eventLocked(cs *checkState, id string, start time.Time, resolvedAt *time.Time) notifier.Event {
	c := cs.cfg
	ev := notifier.Event{
		Action: notifier.ActionTrigger, IncidentID: id, Check: c.Name, Target: c.TargetString(),
		StartedAt: start, Severity: c.Severity, StatusPageURL: n.cfg.StatusPage.URL, Group: c.Group,
		Regions: map[string]notifier.RegionVote{},
	}
	if resolvedAt != nil {
		ev.Action, ev.ResolvedAt = notifier.ActionResolve, resolvedAt
	}
	for _, vm := range n.votes[c.Name] {
		rv, ok := ev.Regions[vm.Region]
		if ok && rv.Vote == string(quorum.VoteDown) {
			continue // a region's down vote is what on-call needs to see
		}
		ev.Regions[vm.Region] = notifier.RegionVote{Vote: vm.Vote, Error: vm.Code, LatencyMS: vm.LatencyMS}
	}
	return ev
}

// sweepPages queues the notifications this node must send: only the
// designated sender pages, and nothing the cluster's sent log shows as
// delivered is sent again.
func (n *node) sweepPages() {
	type job struct {
		ev        notifier.Event
		notifiers []string
	}
	var jobs []job
	n.mu.Lock()
	now := n.now()
	claims := n.renewClaimsLocked(now)
	regions := n.params(&config.Check{}).Regions
	view := n.viewLocked(regions)
	isSender := view.sender == n.opts.Name
	if isSender && !n.wasSender {
		n.senderSince = now
		n.log.Info("this node is the designated sender")
	}
	n.wasSender = isSender
	alertJobs := n.alertsLocked(now, isSender)
	for id, pg := range n.pages {
		cs := n.checks[pg.check]
		if cs == nil {
			delete(n.pages, id)
			continue
		}
		if !pg.doneAt.IsZero() {
			if now.Sub(pg.doneAt) > time.Hour {
				delete(n.pages, id)
			}
			continue
		}
		if !isSender {
			continue
		}
		// A node that just became the sender (the previous one died, or
		// this one just joined or restarted) first waits for the sent log
		// and send claims of incidents that began before to reach it.
		if now.Sub(n.senderSince) < takeoverAfter && pg.trigger.StartedAt.Before(n.senderSince) {
			continue
		}
		if n.heldLocked(pg) {
			continue // the check is flapping
		}
		if !pg.triggered && now.Sub(pg.openedAt) >= pageSettle {
			ns := n.unsentLocked(id, notifier.ActionTrigger, n.notifiersLocked(cs.cfg))
			if holder, held := n.claimHeldLocked(id, notifier.ActionTrigger, now); held && len(ns) > 0 {
				n.log.Debug("trigger claimed by a peer; not sending", "incident_id", id, "holder", holder)
				continue
			}
			if len(ns) > 0 {
				ev := pg.trigger
				if st, _ := cs.tracker.State(); st == quorum.StateDown {
					ev.Regions = n.eventLocked(cs, id, ev.StartedAt, nil).Regions // the fullest view
				}
				jobs = append(jobs, job{ev, ns})
				claims = append(claims, n.claimLocked(id, notifier.ActionTrigger, ns, now))
			}
			pg.triggered = true
		}
		if pg.triggered && pg.resolve != nil && !pg.resolvedQd {
			ns := n.unsentLocked(id, notifier.ActionResolve, n.notifiersLocked(cs.cfg))
			if holder, held := n.claimHeldLocked(id, notifier.ActionResolve, now); held && len(ns) > 0 {
				n.log.Debug("resolve claimed by a peer; not sending", "incident_id", id, "holder", holder)
				continue
			}
			if len(ns) > 0 {
				jobs = append(jobs, job{*pg.resolve, ns})
				claims = append(claims, n.claimLocked(id, notifier.ActionResolve, ns, now))
			}
			pg.resolvedQd = true
			pg.doneAt = now
		}
	}
	n.mu.Unlock()
	n.gossipClaims(claims) // before queueing: a claim goes out before its send
	n.queueAlerts(alertJobs)
	defer n.sweeps.Add(1)
	for _, j := range jobs {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := n.outbox.Enqueue(ctx, j.ev, j.notifiers...); err != nil {
			n.log.Error("queue notification", "check", j.ev.Check, "incident_id", j.ev.IncidentID, "action", j.ev.Action, "err", err)
		}
		cancel()
	}
}

func (n *node) unsentLocked(id string, action notifier.Action, notifiers []string) []string {
	var out []string
	for _, name := range notifiers {
		if _, ok := n.sent[sentKey{incident: id, action: string(action), notifier: name}]; !ok {
			out = append(out, name)
		}
	}
	return out
}

// onAttempt is the outbox's report of a delivery attempt: a delivery goes
// into the cluster's sent log.
func (n *node) onAttempt(a notifier.Attempt) {
	if a.Err != nil {
		return
	}
	m := sentMsg{Node: n.opts.Name, Incident: a.IncidentID, Action: a.Key(), Notifier: a.Notifier}
	n.mu.Lock()
	if pg, ok := n.pages[a.IncidentID]; ok {
		m.Check, m.Start = pg.check, pg.trigger.StartedAt
	}
	n.sent[m.key()] = m
	n.mu.Unlock()
	if cl := n.cl.Load(); cl != nil {
		b, _ := json.Marshal(m)
		if err := cl.BroadcastMessage(kindSent, "sent/"+a.IncidentID+"/"+a.Key()+"/"+a.Notifier, b); err != nil {
			n.log.Warn("gossip sent log", "err", err)
		}
	}
}

func (n *node) onCanaryChange(ok bool, reason string) {
	h := healthMsg{Node: n.opts.Name, OK: ok, Reason: reason, At: n.now()}
	n.mu.Lock()
	n.health[n.opts.Name] = h
	n.mu.Unlock()
	if cl := n.cl.Load(); cl != nil {
		b, _ := json.Marshal(h)
		if err := cl.BroadcastMessage(kindHealth, "health", b); err != nil {
			n.log.Warn("gossip health", "err", err)
		}
	}
}

// OnVote implements cluster.Handler: a peer's vote.
func (n *node) OnVote(v cluster.VoteMsg) {
	n.mu.Lock()
	table, ok := n.votes[v.Check]
	if ok {
		if old, have := table[v.Node]; !have || !v.At.Before(old.At) {
			table[v.Node] = v
		}
	}
	n.mu.Unlock()
	if ok {
		n.queueEval(v.Check)
	}
}

func (n *node) queueEval(check string) {
	select {
	case n.evalCh <- check:
	default: // the once-a-second pass catches up
	}
}

// OnMessage implements cluster.Handler.
func (n *node) OnMessage(kind byte, payload []byte) {
	switch kind {
	case kindUpdate:
		n.onUpdateChunk(payload)
	case kindConfirm:
		m, err := decodeMsg[confirmMsg](payload)
		if err != nil {
			n.log.Warn("gossip", "err", err)
			return
		}
		n.mu.Lock()
		_, known := n.checks[m.Check]
		last := n.lastConfirm[m.Check]
		due := known && n.now().Sub(last) >= confirmRetry
		if due {
			n.lastConfirm[m.Check] = n.now()
			n.checks[m.Check].confirming = n.now()
		}
		n.mu.Unlock()
		if due {
			n.log.Debug("confirming a peer's failure", "check", m.Check, "from", m.Node)
			go n.sched.RunNow(m.Check)
		}
	case kindHealth:
		m, err := decodeMsg[healthMsg](payload)
		if err != nil {
			n.log.Warn("gossip", "err", err)
			return
		}
		n.mu.Lock()
		if old, ok := n.health[m.Node]; !ok || !m.At.Before(old.At) {
			n.health[m.Node] = m
		}
		n.mu.Unlock()
	case kindIncident:
		m, err := decodeMsg[incidentMsg](payload)
		if err != nil {
			n.log.Warn("gossip", "err", err)
			return
		}
		n.learnIncident(m)
	case kindSent:
		m, err := decodeMsg[sentMsg](payload)
		if err != nil {
			n.log.Warn("gossip", "err", err)
			return
		}
		n.learnSent(m)
	case kindClaim:
		m, err := decodeMsg[claimMsg](payload)
		if err != nil {
			n.log.Warn("gossip", "err", err)
			return
		}
		n.learnClaim(m)
	}
}

func (n *node) learnIncident(m incidentMsg) {
	n.mu.Lock()
	if m.Paged {
		n.pagedIDs[m.Check] = m
	}
	if m.Node != "" && m.Node != n.opts.Name {
		if n.hints[m.Check] == nil {
			n.hints[m.Check] = map[string]incidentMsg{}
		}
		n.hints[m.Check][m.Node] = m
	}
	_, known := n.checks[m.Check]
	n.mu.Unlock()
	if known {
		n.queueEval(m.Check)
	}
}

func (n *node) learnSent(m sentMsg) {
	n.mu.Lock()
	n.sent[m.key()] = m
	if m.Action == string(notifier.ActionTrigger) && m.Check != "" {
		// A paged id is final: every node takes it.
		n.pagedIDs[m.Check] = incidentMsg{Node: m.Node, Check: m.Check, ID: m.Incident, Start: m.Start, Paged: true}
	}
	_, known := n.checks[m.Check]
	n.mu.Unlock()
	if known {
		n.queueEval(m.Check)
	}
}

// authorityLocked is the incident id a check's open or opening incident
// must carry: one already paged, else the designated sender's. The sender
// itself names a new incident, except when it opens one that alive peers
// already hold (it joined or took over mid-incident): it takes theirs (the
// earliest start, then the least id). It reports false when there is none.
// Announcements of the incident resolved last are ignored, however late
// they arrive.
func (n *node) authorityLocked(cs *checkState, sender string, opening bool) (incidentMsg, bool) {
	usable := func(m incidentMsg) bool {
		return m.ID != "" && m.ID != cs.lastResolvedID && m.Start.After(cs.lastResolvedStart)
	}
	if m, ok := n.pagedIDs[cs.cfg.Name]; ok && usable(m) {
		return m, true
	}
	switch sender {
	case "":
		return incidentMsg{}, false
	case n.opts.Name:
		var best incidentMsg
		found := false
		for node, m := range n.hints[cs.cfg.Name] {
			if !opening || !usable(m) || !n.aliveLocked(node) {
				continue
			}
			if c := m.Start.Compare(best.Start); !found || c < 0 || (c == 0 && m.ID < best.ID) {
				best, found = m, true
			}
		}
		return best, found
	}
	m, ok := n.hints[cs.cfg.Name][sender]
	return m, ok && usable(m)
}

// LocalState implements cluster.Handler (push-pull anti-entropy).
func (n *node) LocalState() []byte { return n.encodeState() }

// MergeRemoteState implements cluster.Handler.
func (n *node) MergeRemoteState(b []byte) {
	var st meshState
	if err := json.Unmarshal(b, &st); err != nil {
		n.log.Warn("merge gossip state", "err", err)
		return
	}
	// The sent log, incidents and claims first: a node that joins
	// mid-incident must know them before the votes make it decide.
	for _, s := range st.Sent {
		n.learnSent(s)
	}
	for _, m := range st.Incidents {
		n.learnIncident(m)
	}
	for _, c := range st.Claims {
		n.learnClaim(c)
	}
	n.mergeUpdateState(st.Updates)
	n.mu.Lock()
	for _, h := range st.Health {
		if h.Node == n.opts.Name {
			continue
		}
		if old, ok := n.health[h.Node]; !ok || !h.At.Before(old.At) {
			n.health[h.Node] = h
		}
	}
	n.mu.Unlock()
	votes, err := cluster.DecodeVotes(st.Votes)
	if err != nil {
		n.log.Warn("merge gossip votes", "err", err)
	}
	for _, v := range votes {
		if v.Node != n.opts.Name {
			n.OnVote(v)
		}
	}
}

// OnMembership implements cluster.Handler.
func (n *node) OnMembership() {
	n.refreshMembers()
	n.http.Refresh()
}

// publish sends a check's new state to the status page and its live
// clients.
func (n *node) publish(check string) {
	for _, c := range n.Status().Checks {
		if c.Name == check {
			n.http.Publish(statuspage.Event{Type: "check", Name: c.Name, State: c.State, Since: c.Since,
				IncidentID: c.IncidentID, Regions: c.Regions})
			return
		}
	}
}

// recordTransition stores a state change and opens or resolves incidents.
func (n *node) recordTransition(c *config.Check, tr quorum.Transition) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	detail := fmt.Sprintf("down: %s; up: %s; abstain: %s", list(tr.Tally.Down), list(tr.Tally.Up), list(tr.Tally.Abstained))
	n.log.Info("check state changed", "check", c.Name, "from", tr.From, "to", tr.To, "incident_id", tr.IncidentID, "votes", detail)
	if err := n.store.RecordStateChange(ctx, store.StateChange{
		Check: c.Name, Time: tr.At, From: string(tr.From), To: string(tr.To), IncidentID: tr.IncidentID, Detail: detail,
	}); err != nil {
		n.log.Error("record state change", "check", c.Name, "err", err)
	}
	switch {
	case tr.Opened:
		_, start := n.incidentOf(c.Name)
		inc := store.Incident{ID: tr.IncidentID, Check: c.Name, Title: c.DisplayName + " is down", State: "open", StartedAt: start, Details: detail}
		if _, err := n.store.OpenIncident(ctx, inc); err != nil {
			n.log.Error("open incident", "check", c.Name, "incident_id", tr.IncidentID, "err", err)
		}
	case tr.Resolved:
		if _, err := n.store.ResolveIncident(ctx, tr.IncidentID, tr.At); err != nil {
			n.log.Error("resolve incident", "check", c.Name, "incident_id", tr.IncidentID, "err", err)
		}
	}
}

func (n *node) incidentOf(check string) (string, time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cs, ok := n.checks[check]; ok {
		return cs.tracker.Incident()
	}
	return "", time.Time{}
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}

// Status implements statuspage.Source.
func (n *node) Status() *statuspage.Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	v, _ := buildVersion()
	p0 := n.params(&config.Check{})
	view := n.viewLocked(p0.Regions)
	st := &statuspage.Status{
		GeneratedAt: now.UTC(),
		Node:        statuspage.NodeInfo{Name: n.opts.Name, Region: n.opts.Region, Version: v},
		Cluster:     statuspage.ClusterInfo{Quorum: p0.Quorum, Regions: map[string]statuspage.RegionInfo{}},
		Checks:      make([]statuspage.CheckStatus, 0, len(n.cfg.Checks)),
	}
	if len(n.members) == 0 {
		st.Cluster.Members = []statuspage.Member{{Name: n.opts.Name, Region: n.opts.Region, State: "alive", Version: v}}
	}
	for _, m := range n.members {
		st.Cluster.Members = append(st.Cluster.Members, statuspage.Member(m))
	}
	for _, r := range p0.Regions {
		ri := statuspage.RegionInfo{}
		var reasons []string
		for _, node := range view.alive[r] {
			if h, ok := n.health[node]; ok && !h.OK {
				reasons = append(reasons, node+": "+h.Reason)
				continue
			}
			ri.Eligible = true
		}
		switch {
		case len(view.alive[r]) == 0:
			ri.Reason = "no alive node in region"
		case !ri.Eligible:
			ri.Reason = strings.Join(reasons, "; ")
		}
		st.Cluster.Regions[r] = ri
	}
	for i := range n.cfg.Checks {
		c := &n.cfg.Checks[i]
		cs := n.checks[c.Name]
		state, since := cs.tracker.State()
		inc, _ := cs.tracker.Incident()
		chk := statuspage.CheckStatus{
			Name: c.Name, State: string(state), Since: since.UTC(), IncidentID: inc,
			Regions: map[string]statuspage.RegionVote{}, Type: c.Type, Target: c.TargetString(), Group: c.Group,
		}
		p := n.params(c)
		regions, _ := n.regionInputsLocked(c, p, view, now)
		for r, ri := range regions {
			rv := statuspage.RegionVote{Vote: string(ri.Vote), CheckedAt: ri.At.UTC()}
			// Latency and error of the region's freshest vote.
			var best cluster.VoteMsg
			for _, node := range view.alive[r] {
				if vm, ok := n.votes[c.Name][node]; ok && vm.At.After(best.At) {
					best = vm
				}
			}
			rv.LatencyMS, rv.Error = best.LatencyMS, best.Code
			if best.Node == n.opts.Name && cs.have {
				r := cs.last
				rv.Message = r.Message
				rv.Phases = &statuspage.Phases{DNSMS: statuspage.MS(r.Phases.DNS), ConnectMS: statuspage.MS(r.Phases.Connect),
					TLSMS: statuspage.MS(r.Phases.TLS), FirstByteMS: statuspage.MS(r.Phases.FirstByte)}
			}
			chk.Regions[r] = rv
		}
		for _, r := range p.Regions {
			if _, ok := chk.Regions[r]; !ok {
				chk.Regions[r] = statuspage.RegionVote{Vote: string(quorum.VoteAbstain)}
			}
		}
		st.Checks = append(st.Checks, chk)
	}
	slices.SortFunc(st.Cluster.Members, func(a, b statuspage.Member) int { return strings.Compare(a.Name, b.Name) })
	return st
}

// Ready implements statuspage.Source: ready once the node has joined (when
// it has seeds) and every check has a result.
func (n *node) Ready() (bool, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.opts.Gossip != nil && len(n.opts.Gossip.Join) > 0 && len(n.members) < 2 {
		return false, "not joined to the cluster yet"
	}
	missing := 0
	for _, cs := range n.checks {
		if !cs.have {
			missing++
		}
	}
	if missing > 0 {
		return false, fmt.Sprintf("%d of %d checks have no result yet", missing, len(n.checks))
	}
	return true, ""
}
