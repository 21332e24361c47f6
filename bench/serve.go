package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// benchServe measures a node's HTTP documents against a bare net/http
// server serving the same bytes, side by side in one run: wrk -t2 -c200
// with gzip on each path, the node and the bare servers alternately
// (one with the body's content headers only, one also with the node's
// other headers), and the ratio of their requests per second.
func benchServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	checks := fs.Int("checks", 1000, "number of http checks the node runs")
	interval := fs.Duration("interval", 10*time.Second, "check interval")
	paths := fs.String("paths", "/api/v1/status,/,/checks/c0001,/api/v2/summary.json", "paths to load, comma separated")
	duration := fs.Duration("duration", 10*time.Second, "each wrk run")
	rounds := fs.Int("rounds", 2, "runs of each side per path")
	debug := fs.String("debug-addr", "", "pass --debug-addr to vantage (profiling)")
	fs.Parse(args)
	if _, err := exec.LookPath("wrk"); err != nil {
		return fmt.Errorf("needs wrk (Debian: apt-get install -y wrk): %w", err)
	}
	dir, bin, cleanup, err := workDir("vantage-bench-serve", false)
	if err != nil {
		return err
	}
	defer cleanup()
	addr, _, stop, err := okTarget()
	if err != nil {
		return err
	}
	defer stop()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "defaults:\n  interval: %s\n  timeout: %s\nchecks:\n", *interval, *interval/2)
	for i := range *checks {
		fmt.Fprintf(&cfg, "  - name: c%04d\n    type: http\n    url: http://%s/c/%d\n", i, addr, i)
	}
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		return err
	}
	httpAddr, err := freeTCPAddr()
	if err != nil {
		return err
	}
	runArgs := []string{"run", "--config", cfgPath, "--data", filepath.Join(dir, "data"), "--http", httpAddr, "--gossip", "127.0.0.1:0", "--log-level", "warn"}
	if *debug != "" {
		runArgs = append(runArgs, "--debug-addr", *debug)
	}
	cmd := exec.Command(bin, runArgs...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	fmt.Printf("serve: vantage run with %d http checks every %s (pid %d); wrk -t2 -c200 -d%s with gzip, %d rounds per side\n",
		*checks, *interval, cmd.Process.Pid, *duration, *rounds)
	// Every check has a state: one interval and the start spread.
	time.Sleep(*interval + min(*interval, 30*time.Second))
	fmt.Printf("load average before: %s\n", loadAvg())

	for _, p := range strings.Split(*paths, ",") {
		body, hdr, err := fetchGzip("http://" + httpAddr + p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		// The bare server answers with the body and its content headers
		// (type, encoding, length), and, as "bare+h", also with every
		// other header of the node's answer but Date (its security
		// headers, validators, Cache-Control, Vary): the same bytes.
		bare, err := bareServer(body, hdr, false)
		if err != nil {
			return err
		}
		bareH, err := bareServer(body, hdr, true)
		if err != nil {
			bare.Close()
			return err
		}
		var node, plain, plainH []wrkResult
		fmt.Printf("  %s: %d gzip bytes\n", p, len(body))
		for round := range *rounds {
			for _, side := range []struct {
				url string
				out *[]wrkResult
			}{{"http://" + httpAddr + p, &node}, {"http://" + bare.Addr().String() + p, &plain}, {"http://" + bareH.Addr().String() + p, &plainH}} {
				r, err := runWrk(side.url, *duration)
				if err != nil {
					bare.Close()
					bareH.Close()
					return err
				}
				*side.out = append(*side.out, r)
			}
			n, b, bh := node[round], plain[round], plainH[round]
			fmt.Printf("    round %d: node %6.0f req/s (p99 %6.2f ms)  bare %6.0f req/s (p99 %6.2f ms) ratio %.2f  bare+h %6.0f req/s (p99 %6.2f ms) ratio %.2f  (load %s)\n",
				round+1, n.rps, n.p99ms, b.rps, b.p99ms, n.rps/b.rps, bh.rps, bh.p99ms, n.rps/bh.rps, loadAvg())
		}
		bare.Close()
		bareH.Close()
		bn, bp, bph := best(node), best(plain), best(plainH)
		fmt.Printf("  %-22s best: node %6.0f req/s (p99 %6.2f ms)  bare %6.0f (p99 %6.2f ms) ratio %.2f  bare+h %6.0f (p99 %6.2f ms) ratio %.2f\n",
			p, bn.rps, bn.p99ms, bp.rps, bp.p99ms, bn.rps/bp.rps, bph.rps, bph.p99ms, bn.rps/bph.rps)
	}
	return nil
}

// fetchGzip gets a document as a browser with gzip would.
func fetchGzip(url string) ([]byte, http.Header, error) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	return b, resp.Header, err
}

// bareServer serves body with the same content headers at every path;
// with all, with every header of hdr but Date.
func bareServer(body []byte, hdr http.Header, all bool) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctype, cenc := []string{hdr.Get("Content-Type")}, []string{hdr.Get("Content-Encoding")}
	clen := []string{strconv.Itoa(len(body))}
	other := http.Header{}
	if all {
		for k, v := range hdr {
			switch k {
			case "Date", "Content-Type", "Content-Length", "Content-Encoding":
			default:
				other[k] = v
			}
		}
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range other {
			h[k] = v
		}
		h["Content-Type"], h["Content-Length"] = ctype, clen
		if cenc[0] != "" {
			h["Content-Encoding"] = cenc
		}
		w.Write(body)
	}))
	return ln, nil
}

type wrkResult struct{ rps, p99ms float64 }

var (
	wrkRPS = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkP99 = regexp.MustCompile(`\s99%\s+([0-9.]+)(us|ms|s)`)
)

func runWrk(url string, d time.Duration) (wrkResult, error) {
	out, err := exec.Command("wrk", "-t2", "-c200", "-d"+d.String(), "--latency", "-H", "Accept-Encoding: gzip", url).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %v: %s", url, err, out)
	}
	var r wrkResult
	if m := wrkRPS.FindSubmatch(out); m != nil {
		r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	if m := wrkP99.FindSubmatch(out); m != nil {
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		switch string(m[2]) {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		r.p99ms = v
	}
	if r.rps == 0 || bytes.Contains(out, []byte("Non-2xx")) {
		return r, fmt.Errorf("wrk %s: %s", url, out)
	}
	return r, nil
}

// loadAvg is /proc/loadavg's three load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func best(rs []wrkResult) wrkResult {
	var b wrkResult
	for _, r := range rs {
		if r.rps > b.rps {
			b = r
		}
	}
	return b
}
