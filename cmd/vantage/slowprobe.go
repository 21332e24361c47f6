package main

import (
	"context"
	"time"

	"github.com/vantage-dev/vantage/config"
)

// slowProbeAfter is how long a probe may run before the node starts the
// next one alongside it: half the check's timeout, at least confirmRetry;
// only confirmRetry for a probe run because a peer asked to confirm a
// failure (the peer's own probe has been failing or hanging already).
//
// A target that accepts connections and then hangs fails a probe only when
// the timeout runs out. Fast confirmation re-probes after a failure, so
// with fail_after: 2 a hanging target would need two full timeouts one
// after the other (about 10 s + 10 s at interval 60s). Starting the second
// probe while the first still hangs, and asking the other regions to probe
// now, brings the down vote to about timeout + timeout/2 after the first
// probe began, half a timeout after the first failure, in the first
// region; the regions asked to confirm reach theirs within timeout +
// confirmRetry of being asked. A target that is merely slow (answers in
// under half the timeout) costs nothing extra.
func (n *node) slowProbeAfter(c *config.Check) time.Duration {
	n.mu.Lock()
	cs, ok := n.checks[c.Name]
	confirming := ok && n.now().Sub(cs.confirming) < time.Second
	n.mu.Unlock()
	if confirming {
		return confirmRetry
	}
	return max(confirmRetry, c.Timeout/2)
}

// probeAlongside runs one extra probe of c now, next to the scheduled one
// that is taking long; at most one such probe per check runs at a time.
func (n *node) probeAlongside(c *config.Check) {
	if n.ctx.Err() != nil {
		return
	}
	n.mu.Lock()
	cs, ok := n.checks[c.Name]
	if !ok || cs.alongside {
		n.mu.Unlock()
		return
	}
	cs.alongside = true
	n.mu.Unlock()
	n.log.Debug("probe still running: probing again alongside it", "check", c.Name)
	n.askConfirm(c.Name)
	go func() {
		defer func() {
			n.mu.Lock()
			cs.alongside = false
			n.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(n.ctx, c.Timeout)
		defer cancel()
		r := n.opts.Prober.Probe(ctx, c)
		if n.ctx.Err() != nil {
			return // shutting down: not a result
		}
		n.observe(c, r)
	}()
}
