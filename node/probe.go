package node

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/vantage-dev/vantage/checker"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/notifier"
	"github.com/vantage-dev/vantage/quorum"
	"github.com/vantage-dev/vantage/statuspage"
	"github.com/vantage-dev/vantage/store"
	"github.com/vantage-dev/vantage/verdict"
)

// confirmRetry is the delay of the re-probe after a failure, and the least
// time between two probes a peer's requests start.
const confirmRetry = 2 * time.Second

// confirmQuick is the re-probe delay of a probe that confirmed a peer's
// report, and the least time a probe confirming a peer's report runs
// before the next starts alongside it.
const confirmQuick = 250 * time.Millisecond

// slowMin is the least time a scheduled probe runs before it counts as
// slow (see slowAfter), and slowFactor how many times its recent latency.
const (
	slowMin    = time.Second
	slowFactor = 3
)

// latKeep is how many of a check's latest successful latencies the probe
// loop keeps to judge what is slow for it.
const latKeep = 5

// probeLoop runs a node's probes beyond the schedule: the scheduler's job
// (probe), fast confirmation (re-probes, asking the other regions), peers'
// requests to probe (onAsk) and probes alongside one that takes long. It
// talks to the scheduler, the gossip and the verdict through the functions
// it is given, so its timing is tested on a fake clock without them.
type probeLoop struct {
	ctx    context.Context // ends with the node
	now    func() time.Time
	log    *slog.Logger
	prober checker.Prober
	// runNow runs the check's scheduled job now (skipped while it runs).
	runNow func(check string)
	// ask asks every other node to probe check now.
	ask func(check string)
	// observe stores one result and hands it to the verdict; ok is false
	// when it was not counted (a removed check, a stopping node).
	observe func(c *config.Check, r checker.Result) (obs verdict.Observation, ok bool)

	mu     sync.Mutex
	checks map[string]*probeState
}

// probeState is the probe loop's bookkeeping of one check.
type probeState struct {
	running    int         // runs of the scheduled job in flight (one, but for a reload's moment)
	started    time.Time   // when the latest of them began
	slow       *time.Timer // starts a probe alongside it once it is slow
	alongside  bool        // a probe started alongside is running
	confirming time.Time   // when a peer last made this node probe the check
	lat        [latKeep]time.Duration
	nlat       int // successes recorded in lat (at most latKeep)
	nextLat    int
}

func (l *probeLoop) stateLocked(check string) *probeState {
	if l.checks == nil {
		l.checks = map[string]*probeState{}
	}
	ps := l.checks[check]
	if ps == nil {
		ps = &probeState{}
		l.checks[check] = ps
	}
	return ps
}

// retain forgets the checks not in keep (after a reload).
func (l *probeLoop) retain(keep map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, ps := range l.checks {
		if !keep[name] && ps.running == 0 && !ps.alongside {
			delete(l.checks, name)
		}
	}
}

// typical is the slowest of the check's latest successful latencies; ok is
// false before its first success.
func (ps *probeState) typical() (time.Duration, bool) {
	var t time.Duration
	for _, d := range ps.lat[:ps.nlat] {
		t = max(t, d)
	}
	return t, ps.nlat > 0
}

// slowAfterLocked is how long a probe of c beginning now may run before
// the node starts the next one alongside it and asks the other regions to
// probe.
//
// A target that accepts connections and then hangs fails a probe only at
// the timeout. Waiting for that failure before confirming it would put a
// second timeout (the confirming probes') between the first failure and
// the page. Instead a probe that takes much longer than the check usually
// answers in is treated as the first sign of a fault: at slowFactor times
// the slowest of its latest latencies, at least slowMin, at most the
// ceiling max(confirmRetry, timeout/2) (the ceiling itself before the
// check's first success), the node probes alongside it and asks every
// region to probe now. A probe run because a peer asked (within the last
// second) gets its alongside probe at slowFactor times the usual latency,
// between confirmQuick and confirmRetry (confirmRetry before the first
// success), as a failure a peer asked to confirm is re-probed after
// confirmQuick; that probe does not ask again (see alongside).
// So two regions each hold two probes begun within slowMin + a gossip
// round + confirmQuick of the first region's probe, and a hanging target
// is down about timeout + 1.5 s after the first probe began. A target that
// is merely slow as usual costs nothing extra.
func (l *probeLoop) slowAfterLocked(ps *probeState, c *config.Check, now time.Time) time.Duration {
	if !ps.confirming.IsZero() && now.Sub(ps.confirming) < time.Second {
		return ps.confirmSlow()
	}
	typ, known := ps.typical()
	ceiling := max(confirmRetry, c.Timeout/2)
	if !known {
		return ceiling
	}
	return min(max(slowMin, slowFactor*typ), ceiling)
}

// confirmSlow is how long a probe run because a peer asked may run before
// the next starts alongside it (see slowAfterLocked).
func (ps *probeState) confirmSlow() time.Duration {
	typ, known := ps.typical()
	if !known {
		return confirmRetry
	}
	return min(max(confirmQuick, slowFactor*typ), confirmRetry)
}

// probe is the scheduler's job: one probe of c, and its result observed.
func (l *probeLoop) probe(ctx context.Context, c *config.Check) {
	l.mu.Lock()
	ps := l.stateLocked(c.Name)
	now := l.now()
	ps.running++
	ps.started = now
	if ps.slow != nil {
		ps.slow.Stop()
	}
	slow := time.AfterFunc(l.slowAfterLocked(ps, c, now), func() { l.alongside(c) })
	ps.slow = slow
	l.mu.Unlock()

	r := l.prober.Probe(ctx, c)

	l.mu.Lock()
	slow.Stop()
	if ps.slow == slow {
		ps.slow = nil
	}
	ps.running--
	l.mu.Unlock()
	if ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled) && !r.OK {
		return // shut down mid-probe: not a result
	}
	l.result(c, r)
}

// result records one result (its latency, when a success), hands it on and
// starts fast confirmation.
func (l *probeLoop) result(c *config.Check, r checker.Result) {
	if r.OK {
		l.mu.Lock()
		ps := l.stateLocked(c.Name)
		ps.lat[ps.nextLat] = r.Latency
		ps.nextLat = (ps.nextLat + 1) % latKeep
		ps.nlat = min(ps.nlat+1, latKeep)
		l.mu.Unlock()
	}
	obs, ok := l.observe(c, r)
	if !ok {
		return
	}
	switch {
	case !r.OK:
		if obs.Vote != quorum.VoteDown && obs.Failures < c.FailAfter {
			l.confirm(c, obs.Failures == 1)
		}
	case obs.State == quorum.StateDown && (obs.Successes == 1 || obs.Successes < c.RecoverAfter):
		// Fast confirmation of recovery: re-probe soon, and on the first
		// success ask every region to probe now.
		l.confirm(c, obs.Successes == 1)
	}
}

// confirm re-probes a check after confirmRetry instead of waiting for its
// next interval, and when ask is set (a first failure, or a first success
// while the check is down) asks every other node to probe it now (fast
// confirmation, both ways).
//
// A probe that confirmed a peer's report (a peer asked, within the last
// few seconds) is re-probed after confirmQuick instead: the peer's failure
// is already the first evidence, so the region's two failures need not be
// confirmRetry apart. With staggered phases one region meets a fault
// alone; the regions it asks then reach fail_after within a fraction of a
// second, not after confirmRetry.
func (l *probeLoop) confirm(c *config.Check, ask bool) {
	name := c.Name
	delay := confirmRetry
	l.mu.Lock()
	if ps := l.stateLocked(name); !ps.confirming.IsZero() && l.now().Sub(ps.confirming) < 2*confirmRetry {
		delay = confirmQuick
	}
	l.mu.Unlock()
	time.AfterFunc(delay, func() {
		if l.ctx.Err() == nil {
			l.runNow(name)
		}
	})
	if ask {
		l.ask(name)
	}
}

// onAsk takes a peer's request to probe check now, at most once per
// confirmRetry. When the check's scheduled probe is already running (it
// began before the request came), that probe is counted instead of
// skipping the request: the probe alongside it starts once it has run as
// long as a confirming probe may (see slowAfterLocked), at once if it has.
func (l *probeLoop) onAsk(check, from string) {
	now := l.now()
	l.mu.Lock()
	ps := l.stateLocked(check)
	due := ps.confirming.IsZero() || now.Sub(ps.confirming) >= confirmRetry
	if due {
		ps.confirming = now
	}
	inFlight := ps.running > 0 && ps.slow != nil
	if due && inFlight {
		wait := ps.confirmSlow() - now.Sub(ps.started)
		ps.slow.Reset(max(0, wait))
	}
	l.mu.Unlock()
	if !due || l.ctx.Err() != nil {
		return
	}
	if inFlight {
		l.log.Debug("confirming a peer's failure with the probe already running", "check", check, "from", from)
		return
	}
	l.log.Debug("confirming a peer's failure", "check", check, "from", from)
	go l.runNow(check)
}

// alongside runs one extra probe of c now, next to the scheduled one that
// is taking long, and asks the other regions to probe unless a peer asked
// this node within confirmRetry (that peer asked every node already); at
// most one such probe per check runs at a time.
func (l *probeLoop) alongside(c *config.Check) {
	if l.ctx.Err() != nil {
		return
	}
	l.mu.Lock()
	ps := l.stateLocked(c.Name)
	if ps.alongside {
		l.mu.Unlock()
		return
	}
	ps.alongside = true
	ask := ps.confirming.IsZero() || l.now().Sub(ps.confirming) >= confirmRetry
	l.mu.Unlock()
	l.log.Debug("probe still running: probing again alongside it", "check", c.Name, "ask", ask)
	if ask {
		l.ask(c.Name)
	}
	go func() {
		defer func() {
			l.mu.Lock()
			ps.alongside = false
			l.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(l.ctx, c.Timeout)
		defer cancel()
		r := l.prober.Probe(ctx, c)
		if l.ctx.Err() != nil {
			return // shutting down: not a result
		}
		l.result(c, r)
	}()
}

// observe stores one result, hands it to the verdict (which shares the vote
// and re-evaluates the check) and logs what changed: the probe loop's
// observe.
func (n *Node) observe(c *config.Check, r checker.Result) (verdict.Observation, bool) {
	if n.ctx.Err() != nil {
		return verdict.Observation{}, false // stopping: the node no longer votes, nor pages
	}
	result := "ok"
	if !r.OK {
		result = r.Code
	}
	n.metrics.probes.WithLabelValues(c.Name, result).Inc()
	n.store.Add(store.Result{
		Node: n.o.Name, Region: n.o.Region, Check: c.Name, Time: r.Start, OK: r.OK,
		Latency: r.Latency, DNS: r.Phases.DNS, Connect: r.Phases.Connect, TLS: r.Phases.TLS,
		FirstByte: r.Phases.FirstByte, Code: r.Code, Message: r.Message,
	})
	if r.CertSerial != "" {
		n.pager.Cert(c.Name, notifier.CertInfo{Subject: r.CertSubject, Serial: r.CertSerial, NotAfter: r.CertNotAfter},
			r.CertExpiring, n.now())
	}
	healthy, _ := n.canary.Healthy()
	obs, ok := n.ev.Observe(c.Name, r, healthy)
	if !ok {
		return obs, false // removed by a reload
	}
	n.status.touch(false)
	if !r.OK {
		n.log.Debug("probe failed", "check", c.Name, "code", r.Code, "msg", r.Message, "failures", obs.Failures)
	}
	if obs.Vote != obs.Prev {
		n.log.Info("region vote changed", "check", c.Name, "region", n.o.Region, "from", obs.Prev, "to", obs.Vote,
			"code", r.Code, "msg", r.Message, "latency_ms", statuspage.MS(r.Latency))
	}
	return obs, true
}

func (n *Node) askConfirm(name string) {
	if err := n.mesh.Asks.Ask(name); err != nil {
		n.log.Warn("gossip confirm request", "check", name, "err", err)
	}
}

// onAsk takes a peer's request to probe check now (the mesh's OnAsk).
func (n *Node) onAsk(check, from string) { n.loop.onAsk(check, from) }
