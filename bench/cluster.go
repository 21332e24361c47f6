package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// benchCluster runs N nodes with the same checks and measures each node's
// gossip traffic, CPU share and RSS in the steady state.
func benchCluster(args []string) error {
	fs := flag.NewFlagSet("cluster", flag.ExitOnError)
	nodes := fs.Int("nodes", 3, "number of vantage run processes, one region each")
	checks := fs.Int("checks", 1000, "number of http checks")
	interval := fs.Duration("interval", 30*time.Second, "check interval")
	duration := fs.Duration("duration", 2*time.Minute, "run time after the cluster formed (warm-up plus measuring window)")
	profile := fs.String("gossip", "lan", "cluster.gossip profile: wan, lan or local")
	logLevel := fs.String("log-level", "warn", "the nodes' --log-level")
	keep := fs.Bool("keep", false, "keep the temporary directory (configs, logs, data)")
	fs.Parse(args)
	if *nodes < 1 || *checks < 1 {
		return fmt.Errorf("--nodes and --checks must be at least 1")
	}

	dir, bin, cleanup, err := workDir("vantage-bench-cluster", *keep)
	if err != nil {
		return err
	}
	defer cleanup()
	// One target for every check; each check has its own path.
	addr, hits, stop, err := okTarget()
	if err != nil {
		return err
	}
	defer stop()

	var cfg strings.Builder
	regions := make([]string, *nodes)
	for i := range regions {
		regions[i] = regionName(i)
	}
	fmt.Fprintf(&cfg, "cluster:\n  regions: [%s]\n  gossip: %s\n", strings.Join(regions, ", "), *profile)
	fmt.Fprintf(&cfg, "defaults:\n  interval: %s\n", *interval)
	cfg.WriteString("checks:\n")
	for i := range *checks {
		fmt.Fprintf(&cfg, "  - name: c%04d\n    type: http\n    url: http://%s/c/%d\n    expect:\n      body_contains: ok\n", i, addr, i)
	}
	cfgPath := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		return err
	}

	start := time.Now()
	f, err := startFleet(bin, dir, cfgPath, *nodes, *logLevel)
	if err != nil {
		return err
	}
	defer f.stop()
	fmt.Printf("cluster: %d nodes (gossip %s, encrypted), %d http checks every %s against %s, %s\n",
		*nodes, *profile, *checks, *interval, addr, *duration)
	for _, c := range f.nodes {
		fmt.Printf("  %s  region %-9s pid %-7d gossip %s  http %s\n", c.name, c.region, c.pid(), c.gossip, c.http)
	}
	formCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err = f.waitUp(formCtx, false, func(s string) { progressf(start, "%s", s) })
	cancel()
	if err != nil {
		return fmt.Errorf("cluster did not form: %w", err)
	}
	progressf(start, "cluster formed: every node sees %d alive", *nodes)

	// Warm-up: one interval plus the first-run spread (at most 30 s), so
	// every check has run and start-up costs are behind us.
	formed := time.Now()
	warm := *interval + min(*interval, 30*time.Second)
	if warm > *duration/2 {
		warm = *duration / 2
	}
	type sample struct {
		at  time.Time
		g   gossipBytes
		cpu time.Duration
	}
	take := func() ([]sample, error) {
		s := make([]sample, len(f.nodes))
		for i, c := range f.nodes {
			g, err := f.scrapeGossip(c)
			if err != nil {
				return nil, err
			}
			cpu, err := cpuTime(c.pid())
			if err != nil {
				return nil, err
			}
			s[i] = sample{time.Now(), g, cpu.total()}
		}
		return s, nil
	}
	// watch sleeps until deadline, printing progress every 15 s.
	watch := func(phase string, deadline time.Time, base []sample) error {
		lastHits, lastAt := hits.Load(), time.Now()
		for time.Now().Before(deadline) {
			if c := f.exitedNode(); c != nil {
				return fmt.Errorf("%s exited:\n%s", c.name, logTail(c.logPath, 20))
			}
			time.Sleep(min(15*time.Second, time.Until(deadline)))
			h, now := hits.Load(), time.Now()
			line := fmt.Sprintf("%s: target %.1f probes/s", phase, float64(h-lastHits)/now.Sub(lastAt).Seconds())
			lastHits, lastAt = h, now
			if base != nil {
				if s, err := take(); err == nil {
					var out float64
					for i := range s {
						out += s[i].g.out() - base[i].g.out()
					}
					line += fmt.Sprintf(", gossip out so far %s/s per node", fmtBytes(out/float64(len(s))/now.Sub(base[0].at).Seconds()))
				}
			}
			progressf(start, "%s", line)
		}
		return nil
	}
	progressf(start, "warming up for %s", warm)
	if err := watch("warm-up", formed.Add(warm), nil); err != nil {
		return err
	}
	s0, err := take()
	if err != nil {
		return err
	}
	hits0 := hits.Load()
	progressf(start, "measuring for %s", *duration-warm)
	if err := watch("measuring", formed.Add(*duration), s0); err != nil {
		return err
	}
	s1, err := take()
	if err != nil {
		return err
	}
	hits1 := hits.Load()
	wall := s1[0].at.Sub(s0[0].at)

	fmt.Printf("\nsteady state over %s (after %s of warm-up), per node:\n", wall.Round(time.Second), warm)
	fmt.Printf("  %-7s %-9s %12s %12s %12s %12s %12s %12s %8s %10s %10s\n", "node", "region",
		"in B/s", "out B/s", "udp in", "udp out", "tcp in", "tcp out", "cpu %", "rss MB", "peak MB")
	var sumIn, sumOut, sumCPU float64
	var maxInOut float64
	for i, c := range f.nodes {
		d := s1[i].g.sub(s0[i].g)
		secs := s1[i].at.Sub(s0[i].at).Seconds()
		cpu := float64(s1[i].cpu-s0[i].cpu) / float64(s1[i].at.Sub(s0[i].at)) * 100
		rss, hwm, err := memory(c.pid())
		if err != nil {
			return err
		}
		fmt.Printf("  %-7s %-9s %12.0f %12.0f %12.0f %12.0f %12.0f %12.0f %8.2f %10.1f %10.1f\n", c.name, c.region,
			d.in()/secs, d.out()/secs, d.udpIn/secs, d.udpOut/secs, d.tcpIn/secs, d.tcpOut/secs, cpu, float64(rss)/1e6, float64(hwm)/1e6)
		sumIn += d.in() / secs
		sumOut += d.out() / secs
		sumCPU += cpu
		maxInOut = max(maxInOut, d.in()/secs, d.out()/secs)
	}
	n := float64(len(f.nodes))
	fmt.Printf("  cluster: in %.0f B/s, out %.0f B/s (should match); busiest direction of any node %s/s\n", sumIn, sumOut, fmtBytes(maxInOut))
	fmt.Printf("  probes/s at the target: %.1f (%d nodes × %d checks / %s = %.1f expected)\n",
		float64(hits1-hits0)/wall.Seconds(), *nodes, *checks, *interval, n*float64(*checks)/interval.Seconds())
	avgCPU := sumCPU / n
	if avgCPU > 0 {
		fmt.Printf("  cpu: %.2f%% of one core per node on average: %.0f checks per 1%% of a core at %s (%.1f probes/s per 1%%; status page, SQLite and gossip included)\n",
			avgCPU, float64(*checks)/avgCPU, *interval, float64(*checks)/interval.Seconds()/avgCPU)
	}
	return nil
}
