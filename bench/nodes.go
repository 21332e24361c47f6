package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
)

// workDir makes the bench's temporary directory and builds vantage into
// it as released (releaseBuild); cleanup removes the directory unless keep
// (then it is printed).
func workDir(prefix string, keep bool) (dir, bin string, cleanup func(), err error) {
	return workDirBuild(prefix, keep, releaseBuild)
}

// workDirBuild is workDir with the build's go command and environment.
func workDirBuild(prefix string, keep bool, build goBuild) (dir, bin string, cleanup func(), err error) {
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	if keep {
		fmt.Println("temporary directory:", dir)
		cleanup = func() {}
	}
	if bin, err = build.run(dir); err != nil {
		cleanup()
		return "", "", nil, err
	}
	return dir, bin, cleanup, nil
}

// okTarget serves {"status":"ok"} on 127.0.0.1 for every check of the
// bench and counts the requests (the probes).
func okTarget() (addr string, hits *atomic.Int64, stop func(), err error) {
	addr, hits, _, stop, err = okTargetBare()
	return addr, hits, stop, err
}

// okTargetBare is okTarget that also counts the bare prober's requests
// (paths under /bare/) apart: hits counts only the others.
func okTargetBare() (addr string, hits, bareHits *atomic.Int64, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, nil, err
	}
	hits, bareHits = new(atomic.Int64), new(atomic.Int64)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, barePrefix) {
			bareHits.Add(1)
		} else {
			hits.Add(1)
		}
		io.WriteString(w, `{"status":"ok"}`)
	})}
	go srv.Serve(ln)
	return ln.Addr().String(), hits, bareHits, func() { srv.Close() }, nil
}

// goBuild is how the bench builds ./cmd/vantage: go build's flags and
// the environment's additions.
type goBuild struct {
	name  string
	env   []string
	flags []string
}

// releaseBuild builds vantage as it is released, by deploy/Dockerfile's
// builder and docs/deployment.md: static (no cgo, so no C library or
// dynamic loader mapped into the process) and stripped. The benches
// measure what runs in production (TestReleaseBuildAsDockerfile).
var releaseBuild = goBuild{name: "release", env: []string{"CGO_ENABLED=0"}, flags: []string{"-trimpath", "-ldflags", "-s -w"}}

// devBuild is the plain go build of the README's "Build from source",
// with cgo where a C compiler is installed.
var devBuild = goBuild{name: "dev"}

// buildNamed returns the build called name.
func buildNamed(name string) (goBuild, error) {
	for _, b := range []goBuild{releaseBuild, devBuild} {
		if b.name == name {
			return b, nil
		}
	}
	return goBuild{}, fmt.Errorf("unknown build %q (release or dev)", name)
}

// run builds ./cmd/vantage into dir.
func (b goBuild) run(dir string) (string, error) {
	bin := filepath.Join(dir, "vantage")
	args := append([]string{"build"}, b.flags...)
	cmd := exec.Command("go", append(args, "-o", bin, "./cmd/vantage")...)
	cmd.Env = append(os.Environ(), b.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build vantage (%s: %s go %s): %v\n%s", b.name, strings.Join(b.env, " "), strings.Join(args, " "), err, out)
	}
	return bin, nil
}

// freeTCPAddr returns a 127.0.0.1 address with a free TCP port.
func freeTCPAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// freeGossipAddr returns a 127.0.0.1 address whose port is free on TCP and
// UDP (memberlist binds both).
func freeGossipAddr() (string, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr, nil
		}
	}
	return "", errors.New("no port free on both TCP and UDP")
}

// regionName names the i-th region (0-based).
func regionName(i int) string {
	names := []string{"eu-west", "us-east", "ap-south", "sa-east", "af-south", "me-central", "ca-central"}
	if i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("region-%d", i+1)
}

// child is one `vantage run` process.
type child struct {
	name, region string
	http, gossip string
	logPath      string
	cmd          *exec.Cmd
	exited       chan struct{}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// fleet is the nodes of one bench run, all on loopback, sharing one config
// and gossip key; each joins every other.
type fleet struct {
	nodes  []*child
	client *http.Client
}

// startFleet starts n nodes (node-1 in the first region, and so on) with
// the config at cfgPath. Logs go to DIR/node-I.log.
func startFleet(bin, dir, cfgPath string, n int, logLevel string) (*fleet, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f := &fleet{client: &http.Client{Timeout: 5 * time.Second}}
	var seeds []string
	// A port just closed may be handed out again: never give one twice.
	used := map[string]bool{}
	fresh := func(get func() (string, error)) (string, error) {
		for range 100 {
			a, err := get()
			if err != nil || !used[a] {
				used[a] = true
				return a, err
			}
		}
		return "", errors.New("no fresh port")
	}
	for i := range n {
		g, err := fresh(freeGossipAddr)
		if err != nil {
			return nil, err
		}
		h, err := fresh(freeTCPAddr)
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("node-%d", i+1)
		f.nodes = append(f.nodes, &child{name: name, region: regionName(i), http: h, gossip: g,
			logPath: filepath.Join(dir, name+".log"), exited: make(chan struct{})})
		seeds = append(seeds, g)
	}
	for _, c := range f.nodes {
		logf, err := os.Create(c.logPath)
		if err != nil {
			f.stop()
			return nil, err
		}
		c.cmd = exec.Command(bin, "run", "--config", cfgPath, "--node", c.name, "--region", c.region,
			"--gossip", c.gossip, "--http", c.http, "--join", strings.Join(seeds, ","),
			"--data", filepath.Join(dir, "data-"+c.name), "--log-level", logLevel)
		c.cmd.Env = append(os.Environ(), "VANTAGE_GOSSIP_KEY="+base64.StdEncoding.EncodeToString(key))
		c.cmd.Stdout, c.cmd.Stderr = logf, logf
		c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // die with the bench
		if err := c.cmd.Start(); err != nil {
			logf.Close()
			f.stop()
			return nil, err
		}
		go func() { c.cmd.Wait(); logf.Close(); close(c.exited) }()
	}
	return f, nil
}

// stop sends SIGTERM to every node and waits up to 10 s for each, then
// kills what is left.
func (f *fleet) stop() {
	for _, c := range f.nodes {
		if c.cmd != nil && c.cmd.Process != nil {
			c.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, c := range f.nodes {
		if c.cmd == nil || c.cmd.Process == nil {
			continue
		}
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			c.cmd.Process.Kill()
			<-c.exited
		}
	}
}

// exitedNode returns a node that has exited, if any.
func (f *fleet) exitedNode() *child {
	for _, c := range f.nodes {
		select {
		case <-c.exited:
			return c
		default:
		}
	}
	return nil
}

// logTail returns the last lines of a node's log.
func logTail(path string, lines int) string {
	b, _ := os.ReadFile(path)
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// nodeStatus is the part of GET /api/v1/status the benches read.
type nodeStatus struct {
	Cluster struct {
		Members []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"members"`
	} `json:"cluster"`
	Checks []struct {
		Name       string `json:"name"`
		State      string `json:"state"`
		IncidentID string `json:"incident_id"`
		Regions    map[string]struct {
			Vote      string    `json:"vote"`
			CheckedAt time.Time `json:"checked_at"`
			Error     string    `json:"error"`
		} `json:"regions"`
	} `json:"checks"`
}

func (f *fleet) status(c *child) (*nodeStatus, error) {
	resp, err := f.client.Get("http://" + c.http + "/api/v1/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: status %s", c.name, resp.Status)
	}
	var st nodeStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("%s: decode status: %w", c.name, err)
	}
	return &st, nil
}

// waitUp waits until every node sees every node alive and every check in
// state up (or, with wantChecks false, only the membership).
func (f *fleet) waitUp(ctx context.Context, wantChecks bool, progress func(string)) error {
	last := time.Now()
	for {
		ok, why := true, ""
		for _, c := range f.nodes {
			st, err := f.status(c)
			if err != nil {
				ok, why = false, err.Error()
				break
			}
			alive := 0
			for _, m := range st.Cluster.Members {
				if m.State == "alive" {
					alive++
				}
			}
			if alive != len(f.nodes) {
				ok, why = false, fmt.Sprintf("%s sees %d/%d nodes alive", c.name, alive, len(f.nodes))
				break
			}
			if !wantChecks {
				continue
			}
			up := 0
			for _, chk := range st.Checks {
				if chk.State == "up" {
					up++
				}
			}
			if up != len(st.Checks) {
				ok, why = false, fmt.Sprintf("%s sees %d/%d checks up", c.name, up, len(st.Checks))
				break
			}
		}
		if ok {
			return nil
		}
		if c := f.exitedNode(); c != nil {
			return fmt.Errorf("%s exited:\n%s", c.name, logTail(c.logPath, 20))
		}
		if time.Since(last) >= 10*time.Second {
			progress("waiting: " + why)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s", ctx.Err(), why)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// gossipBytes is a node's vantage_gossip_bytes_total counters.
type gossipBytes struct{ udpIn, udpOut, tcpIn, tcpOut float64 }

func (g gossipBytes) in() float64  { return g.udpIn + g.tcpIn }
func (g gossipBytes) out() float64 { return g.udpOut + g.tcpOut }

func (g gossipBytes) sub(o gossipBytes) gossipBytes {
	return gossipBytes{g.udpIn - o.udpIn, g.udpOut - o.udpOut, g.tcpIn - o.tcpIn, g.tcpOut - o.tcpOut}
}

// scrapeGossip reads a node's gossip byte counters from /metrics.
func (f *fleet) scrapeGossip(c *child) (gossipBytes, error) {
	var g gossipBytes
	resp, err := f.client.Get("http://" + c.http + "/metrics")
	if err != nil {
		return g, err
	}
	defer resp.Body.Close()
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "vantage_gossip_bytes_total{")
		if !ok {
			continue
		}
		labels, val, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return g, fmt.Errorf("%s: metric line %q: %w", c.name, line, err)
		}
		in := strings.Contains(labels, `direction="in"`)
		switch {
		case strings.Contains(labels, `transport="udp"`) && in:
			g.udpIn = v
		case strings.Contains(labels, `transport="udp"`):
			g.udpOut = v
		case in:
			g.tcpIn = v
		default:
			g.tcpOut = v
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return g, err
	}
	if found != 4 {
		return g, fmt.Errorf("%s: /metrics has %d of 4 vantage_gossip_bytes_total series", c.name, found)
	}
	return g, nil
}

// progressf prints a progress line with the time since start.
func progressf(start time.Time, format string, args ...any) {
	fmt.Printf("[%6s] %s\n", time.Since(start).Round(time.Second), fmt.Sprintf(format, args...))
}

// fmtBytes formats a byte rate or count.
func fmtBytes(b float64) string {
	switch {
	case b >= 1e6:
		return fmt.Sprintf("%.2f MB", b/1e6)
	case b >= 1e3:
		return fmt.Sprintf("%.1f KB", b/1e3)
	}
	return fmt.Sprintf("%.0f B", b)
}
