//go:build linux

package main

// End-to-end tests of real network faults: real `vantage run` processes in
// Linux network namespaces, faults injected with iptables.
//
// Topology, all of it private to the test (nothing is added to the root
// network namespace, no traffic leaves the namespaces created here):
//
//	hub  namespace: bridge br0 10.213.7.250/24, one veth port per namespace below
//	eu   namespace: eth0 10.213.7.1   node eu-1 (gossip :7946, http :8080)
//	us   namespace: eth0 10.213.7.2   node us-1
//	ap   namespace: eth0 10.213.7.3   node ap-1
//	tg   namespace: eth0 10.213.7.10  the target, GET /health: 200 "ok" or 503
//	pg   namespace: eth0 10.213.7.20  the pager: a webhook receiver
//
// The target and the pager are HTTP servers of the test process itself, and
// the test polls /api/v1/status of every node from the hub namespace: a
// goroutine locked to its OS thread enters the namespace (setns), opens its
// socket there and comes back; a socket stays in the namespace it was opened
// in. So the test sees everything first hand (the target's failure switch,
// every webhook request with the address of the node that sent it) without
// any link into the host's network. Namespace names carry a random suffix,
// so concurrent runs do not collide; everything is deleted in t.Cleanup.
//
// Needs root, ip (iproute2) and iptables; skips with a message otherwise and
// under -short.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vantage-dev/vantage/statuspage"
)

const (
	labNet    = "10.213.7"
	labHubIP  = labNet + ".250"
	labTgtIP  = labNet + ".10"
	labPgIP   = labNet + ".20"
	labTgtURL = "http://" + labTgtIP + ":8000/health"
	labHook   = "http://" + labPgIP + ":9000/hook"
)

var labIPs = map[string]string{"eu": labNet + ".1", "us": labNet + ".2", "ap": labNet + ".3", "tg": labTgtIP, "pg": labPgIP}

// inNetns runs fn on an OS thread switched into the named network namespace.
// Sockets fn opens belong to that namespace for their whole life.
func inNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		ns, err := os.Open("/var/run/netns/" + name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: the runtime ends it with this goroutine.
			errc <- fmt.Errorf("setns back from %s: %w", name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// netLab is the namespaces, the target, the pager and the nodes of one test.
type netLab struct {
	t      *testing.T
	ns     map[string]string // role (hub, eu, us, ap, tg, pg) -> namespace name
	client *http.Client      // dials from the hub namespace

	failing atomic.Bool // the target answers 503

	mu      sync.Mutex
	hooks   []hookEvent
	refuse  map[string]bool // regions whose webhook requests the pager answers 503
	refused map[string]int  // webhook requests refused, by region

	cfg string // the nodes' config file
	key []byte // their gossip key
	// canaries, when set, is the nodes' cluster.canaries (set before
	// startNodes).
	canaries []string
	// extraChecks, when set, is YAML of further checks, apiExtra of further
	// keys of api (set before startNodes).
	extraChecks, apiExtra string

	nodes map[string]*labNode
}

type hookEvent struct {
	from string // region of the sending node, by source address
	ev   map[string]any
}

type labNode struct {
	region string
	addr   string       // http
	data   string       // --data
	client *http.Client // reads the node's API; nil: from the hub
	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan struct{}
}

func labCmd(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newNetLab builds the topology, starts the target and the pager, or skips.
func newNetLab(t *testing.T) *netLab {
	t.Helper()
	if testing.Short() {
		t.Skip("netns tests start real nodes in network namespaces; skipped under -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("netns tests need root (network namespaces, veth, iptables)")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("netns tests need %s: %v (Debian: apt-get install -y iproute2 iptables)", tool, err)
		}
	}
	suffix := make([]byte, 3)
	rand.Read(suffix)
	prefix := "vt" + hex.EncodeToString(suffix)
	l := &netLab{t: t, ns: map[string]string{}, nodes: map[string]*labNode{}, refuse: map[string]bool{}, refused: map[string]int{}}

	// Deleting a namespace deletes its veth ends and their peers. Registered
	// first, so it runs after every process and socket in them is gone.
	t.Cleanup(func() {
		for _, name := range l.ns {
			if err := labCmd("ip", "netns", "del", name); err != nil {
				t.Logf("cleanup: %v", err)
			}
		}
	})
	for _, role := range []string{"hub", "eu", "us", "ap", "tg", "pg"} {
		name := prefix + "-" + role
		if err := labCmd("ip", "netns", "add", name); err != nil {
			if role == "hub" {
				t.Skipf("cannot create network namespaces here: %v", err)
			}
			t.Fatal(err)
		}
		l.ns[role] = name
		if err := labCmd("ip", "-n", name, "link", "set", "lo", "up"); err != nil {
			t.Fatal(err)
		}
	}
	if err := labCmd("ip", "netns", "exec", l.ns["eu"], "iptables", "-S"); err != nil {
		t.Skipf("iptables does not work in a network namespace here: %v", err)
	}
	hub := l.ns["hub"]
	steps := [][]string{
		{"ip", "-n", hub, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", hub, "addr", "add", labHubIP + "/24", "dev", "br0"},
		{"ip", "-n", hub, "link", "set", "br0", "up"},
	}
	for _, role := range []string{"eu", "us", "ap", "tg", "pg"} {
		steps = append(steps,
			[]string{"ip", "-n", hub, "link", "add", role, "type", "veth", "peer", "name", "eth0", "netns", l.ns[role]},
			[]string{"ip", "-n", hub, "link", "set", role, "master", "br0", "up"},
			[]string{"ip", "-n", l.ns[role], "addr", "add", labIPs[role] + "/24", "dev", "eth0"},
			[]string{"ip", "-n", l.ns[role], "link", "set", "eth0", "up"},
		)
	}
	for i, s := range steps {
		if err := labCmd(s...); err != nil {
			if i == 0 {
				t.Skipf("cannot create a bridge in a namespace here: %v", err)
			}
			t.Fatal(err)
		}
	}

	l.client = l.clientFrom("hub")

	l.serve("tg", labTgtIP+":8000", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		if l.failing.Load() {
			http.Error(w, "failing (test)", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	l.serve("pg", labPgIP+":9000", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev map[string]any
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		from := host
		for role, ip := range labIPs {
			if ip == host {
				from = role
			}
		}
		l.mu.Lock()
		refuse := l.refuse[from]
		if refuse {
			l.refused[from]++
		} else {
			l.hooks = append(l.hooks, hookEvent{from: from, ev: ev})
		}
		l.mu.Unlock()
		if refuse {
			http.Error(w, "refused (test)", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	return l
}

// clientFrom is an HTTP client whose connections are opened inside a
// role's namespace.
func (l *netLab) clientFrom(role string) *http.Client {
	ns := l.ns[role]
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := inNetns(ns, func() error {
				var err error
				c, err = (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}
	l.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 3 * time.Second}
}

// serve runs an HTTP server of the test process inside a namespace.
func (l *netLab) serve(role, addr string, h http.Handler) {
	var ln net.Listener
	if err := inNetns(l.ns[role], func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		l.t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	l.t.Cleanup(func() { srv.Close() })
}

func (l *netLab) events() []hookEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]hookEvent(nil), l.hooks...)
}

// iptables runs iptables inside a region's namespace.
func (l *netLab) iptables(role string, args ...string) {
	l.t.Helper()
	if err := labCmd(append([]string{"ip", "netns", "exec", l.ns[role], "iptables"}, args...)...); err != nil {
		l.t.Fatal(err)
	}
}

// startNodes writes the config and starts one node per region, each joining
// eu-1, sharing one gossip key.
func (l *netLab) startNodes() {
	canaries := ""
	if len(l.canaries) > 0 {
		canaries = "\n  canaries: [" + strings.Join(l.canaries, ", ") + "]"
	}
	l.cfg = writeFile(l.t, "netns.yaml", fmt.Sprintf(`
cluster:
  regions: [eu, us, ap]
  quorum: 2
  gossip: local%s
defaults:
  interval: 1s
  timeout: 500ms
  fail_after: 2
  recover_after: 2
checks:
  - name: api
    type: http
    url: %s
    notify: [hook]%s%s
notifiers:
  - name: hook
    type: webhook
    url: %s
`, canaries, labTgtURL, l.apiExtra, l.extraChecks, labHook))
	l.key = make([]byte, 32)
	rand.Read(l.key)
	for _, region := range allRegions {
		l.startNode(region, l.t.TempDir())
	}
}

// startNode starts (or restarts) the node of a region on a data directory.
func (l *netLab) startNode(region, data string) {
	t := l.t
	ip := labIPs[region]
	n := &labNode{region: region, addr: ip + ":8080", data: data, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	n.cmd = exec.Command("ip", "netns", "exec", l.ns[region], binPath, "run", "--config", l.cfg,
		"--node", region+"-1", "--region", region, "--gossip", ip+":7946", "--http", n.addr,
		"--data", data, "--join", labIPs["eu"]+":7946")
	n.cmd.Env = append(os.Environ(), "VANTAGE_GOSSIP_KEY="+base64.StdEncoding.EncodeToString(l.key))
	n.cmd.Stderr = n.stderr
	// ip netns exec execs the node: it is our child, and dies with us.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() {
		n.cmd.Process.Kill()
		<-n.exited
		if t.Failed() {
			s := n.stderr.String()
			if len(s) > 6000 {
				s = "...\n" + s[len(s)-6000:]
			}
			t.Logf("%s-1 (pid %d) stderr:\n%s", region, n.cmd.Process.Pid, s)
		}
	})
	l.nodes[region] = n
}

func (l *netLab) status(n *labNode) (*statuspage.Status, error) {
	c := l.client
	if n.client != nil {
		c = n.client
	}
	resp, err := c.Get("http://" + n.addr + "/api/v1/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	var st statuspage.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

// invariant is checked on every status read while waiting; an error fails
// the test at once.
type invariant func(region string, st *statuspage.Status) error

// wait polls the regions' nodes until cond holds on every one of them,
// checking inv on every read, and returns the last statuses.
func (l *netLab) wait(what string, within time.Duration, regions []string, cond func(region string, st *statuspage.Status) bool, inv invariant) map[string]*statuspage.Status {
	t := l.t
	t.Helper()
	deadline := time.Now().Add(within)
	last := map[string]*statuspage.Status{}
	for {
		all := true
		for _, r := range regions {
			n := l.nodes[r]
			select {
			case <-n.exited:
				t.Fatalf("waiting for %s: node %s-1 exited: %v", what, r, n.cmd.ProcessState)
			default:
			}
			st, err := l.status(n)
			if err != nil {
				all = false
				continue
			}
			last[r] = st
			if inv != nil {
				if err := inv(r, st); err != nil {
					b, _ := json.MarshalIndent(st, "", " ")
					t.Fatalf("while waiting for %s: %v\n%s-1 status:\n%s", what, err, r, b)
				}
			}
			if !cond(r, st) {
				all = false
			}
		}
		if all {
			return last
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(last, "", " ")
			t.Fatalf("timed out after %s waiting for %s; last statuses:\n%s", within, what, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hold checks inv on the regions' nodes for a while: a negative assertion
// (nothing bad happens) needs a window; this is not a wait for a condition.
func (l *netLab) hold(what string, d time.Duration, regions []string, inv invariant) {
	l.t.Helper()
	end := time.Now().Add(d)
	l.wait(what, d+10*time.Second, regions, func(string, *statuspage.Status) bool { return time.Now().After(end) }, inv)
}

func aliveMembers(st *statuspage.Status) int {
	k := 0
	for _, m := range st.Cluster.Members {
		if m.State == "alive" {
			k++
		}
	}
	return k
}

func memberState(st *statuspage.Status, name string) string {
	for _, m := range st.Cluster.Members {
		if m.Name == name {
			return m.State
		}
	}
	return "absent"
}

func eligibleRegions(st *statuspage.Status) int {
	k := 0
	for _, ri := range st.Cluster.Regions {
		if ri.Eligible {
			k++
		}
	}
	return k
}

var allRegions = []string{"eu", "us", "ap"}

// startAllUp starts the nodes and waits until the mesh is whole and api is
// up with three up votes on every node.
func (l *netLab) startAllUp() {
	l.startNodes()
	l.wait("a whole mesh with api up and three up votes", 30*time.Second, allRegions, func(_ string, st *statuspage.Status) bool {
		c := checkByName(st, "api")
		return aliveMembers(st) == 3 && c != nil && c.State == "up" &&
			c.Regions["eu"].Vote == "up" && c.Regions["us"].Vote == "up" && c.Regions["ap"].Vote == "up"
	}, nil)
}

// agreedIncident waits until the regions' nodes show api down under one
// incident id, and returns it. Nodes that open an incident at the same moment
// may show their own id for a few gossip rounds before they converge on one.
func (l *netLab) agreedIncident(within time.Duration, regions ...string) string {
	l.t.Helper()
	if len(regions) == 0 {
		regions = allRegions
	}
	shown := map[string]map[string]bool{}
	deadline := time.Now().Add(within)
	for {
		ids := map[string]string{}
		l.wait("api down", within, regions, func(r string, st *statuspage.Status) bool {
			c := checkByName(st, "api")
			ids[r] = c.IncidentID
			if c.IncidentID != "" {
				if shown[r] == nil {
					shown[r] = map[string]bool{}
				}
				shown[r][c.IncidentID] = true
			}
			return c.State == "down" && c.IncidentID != ""
		}, nil)
		agreed := true
		for _, r := range regions {
			agreed = agreed && ids[r] == ids[regions[0]]
		}
		if agreed {
			for r, set := range shown {
				if len(set) > 1 {
					l.t.Logf("%s-1 showed %d incident ids before the cluster agreed on %s", r, len(set), ids[regions[0]])
				}
			}
			return ids[regions[0]]
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("no agreement on one incident id within %s: %v", within, ids)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// noPage fails when any webhook request arrived.
func (l *netLab) noPage(string, *statuspage.Status) error {
	if evs := l.events(); len(evs) > 0 {
		return fmt.Errorf("the pager got %d events, want none: first from %s: %v", len(evs), evs[0].from, evs[0].ev)
	}
	return nil
}

// waitEvents waits until the pager holds at least k events.
// recoverOnce restores the target and asserts that the pager then holds
// exactly one down and one up event, both of incident, with no duplicate
// arriving within a few gossip rounds.
func (l *netLab) recoverOnce(incident string, regions ...string) []hookEvent {
	l.t.Helper()
	if len(regions) == 0 {
		regions = allRegions
	}
	l.failing.Store(false)
	l.wait("api up again everywhere", 20*time.Second, regions, func(_ string, st *statuspage.Status) bool {
		c := checkByName(st, "api")
		return c.State == "up" && c.IncidentID == ""
	}, nil)
	l.waitEvents("the resolve", 2, 20*time.Second)
	l.hold("no duplicate notification", 3*time.Second, regions, func(string, *statuspage.Status) error {
		if k := len(l.events()); k > 2 {
			return fmt.Errorf("the pager got %d events: %v", k, l.events())
		}
		return nil
	})
	evs := l.events()
	if len(evs) != 2 || evs[0].ev["event"] != "down" || evs[1].ev["event"] != "up" {
		l.t.Fatalf("pager got %v, want exactly one down then one up", evs)
	}
	for _, e := range evs {
		if e.ev["incident_id"] != incident {
			l.t.Fatalf("event %v, want incident %s", e, incident)
		}
	}
	return evs
}

func (l *netLab) waitEvents(what string, k int, within time.Duration) []hookEvent {
	l.t.Helper()
	deadline := time.Now().Add(within)
	for {
		evs := l.events()
		if len(evs) >= k {
			return evs
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("timed out after %s waiting for %s: the pager got %d events: %v", within, what, len(evs), evs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e hookEvent) String() string {
	return fmt.Sprintf("%s from %s (incident %v)", e.ev["event"], e.from, e.ev["incident_id"])
}

// TestNetnsRegionCutDoesNotPage: eu's path to the target is blackholed
// (iptables DROP: a real connect timeout) while gossip keeps working. eu
// votes down, the cluster stays up and nobody is paged. Then a real outage
// (503 everywhere) pages exactly once with one incident id on every node,
// and its end resolves exactly once.
func TestNetnsRegionCutDoesNotPage(t *testing.T) {
	start := time.Now()
	l := newNetLab(t)
	l.startAllUp()
	t.Logf("mesh up, api up everywhere after %s", time.Since(start).Round(time.Millisecond))

	stillUp := func(r string, st *statuspage.Status) error {
		if c := checkByName(st, "api"); c.State != "up" || c.IncidentID != "" {
			return fmt.Errorf("%s-1: a one-region cut made api %s (incident %q)", r, c.State, c.IncidentID)
		}
		if aliveMembers(st) != 3 {
			return fmt.Errorf("%s-1: the cut from the target broke gossip: %d members alive", r, aliveMembers(st))
		}
		return l.noPage(r, st)
	}

	// Cut eu from the target only.
	l.iptables("eu", "-A", "OUTPUT", "-d", labTgtIP, "-j", "DROP")
	cutAt := time.Now()
	sts := l.wait("eu voting down with a timeout", 20*time.Second, allRegions, func(_ string, st *statuspage.Status) bool {
		rv := checkByName(st, "api").Regions["eu"]
		return rv.Vote == "down" && (rv.Error == "connect_timeout" || rv.Error == "timeout")
	}, stillUp)
	t.Logf("eu votes down (%s) %s after the cut", checkByName(sts["eu"], "api").Regions["eu"].Error, time.Since(cutAt).Round(time.Millisecond))

	// Several more rounds: us must have voted at least three more times, seen
	// by every node, with api up and no page all along.
	seen := map[string]time.Time{}
	for r, st := range sts {
		seen[r] = checkByName(st, "api").Regions["us"].CheckedAt
	}
	l.wait("three more rounds of us votes with eu cut", 20*time.Second, allRegions, func(r string, st *statuspage.Status) bool {
		c := checkByName(st, "api")
		return c.Regions["eu"].Vote == "down" && c.Regions["us"].CheckedAt.After(seen[r].Add(2500*time.Millisecond))
	}, stillUp)

	// Heal the cut: eu votes up again.
	l.iptables("eu", "-D", "OUTPUT", "-d", labTgtIP, "-j", "DROP")
	l.wait("eu voting up again", 20*time.Second, allRegions, func(_ string, st *statuspage.Status) bool {
		return checkByName(st, "api").Regions["eu"].Vote == "up"
	}, stillUp)

	// A real outage: every region sees 503.
	l.failing.Store(true)
	failAt := time.Now()
	l.wait("api down everywhere", 20*time.Second, allRegions, func(_ string, st *statuspage.Status) bool {
		c := checkByName(st, "api")
		return c.State == "down" && c.IncidentID != ""
	}, nil)
	incident := l.agreedIncident(10 * time.Second)
	evs := l.waitEvents("the trigger", 1, 20*time.Second)
	t.Logf("down everywhere as %s, trigger from %s %s after the outage began", incident, evs[0].from, time.Since(failAt).Round(time.Millisecond))

	evs = l.recoverOnce(incident)
	for _, e := range evs {
		if e.ev["check"] != "api" || e.ev["target"] != labTgtURL {
			t.Fatalf("event %v, want incident %s of api at %s", e.ev, incident, labTgtURL)
		}
	}
	downVotes := 0
	for _, rv := range evs[0].ev["regions"].(map[string]any) {
		if rv.(map[string]any)["vote"] == "down" {
			downVotes++
		}
	}
	if downVotes < 2 {
		t.Fatalf("trigger names %d regions voting down, want at least the quorum: %v", downVotes, evs[0].ev["regions"])
	}
	t.Logf("events: %v; total %s", evs, time.Since(start).Round(time.Millisecond))
}

// TestNetnsPartitionMinorityNeverPages: ap is cut off from eu and us
// (iptables DROP both ways inside ap) but still reaches the target and the
// pager, so a wrong page from it would arrive. The target then fails for
// everyone: the majority side pages once; ap votes down itself, shows that
// it cannot see a quorum, keeps api out of `down` and never sends anything.
// Healed, ap sees every member alive within the contract's 30 s, adopts the
// incident, and still nothing is sent twice; the recovery resolves once.
func TestNetnsPartitionMinorityNeverPages(t *testing.T) {
	start := time.Now()
	l := newNetLab(t)
	l.startAllUp()
	t.Logf("mesh up, api up everywhere after %s", time.Since(start).Round(time.Millisecond))

	rules := [][]string{
		{"INPUT", "-s", labIPs["eu"], "-j", "DROP"},
		{"INPUT", "-s", labIPs["us"], "-j", "DROP"},
		{"OUTPUT", "-d", labIPs["eu"], "-j", "DROP"},
		{"OUTPUT", "-d", labIPs["us"], "-j", "DROP"},
	}
	for _, r := range rules {
		l.iptables("ap", append([]string{"-A"}, r...)...)
	}
	cutAt := time.Now()
	apNeverDown := func(r string, st *statuspage.Status) error {
		if r != "ap" {
			return nil
		}
		if c := checkByName(st, "api"); c.State == "down" {
			return fmt.Errorf("ap-1, alone in a minority, decided api down (incident %q)", c.IncidentID)
		}
		for _, e := range l.events() {
			if e.from == "ap" {
				return fmt.Errorf("the minority node ap-1 sent a notification: %v", e)
			}
		}
		return nil
	}
	l.wait("both sides of the partition seeing the other gone", 20*time.Second, allRegions, func(r string, st *statuspage.Status) bool {
		if r == "ap" {
			return memberState(st, "eu-1") != "alive" && memberState(st, "us-1") != "alive" && eligibleRegions(st) < st.Cluster.Quorum
		}
		return memberState(st, "ap-1") != "alive" && aliveMembers(st) == 2 && eligibleRegions(st) == 2
	}, func(r string, st *statuspage.Status) error {
		if err := apNeverDown(r, st); err != nil {
			return err
		}
		return l.noPage(r, st)
	})
	t.Logf("partition seen on both sides %s after the cut", time.Since(cutAt).Round(time.Millisecond))

	// The target fails for everyone.
	l.failing.Store(true)
	sts := l.wait("api down on the majority side, ap voting down itself but unknown", 20*time.Second, allRegions, func(r string, st *statuspage.Status) bool {
		c := checkByName(st, "api")
		if r == "ap" {
			return c.Regions["ap"].Vote == "down" && c.State == "unknown"
		}
		return c.State == "down" && c.IncidentID != ""
	}, apNeverDown)
	incident := l.agreedIncident(10*time.Second, "eu", "us")
	evs := l.waitEvents("the majority's trigger", 1, 20*time.Second)
	t.Logf("majority paged %v; ap-1 sees %d eligible regions of quorum %d: %v", evs, eligibleRegions(sts["ap"]), sts["ap"].Cluster.Quorum, sts["ap"].Cluster.Regions)
	l.hold("ap staying out of down, one page only", 3*time.Second, allRegions, func(r string, st *statuspage.Status) error {
		if err := apNeverDown(r, st); err != nil {
			return err
		}
		if k := len(l.events()); k != 1 {
			return fmt.Errorf("the pager got %d events during the partition: %v", k, l.events())
		}
		return nil
	})

	// Heal: within the contract's 30 s every node sees every member alive.
	for _, r := range rules {
		l.iptables("ap", append([]string{"-D"}, r...)...)
	}
	healAt := time.Now()
	oneTrigger := func(string, *statuspage.Status) error {
		evs := l.events()
		if len(evs) != 1 {
			return fmt.Errorf("the pager got %d events after the heal: %v", len(evs), evs)
		}
		return nil
	}
	l.wait("the healed mesh whole again", 30*time.Second, allRegions, func(_ string, st *statuspage.Status) bool {
		return aliveMembers(st) == 3
	}, oneTrigger)
	t.Logf("mesh whole again %s after the heal", time.Since(healAt).Round(time.Millisecond))
	l.wait("ap adopting the majority's incident", 20*time.Second, allRegions, func(_ string, st *statuspage.Status) bool {
		c := checkByName(st, "api")
		return c.State == "down" && c.IncidentID == incident
	}, oneTrigger)
	l.hold("no duplicate trigger after the heal", 3*time.Second, allRegions, oneTrigger)

	// Recovery resolves once.
	evs = l.recoverOnce(incident)
	for _, e := range evs {
		if e.from == "ap" && e.ev["event"] == "down" {
			t.Fatalf("the trigger came from the minority node: %v", e)
		}
	}
	t.Logf("events: %v; total %s", evs, time.Since(start).Round(time.Millisecond))
}

// TestNetnsSenderKilledMidIncident: the designated sender (ap-1, the first
// alive node by name) cannot deliver its trigger (the pager answers 503 to
// it only) and is killed with SIGKILL while the send is pending. eu-1 takes
// over and pages once. ap-1 then restarts on its data directory with the
// trigger still pending in its outbox and the pager accepting it again: it
// learns from the cluster's sent log that the trigger was delivered and
// sends nothing. The recovery resolves once.
func TestNetnsSenderKilledMidIncident(t *testing.T) {
	start := time.Now()
	l := newNetLab(t)
	l.mu.Lock()
	l.refuse["ap"] = true
	l.mu.Unlock()
	l.startAllUp()
	t.Logf("mesh up, api up everywhere after %s", time.Since(start).Round(time.Millisecond))

	l.failing.Store(true)
	incident := l.agreedIncident(20 * time.Second)
	refusedOnce := func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.refused["ap"] > 0
	}
	l.wait("ap-1, the designated sender, trying to deliver the trigger", 20*time.Second, allRegions, func(string, *statuspage.Status) bool {
		return refusedOnce()
	}, l.noPage)

	ap := l.nodes["ap"]
	if err := ap.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-ap.exited
	killedAt := time.Now()
	l.mu.Lock()
	l.refuse["ap"] = false // a resend from ap-1 would now arrive
	l.mu.Unlock()
	others := []string{"eu", "us"}
	evs := l.waitEvents("the trigger from the node that took over", 1, 30*time.Second)
	if evs[0].from != "eu" || evs[0].ev["event"] != "down" || evs[0].ev["incident_id"] != incident {
		t.Fatalf("after the sender died the pager got %v, want the trigger of %s from eu-1", evs[0], incident)
	}
	t.Logf("eu-1 took over and paged %s after the SIGKILL", time.Since(killedAt).Round(time.Millisecond))
	oneEvent := func(string, *statuspage.Status) error {
		if evs := l.events(); len(evs) != 1 {
			return fmt.Errorf("the pager got %d events: %v", len(evs), evs)
		}
		return nil
	}
	l.hold("no second trigger", 3*time.Second, others, oneEvent)

	// ap-1 restarts with its undelivered trigger still in the outbox.
	l.startNode("ap", ap.data)
	l.wait("ap-1 back in the mesh, on the same incident, its outbox empty", 40*time.Second, allRegions, func(r string, st *statuspage.Status) bool {
		c := checkByName(st, "api")
		if aliveMembers(st) != 3 || c.State != "down" || c.IncidentID != incident {
			return false
		}
		return r != "ap" || l.outboxPending(l.nodes["ap"]) == 0
	}, oneEvent)
	l.hold("no resend from the restarted node", 3*time.Second, allRegions, oneEvent)

	evs = l.recoverOnce(incident)
	t.Logf("events: %v; total %s", evs, time.Since(start).Round(time.Millisecond))
}

// outboxPending reads a node's vantage_outbox_pending total from /metrics
// (-1 when it cannot be read).
func (l *netLab) outboxPending(n *labNode) int {
	resp, err := l.client.Get("http://" + n.addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return -1
	}
	total := 0
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "vantage_outbox_pending{") {
			continue
		}
		var v float64
		if _, err := fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v); err == nil {
			total += int(v)
		}
	}
	return total
}

// TestNetnsBlackholeRouteAndLinkDown: the other two faults. eu's
// route to the target is blackholed (`ip route add blackhole`: connects
// fail at once): eu votes down, api stays up, nobody is paged. Then ap's
// link goes down (`ip link set eth0 down`: ap fully isolated): eu and us
// see ap dead and keep two eligible regions; ap, read from inside its own
// namespace, reports that it cannot see a quorum and does not decide
// down. With the link back up the mesh is whole again within 30 s, and
// nothing was paged at any point.
func TestNetnsBlackholeRouteAndLinkDown(t *testing.T) {
	start := time.Now()
	l := newNetLab(t)
	l.startAllUp()
	t.Logf("mesh up, api up everywhere after %s", time.Since(start).Round(time.Millisecond))
	noDownNoPage := func(r string, st *statuspage.Status) error {
		if c := checkByName(st, "api"); c.State == "down" || c.IncidentID != "" {
			return fmt.Errorf("%s-1: api %s (incident %q) with the target up", r, c.State, c.IncidentID)
		}
		return l.noPage(r, st)
	}

	route := []string{"ip", "-n", l.ns["eu"], "route", "add", "blackhole", labTgtIP + "/32"}
	if err := labCmd(route...); err != nil {
		t.Fatal(err)
	}
	sts := l.wait("eu voting down through its blackholed route, api up", 20*time.Second, allRegions, func(_ string, st *statuspage.Status) bool {
		c := checkByName(st, "api")
		return c.Regions["eu"].Vote == "down" && c.State == "up" && aliveMembers(st) == 3
	}, noDownNoPage)
	t.Logf("eu votes down (%s); api up everywhere", checkByName(sts["eu"], "api").Regions["eu"].Error)
	l.hold("api staying up with eu's route blackholed", 3*time.Second, allRegions, noDownNoPage)
	route[4] = "del"
	if err := labCmd(route...); err != nil {
		t.Fatal(err)
	}
	l.wait("eu voting up again", 20*time.Second, allRegions, func(_ string, st *statuspage.Status) bool {
		return checkByName(st, "api").Regions["eu"].Vote == "up"
	}, noDownNoPage)

	// ap's only link goes down: read ap from inside its namespace.
	l.nodes["ap"].client = l.clientFrom("ap")
	if err := labCmd("ip", "-n", l.ns["ap"], "link", "set", "eth0", "down"); err != nil {
		t.Fatal(err)
	}
	downAt := time.Now()
	sts = l.wait("both sides seeing ap isolated; ap reporting no quorum", 30*time.Second, allRegions, func(r string, st *statuspage.Status) bool {
		if r == "ap" {
			return memberState(st, "eu-1") != "alive" && memberState(st, "us-1") != "alive" && eligibleRegions(st) < st.Cluster.Quorum
		}
		return memberState(st, "ap-1") != "alive" && eligibleRegions(st) == 2
	}, noDownNoPage)
	t.Logf("ap isolated %s after its link went down; ap-1 sees %d eligible regions of quorum %d, api %s",
		time.Since(downAt).Round(time.Millisecond), eligibleRegions(sts["ap"]), sts["ap"].Cluster.Quorum, checkByName(sts["ap"], "api").State)
	l.hold("no page while ap is isolated", 3*time.Second, allRegions, noDownNoPage)

	if err := labCmd("ip", "-n", l.ns["ap"], "link", "set", "eth0", "up"); err != nil {
		t.Fatal(err)
	}
	upAt := time.Now()
	l.wait("the mesh whole again", 30*time.Second, allRegions, func(_ string, st *statuspage.Status) bool {
		return aliveMembers(st) == 3 && checkByName(st, "api").State == "up"
	}, noDownNoPage)
	t.Logf("mesh whole again %s after the link came back; total %s", time.Since(upAt).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// TestNetnsTwoRegionsBlindTogether: eu and us lose their route to the
// target and to their canary at the same moment (a provider's egress
// failure hitting two probe sites), while the target is healthy and ap
// sees it. Their probes fail at once and fast confirmation runs, but a
// region votes down only on the evidence of a canary round begun after its
// failing probe: theirs fail, so they abstain. No node shows api down,
// nobody is paged, and every node shows eu and us not eligible.
func TestNetnsTwoRegionsBlindTogether(t *testing.T) {
	start := time.Now()
	l := newNetLab(t)
	// The canary: another server on the target's host, so one blackhole
	// route cuts both.
	l.serve("tg", labTgtIP+":8001", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "canary")
	}))
	l.canaries = []string{"http://" + labTgtIP + ":8001/"}
	l.startAllUp()
	t.Logf("mesh up with canaries, api up everywhere after %s", time.Since(start).Round(time.Millisecond))
	neverDown := func(r string, st *statuspage.Status) error {
		if c := checkByName(st, "api"); c.State == "down" || c.IncidentID != "" {
			return fmt.Errorf("%s-1: api %s (incident %q) while the target is up", r, c.State, c.IncidentID)
		}
		return l.noPage(r, st)
	}
	for _, r := range []string{"eu", "us"} {
		if err := labCmd("ip", "-n", l.ns[r], "route", "add", "blackhole", labTgtIP+"/32"); err != nil {
			t.Fatal(err)
		}
	}
	cut := time.Now()
	sts := l.wait("eu and us not eligible on every node", 20*time.Second, allRegions, func(_ string, st *statuspage.Status) bool {
		return !st.Cluster.Regions["eu"].Eligible && !st.Cluster.Regions["us"].Eligible && st.Cluster.Regions["ap"].Eligible
	}, neverDown)
	t.Logf("eu and us shown not eligible everywhere %s after the cut (ap-1: eu %q)", time.Since(cut).Round(time.Millisecond),
		sts["ap"].Cluster.Regions["eu"].Reason)
	l.hold("no down, no page while two regions are blind", 5*time.Second, allRegions, neverDown)
	for _, r := range []string{"eu", "us"} {
		if err := labCmd("ip", "-n", l.ns[r], "route", "del", "blackhole", labTgtIP+"/32"); err != nil {
			t.Fatal(err)
		}
	}
	l.wait("api up with every region eligible again", 30*time.Second, allRegions, func(_ string, st *statuspage.Status) bool {
		return eligibleRegions(st) == 3 && checkByName(st, "api").State == "up"
	}, neverDown)
}

// TestNetnsDownThenUnknownResolvesOnce: api is down and paged; then every
// node is cut from every other, so none sees a quorum: api turns unknown
// everywhere within 2 × interval + 5 s and keeps its incident (the id stays
// shown). The target recovers during the partition; once the mesh heals,
// api is up and resolved exactly once, under the same id.
func TestNetnsDownThenUnknownResolvesOnce(t *testing.T) {
	start := time.Now()
	l := newNetLab(t)
	l.startAllUp()
	l.failing.Store(true)
	incident := l.agreedIncident(20 * time.Second)
	l.waitEvents("the trigger", 1, 20*time.Second)
	onlyTrigger := func(string, *statuspage.Status) error {
		if evs := l.events(); len(evs) != 1 {
			return fmt.Errorf("the pager got %d events: %v", len(evs), evs)
		}
		return nil
	}
	// Cut every node from every other (the target and the pager stay
	// reachable).
	var rules [][2]string
	for _, r := range allRegions {
		for _, o := range allRegions {
			if o != r {
				rules = append(rules, [2]string{r, o})
				l.iptables(r, "-A", "INPUT", "-s", labIPs[o], "-j", "DROP")
			}
		}
	}
	cut := time.Now()
	l.wait("api unknown everywhere, its incident kept", 2*time.Second+5*time.Second+10*time.Second, allRegions, func(_ string, st *statuspage.Status) bool {
		c := checkByName(st, "api")
		return c.State == "unknown" && c.IncidentID == incident
	}, func(r string, st *statuspage.Status) error {
		if c := checkByName(st, "api"); c.IncidentID != incident {
			return fmt.Errorf("%s-1: api's incident %q, want %s kept", r, c.IncidentID, incident)
		}
		return onlyTrigger(r, st)
	})
	t.Logf("api unknown everywhere %s after the cut, incident %s kept", time.Since(cut).Round(time.Millisecond), incident)
	l.failing.Store(false) // recovers while nobody can decide
	l.hold("nothing decided during the partition", 3*time.Second, allRegions, onlyTrigger)
	for _, rule := range rules {
		l.iptables(rule[0], "-D", "INPUT", "-s", labIPs[rule[1]], "-j", "DROP")
	}
	l.wait("api up everywhere after the heal", 40*time.Second, allRegions, func(_ string, st *statuspage.Status) bool {
		c := checkByName(st, "api")
		return aliveMembers(st) == 3 && c.State == "up" && c.IncidentID == ""
	}, nil)
	l.waitEvents("the resolve", 2, 20*time.Second)
	l.hold("no duplicate", 3*time.Second, allRegions, func(string, *statuspage.Status) error {
		if k := len(l.events()); k > 2 {
			return fmt.Errorf("the pager got %d events: %v", k, l.events())
		}
		return nil
	})
	evs := l.events()
	if len(evs) != 2 || evs[0].ev["event"] != "down" || evs[1].ev["event"] != "up" || evs[1].ev["incident_id"] != incident {
		t.Fatalf("pager got %v, want one trigger and one resolve of %s", evs, incident)
	}
	t.Logf("resolved once under %s; total %s", incident, time.Since(start).Round(time.Millisecond))
}

// TestNetnsDependsOnPagesTheParentOnce: api (http) depends on host (icmp to
// the target's address). The target's host drops off the network: its
// ICMP and HTTP both fail in every region. host pages once; api is down
// too but shown suppressed by host and pages nobody; both recover and only
// host's resolve is sent.
func TestNetnsDependsOnPagesTheParentOnce(t *testing.T) {
	start := time.Now()
	l := newNetLab(t)
	l.extraChecks = `
  - name: host
    type: icmp
    target: ` + labTgtIP + `
    notify: [hook]`
	l.apiExtra = `
    depends_on: [host]
    depends_wait: 3s`
	l.startNodes()
	l.wait("a whole mesh, api and host up", 30*time.Second, allRegions, func(_ string, st *statuspage.Status) bool {
		return aliveMembers(st) == 3 && checkByName(st, "api").State == "up" && checkByName(st, "host").State == "up"
	}, nil)
	if err := labCmd("ip", "-n", l.ns["tg"], "link", "set", "eth0", "down"); err != nil {
		t.Fatal(err)
	}
	downAt := time.Now()
	onlyHost := func(r string, st *statuspage.Status) error {
		for _, e := range l.events() {
			if e.ev["check"] == "api" {
				return fmt.Errorf("api paged: %v", e)
			}
		}
		return nil
	}
	sts := l.wait("host down, api down and suppressed by host, everywhere", 40*time.Second, allRegions, func(_ string, st *statuspage.Status) bool {
		a, h := checkByName(st, "api"), checkByName(st, "host")
		return h.State == "down" && a.State == "down" && len(a.SuppressedBy) == 1 && a.SuppressedBy[0] == "host" &&
			a.ParentIncidentID == h.IncidentID
	}, onlyHost)
	t.Logf("host down and api suppressed everywhere %s after the target's host went away", time.Since(downAt).Round(time.Millisecond))
	hostIncident := checkByName(sts["eu"], "host").IncidentID
	l.waitEvents("host's trigger", 1, 20*time.Second)
	l.hold("api paging nobody", 5*time.Second, allRegions, onlyHost)
	if err := labCmd("ip", "-n", l.ns["tg"], "link", "set", "eth0", "up"); err != nil {
		t.Fatal(err)
	}
	l.wait("both up again", 40*time.Second, allRegions, func(_ string, st *statuspage.Status) bool {
		return checkByName(st, "api").State == "up" && checkByName(st, "host").State == "up"
	}, onlyHost)
	l.waitEvents("host's resolve", 2, 20*time.Second)
	l.hold("no page of api after the recovery", 5*time.Second, allRegions, onlyHost)
	evs := l.events()
	if len(evs) != 2 || evs[0].ev["check"] != "host" || evs[0].ev["event"] != "down" || evs[1].ev["event"] != "up" ||
		evs[0].ev["incident_id"] != hostIncident {
		t.Fatalf("pager got %v, want host's trigger and resolve only", evs)
	}
	t.Logf("one page, for the parent; total %s", time.Since(start).Round(time.Millisecond))
}

// TestNetnsPushReportsToAnyNode: a push check's job reports to a different
// node each time, from the target's host; every node counts every report.
// When the job stops, the check is down once period + grace has passed and
// pages exactly once; when it reports again, one resolve.
func TestNetnsPushReportsToAnyNode(t *testing.T) {
	l := newNetLab(t)
	const token = "backup-job-token-0123"
	l.extraChecks = `
  - name: backup
    type: push
    token: ` + token + `
    period: 2s
    grace: 5s
    notify: [hook]`
	l.startNodes()
	job := l.clientFrom("tg")
	report := func(region string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+l.nodes[region].addr+"/api/v1/push/backup", strings.NewReader("done"))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := job.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("report to %s-1: %s", region, resp.Status)
		}
	}
	l.wait("a whole mesh", 30*time.Second, allRegions, func(_ string, st *statuspage.Status) bool { return aliveMembers(st) == 3 }, nil)
	for _, r := range allRegions { // a different node each time
		report(r)
	}
	l.wait("backup up everywhere", 20*time.Second, allRegions, func(_ string, st *statuspage.Status) bool {
		return checkByName(st, "backup").State == "up"
	}, l.noPage)
	stopped := time.Now()
	sts := l.wait("backup down everywhere once the job stopped", 30*time.Second, allRegions, func(_ string, st *statuspage.Status) bool {
		return checkByName(st, "backup").State == "down"
	}, nil)
	t.Logf("down everywhere %s after the last report (period 2 s + grace 5 s)", time.Since(stopped).Round(time.Millisecond))
	incident := checkByName(sts["eu"], "backup").IncidentID
	l.waitEvents("the trigger", 1, 20*time.Second)
	report("ap")
	l.wait("backup up again everywhere", 20*time.Second, allRegions, func(_ string, st *statuspage.Status) bool {
		return checkByName(st, "backup").State == "up"
	}, nil)
	l.waitEvents("the resolve", 2, 20*time.Second)
	l.hold("no duplicate", 3*time.Second, allRegions, func(string, *statuspage.Status) error {
		if k := len(l.events()); k > 2 {
			return fmt.Errorf("the pager got %d events: %v", k, l.events())
		}
		return nil
	})
	evs := l.events()
	if len(evs) != 2 || evs[0].ev["event"] != "down" || evs[1].ev["event"] != "up" || evs[0].ev["incident_id"] != incident {
		t.Fatalf("pager got %v, want one trigger and one resolve of %s", evs, incident)
	}
}
