package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/vantage-dev/vantage/checker"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/notifier"
	"github.com/vantage-dev/vantage/quorum"
	"github.com/vantage-dev/vantage/scheduler"
	"github.com/vantage-dev/vantage/statuspage"
	"github.com/vantage-dev/vantage/store"
)

// voteSlack is added to 2 × interval before a vote counts as stale.
const voteSlack = 5 * time.Second

type nodeOptions struct {
	Config *config.Config
	Name   string
	Region string
	DBPath string
	// OutboxPath is the notification outbox's SQLite file.
	OutboxPath string
	Logger     *slog.Logger
	// Prober overrides the real checker (tests).
	Prober checker.Prober
	// Now overrides the clock (tests).
	Now func() time.Time
}

// checkState is what a node knows about one check.
type checkState struct {
	cfg     *config.Check
	streak  quorum.Streak
	tracker *quorum.Tracker
	last    checker.Result
	have    bool
}

// node is one probe node: it runs the checks, keeps their history and
// decides their state.
type node struct {
	opts   nodeOptions
	log    *slog.Logger
	store  *store.Store
	outbox *notifier.Outbox
	sched  *scheduler.Scheduler
	http   *statuspage.Server
	now    func() time.Time

	mu     sync.Mutex
	cfg    *config.Config
	checks map[string]*checkState

	closeOnce sync.Once
	closeErr  error
}

func newNode(ctx context.Context, o nodeOptions) (*node, error) {
	n := &node{opts: o, log: o.Logger, cfg: o.Config, now: o.Now, checks: map[string]*checkState{}}
	if n.now == nil {
		n.now = time.Now
	}
	if o.Prober == nil {
		n.opts.Prober = checker.New(checker.Options{Logger: o.Logger})
	}
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
	ob, err := notifier.OpenOutbox(o.OutboxPath, providers, notifier.OutboxOptions{
		Logger: o.Logger, Fallbacks: notifier.FallbacksFrom(o.Config.Notifiers),
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	n.outbox = ob
	for i := range o.Config.Checks {
		c := &o.Config.Checks[i]
		n.checks[c.Name] = &checkState{cfg: c, tracker: quorum.NewTracker(c.Name, n.now())}
	}
	if err := n.restoreIncidents(ctx); err != nil {
		n.Close()
		return nil, err
	}
	sched, err := scheduler.New(n.probe, scheduler.Options{Logger: o.Logger})
	if err != nil {
		n.Close()
		return nil, err
	}
	n.sched = sched
	n.http = statuspage.New(statuspage.Options{Source: n, Logger: o.Logger})
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
		n.log.Info("open incident restored", "check", inc.Check, "incident_id", inc.ID, "since", inc.StartedAt)
	}
	return nil
}

// Start schedules the checks.
func (n *node) Start() error {
	if err := n.sched.Set(n.cfg.Checks); err != nil {
		return err
	}
	n.sched.Start()
	return nil
}

// Close stops the probes, then flushes and closes the store.
func (n *node) Close() error {
	n.closeOnce.Do(func() {
		if n.sched != nil {
			if err := n.sched.Shutdown(); err != nil {
				n.closeErr = err
			}
		}
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

func (n *node) probe(ctx context.Context, c *config.Check) {
	r := n.opts.Prober.Probe(ctx, c)
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

// observe records one probe result and re-evaluates the check.
func (n *node) observe(c *config.Check, r checker.Result) {
	n.store.Add(store.Result{
		Node: n.opts.Name, Region: n.opts.Region, Check: c.Name, Time: r.Start, OK: r.OK,
		Latency: r.Latency, DNS: r.Phases.DNS, Connect: r.Phases.Connect, TLS: r.Phases.TLS,
		FirstByte: r.Phases.FirstByte, Code: r.Code, Message: r.Message,
	})
	n.mu.Lock()
	cs, ok := n.checks[c.Name]
	if !ok {
		n.mu.Unlock()
		return
	}
	prev := cs.streak.Vote()
	vote := cs.streak.Observe(r.OK, c.FailAfter, c.RecoverAfter)
	cs.last, cs.have = r, true
	tr, changed := n.evaluateLocked(cs)
	var ev notifier.Event
	if tr.Opened || tr.Resolved {
		ev = n.eventLocked(cs, tr)
	}
	n.mu.Unlock()

	if !r.OK {
		n.log.Debug("probe failed", "check", c.Name, "code", r.Code, "msg", r.Message, "streak", cs.streak.Failures())
	}
	if vote != prev {
		n.log.Info("region vote changed", "check", c.Name, "region", n.opts.Region, "from", prev, "to", vote, "code", r.Code, "msg", r.Message)
	}
	if changed {
		n.recordTransition(c, tr)
	}
	if ev.IncidentID != "" && len(c.Notify) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.outbox.Enqueue(ctx, ev, c.Notify...); err != nil {
			n.log.Error("queue notification", "check", c.Name, "incident_id", ev.IncidentID, "action", ev.Action, "err", err)
		}
	}
}

// eventLocked describes an incident's trigger or resolve for the notifiers.
func (n *node) eventLocked(cs *checkState, tr quorum.Transition) notifier.Event {
	c := cs.cfg
	ev := notifier.Event{
		Action: notifier.ActionTrigger, IncidentID: tr.IncidentID, Check: c.Name, Target: c.TargetString(),
		Severity: c.Severity, StatusPageURL: n.cfg.StatusPage.URL, Group: c.Group,
		Regions: map[string]notifier.RegionVote{},
	}
	_, ev.StartedAt = cs.tracker.Incident()
	if tr.Resolved {
		ev.Action = notifier.ActionResolve
		at := tr.At.UTC()
		ev.ResolvedAt = &at
		if inc, err := n.store.Incident(context.Background(), tr.IncidentID); err == nil {
			ev.StartedAt = inc.StartedAt
		}
	}
	if cs.have {
		ev.Regions[n.opts.Region] = notifier.RegionVote{Vote: string(cs.streak.Vote()), Error: cs.last.Code, LatencyMS: statuspage.MS(cs.last.Latency)}
	}
	return ev
}

func (n *node) evaluateLocked(cs *checkState) (quorum.Transition, bool) {
	now := n.now()
	in := quorum.Input{
		Now:          now,
		Regions:      map[string]quorum.RegionInput{},
		Maintenance:  n.cfg.InMaintenance(cs.cfg.Name, now),
		SeesMajority: true, // a single node sees its own region; the mesh refines this
	}
	if cs.have {
		in.Regions[n.opts.Region] = quorum.RegionInput{Vote: cs.streak.Vote(), At: cs.last.Start.Add(cs.last.Latency), Eligible: true}
	}
	return cs.tracker.Update(n.params(cs.cfg), in)
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
	regions := n.params(&config.Check{}).Regions
	st := &statuspage.Status{
		GeneratedAt: now.UTC(),
		Node:        statuspage.NodeInfo{Name: n.opts.Name, Region: n.opts.Region, Version: v},
		Cluster: statuspage.ClusterInfo{
			Members: []statuspage.Member{{Name: n.opts.Name, Region: n.opts.Region, State: "alive", Version: v}},
			Quorum:  n.params(&config.Check{}).Quorum,
			Regions: map[string]statuspage.RegionInfo{},
		},
		Checks: make([]statuspage.CheckStatus, 0, len(n.cfg.Checks)),
	}
	for _, r := range regions {
		ri := statuspage.RegionInfo{Eligible: r == n.opts.Region}
		if !ri.Eligible {
			ri.Reason = "no alive node in region"
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
		if cs.have {
			r := cs.last
			vote := cs.streak.Vote()
			if !quorum.Eligible(n.params(c), now, quorum.RegionInput{Vote: vote, At: r.Start.Add(r.Latency), Eligible: true}) {
				vote = quorum.VoteAbstain
			}
			chk.Regions[n.opts.Region] = statuspage.RegionVote{
				Vote: string(vote), LatencyMS: statuspage.MS(r.Latency), CheckedAt: r.Start.UTC(), Error: r.Code, Message: r.Message,
				Phases: &statuspage.Phases{DNSMS: statuspage.MS(r.Phases.DNS), ConnectMS: statuspage.MS(r.Phases.Connect),
					TLSMS: statuspage.MS(r.Phases.TLS), FirstByteMS: statuspage.MS(r.Phases.FirstByte)},
			}
		}
		st.Checks = append(st.Checks, chk)
	}
	return st
}

// Ready implements statuspage.Source: ready once every check has a result.
func (n *node) Ready() (bool, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
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
