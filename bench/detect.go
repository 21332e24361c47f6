package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Failure modes of a target.
const (
	mode503    = "503"    // answer 503 Service Unavailable
	modeRefuse = "refuse" // close the listener: connects are refused
	modeHang   = "hang"   // accept, read the request, never answer
)

// target is one check's HTTP server, which the bench makes fail and
// restores. It records what the probes saw.
type target struct {
	name string
	addr string
	mode string

	mu        sync.Mutex
	srv       *http.Server
	failing   bool
	release   chan struct{} // closed on restore: frees hung requests
	faultAt   time.Time     // when the bench made it fail
	restoreAt time.Time     // when the bench restored it
	firstFail time.Time     // first request after faultAt: answered 503, or hung
	firstOK   time.Time     // first request answered OK after restoreAt
}

func newTarget(name, mode string) (*target, error) {
	t := &target{name: name, mode: mode}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t.addr = ln.Addr().String()
	t.serve(ln)
	return t, nil
}

func (t *target) serve(ln net.Listener) {
	t.srv = &http.Server{Handler: t}
	go t.srv.Serve(ln)
}

func (t *target) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	t.mu.Lock()
	failing, release := t.failing, t.release
	switch {
	case failing && t.firstFail.IsZero():
		t.firstFail = now
	case !failing && !t.restoreAt.IsZero() && t.firstOK.IsZero():
		t.firstOK = now
	}
	t.mu.Unlock()
	if !failing {
		io.WriteString(w, "ok")
		return
	}
	if t.mode == modeHang {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	w.WriteHeader(http.StatusServiceUnavailable)
}

// fail makes the target fail in its mode.
func (t *target) fail() {
	t.mu.Lock()
	t.failing, t.faultAt, t.release = true, time.Now(), make(chan struct{})
	srv := t.srv
	t.mu.Unlock()
	if t.mode == modeRefuse {
		srv.Close() // the listener and any open connection
	}
}

// restore makes the target answer OK again (re-listening on the same port
// after a refuse).
func (t *target) restore() error {
	t.mu.Lock()
	failing := t.failing
	t.mu.Unlock()
	if !failing {
		return nil
	}
	if t.mode == modeRefuse {
		ln, err := net.Listen("tcp", t.addr)
		if err != nil {
			return fmt.Errorf("%s: listen again on %s: %w", t.name, t.addr, err)
		}
		t.serve(ln)
	}
	t.mu.Lock()
	t.failing, t.restoreAt = false, time.Now()
	close(t.release)
	t.mu.Unlock()
	return nil
}

func (t *target) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.failing && t.release != nil {
		close(t.release)
		t.failing = false
	}
	t.srv.Close()
}

type targetTimes struct{ faultAt, restoreAt, firstFail, firstOK time.Time }

func (t *target) times() targetTimes {
	t.mu.Lock()
	defer t.mu.Unlock()
	return targetTimes{t.faultAt, t.restoreAt, t.firstFail, t.firstOK}
}

// hookEvent is one webhook request received.
type hookEvent struct {
	Event      string `json:"event"`
	IncidentID string `json:"incident_id"`
	Check      string `json:"check"`
	at         time.Time
}

type hookReceiver struct {
	mu     sync.Mutex
	events []hookEvent
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	var ev hookEvent
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ev.at = at
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// first returns the first event of a kind for a check, and how many there
// were.
func (h *hookReceiver) first(check, event string) (time.Time, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var at time.Time
	n := 0
	for _, ev := range h.events {
		if ev.Check == check && ev.Event == event {
			if n == 0 {
				at = ev.at
			}
			n++
		}
	}
	return at, n
}

func (h *hookReceiver) count(event string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := map[string]bool{}
	for _, ev := range h.events {
		if ev.Event == event {
			seen[ev.Check] = true
		}
	}
	return len(seen)
}

// nodeFailures records, per check, the earliest failed probe each node
// reports for its own region in /api/v1/status after the fault (the vote's
// time, taken when the probe ended).
type nodeFailures struct {
	mu    sync.Mutex
	first map[string]time.Time // check -> earliest over nodes
}

func (nf *nodeFailures) poll(ctx context.Context, f *fleet, faults map[string]*target) {
	for ctx.Err() == nil {
		for _, c := range f.nodes {
			st, err := f.status(c)
			if err != nil {
				continue
			}
			for _, chk := range st.Checks {
				t := faults[chk.Name]
				if t == nil {
					continue
				}
				tt := t.times()
				rv, ok := chk.Regions[c.region]
				if !ok || rv.Error == "" || tt.faultAt.IsZero() || rv.CheckedAt.Before(tt.faultAt) {
					continue
				}
				nf.mu.Lock()
				if old, ok := nf.first[chk.Name]; !ok || rv.CheckedAt.Before(old) {
					nf.first[chk.Name] = rv.CheckedAt
				}
				nf.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (nf *nodeFailures) get(check string) time.Time {
	nf.mu.Lock()
	defer nf.mu.Unlock()
	return nf.first[check]
}

// benchDetect measures first failed probe → webhook trigger over concurrent
// outages on a three-region cluster.
func benchDetect(args []string) error {
	fs := flag.NewFlagSet("detect", flag.ExitOnError)
	outages := fs.Int("outages", 10, "outages, one check each, all running concurrently")
	interval := fs.Duration("interval", 60*time.Second, "check interval")
	timeout := fs.Duration("timeout", 0, "check timeout (default: the config default, min(10s, ¾ interval))")
	mode := fs.String("mode", mode503, "how a target fails: 503 (HTTP 503), refuse (listener closed), hang (accepts, never answers)")
	profile := fs.String("gossip", "lan", "cluster.gossip profile: wan, lan or local")
	logLevel := fs.String("log-level", "info", "the nodes' --log-level (debug shows every probe and gossip message)")
	seed := fs.Uint64("seed", 0, "random seed for the outage times (default: random)")
	keep := fs.Bool("keep", false, "keep the temporary directory (config, node logs, data)")
	canaries := fs.Bool("canaries", false, "give the nodes a canary (a server of this process): down votes then wait for a canary round begun after the failing probe")
	fs.Parse(args)
	switch *mode {
	case mode503, modeRefuse, modeHang:
	default:
		return fmt.Errorf("--mode %q: want 503, refuse or hang", *mode)
	}
	if *outages < 1 {
		return fmt.Errorf("--outages must be at least 1")
	}
	if *seed == 0 {
		*seed = rand.Uint64()
	}
	rng := rand.New(rand.NewPCG(*seed, *seed))
	checkTimeout := *timeout
	if checkTimeout == 0 {
		checkTimeout = min(10*time.Second, *interval*3/4)
	}

	dir, bin, cleanup, err := workDir("vantage-bench-detect", *keep)
	if err != nil {
		return err
	}
	defer cleanup()

	hooks := &hookReceiver{}
	hookLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hookSrv := &http.Server{Handler: hooks}
	go hookSrv.Serve(hookLn)
	defer hookSrv.Close()

	targets := make([]*target, *outages)
	byName := map[string]*target{}
	for i := range targets {
		t, err := newTarget(fmt.Sprintf("outage-%02d", i+1), *mode)
		if err != nil {
			return err
		}
		defer t.close()
		targets[i], byName[t.name] = t, t
	}

	const nodes = 3
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "cluster:\n  regions: [%s, %s, %s]\n  quorum: 2\n  gossip: %s\n", regionName(0), regionName(1), regionName(2), *profile)
	if *canaries {
		canary, _, stop, err := okTarget()
		if err != nil {
			return err
		}
		defer stop()
		fmt.Fprintf(&cfg, "  canaries: [tcp://%s]\n", canary)
	}
	fmt.Fprintf(&cfg, "defaults:\n  interval: %s\n  fail_after: 2\n  recover_after: 2\n", *interval)
	if *timeout != 0 {
		fmt.Fprintf(&cfg, "  timeout: %s\n", *timeout)
	}
	cfg.WriteString("checks:\n")
	for _, t := range targets {
		fmt.Fprintf(&cfg, "  - name: %s\n    type: http\n    url: http://%s/health\n    notify: [hook]\n", t.name, t.addr)
	}
	fmt.Fprintf(&cfg, "notifiers:\n  - name: hook\n    type: webhook\n    url: http://%s/hook\n", hookLn.Addr())
	cfgPath := filepath.Join(dir, "detect.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		return err
	}

	start := time.Now()
	f, err := startFleet(bin, dir, cfgPath, nodes, *logLevel)
	if err != nil {
		return err
	}
	defer f.stop()
	fmt.Printf("detect: %d nodes in %d regions (quorum 2, fail_after 2, recover_after 2, gossip %s), %d http checks every %s (timeout %s), mode %s, seed %d\n",
		nodes, nodes, *profile, *outages, *interval, checkTimeout, *mode, *seed)
	for _, c := range f.nodes {
		fmt.Printf("  %s  region %-9s pid %-7d gossip %s  http %s  log %s\n", c.name, c.region, c.pid(), c.gossip, c.http, c.logPath)
	}
	upCtx, cancel := context.WithTimeout(context.Background(), 2**interval+time.Minute)
	err = f.waitUp(upCtx, true, func(s string) { progressf(start, "%s", s) })
	cancel()
	if err != nil {
		return fmt.Errorf("cluster not up: %w", err)
	}
	progressf(start, "cluster formed, every check up on every node")

	pollCtx, stopPoll := context.WithCancel(context.Background())
	defer stopPoll()
	nf := &nodeFailures{first: map[string]time.Time{}}
	go nf.poll(pollCtx, f, byName)

	// Outage times: one per slot of interval/outages, in random order, at a
	// random point of the slot, so they spread over one interval and fall
	// anywhere in the probe schedule.
	base := time.Now().Add(time.Second)
	for i, slot := range rng.Perm(*outages) {
		off := time.Duration((float64(slot) + rng.Float64()) / float64(*outages) * float64(*interval))
		t, when := targets[i], base.Add(off)
		go func() {
			time.Sleep(time.Until(when))
			t.fail()
		}()
	}
	lastFault := base.Add(*interval)
	progressf(start, "%d outages start over the next %s", *outages, *interval)

	waitAll := func(what, event string, deadline time.Time) {
		last := time.Now()
		for time.Now().Before(deadline) && hooks.count(event) < *outages {
			if c := f.exitedNode(); c != nil {
				progressf(start, "%s exited:\n%s", c.name, logTail(c.logPath, 20))
				return
			}
			time.Sleep(100 * time.Millisecond)
			if time.Since(last) >= 10*time.Second {
				failing := 0
				for _, t := range targets {
					if tt := t.times(); !tt.faultAt.IsZero() {
						failing++
					}
				}
				progressf(start, "%s: %d/%d outages started, %d triggers, %d resolves received", what, failing, *outages, hooks.count("down"), hooks.count("up"))
				last = time.Now()
			}
		}
	}
	// A trigger needs the next scheduled probe (≤ one interval after the
	// fault), a re-probe and the timeouts of two probes, plus gossip.
	waitAll("outages", "down", lastFault.Add(*interval+2*checkTimeout+30*time.Second))
	progressf(start, "%d/%d triggers received; restoring the targets", hooks.count("down"), *outages)
	time.Sleep(time.Until(lastFault.Add(100 * time.Millisecond))) // every outage has started
	for _, t := range targets {
		if err := t.restore(); err != nil {
			return err
		}
	}
	// A resolve needs recover_after (2) successful probes: up to two
	// intervals.
	waitAll("recovery", "up", time.Now().Add(3**interval+30*time.Second))
	progressf(start, "%d/%d resolves received", hooks.count("up"), *outages)
	time.Sleep(2 * time.Second) // late duplicates
	stopPoll()

	fmt.Printf("\nper outage (times in seconds; fault at = offset from the first slot; probe wait = fault → first failed probe):\n")
	fmt.Printf("  %-10s %8s %10s %10s %10s %10s %8s %10s %10s %5s\n", "check", "fault at", "probe wait", "detect", "nodes saw", "fault→page", "pages", "restore→up", "1st ok→up", "ups")
	var detect, resolve, resolveOK, faultPage []time.Duration
	missing := 0
	for _, t := range targets {
		tt := t.times()
		trig, nTrig := hooks.first(t.name, "down")
		up, nUp := hooks.first(t.name, "up")
		// The first failed probe: a 503 is seen at the target when it is
		// answered; a refused connect is not seen there, and a hung request
		// fails only at the prober's timeout: take the nodes' own report
		// (the time their vote on the failure was made).
		firstFail := tt.firstFail
		nodeFail := nf.get(t.name)
		switch *mode {
		case modeRefuse:
			firstFail = nodeFail
		case modeHang:
			if !tt.firstFail.IsZero() {
				firstFail = tt.firstFail.Add(checkTimeout)
			}
		}
		sec := func(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }
		row := []string{t.name, sec(tt.faultAt.Sub(base)), "-", "-", "-", "-", fmt.Sprint(nTrig), "-", "-", fmt.Sprint(nUp)}
		if !firstFail.IsZero() {
			row[2] = sec(firstFail.Sub(tt.faultAt))
		}
		if !trig.IsZero() && !firstFail.IsZero() {
			d := trig.Sub(firstFail)
			detect = append(detect, d)
			row[3] = sec(d)
		} else {
			missing++
		}
		if !nodeFail.IsZero() && !firstFail.IsZero() {
			row[4] = sec(nodeFail.Sub(firstFail))
		}
		if !trig.IsZero() {
			row[5] = sec(trig.Sub(tt.faultAt))
			faultPage = append(faultPage, trig.Sub(tt.faultAt))
		}
		if !up.IsZero() {
			resolve = append(resolve, up.Sub(tt.restoreAt))
			row[7] = sec(up.Sub(tt.restoreAt))
			if !tt.firstOK.IsZero() {
				resolveOK = append(resolveOK, up.Sub(tt.firstOK))
				row[8] = sec(up.Sub(tt.firstOK))
			}
		}
		fmt.Printf("  %-10s %8s %10s %10s %10s %10s %8s %10s %10s %5s\n", row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9])
	}
	fmt.Println("  detect = first failed probe → webhook trigger received; nodes saw = the nodes' first failed vote relative to it")
	switch *mode {
	case mode503:
		fmt.Println("  first failed probe: the first request the target answered 503")
	case modeRefuse:
		fmt.Println("  first failed probe: the nodes' first failed vote (a refused connect is not seen at the target)")
	case modeHang:
		fmt.Printf("  first failed probe: the first request the target left hanging + the %s timeout (when that probe failed)\n", checkTimeout)
	}
	fmt.Printf("\ndetection latency over %d outages: median %s, max %s", len(detect), fmtDur(median(detect)), fmtDur(slices.Max(append(detect, 0))))
	if missing > 0 {
		fmt.Printf(" (%d outages never paged)", missing)
	}
	fmt.Println()
	fmt.Printf("fault → trigger: median %s, max %s (the fault falls anywhere in the probe schedule)\n",
		fmtDur(median(faultPage)), fmtDur(slices.Max(append(faultPage, 0))))
	fmt.Printf("resolve latency: restore → resolve received median %s, max %s; first OK probe → resolve median %s, max %s (recover_after 2, down_interval %s)\n",
		fmtDur(median(resolve)), fmtDur(slices.Max(append(resolve, 0))), fmtDur(median(resolveOK)), fmtDur(slices.Max(append(resolveOK, 0))), min(*interval, 10*time.Second))
	pages, ups := 0, 0
	for _, t := range targets {
		_, n := hooks.first(t.name, "down")
		_, u := hooks.first(t.name, "up")
		pages += n
		ups += u
	}
	fmt.Printf("webhook requests: %d triggers and %d resolves for %d outages\n", pages, ups, *outages)
	return nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtDur(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
