package node

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vantage-dev/vantage/checker"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/quorum"
	"github.com/vantage-dev/vantage/verdict"
)

// probeSim is three regions' probe loops of one check on the fake clock of
// a synctest bubble, with a scheduler that skips a run while one is in
// flight (as scheduler.Scheduler does), gossip that delivers asks after
// gossipDelay, a streak of fail_after/recover_after per region, and the
// check down once quorum regions vote down.
type probeSim struct {
	t       *testing.T
	ctx     context.Context
	check   *config.Check
	regions []*simRegion
	quorum  int
	gossip  time.Duration

	hang    atomic.Bool
	latency atomic.Int64 // a healthy answer's latency

	mu     sync.Mutex
	downAt time.Time
	starts []simStart // every probe begun
	asks   int        // asks gossiped
}

type simStart struct {
	region string
	at     time.Time
}

type simRegion struct {
	name    string
	loop    *probeLoop
	running atomic.Bool
	fails   int
	oks     int
	vote    quorum.Vote
}

func newProbeSim(t *testing.T, ctx context.Context, timeout time.Duration) *probeSim {
	s := &probeSim{t: t, ctx: ctx, quorum: 2, gossip: 100 * time.Millisecond,
		check: &config.Check{Name: "api", Interval: time.Minute, Timeout: timeout, FailAfter: 2, RecoverAfter: 2}}
	s.latency.Store(int64(20 * time.Millisecond))
	for _, name := range []string{"eu", "us", "ap"} {
		r := &simRegion{name: name, vote: quorum.VoteUp}
		r.loop = &probeLoop{ctx: ctx, now: time.Now, log: slog.New(slog.DiscardHandler), prober: simProber{s, r},
			runNow: func(string) { s.run(r) }, ask: func(string) { s.ask(r) },
			observe: func(c *config.Check, res checker.Result) (verdict.Observation, bool) { return s.observe(r, res) }}
		s.regions = append(s.regions, r)
	}
	return s
}

// run is a run of the region's scheduled job: skipped while one runs.
func (s *probeSim) run(r *simRegion) {
	if !r.running.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer r.running.Store(false)
		ctx, cancel := context.WithTimeout(s.ctx, s.check.Timeout)
		defer cancel()
		r.loop.probe(ctx, s.check)
	}()
}

func (s *probeSim) ask(from *simRegion) {
	s.mu.Lock()
	s.asks++
	s.mu.Unlock()
	for _, r := range s.regions {
		if r != from {
			time.AfterFunc(s.gossip, func() { r.loop.onAsk(s.check.Name, from.name) })
		}
	}
}

func (s *probeSim) observe(r *simRegion, res checker.Result) (verdict.Observation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	state := quorum.StateUp
	if !s.downAt.IsZero() {
		state = quorum.StateDown
	}
	prev := r.vote
	if res.OK {
		r.oks, r.fails = r.oks+1, 0
		if r.oks >= s.check.RecoverAfter {
			r.vote = quorum.VoteUp
		}
	} else {
		r.fails, r.oks = r.fails+1, 0
		if r.fails >= s.check.FailAfter {
			r.vote = quorum.VoteDown
		}
	}
	down := 0
	for _, x := range s.regions {
		if x.vote == quorum.VoteDown {
			down++
		}
	}
	if down >= s.quorum && s.downAt.IsZero() {
		s.downAt = time.Now()
	}
	return verdict.Observation{Prev: prev, Vote: r.vote, Failures: r.fails, Successes: r.oks, State: state}, true
}

type simProber struct {
	s *probeSim
	r *simRegion
}

func (p simProber) Probe(ctx context.Context, c *config.Check) checker.Result {
	start := time.Now()
	p.s.mu.Lock()
	p.s.starts = append(p.s.starts, simStart{p.r.name, start})
	p.s.mu.Unlock()
	if p.s.hang.Load() {
		<-ctx.Done()
		return checker.Result{Start: start, Latency: time.Since(start), Code: "timeout", Message: "no answer"}
	}
	select {
	case <-time.After(time.Duration(p.s.latency.Load())):
		return checker.Result{OK: true, Start: start, Latency: time.Since(start)}
	case <-ctx.Done():
		return checker.Result{Start: start, Latency: time.Since(start), Code: "timeout", Message: "no answer"}
	}
}

// warm runs each region's scheduled probe a few times, 20 s apart as
// staggered phases do, so every loop knows the check's usual latency.
func (s *probeSim) warm(rounds int) {
	for range rounds {
		for _, r := range s.regions {
			s.run(r)
			time.Sleep(20 * time.Second)
		}
	}
	synctest.Wait()
}

func (s *probeSim) counts() (starts, asks int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.starts), s.asks
}

// A target that stops answering (accepts, never replies) fails a probe only
// at the timeout. The contract: a fault pages within interval / R +
// timeout + 3 s, so the check must be down within the timeout and about a
// second and a half of the first probe that met the fault (the pager's
// 1 s settle and the delivery take the rest). Before, the first region
// asked the others only after half the timeout, and they confirmed with
// two probes begun 2 s apart: down 17.1 s after the first probe began.
func TestProbeLoopHangingTargetDownWithinTimeout(t *testing.T) {
	for _, timeout := range []time.Duration{10 * time.Second, 5 * time.Second, 30 * time.Second} {
		t.Run(timeout.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				s := newProbeSim(t, ctx, timeout)
				s.warm(2)

				s.hang.Store(true)
				first := time.Now()
				s.run(s.regions[0]) // the outage is met by one region's scheduled probe
				time.Sleep(timeout + 10*time.Second)
				synctest.Wait()

				s.mu.Lock()
				downAt := s.downAt
				s.mu.Unlock()
				if downAt.IsZero() {
					t.Fatalf("never down")
				}
				took := downAt.Sub(first)
				t.Logf("timeout %s: down %s after the first probe began (%s after it failed)", timeout, took, took-timeout)
				if limit := timeout + 1500*time.Millisecond; took > limit {
					t.Fatalf("down %s after the first probe of a hanging target began; want within %s (timeout + 1.5 s)", took, limit)
				}
			})
		})
	}
}

// A region asked to confirm while its own scheduled probe of the check is
// already in flight counts that probe: the probe alongside it starts once
// it has run as long as a confirming probe may, not when its own slow
// timer (here half the timeout: the node has no latency yet) runs out.
func TestProbeLoopAskedWhileProbing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := newProbeSim(t, ctx, 10*time.Second)
		s.hang.Store(true)
		us := s.regions[1]
		s.run(us) // us meets the fault first, with no latency known: slow after 5 s
		time.Sleep(300 * time.Millisecond)
		us.loop.onAsk("api", "eu") // eu's request arrives while us's probe hangs
		time.Sleep(3 * time.Second)
		synctest.Wait()

		s.mu.Lock()
		defer s.mu.Unlock()
		var usStarts []time.Duration
		t0 := s.starts[0].at
		for _, st := range s.starts {
			if st.region == "us" {
				usStarts = append(usStarts, st.at.Sub(t0))
			}
		}
		// Before the first success a confirming probe may run confirmRetry:
		// the alongside probe starts 2 s after us's probe began, no later.
		if len(usStarts) != 2 || usStarts[1] != confirmRetry {
			t.Fatalf("us's probes began at %v after the first; want the in-flight probe and one alongside it at %s", usStarts, confirmRetry)
		}
	})
}

// A target that is merely slow as it always is costs nothing extra: no
// probe alongside, no region asked. One that suddenly answers far slower
// than usual (here 5 s instead of 0.9 s: slow after 2.7 s) is confirmed as
// a hang would be, and goes not down when the probes answer.
func TestProbeLoopSlowTargetAsUsual(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := newProbeSim(t, ctx, 10*time.Second)
		s.latency.Store(int64(900 * time.Millisecond)) // slower than slowMin, well under half the timeout
		s.warm(3)
		starts, asks := s.counts()
		if starts != 9 || asks != 0 {
			t.Fatalf("a target slow as usual: %d probes and %d asks over 9 scheduled runs; want 9 and 0", starts, asks)
		}

		s.latency.Store(int64(5 * time.Second))
		s.run(s.regions[0])
		time.Sleep(10 * time.Second)
		synctest.Wait()
		after, asks := s.counts()
		// eu's probe and the one alongside it; us's and ap's, each with one
		// alongside.
		if asks == 0 || after-starts < 6 {
			t.Fatalf("a probe five times slower than usual: %d probes and %d asks; want one alongside and every region asked", after-starts, asks)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.downAt.IsZero() {
			t.Fatal("a slow but answering target went down")
		}
	})
}
