package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/vantage-dev/vantage/checker"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/notifier"
	"github.com/vantage-dev/vantage/quorum"
	"github.com/vantage-dev/vantage/statuspage"
	"github.com/vantage-dev/vantage/store"
)

// confirmRetry is the delay of the re-probe after a failure, and the least
// time between two probes a peer's requests start.
const confirmRetry = 2 * time.Second

// confirmQuick is the re-probe delay of a probe that confirmed a peer's
// report.
const confirmQuick = 250 * time.Millisecond

// probeFlags is the probe loop's bookkeeping per check.
type probeFlags struct {
	mu         sync.Mutex
	alongside  map[string]bool      // a probe started by probeAlongside is running
	confirming map[string]time.Time // when a peer last made this node probe the check
}

func (f *probeFlags) lock() {
	f.mu.Lock()
	if f.alongside == nil {
		f.alongside, f.confirming = map[string]bool{}, map[string]time.Time{}
	}
}

// probe is the scheduler's job: one probe of c, and its result observed.
func (n *Node) probe(ctx context.Context, c *config.Check) {
	slow := time.AfterFunc(n.slowProbeAfter(c), func() { n.probeAlongside(c) })
	r := n.o.Prober.Probe(ctx, c)
	slow.Stop()
	if ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled) && !r.OK {
		return // shut down mid-probe: not a result
	}
	n.observe(c, r)
}

// observe records one result, hands it to the verdict (which shares the
// vote and re-evaluates the check) and starts fast confirmation.
func (n *Node) observe(c *config.Check, r checker.Result) {
	if n.ctx.Err() != nil {
		return // stopping: the node no longer votes, nor pages
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
		return // removed by a reload
	}
	n.status.touch(false)
	switch {
	case !r.OK:
		n.log.Debug("probe failed", "check", c.Name, "code", r.Code, "msg", r.Message, "failures", obs.Failures)
		if obs.Vote != quorum.VoteDown && obs.Failures < c.FailAfter {
			n.confirm(c, obs.Failures == 1)
		}
	case obs.State == quorum.StateDown && (obs.Successes == 1 || obs.Successes < c.RecoverAfter):
		// Fast confirmation of recovery: re-probe soon, and on the first
		// success ask every region to probe now.
		n.confirm(c, obs.Successes == 1)
	}
	if obs.Vote != obs.Prev {
		n.log.Info("region vote changed", "check", c.Name, "region", n.o.Region, "from", obs.Prev, "to", obs.Vote,
			"code", r.Code, "msg", r.Message, "latency_ms", statuspage.MS(r.Latency))
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
func (n *Node) confirm(c *config.Check, ask bool) {
	name := c.Name
	delay := confirmRetry
	n.probes.lock()
	if n.now().Sub(n.probes.confirming[name]) < 2*confirmRetry {
		delay = confirmQuick
	}
	n.probes.mu.Unlock()
	time.AfterFunc(delay, func() {
		if n.ctx.Err() == nil {
			n.sched.RunNow(name)
		}
	})
	if ask {
		n.askConfirm(name)
	}
}

func (n *Node) askConfirm(name string) {
	if err := n.mesh.Asks.Ask(name); err != nil {
		n.log.Warn("gossip confirm request", "check", name, "err", err)
	}
}

// onAsk takes a peer's request to probe check now, at most once per
// confirmRetry.
func (n *Node) onAsk(check, from string) {
	now := n.now()
	n.probes.lock()
	last, seen := n.probes.confirming[check]
	due := !seen || now.Sub(last) >= confirmRetry
	if due {
		n.probes.confirming[check] = now
	}
	n.probes.mu.Unlock()
	if due && n.ctx.Err() == nil {
		n.log.Debug("confirming a peer's failure", "check", check, "from", from)
		go n.sched.RunNow(check)
	}
}

// slowProbeAfter is how long a probe may run before the node starts the
// next one alongside it: half the check's timeout, at least confirmRetry;
// only confirmRetry for a probe run because a peer asked to confirm a
// failure (the peer's own probe has been failing or hanging already).
//
// A target that accepts connections and then hangs fails a probe only when
// the timeout runs out. Fast confirmation re-probes after a failure, so
// with fail_after: 2 a hanging target would need two full timeouts one
// after the other. Starting the second probe while the first still hangs,
// and asking the other regions to probe now, brings the down vote to about
// timeout + timeout/2 after the first probe began in the first region; the
// regions asked to confirm reach theirs within timeout + confirmRetry of
// being asked. A target that is merely slow (answers in under half the
// timeout) costs nothing extra.
func (n *Node) slowProbeAfter(c *config.Check) time.Duration {
	n.probes.lock()
	confirming := n.now().Sub(n.probes.confirming[c.Name]) < time.Second
	n.probes.mu.Unlock()
	if confirming {
		return confirmRetry
	}
	return max(confirmRetry, c.Timeout/2)
}

// probeAlongside runs one extra probe of c now, next to the scheduled one
// that is taking long; at most one such probe per check runs at a time.
func (n *Node) probeAlongside(c *config.Check) {
	if n.ctx.Err() != nil {
		return
	}
	n.probes.lock()
	if n.probes.alongside[c.Name] {
		n.probes.mu.Unlock()
		return
	}
	n.probes.alongside[c.Name] = true
	n.probes.mu.Unlock()
	n.log.Debug("probe still running: probing again alongside it", "check", c.Name)
	n.askConfirm(c.Name)
	go func() {
		defer func() {
			n.probes.lock()
			delete(n.probes.alongside, c.Name)
			n.probes.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(n.ctx, c.Timeout)
		defer cancel()
		r := n.o.Prober.Probe(ctx, c)
		if n.ctx.Err() != nil {
			return // shutting down: not a result
		}
		n.observe(c, r)
	}()
}
