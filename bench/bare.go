package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// barePrefix is the path prefix of the bare prober's requests: the target
// answers them like vantage's /c/<i> but does not count them as vantage's.
const barePrefix = "/bare/"

// benchBareProber is the hidden `bench bare-prober` subcommand: a minimal Go
// uptime checker that bench node runs beside vantage as a reference floor
// for the CPU and memory the probes alone cost on this machine. It runs
// until SIGTERM or SIGINT, prints its probe and failure counts to stderr
// and exits 0.
func benchBareProber(args []string) error {
	fs := flag.NewFlagSet("bare-prober", flag.ExitOnError)
	addr := fs.String("addr", "", "target HOST:PORT")
	checks := fs.Int("checks", 1000, "number of checks")
	interval := fs.Duration("interval", 10*time.Second, "check interval")
	tick := fs.Duration("tick", 0, "start probes only at whole multiples of this (vantage's scheduler.Tick); 0: spread evenly")
	fs.Parse(args)
	if *addr == "" || *checks <= 0 || *interval <= 0 || *tick < 0 {
		return errors.New("bare-prober: --addr, a positive --checks and a positive --interval are required, and --tick must not be negative")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	p := newBareProber(*addr, *checks, *interval)
	p.tick = *tick
	p.run(ctx)
	fmt.Fprintf(os.Stderr, "bare prober: %d probes, %d failed\n", p.probes.Load(), p.failures.Load())
	return nil
}

// bareProber probes checks URLs http://addr/bare/<i>, each once per
// interval, check i at offset i*interval/checks of every interval (rounded
// down to a whole tick, if tick is set, as vantage's phases are), as a
// minimal, well-written Go uptime checker would: one net/http request on a
// fresh connection, a timeout of half the interval, the body read (up to
// 1 MiB) and expected to contain "ok" with a 2xx status.
type bareProber struct {
	urls     []string
	interval time.Duration
	tick     time.Duration // 0: probes spread evenly; else starts only on whole ticks
	client   *http.Client
	probes   atomic.Int64 // finished probes
	failures atomic.Int64 // of which failed
	// onStart, if set, is called by the scheduler loop with the check's
	// index as it starts a probe (tests).
	onStart func(i int)
}

func newBareProber(addr string, checks int, interval time.Duration) *bareProber {
	urls := make([]string, checks)
	for i := range urls {
		urls[i] = "http://" + addr + barePrefix + strconv.Itoa(i)
	}
	return &bareProber{
		urls:     urls,
		interval: interval,
		// One Transport shared by every check, with keep-alives off: every
		// probe dials a fresh connection (as vantage's do) and nothing else
		// is set up per probe. (Vantage does one HTTP/1.1 exchange per
		// connection itself: checker/http1.go.)
		client: &http.Client{
			Transport: &http.Transport{DisableKeepAlives: true},
			Timeout:   interval / 2,
		},
	}
}

// due is when slot k (check k mod N) starts: start + k*interval/N, with
// the offset in the interval rounded down to a whole tick if tick is set.
func (p *bareProber) due(start time.Time, k int) time.Time {
	n := len(p.urls)
	off := time.Duration(k%n) * p.interval / time.Duration(n)
	if p.tick > 0 {
		off -= off % p.tick
	}
	return start.Add(time.Duration(k/n)*p.interval + off)
}

// run probes until ctx is done, then waits for the probes in flight.
// One scheduler loop with one timer starts a goroutine per probe: slot k
// is due at p.due(start, k), with start on a whole tick if tick is set; a
// late loop catches up without skipping any.
func (p *bareProber) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	start := time.Now()
	if p.tick > 0 {
		start = start.Truncate(p.tick).Add(p.tick)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for k := 0; ; k++ {
		due := p.due(start, k)
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		i := k % len(p.urls)
		if p.onStart != nil {
			p.onStart(i)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.probe(ctx, p.urls[i]); err != nil {
				p.failures.Add(1)
			}
			p.probes.Add(1)
		}()
	}
}

var errBareBody = errors.New(`body does not contain "ok"`)

// probe makes one request and checks the answer.
func (p *bareProber) probe(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if !bytes.Contains(body, []byte("ok")) {
		return errBareBody
	}
	return nil
}

// bareChild is a bare prober run by bench node as a child process: this
// binary re-executed as `bare-prober`, with the bench's own environment
// (so Go's defaults, whatever GOGC the vantage run is given).
type bareChild struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer // read only once exited is closed
	exited chan struct{}
	once   sync.Once
	code   int
}

func startBare(addr string, checks int, interval, tick time.Duration) (*bareChild, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bare prober: %w", err)
	}
	b := &bareChild{exited: make(chan struct{})}
	b.cmd = exec.Command(self, "bare-prober", "--addr", addr, "--checks", strconv.Itoa(checks), "--interval", interval.String(),
		"--tick", tick.String())
	b.cmd.Stderr = &b.stderr
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // die with the bench
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bare prober: %w", err)
	}
	go func() {
		err := b.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			b.code = ee.ExitCode()
		}
		close(b.exited)
	}()
	return b, nil
}

func (b *bareChild) pid() int { return b.cmd.Process.Pid }

// cpuTime reads the prober's CPU time; an error if it has exited.
func (b *bareChild) cpuTime() (procCPU, error) {
	select {
	case <-b.exited:
		return procCPU{}, fmt.Errorf("bare prober exited early (%d): %s", b.code, strings.TrimSpace(b.stderr.String()))
	default:
	}
	c, err := cpuTime(b.pid())
	if err != nil {
		return c, fmt.Errorf("bare prober: %w", err)
	}
	return c, nil
}

// signal sends SIGTERM once.
func (b *bareChild) signal() {
	b.once.Do(func() { b.cmd.Process.Signal(syscall.SIGTERM) })
}

// stop sends SIGTERM (if not yet sent), waits up to 10 s (then kills it)
// and returns the exit code and what the prober printed.
func (b *bareChild) stop() (code int, out string) {
	b.signal()
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
		<-b.exited
	}
	return b.code, strings.TrimSpace(b.stderr.String())
}
