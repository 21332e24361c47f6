package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/vantage-dev/vantage/checker"
	"github.com/vantage-dev/vantage/config"
)

// canaries watch this node's own network. Each canary is a tcp://HOST:PORT
// or http(s):// URL; any HTTP answer counts as a pass, since a canary tests
// the path, not the service. The node's network is healthy while at least
// half of its canaries pass (so one canary's own outage does not blind a
// region); with none configured it is always healthy. While unhealthy, the
// node abstains on every check. Rounds run every 5 s, and at once when a
// check's vote waits for the evidence of a round that began after its
// failing probe (Since; the verdict's canary gate).
type canaries struct {
	checks   []config.Check
	prober   checker.Prober
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time
	onChange func(ok bool, reason string)
	// onRound is told every round's verdict and when the round began.
	onRound func(ok bool, began time.Time)
	// asks requests a round now (coalesced: one pending request at most).
	asks chan struct{}

	mu     sync.Mutex
	ok     bool
	reason string
	at     time.Time
	began  time.Time // when the latest completed round began
}

// canaryCheck turns a canary URL into a check.
func canaryCheck(raw string) (config.Check, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return config.Check{}, fmt.Errorf("canary %q: %w", raw, err)
	}
	c := config.Check{Name: "canary:" + raw, Timeout: 3 * time.Second, IP: "any"}
	switch u.Scheme {
	case "tcp":
		c.Type, c.Target = config.TypeTCP, u.Host
	case "http", "https":
		c.Type, c.URL, c.Method, c.FollowRedirects = config.TypeHTTP, raw, "GET", false
		c.BodyLimit = 1024
		c.Expect.Status = []config.StatusRange{{Min: 100, Max: 599}}
	default:
		return config.Check{}, fmt.Errorf("canary %q: scheme must be tcp, http or https", raw)
	}
	return c, nil
}

func newCanaries(urls []string, prober checker.Prober, log *slog.Logger, now func() time.Time) (*canaries, error) {
	cs := &canaries{prober: prober, interval: 5 * time.Second, log: log, now: now, ok: true, asks: make(chan struct{}, 1)}
	for _, raw := range urls {
		c, err := canaryCheck(raw)
		if err != nil {
			return nil, err
		}
		cs.checks = append(cs.checks, c)
	}
	return cs, nil
}

// Since reports the verdict of a round of canary probes that began at or
// after t: known is false until such a round has completed, and a round is
// then requested. Requests are coalesced: any number of failing checks
// waiting for evidence cost one round. Without canaries the network is
// always healthy.
func (cs *canaries) Since(t time.Time) (ok, known bool) {
	if len(cs.checks) == 0 {
		return true, true
	}
	cs.mu.Lock()
	ok, began := cs.ok, cs.began
	cs.mu.Unlock()
	if !began.IsZero() && !began.Before(t) {
		return ok, true
	}
	select {
	case cs.asks <- struct{}{}:
	default:
	}
	return false, false
}

// Healthy reports whether the node's network is healthy, and if not, why.
func (cs *canaries) Healthy() (bool, string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.ok, cs.reason
}

// probeOnce probes every canary concurrently and updates the verdict.
func (cs *canaries) probeOnce(ctx context.Context) {
	if len(cs.checks) == 0 {
		return
	}
	began := cs.now()
	results := make([]checker.Result, len(cs.checks))
	var wg sync.WaitGroup
	for i := range cs.checks {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, cs.checks[i].Timeout)
			defer cancel()
			results[i] = cs.prober.Probe(pctx, &cs.checks[i])
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	passed := 0
	var failed []string
	for i, r := range results {
		if r.OK {
			passed++
		} else {
			failed = append(failed, fmt.Sprintf("%s %s", strings.TrimPrefix(cs.checks[i].Name, "canary:"), r.Code))
		}
	}
	ok := passed*2 >= len(results)
	reason := ""
	if !ok {
		reason = "canaries failing: " + strings.Join(failed, ", ")
	}
	cs.mu.Lock()
	changed := ok != cs.ok
	cs.ok, cs.reason, cs.at, cs.began = ok, reason, cs.now(), began
	cs.mu.Unlock()
	if cs.onRound != nil {
		defer cs.onRound(ok, began)
	}
	if changed {
		if ok {
			cs.log.Info("canaries pass again: this region votes again", "passed", passed, "of", len(results))
		} else {
			cs.log.Warn("canaries failing: this region abstains on every check", "passed", passed, "of", len(results), "failed", strings.Join(failed, ", "))
		}
		if cs.onChange != nil {
			cs.onChange(ok, reason)
		}
	}
}

// run probes the canaries every interval until ctx ends.
func (cs *canaries) run(ctx context.Context) {
	if len(cs.checks) == 0 {
		return
	}
	t := time.NewTicker(cs.interval)
	defer t.Stop()
	for {
		cs.probeOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-cs.asks:
		}
	}
}

// onCanaryChange shares this node's canary verdict and re-evaluates every
// check: while unhealthy its region's votes from it do not count.
func (n *Node) onCanaryChange(ok bool, reason string) {
	if err := n.mesh.Health.Put(ok, reason); err != nil {
		n.log.Warn("gossip health", "err", err)
	}
	n.status.touch(true)
	n.queueEvalAll()
}
