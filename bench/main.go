// Command bench measures Vantage on this machine. Figures go to stdout with
// the command that produced them; docs/performance.md keeps the latest.
//
//	go run ./bench node [--checks 1000] [--interval 10s] [--duration 10m] [--bare=false] [--bare-tick 100ms] [--gogc default,100]
//
// node: builds vantage, starts a target HTTP server on loopback (in this
// process), writes a config with N http checks against it, runs `vantage run`
// as a child process and samples its CPU time and RSS from /proc. CPU share is
// measured after a warm-up of one interval plus the first-run spread (so
// start-up costs are excluded), RSS at the end and at each whole minute of
// the window (the default 10 minutes let SQLite's and the store's caches
// fill, which a 2-minute run does not). With --bare (the default) a
// bare net/http prober (this binary re-run as the hidden `bare-prober`: the
// same checks and interval, a fresh connection per probe, paths /bare/<i>,
// probes started on the same 100 ms ticks as vantage's unless --bare-tick 0)
// runs beside vantage against the same target, started with it and
// measured over the same window; vantage's CPU and RSS are also given as a
// ratio to it, which unlike the absolute figures compares across runs.
//
//	go run ./bench cluster [--nodes 3] [--checks 1000] [--interval 30s] [--duration 2m] [--gossip lan]
//
// cluster: builds vantage, starts N `vantage run` processes on loopback (one
// region each, encrypted gossip, every node joining the others) with the same
// N http checks against one target HTTP server in this process, waits for the
// cluster to form and for a warm-up of one interval plus the first-run spread,
// then reads each node's vantage_gossip_bytes_total from /metrics and its CPU
// time from /proc at the start and end of the measuring window: gossip bytes/s
// in and out, CPU share and RSS per node.
//
//	go run ./bench detect [--outages 10] [--interval 60s] [--mode 503|refuse|hang] [--gossip lan]
//
// detect: three nodes in three regions (quorum 2, fail_after 2) and one
// check per outage, each against its own target server in this process, with
// a webhook notifier pointing at a receiver in this process. Each target
// fails at a random moment spread over one interval; the bench records the
// first failed probe (seen at the target) and when the webhook trigger
// arrives, then restores the targets and waits for the resolves.
//
//	go run ./bench serve [--checks 1000] [--paths /api/v1/status,/,...] [--duration 10s]
//
// serve: runs a node with N http checks, then for each path loads it with
// wrk -t2 -c200 with gzip, and a bare net/http server of this process
// serving the same body (with its content headers only, and as "bare+h"
// also with the node's other headers: security headers, validators,
// Cache-Control, Vary), alternately in one run: requests/s, p99 and
// their ratios, each round with the load average.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vantage-dev/vantage/scheduler"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench node|cluster|detect|serve [flags]  (-h after the name lists them)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "node":
		err = benchNode(os.Args[2:])
	case "cluster":
		err = benchCluster(os.Args[2:])
	case "detect":
		err = benchDetect(os.Args[2:])
	case "serve":
		err = benchServe(os.Args[2:])
	case "bare-prober": // hidden: bench node runs it beside vantage
		err = benchBareProber(os.Args[2:])
	default:
		err = fmt.Errorf("unknown benchmark %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func benchNode(args []string) error {
	fs := flag.NewFlagSet("node", flag.ExitOnError)
	checks := fs.Int("checks", 1000, "number of http checks")
	interval := fs.Duration("interval", 10*time.Second, "check interval")
	duration := fs.Duration("duration", 10*time.Minute, "total run time (SQLite's and the store's caches fill over the first minutes: "+
		"shorter runs understate RSS)")
	keep := fs.Bool("keep", false, "keep the temporary directory")
	debug := fs.String("debug-addr", "", "pass --debug-addr to vantage (profiling)")
	gogc := fs.String("gogc", "", "comma-separated GOGC values to run the node with, one after the other against the same target, "+
		"and compare (\"default\": the binary's own, GOGC unset); e.g. default,100")
	bare := fs.Bool("bare", true, "run a bare net/http prober (this binary's bare-prober) beside each run, same target, checks "+
		"and interval, measured over the same window, and give vantage's CPU and RSS as a ratio to it")
	bareTick := fs.Duration("bare-tick", scheduler.Tick, "the bare prober starts probes only on whole multiples of this, as vantage's "+
		"scheduler does (its phases are whole scheduler.Tick); 0: spread evenly, one probe at a time")
	buildName := fs.String("build", releaseBuild.name, "how to build vantage: release (as deploy/Dockerfile: CGO_ENABLED=0, -trimpath, "+
		"-ldflags \"-s -w\") or dev (a plain go build, cgo where a C compiler is installed)")
	fs.Parse(args)
	build, err := buildNamed(*buildName)
	if err != nil {
		return err
	}

	dir, bin, cleanup, err := workDirBuild("vantage-bench", *keep, build)
	if err != nil {
		return err
	}
	defer cleanup()
	addr, hits, bareHits, stop, err := okTargetBare()
	if err != nil {
		return err
	}
	defer stop()

	var cfg strings.Builder
	fmt.Fprintf(&cfg, "defaults:\n  interval: %s\n  timeout: %s\n", *interval, *interval/2)
	cfg.WriteString("checks:\n")
	for i := range *checks {
		fmt.Fprintf(&cfg, "  - name: c%04d\n    type: http\n    url: http://%s/c/%d\n    expect:\n      body_contains: ok\n", i, addr, i)
	}
	cfgPath := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		return err
	}
	runs := []string{"default"}
	if *gogc != "" {
		runs = strings.Split(*gogc, ",")
	}
	var results []nodeRun
	for i, g := range runs {
		g = strings.TrimSpace(g)
		env := os.Environ()
		if g != "default" && g != "" {
			env = append(env, "GOGC="+g)
		} else {
			g = "default"
		}
		r := nodeRun{label: "GOGC " + g, build: build.name}
		if *bare {
			r.bareHits, r.bareTick = bareHits, *bareTick
		}
		data := filepath.Join(dir, fmt.Sprintf("data-%d", i))
		if err := r.run(bin, cfgPath, data, env, *debug, addr, hits, *checks, *interval, *duration); err != nil {
			return fmt.Errorf("%s: %w", r.label, err)
		}
		results = append(results, r)
	}
	if len(results) > 1 {
		b := results[len(results)-1]
		fmt.Printf("compared with %s, in this run:\n", b.label)
		for _, r := range results[:len(results)-1] {
			fmt.Printf("  %-14s rss %.2f×, peak %.2f×, cpu %.2f×\n", r.label,
				float64(r.rss)/float64(b.rss), float64(r.hwm)/float64(b.hwm), r.cpu/b.cpu)
		}
	}
	return nil
}

// nodeRun is one run of vantage under bench node.
type nodeRun struct {
	label    string
	build    string // goBuild's name
	rss, hwm int64
	cpu      float64 // percent of one core
	// bareHits, if set, runs the bare prober beside vantage; the target
	// counts its requests here.
	bareHits *atomic.Int64
	bareTick time.Duration
}

func (r *nodeRun) run(bin, cfgPath, data string, env []string, debug, addr string, hits *atomic.Int64,
	checks int, interval, duration time.Duration) error {
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	httpAddr := httpLn.Addr().String()
	httpLn.Close()

	runArgs := []string{"run", "--config", cfgPath, "--data", data, "--http", httpAddr, "--gossip", "127.0.0.1:0", "--log-level", "warn"}
	if debug != "" {
		runArgs = append(runArgs, "--debug-addr", debug)
	}
	cmd := exec.Command(bin, runArgs...)
	cmd.Env = env
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
	}()
	var bare *bareChild
	if r.bareHits != nil {
		if bare, err = startBare(addr, checks, interval, r.bareTick); err != nil {
			return err
		}
		defer bare.stop()
	}
	fmt.Printf("vantage run (%s, %s build): %d http checks every %s against %s, pid %d, %s\n", r.label, r.build, checks, interval, addr, pid, duration)
	if bare != nil {
		starts := "spread evenly"
		if r.bareTick > 0 {
			starts = "started on whole " + r.bareTick.String() + " ticks, as vantage's"
		}
		fmt.Printf("bare prober beside it: the same %d checks every %s, %s, pid %d\n", checks, interval, starts, bare.pid())
	}

	start := time.Now()
	warm := interval + min(interval, 30*time.Second)
	if warm > duration/2 {
		warm = duration / 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	sleepCtx(ctx, warm)
	stated, total, err := checksWithState(httpAddr)
	if err != nil {
		return fmt.Errorf("read status after the warm-up: %w", err)
	}
	// Both processes' counters are read together at t0 and at t1.
	sample := func() (v, b procCPU, at time.Time, h, bh int64, err error) {
		if v, err = cpuTime(pid); err != nil {
			return
		}
		if bare != nil {
			if b, err = bare.cpuTime(); err != nil {
				return
			}
			bh = r.bareHits.Load()
		}
		return v, b, time.Now(), hits.Load(), bh, nil
	}
	cpu0, bcpu0, t0, hits0, bhits0, err := sample()
	if err != nil {
		return err
	}
	byMinute := sampleRSS(ctx, pid, time.Minute) // until the window ends
	cpu1, bcpu1, t1, hits1, bhits1, err := sample()
	if err != nil {
		return err
	}
	rss, hwm, err := memory(pid)
	if err != nil {
		return err
	}
	wall := t1.Sub(t0)
	r.rss, r.hwm = rss, hwm
	var cpuLine string
	r.cpu, cpuLine = cpuShare(cpu1.sub(cpu0), wall)
	fmt.Printf("after %s (steady state measured over the last %s):\n", time.Since(start).Round(time.Second), wall.Round(time.Second))
	fmt.Printf("  with a state  %d of %d checks after %s (one interval plus the start spread)\n", stated, total, warm)
	fmt.Printf("  probes/s      %.1f\n", float64(hits1-hits0)/wall.Seconds())
	fmt.Printf("  cpu           %s\n", cpuLine)
	fmt.Printf("  rss           %.1f MB (peak %.1f MB)\n", float64(rss)/1e6, float64(hwm)/1e6)
	if len(byMinute) > 0 {
		mb := make([]string, len(byMinute))
		for i, b := range byMinute {
			mb[i] = fmt.Sprintf("%.1f", float64(b)/1e6)
		}
		fmt.Printf("  rss by minute %s MB (each whole minute of the window: still rising means the run was too short)\n", strings.Join(mb, ", "))
	}
	if bare != nil {
		brss, bhwm, err := memory(bare.pid())
		if err != nil {
			return fmt.Errorf("bare prober: %w", err)
		}
		bcpu, bcpuLine := cpuShare(bcpu1.sub(bcpu0), wall)
		fmt.Printf("  bare prober   cpu %s, rss %.1f MB (peak %.1f MB), %.1f probes/s — net/http, a fresh connection per probe, same target and checks\n",
			bcpuLine, float64(brss)/1e6, float64(bhwm)/1e6, float64(bhits1-bhits0)/wall.Seconds())
		ratio := "n/a (the bare prober used no measurable CPU)"
		if bcpu > 0 {
			ratio = fmt.Sprintf("%.2f×", r.cpu/bcpu)
		}
		fmt.Printf("  vantage/bare  cpu %s, rss %.2f×\n", ratio, float64(rss)/float64(brss))
		bare.signal() // stopped meanwhile; its figures are in
	}
	stopAt := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	werr := cmd.Wait()
	code := 0
	if ee, ok := werr.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	fmt.Printf("  SIGTERM       exit %d after %s\n", code, time.Since(stopAt).Round(10*time.Millisecond))
	if bare != nil {
		code, out := bare.stop()
		fmt.Printf("  bare prober   exit %d: %s\n", code, strings.TrimPrefix(out, "bare prober: "))
	}
	return nil
}

// checksWithState counts the checks whose state is known (not unknown)
// in a node's /api/v1/status.
func checksWithState(httpAddr string) (stated, total int, err error) {
	resp, err := http.Get("http://" + httpAddr + "/api/v1/status")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var st struct {
		Checks []struct {
			State string `json:"state"`
		} `json:"checks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return 0, 0, err
	}
	for _, c := range st.Checks {
		if c.State != "unknown" {
			stated++
		}
	}
	return stated, len(st.Checks), nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// procCPU is a process's CPU time, user and system.
type procCPU struct{ user, sys time.Duration }

func (c procCPU) total() time.Duration { return c.user + c.sys }

func (c procCPU) sub(o procCPU) procCPU { return procCPU{c.user - o.user, c.sys - o.sys} }

// cpuTime returns the process's user and system CPU time from
// /proc/PID/stat.
func cpuTime(pid int) (procCPU, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procCPU{}, fmt.Errorf("read stat: %w", err)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return procCPU{}, errors.New("malformed /proc stat")
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return procCPU{}, errors.New("malformed /proc stat")
	}
	// fields after ")" start at field 3 (state); utime is field 14, stime 15.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return procCPU{time.Duration(ut) * time.Second / clkTck, time.Duration(st) * time.Second / clkTck}, nil
}

// cpuShare formats CPU time used over wall as a percentage of one core,
// with the user/system split.
func cpuShare(c procCPU, wall time.Duration) (total float64, s string) {
	pct := func(d time.Duration) float64 { return float64(d) / float64(wall) * 100 }
	total = pct(c.total())
	return total, fmt.Sprintf("%.2f%% of one core (user %.1f %%, sys %.1f %%)", total, pct(c.user), pct(c.sys))
}

// sampleRSS reads pid's RSS every period until ctx is done and returns
// the samples (none if ctx ends within the first period; a failed read is
// left out).
func sampleRSS(ctx context.Context, pid int, every time.Duration) []int64 {
	var out []int64
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
			if ctx.Err() != nil {
				return out
			}
			if rss, _, err := memory(pid); err == nil {
				out = append(out, rss)
			}
		}
	}
}

// memory returns VmRSS and VmHWM in bytes.
func memory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read status: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb * 1024
		case "VmHWM:":
			hwm = kb * 1024
		}
	}
	return rss, hwm, nil
}
