// Package demo runs Vantage's demo: three regions on loopback, sample
// targets of its own, a monitor-side path cut that must not page, and a
// real outage that pages once, on a timeline that repeats.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vantage-dev/vantage/checker"
	"github.com/vantage-dev/vantage/cluster"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/node"
	"github.com/vantage-dev/vantage/statuspage"
)

// The demo's timeline, repeated every demoCycle: a one-region path cut that
// must not page, then a real outage that pages once.
const (
	demoCycle    = 150 * time.Second
	demoCutAt    = 20 * time.Second
	demoCutFor   = 40 * time.Second
	demoDownAt   = 75 * time.Second
	demoDownFor  = 35 * time.Second
	demoCutCheck = "api"
	demoCutNode  = "ap-south-1"
)

var demoRegions = []string{"eu-west", "us-east", "ap-south"}

// demoTargets serves the demo's sample targets on loopback.
type demoTargets struct {
	start time.Time
	down  atomic.Bool
}

func (d *demoTargets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api":
		io.WriteString(w, `{"status":"ok"}`)
	case "/slow":
		t := time.NewTimer(700 * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "ok, slowly")
	case "/checkout":
		if d.down.Load() {
			http.Error(w, "checkout is down (demo outage)", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	default:
		http.NotFound(w, r)
	}
}

// cutPathProber simulates a cut between one region and one target: its
// probes of that check fail as a connect timeout would.
type cutPathProber struct {
	inner checker.Prober
	check string
	cut   *atomic.Bool
}

func (p *cutPathProber) Probe(ctx context.Context, c *config.Check) checker.Result {
	if c.Name == p.check && p.cut.Load() {
		start := time.Now()
		<-ctx.Done()
		return checker.Result{Start: start, Latency: time.Since(start), Code: checker.CodeConnectTimeout,
			Message: "connect: i/o timeout (demo: this region's path to the target is cut)"}
	}
	return p.inner.Probe(ctx, c)
}

func demoConfig(targets, hook string) string {
	return fmt.Sprintf(`cluster:
  regions: [eu-west, us-east, ap-south]
  quorum: 2
  gossip: local
defaults:
  interval: 5s
  timeout: 3s
  fail_after: 2
  recover_after: 2
  # The demo's outage repeats every 2.5 minutes: page it every time instead
  # of calling it flapping after the third round.
  flap_threshold: 0
checks:
  - name: api
    type: http
    url: %[1]s/api
    expect: {body_contains: '"status":"ok"'}
    group: Public API
    display_name: API
    notify: [console]
  - name: slow-search
    type: http
    url: %[1]s/slow
    expect: {max_latency: 2s}
    group: Public API
    display_name: Search (slow but fine)
    notify: [console]
  - name: checkout
    type: http
    url: %[1]s/checkout
    group: Shop
    display_name: Checkout
    notify: [console]
  - name: checkout-port
    type: tcp
    target: %[2]s
    group: Shop
    display_name: Checkout port
notifiers:
  - name: console
    type: webhook
    url: %[3]s
statuspage:
  title: Vantage demo
`, targets, strings.TrimPrefix(targets, "http://"), hook)
}

// Run runs the demo until ctx ends, printing its timeline, pages and state
// changes to out; the first node's status page listens on httpAddr.
func Run(ctx context.Context, httpAddr string, verbose bool, out io.Writer) error {
	var mu sync.Mutex
	say := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
	dir, err := os.MkdirTemp("", "vantage-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	targets := &demoTargets{start: time.Now()}
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	tsrv := &http.Server{Handler: targets, ReadHeaderTimeout: 5 * time.Second}
	go tsrv.Serve(tln)
	defer tsrv.Close()

	// On-call's pager: the console.
	hln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hsrv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Event      string `json:"event"`
			IncidentID string `json:"incident_id"`
			Check      string `json:"check"`
			Regions    map[string]struct {
				Vote  string `json:"vote"`
				Error string `json:"error"`
			} `json:"regions"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &ev)
		var regions []string
		for name, rv := range ev.Regions {
			s := name + " " + rv.Vote
			if rv.Error != "" {
				s += " (" + rv.Error + ")"
			}
			regions = append(regions, s)
		}
		sort.Strings(regions)
		say("PAGE  %s %s, incident %s; regions: %s", ev.Check, strings.ToUpper(map[string]string{"down": "down", "up": "resolved"}[ev.Event]), ev.IncidentID, strings.Join(regions, ", "))
		w.WriteHeader(http.StatusAccepted)
	})}
	go hsrv.Serve(hln)
	defer hsrv.Close()

	cfgPath := filepath.Join(dir, "demo.yaml")
	if err := os.WriteFile(cfgPath, []byte(demoConfig("http://"+tln.Addr().String(), "http://"+hln.Addr().String())), 0o600); err != nil {
		return err
	}
	key := node.RandomKey()
	var cut atomic.Bool
	var nodes []*node.Node
	var servers []*http.Server
	defer func() {
		for _, s := range servers {
			s.Close()
		}
		for _, n := range nodes {
			n.Close()
		}
	}()
	var seed, pageAddr string
	for i, region := range demoRegions {
		cfg, err := config.Load(cfgPath)
		if err != nil {
			return err
		}
		name := region + "-1"
		level := slog.LevelError + 4
		if verbose {
			level = slog.LevelInfo
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("node", name)
		var prober checker.Prober = checker.New(checker.Options{Logger: log})
		if name == demoCutNode {
			prober = &cutPathProber{inner: prober, check: demoCutCheck, cut: &cut}
		}
		g := &cluster.Config{Name: name, Region: region, Bind: "127.0.0.1:0", Profile: "local", Key: key, Logger: log}
		if i > 0 {
			g.Join = []string{seed}
		}
		ndir := filepath.Join(dir, name)
		n, err := node.New(ctx, node.Options{Config: cfg, Name: name, Region: region, DBPath: filepath.Join(ndir, "vantage.db"),
			OutboxPath: filepath.Join(ndir, "outbox.db"), Logger: log, Gossip: g, Prober: prober})
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
		addr := "127.0.0.1:0"
		if i == 0 {
			addr = httpAddr
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w (try --http 127.0.0.1:0)", addr, err)
		}
		// Served as `vantage run` serves: timeouts and a connection cap.
		httpOpts := statuspage.DefaultHTTPOptions()
		srv := statuspage.NewHTTPServer(n.Handler(), httpOpts, log)
		servers = append(servers, srv)
		go srv.Serve(statuspage.LimitListener(ln, httpOpts.MaxConns))
		if err := n.Start(); err != nil {
			return err
		}
		if i == 0 {
			seed, pageAddr = n.GossipAddr(), ln.Addr().String()
		}
		say("node %-11s region %-8s status page http://%s/", name, region, ln.Addr())
	}
	say("three regions on loopback; quorum 2 of 3. Status page: http://%s/  API: http://%s/api/v1/status", pageAddr, pageAddr)
	say("timeline (repeats every %s): at %s ap-south's path to %q is cut for %s (must NOT page); at %s %q goes down for %s (pages once)",
		demoCycle, demoCutAt, demoCutCheck, demoCutFor, demoDownAt, "checkout", demoDownFor)

	go demoTimeline(ctx, targets, &cut, say)
	go demoWatch(ctx, nodes[0], say)
	<-ctx.Done()
	say("stopping")
	return nil
}

func demoTimeline(ctx context.Context, targets *demoTargets, cut *atomic.Bool, say func(string, ...any)) {
	start := time.Now()
	events := []struct {
		at   time.Duration
		what func()
	}{
		{demoCutAt, func() {
			cut.Store(true)
			say("EVENT ap-south can no longer reach %q (a monitor-side network fault); the other regions still can", demoCutCheck)
		}},
		{demoCutAt + demoCutFor, func() { cut.Store(false); say("EVENT ap-south's path to %q is back", demoCutCheck) }},
		{demoDownAt, func() { targets.down.Store(true); say("EVENT %q really goes down, for every region", "checkout") }},
		{demoDownAt + demoDownFor, func() { targets.down.Store(false); say("EVENT %q is back", "checkout") }},
	}
	for cycle := 0; ; cycle++ {
		for _, e := range events {
			at := start.Add(time.Duration(cycle)*demoCycle + e.at)
			t := time.NewTimer(time.Until(at))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
				e.what()
			}
		}
	}
}

// demoWatch prints the first node's view of every state and vote change.
func demoWatch(ctx context.Context, n *node.Node, say func(string, ...any)) {
	last := map[string]string{}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := n.Status()
		for _, c := range st.Checks {
			var votes []string
			for _, r := range demoRegions {
				votes = append(votes, r+"="+c.Regions[r].Vote)
			}
			line := fmt.Sprintf("%s is %s  [%s]", c.Name, strings.ToUpper(c.State), strings.Join(votes, " "))
			if last[c.Name] != line {
				last[c.Name] = line
				say("STATE %s", line)
			}
		}
	}
}
