// Package node wires one probe node together and runs it: its lifecycle
// (New, Start, Close, Reload), the status read model the page and the API
// serve, and its metrics. Data flows one way:
//
//	scheduler → checker → verdict ─┬→ mesh (votes, incidents) → gossip
//	                               └→ changes → paging → outbox
//	                                          → store, status read model, page
//
// A node is importable: tests and `vantage demo` run nodes in-process.
package node

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vantage-dev/vantage/checker"
	"github.com/vantage-dev/vantage/cluster"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/notifier"
	"github.com/vantage-dev/vantage/paging"
	"github.com/vantage-dev/vantage/scheduler"
	"github.com/vantage-dev/vantage/statuspage"
	"github.com/vantage-dev/vantage/store"
	"github.com/vantage-dev/vantage/verdict"
)

// Options configure a node.
type Options struct {
	Config *config.Config
	Name   string
	Region string
	// Version is shown in /api/v1/status and advertised in gossip.
	Version string
	DBPath  string
	// OutboxPath is the notification outbox's SQLite file.
	OutboxPath string
	Logger     *slog.Logger
	// Gossip settings; nil runs without a cluster (a single node).
	Gossip *cluster.Config
	// Prober overrides the real checker (tests, the demo).
	Prober checker.Prober
	// Now overrides the clock (tests).
	Now func() time.Time
	// APIToken is the write API's token; "" takes the config's
	// statuspage.api_token.
	APIToken string
}

// Node is one probe node.
type Node struct {
	o       Options
	log     *slog.Logger
	now     func() time.Time
	cfg     atomic.Pointer[config.Config]
	store   *store.Store
	outbox  *notifier.Outbox
	mesh    *mesh.Mesh
	ev      *verdict.Evaluator
	pager   *paging.Pager
	sched   *scheduler.Scheduler
	canary  *canaries
	http    *statuspage.Server
	metrics *metrics
	status  statusModel
	ext     extensions // reports, ad-hoc probes, failure snapshots
	loop    *probeLoop // the probe loop: the scheduler's job, fast confirmation (probe.go)
	writes  writeQueue
	maint   maintState // runtime maintenance windows (maintenance.go)
	subs    subsState  // the page's subscribers (subscriptions.go)
	cl      atomic.Pointer[cluster.Cluster]
	pushes  atomic.Pointer[map[string]string] // push check -> token

	evalCh    chan string
	evalAll   chan struct{}
	reloadMu  sync.Mutex // one Reload at a time
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	pageWG    sync.WaitGroup // the status page's render loop
	closeOnce sync.Once
	closeErr  error
}

// New opens a node's store and outbox and builds its parts; Start runs it.
func New(ctx context.Context, o Options) (*Node, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Prober == nil {
		o.Prober = checker.New(checker.Options{Logger: o.Logger})
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	n := &Node{o: o, log: o.Logger, now: o.Now, evalCh: make(chan string, 4096), evalAll: make(chan struct{}, 1)}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.loop = &probeLoop{ctx: n.ctx, now: o.Now, log: o.Logger, prober: o.Prober, observe: n.observe, ask: n.askConfirm,
		runNow: func(check string) { n.sched.RunNow(check) }}
	n.cfg.Store(o.Config)
	tokens := pushTokens(o.Config)
	n.pushes.Store(&tokens)
	n.status.n = n
	n.writes.init()
	n.metrics = newMetrics(n)

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

	cn, err := newCanaries(o.Config.Cluster.Canaries, o.Prober, o.Logger, o.Now)
	if err != nil {
		st.Close()
		return nil, err
	}
	cn.onChange = n.onCanaryChange
	n.canary = cn
	n.mesh = mesh.New(mesh.Options{Self: o.Name, Region: o.Region, Now: o.Now, Logger: o.Logger,
		Notify: n.queueEval, OnHealth: n.healthChanged, OnAsk: n.onAsk, OnWrite: n.writes.push})
	if err := n.initMaintenance(ctx); err != nil { // runtime maintenance windows (maintenance.go)
		st.Close()
		return nil, err
	}
	vo := verdict.Options{Self: o.Name, Region: o.Region, Now: o.Now, Votes: n.mesh.Votes,
		Health: n.mesh.Health, Incidents: n.mesh.Incidents, Sent: n.mesh.Sent, Receipts: n.mesh.Receipts, Logger: o.Logger,
		Maintenance: n.mesh.Maint.Active} // runtime windows count as the config's (maintenance.go)
	if len(o.Config.Cluster.Canaries) > 0 {
		vo.Canary = cn.Since // down votes wait for a canary round begun after the failing probe
	}
	n.ev = verdict.New(vo)
	cn.onRound = func(bool, time.Time) { n.ev.CanaryRound() }

	providers, err := notifier.NewAll(o.Config.Notifiers, notifier.Options{Logger: o.Logger})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("notifiers: %w", err)
	}
	ob, err := notifier.OpenOutbox(o.OutboxPath, providers, notifier.OutboxOptions{
		Logger: o.Logger, Fallbacks: notifier.FallbacksFrom(o.Config.Notifiers),
		Log: paging.OutboxLog{Sent: n.mesh.Sent, Logger: o.Logger}, Gate: paging.Gate{Checks: n.ev, Now: o.Now}, Self: o.Name,
		Registerer: n.metrics.reg,
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	n.outbox = ob
	n.pager = paging.New(paging.Options{Self: o.Name, Now: o.Now, Checks: n.ev, Sent: n.mesh.Sent,
		Maintenance: n.mesh.Maint, Claims: n.mesh.Claims, Incidents: n.mesh.Incidents, Outbox: snapshotLinks{ob, n}, Logger: o.Logger,
		Suppressed: n.recordParent})

	n.mesh.Retain(checkSet(o.Config))
	n.ev.SetConfig(o.Config)
	n.pager.SetConfig(o.Config)
	if err := n.restore(ctx); err != nil {
		n.Close()
		return nil, err
	}
	sched, err := scheduler.New(n.loop.probe, scheduler.Options{Logger: o.Logger})
	if err != nil {
		n.Close()
		return nil, err
	}
	n.sched = sched
	n.http = statuspage.New(statuspage.Options{
		Source: n, Logger: o.Logger, History: st, Page: n.pageOf(o.Config), // with runtime maintenance windows (maintenance.go)
		// Live state reaches browsers over /ws at once; the HTML and JSON
		// documents are re-rendered at most every 2 s, and every minute for
		// uptime numbers: a render reads 90 days of rollups per check.
		MinRefreshGap: 2 * time.Second, RefreshInterval: time.Minute,
		// Renders for state changes (an outage: many, 2 s apart) reuse
		// uptime numbers and bars read in the last 30 s; the 7/30/90 day
		// numbers and past days are re-read every 10 minutes, the 24 h
		// number and today's cell every render after that.
		HistoryTTL: 30 * time.Second, HistorySlowTTL: 10 * time.Minute,
		Extra: map[string]http.Handler{"GET /metrics": n.metrics.handler(),
			"POST /api/v1/push/{name}": http.HandlerFunc(n.servePush), "GET /api/v1/push/{name}": http.HandlerFunc(n.servePush)},
		Writer: n, APIToken: apiToken(o),
	})
	if err := n.ext.init(n); err != nil {
		n.Close()
		return nil, err
	}
	if err := n.initSubscriptions(ctx); err != nil { // the page's subscribers (subscriptions.go)
		n.Close()
		return nil, err
	}
	return n, nil
}

// forever maps the config's "0 = keep forever" to the store's negative value.
func forever(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

func checkSet(cfg *config.Config) map[string]bool {
	m := make(map[string]bool, len(cfg.Checks))
	for _, c := range cfg.Checks {
		m[c.Name] = true
	}
	return m
}

// apiToken is the write API's token: the resolved setting, else the
// config's.
func apiToken(o Options) string {
	if o.APIToken != "" {
		return o.APIToken
	}
	return o.Config.StatusPage.APIToken
}

// restore reopens the incidents that were open before a restart (an
// incident ends only when its check is seen up again) and loads the
// operators' recent writes to share.
func (n *Node) restore(ctx context.Context) error {
	incs, err := n.store.OpenIncidents(ctx)
	if err != nil {
		return fmt.Errorf("load open incidents: %w", err)
	}
	for _, inc := range incs {
		if inc.Manual || !n.ev.Restore(inc.Check, inc.ID, inc.StartedAt) {
			continue
		}
		n.pager.Restore(inc.Check, inc.ID, inc.StartedAt)
		n.log.Info("open incident restored", "check", inc.Check, "incident_id", inc.ID, "since", inc.StartedAt)
	}
	return n.reseedWrites(ctx)
}

// Start joins the cluster, then schedules the checks and the canaries.
func (n *Node) Start() error {
	cfg := n.cfg.Load()
	if n.o.Gossip != nil {
		gc := *n.o.Gossip
		gc.ConfigHash = ConfigHash(cfg)
		if gc.Version == "" {
			gc.Version = n.o.Version
		}
		if gc.Now == nil {
			gc.Now = n.now
		}
		cl, err := cluster.Create(gc)
		if err != nil {
			return fmt.Errorf("start gossip: %w", err)
		}
		if err := n.mesh.Register(cl); err != nil {
			return err
		}
		if err := n.startSeries(cl); err != nil { // every region's history (series.go)
			return err
		}
		if err := cl.Start(); err != nil {
			return fmt.Errorf("start gossip: %w", err)
		}
		n.cl.Store(cl)
		n.refreshMembers()
	}
	n.placeProbes()
	if err := n.sched.Set(probed(cfg)); err != nil {
		return err
	}
	n.sched.Start()
	n.pageWG.Add(1)
	go func() { // not in wg: Close waits for it only briefly (below)
		defer n.pageWG.Done()
		n.http.Run(n.ctx)
	}()
	n.goRun(n.canary.run)
	n.goRun(n.pager.Run)
	n.goRun(n.evaluate)
	n.goRun(func(ctx context.Context) { n.ev.Run(ctx, n.apply) })
	n.goRun(n.writes.run(n))
	n.goRun(n.runMaintenance) // runtime maintenance windows (maintenance.go)
	n.goRun(n.housekeeping)
	n.goRun(n.watchDisk)
	return nil
}

func (n *Node) goRun(f func(context.Context)) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f(n.ctx)
	}()
}

// Close stops paging first (a stopping node sends nothing about checks it
// stops probing), stops the probes, leaves the cluster, then flushes and
// closes the outbox and the store.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		// Probing stops first (running probes are cancelled), so no result
		// arrives for a cluster that has gone; then the node leaves.
		if n.sched != nil {
			if err := n.sched.Shutdown(); err != nil {
				n.closeErr = err
			}
		}
		if cl := n.cl.Load(); cl != nil {
			if err := cl.Leave(2 * time.Second); err != nil {
				n.log.Warn("leave cluster", "err", err)
			}
			if err := cl.Shutdown(); err != nil {
				n.log.Warn("gossip shutdown", "err", err)
			}
		}
		n.wg.Wait()
		// A render of a large page may be compressing documents: it stops
		// reading history at once and is not waited for long; the process
		// exits meanwhile.
		if !waitTimeout(&n.pageWG, 2*time.Second) {
			n.log.Warn("status page render still running at shutdown; not waiting for it")
		}
		if n.outbox != nil {
			if err := n.outbox.Close(); err != nil {
				n.closeErr = errors.Join(n.closeErr, fmt.Errorf("close outbox: %w", err))
			}
		}
		if err := n.store.Close(); err != nil {
			n.closeErr = errors.Join(n.closeErr, fmt.Errorf("close store: %w", err))
		}
	})
	return n.closeErr
}

// Handler is the node's HTTP interface.
func (n *Node) Handler() http.Handler { return n.http }

// GossipAddr is the address peers reach this node at ("" without gossip).
func (n *Node) GossipAddr() string {
	if cl := n.cl.Load(); cl != nil {
		return cl.LocalAddr()
	}
	return ""
}

// Name is the node's name.
func (n *Node) Name() string { return n.o.Name }

// Outbox is the node's notification outbox (tests and tools read it).
func (n *Node) Outbox() *notifier.Outbox { return n.outbox }

// Store is the node's history store.
func (n *Node) Store() *store.Store { return n.store }

// PagerSweeps counts the pager's sweeps, for tests to wait on.
func (n *Node) PagerSweeps() uint64 { return n.pager.Sweeps() }

// queueEval asks for one check's evaluation (a peer's vote, incident or
// delivery); it never blocks: the once-a-second pass catches up.
func (n *Node) queueEval(check string) {
	select {
	case n.evalCh <- check:
	default:
	}
}

// queueEvalAll asks for every check's evaluation (canary health changed).
func (n *Node) queueEvalAll() {
	select {
	case n.evalAll <- struct{}{}:
	default:
	}
}

// evaluate re-evaluates checks whose votes changed, every check on
// membership and health changes, and once a second the checks whose
// verdict time alone may change (stale votes, maintenance windows).
func (n *Node) evaluate(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var members <-chan struct{}
	if cl := n.cl.Load(); cl != nil {
		members = cl.Changes()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case name := <-n.evalCh:
			n.ev.Evaluate(name)
		case <-members:
			if n.refreshMembers() {
				n.placeProbes()
				n.ev.EvaluateAll()
			}
			n.status.touch(true)
			n.http.Refresh()
		case <-n.evalAll:
			n.ev.EvaluateAll()
			n.status.touch(true)
		case <-t.C:
			if n.refreshMembers() {
				n.placeProbes()
				n.ev.EvaluateAll()
			} else {
				n.ev.EvaluateDue()
			}
		}
	}
}

// refreshMembers hands gossip's membership to the verdict and reports
// whether the verdict's view of it changed.
func (n *Node) refreshMembers() bool {
	cl := n.cl.Load()
	if cl == nil {
		return false
	}
	ms := cl.Members()
	vm := make([]verdict.Member, len(ms))
	for i, m := range ms {
		vm[i] = verdict.Member{Name: m.Name, Region: m.Region, State: m.State}
	}
	return n.ev.SetMembers(vm)
}

// housekeeping bounds the mesh's tables and the outbox, and re-reads the
// operators' writes to share, so old ones age out.
func (n *Node) housekeeping(ctx context.Context) {
	expire := time.NewTicker(30 * time.Second)
	defer expire.Stop()
	warned := map[string]bool{} // peers whose clock offset was warned about
	reseed := time.NewTicker(10 * time.Minute)
	defer reseed.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-expire.C:
			n.mesh.Expire(n.now(), voteHorizon(n.cfg.Load()))
			n.watchClocks(warned)
		case <-reseed.C:
			if err := n.reseedWrites(ctx); err != nil && ctx.Err() == nil {
				n.log.Warn("read incident updates to share", "err", err)
			}
		case <-prune.C:
			n.pruneOutbox(ctx)
		}
	}
}

// outboxKeep is how long the outbox keeps delivered and failed
// notifications: their receipts for operators, and the outbox's own
// deduplication, which the cluster's sent log (14 days) outlives anyway.
const outboxKeep = 30 * 24 * time.Hour

// pruneOutbox deletes the outbox's delivered and failed notifications
// older than outboxKeep (pending ones stay, however old), so its file
// does not grow without bound.
func (n *Node) pruneOutbox(ctx context.Context) {
	if n.outbox == nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	k, err := n.outbox.Prune(pctx, n.now().Add(-outboxKeep))
	switch {
	case err != nil && ctx.Err() == nil:
		n.log.Warn("prune the outbox", "err", err)
	case k > 0:
		n.log.Info("pruned the outbox", "notifications", k, "older_than", outboxKeep)
	}
}

// voteHorizon is how long votes are kept: longer than any check's vote
// may count, and at least 10 minutes.
func voteHorizon(cfg *config.Config) time.Duration {
	h := 10 * time.Minute
	for _, c := range cfg.Checks {
		h = max(h, 2*(2*c.Interval+verdict.VoteSlack))
	}
	return h
}

// ConfigHash identifies the checks config: nodes whose hashes differ are
// shown in /api/v1/status and logged.
func ConfigHash(cfg *config.Config) string {
	b, err := json.Marshal(struct {
		Cluster config.Cluster
		Checks  []config.Check
	}{cfg.Cluster, cfg.Checks})
	if err != nil {
		return "unknown"
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:6])
}

// RandomKey is the gossip key of a node without peers and without a
// configured key: nobody can join it.
func RandomKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

// probed is the checks the node probes: all but push checks, which the
// jobs they watch report to.
//
// Without push checks it is the config's own slice, which the scheduler
// points into rather than holding a copy of every check.
func probed(cfg *config.Config) []config.Check {
	if !slices.ContainsFunc(cfg.Checks, func(c config.Check) bool { return c.Type == config.TypePush }) {
		return cfg.Checks
	}
	out := make([]config.Check, 0, len(cfg.Checks))
	for _, c := range cfg.Checks {
		if c.Type != config.TypePush {
			out = append(out, c)
		}
	}
	return out
}

// placeProbes staggers this node's probes against the other regions' and
// its region's other nodes' (scheduler phases): region k of R probes each
// check at its offset + k·interval/R, node j of the region's N alive nodes
// a further j·interval/(R·N), so some region probes every interval/R.
func (n *Node) placeProbes() {
	view := n.ev.View()
	k := slices.Index(view.Regions, n.o.Region)
	if k < 0 {
		k = 0
	}
	nodes := slices.Clone(view.Alive[n.o.Region])
	slices.Sort(nodes)
	j := max(0, slices.Index(nodes, n.o.Name))
	if err := n.sched.SetPlace(k, max(1, len(view.Regions)), j, max(1, len(nodes))); err != nil {
		n.log.Warn("place probes", "err", err)
	}
}

// maxClockOffset is the peer clock offset above which the node warns.
const maxClockOffset = time.Second

// watchClocks warns once when a peer's clock is more than maxClockOffset
// off this node's (and says when it is back). Nothing depends on peers'
// clocks agreeing: votes, claims and writes are placed on this node's
// clock as they arrive.
func (n *Node) watchClocks(warned map[string]bool) {
	cl := n.cl.Load()
	if cl == nil {
		return
	}
	for _, m := range cl.Members() {
		off, ok := cl.ClockOffset(m.Name)
		if !ok || m.Name == n.o.Name {
			continue
		}
		far := off > maxClockOffset || off < -maxClockOffset
		switch {
		case far && !warned[m.Name]:
			warned[m.Name] = true
			n.log.Warn("a peer's clock is off this node's by more than 1 s (check NTP); votes and claims are judged by when they arrive",
				"peer", m.Name, "offset", off.Round(time.Millisecond))
		case !far && warned[m.Name]:
			delete(warned, m.Name)
			n.log.Info("a peer's clock agrees with this node's again", "peer", m.Name, "offset", off.Round(time.Millisecond))
		}
	}
}

// waitTimeout waits for wg up to d and reports whether it finished.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
