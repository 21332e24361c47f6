package node

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/checker"
	"github.com/vantage-dev/vantage/cluster"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/statuspage"
)

// cutProber stands for a monitoring region whose path to the targets is cut:
// while cut, every probe fails as a real connect timeout would.
type cutProber struct {
	inner checker.Prober
	cut   atomic.Bool
	fails atomic.Int64 // failed probes seen (for timing the first failure)
	first atomic.Int64 // unix nanos of the first failed probe
}

func (p *cutProber) Probe(ctx context.Context, c *config.Check) checker.Result {
	var r checker.Result
	if p.cut.Load() {
		r = checker.Result{Start: time.Now(), Code: checker.CodeConnectTimeout, Message: "region cut (test)"}
	} else {
		r = p.inner.Probe(ctx, c)
	}
	if !r.OK && p.fails.Add(1) == 1 {
		p.first.Store(time.Now().UnixNano())
	}
	return r
}

// hookRecorder is the on-call side: it records webhook events.
type hookRecorder struct {
	mu      sync.Mutex
	events  []map[string]any
	srv     *httptest.Server
	refuse  atomic.Bool  // answer 503 and record nothing
	refused atomic.Int64 // requests refused
}

func newHookRecorder(t *testing.T) *hookRecorder {
	h := &hookRecorder{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.refuse.Load() {
			h.refused.Add(1)
			http.Error(w, "refused (test)", http.StatusServiceUnavailable)
			return
		}
		var ev map[string]any
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &ev)
		h.mu.Lock()
		h.events = append(h.events, ev)
		h.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// onePage asserts that the receiver got exactly one down and one up event,
// both of incident, and returns them.
func (h *hookRecorder) onePage(t *testing.T, incident string) []map[string]any {
	t.Helper()
	evs := h.all()
	if len(evs) != 2 || evs[0]["event"] != "down" || evs[1]["event"] != "up" {
		t.Fatalf("webhook got %d events %v, want exactly one down and one up", len(evs), evs)
	}
	for _, ev := range evs {
		if ev["incident_id"] != incident {
			t.Fatalf("event for incident %v, the cluster showed %s", ev["incident_id"], incident)
		}
	}
	return evs
}

func (h *hookRecorder) all() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.events...)
}

type meshNode struct {
	n      *Node
	prober *cutProber
	region string
	key    []byte // the gossip key
}

// startMesh starts one node per region on loopback, all sharing a gossip
// key, and waits until every node sees every other alive.
func startMesh(t *testing.T, cfgText string, regions []string) []*meshNode {
	t.Helper()
	path := writeFile(t, "mesh.yaml", cfgText)
	key := make([]byte, 32)
	rand.Read(key)
	var nodes []*meshNode
	for _, region := range regions {
		seed := ""
		if len(nodes) > 0 {
			seed = nodes[0].n.GossipAddr()
		}
		nodes = append(nodes, addMeshNode(t, path, key, region+"-1", region, seed))
	}
	waitMesh(t, nodes, "every node sees every member alive", func(st *statuspage.Status) bool {
		alive := 0
		for _, m := range st.Cluster.Members {
			if m.State == "alive" {
				alive++
			}
		}
		return alive == len(regions)
	})
	return nodes
}

// addMeshNode starts one node of config path with gossip key key, joining
// seed unless it is empty.
func addMeshNode(t *testing.T, path string, key []byte, name, region, seed string) *meshNode {
	t.Helper()
	return addMeshNodeIn(t, path, key, name, region, seed, t.TempDir())
}

// addMeshNodeIn is addMeshNode with the node's data in dir.
func addMeshNodeIn(t *testing.T, path string, key []byte, name, region, seed, dir string, mods ...func(*Options)) *meshNode {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	level := slog.LevelWarn
	if os.Getenv("VANTAGE_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("node", name)
	p := &cutProber{inner: checker.New(checker.Options{})}
	g := &cluster.Config{Name: name, Region: region, Bind: "127.0.0.1:0", Profile: "local", Key: key, Logger: log}
	if seed != "" {
		g.Join = []string{seed}
	}
	o := Options{Config: cfg, Name: name, Region: region,
		DBPath: filepath.Join(dir, "v.db"), OutboxPath: filepath.Join(dir, "outbox.db"), Logger: log, Gossip: g, Prober: p}
	for _, m := range mods {
		m(&o)
	}
	n, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return &meshNode{n: n, prober: p, region: region, key: key}
}

// waitMesh waits until cond holds on every node's status.
func waitMesh(t *testing.T, nodes []*meshNode, what string, cond func(*statuspage.Status) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		var last *statuspage.Status
		for _, m := range nodes {
			st := m.n.Status()
			if !cond(st) {
				ok, last = false, st
				break
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(last, "", " ")
			t.Fatalf("timed out waiting for %s; a node's status:\n%s", what, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// switchableTarget is a target server answering "ok", or 503 while failing
// is set.
func switchableTarget(t *testing.T) (*httptest.Server, *atomic.Bool) {
	failing := new(atomic.Bool)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(target.Close)
	return target, failing
}

func meshConfig(target, hook string, interval string) string {
	return fmt.Sprintf(`
cluster:
  regions: [eu, us, ap]
  quorum: 2
  gossip: local
defaults:
  interval: %s
  fail_after: 2
  recover_after: 2
checks:
  - name: api
    type: http
    url: %s/health
    notify: [hook]
notifiers:
  - name: hook
    type: webhook
    url: %s
`, interval, target, hook)
}

func TestMeshRegionCutDoesNotPageRealOutagePagesOnce(t *testing.T) {
	target, failing := switchableTarget(t)
	hook := newHookRecorder(t)
	nodes := startMesh(t, meshConfig(target.URL, hook.srv.URL, "1s"), []string{"eu", "us", "ap"})

	waitMesh(t, nodes, "api up everywhere with three voting regions", func(st *statuspage.Status) bool {
		c := checkByName(st, "api")
		return c.State == "up" && c.Regions["eu"].Vote == "up" && c.Regions["us"].Vote == "up" && c.Regions["ap"].Vote == "up"
	})

	// One region loses its path to the target: it votes down, nobody pages.
	nodes[0].prober.cut.Store(true)
	waitMesh(t, nodes, "eu voting down", func(st *statuspage.Status) bool {
		return checkByName(st, "api").Regions["eu"].Vote == "down"
	})
	seen := map[string]time.Time{}
	for _, m := range nodes {
		seen[m.region] = checkByName(m.n.Status(), "api").Regions["us"].CheckedAt
	}
	waitMesh(t, nodes, "two more rounds of us votes", func(st *statuspage.Status) bool {
		return checkByName(st, "api").Regions["us"].CheckedAt.After(seen[st.Node.Region].Add(1500 * time.Millisecond))
	})
	for _, m := range nodes {
		if c := checkByName(m.n.Status(), "api"); c.State != "up" || c.IncidentID != "" {
			t.Fatalf("%s: a one-region cut made api %s (incident %q)", m.region, c.State, c.IncidentID)
		}
	}
	if evs := hook.all(); len(evs) != 0 {
		t.Fatalf("a one-region cut paged: %v", evs)
	}
	nodes[0].prober.cut.Store(false)

	// A real outage: every region sees it.
	failing.Store(true)
	waitMesh(t, nodes, "api down everywhere", func(st *statuspage.Status) bool {
		return checkByName(st, "api").State == "down"
	})
	// The same incident id on every node.
	waitMesh(t, nodes, "one incident id", func(st *statuspage.Status) bool {
		return checkByName(st, "api").IncidentID == checkByName(nodes[0].n.Status(), "api").IncidentID
	})
	incident := checkByName(nodes[0].n.Status(), "api").IncidentID
	failing.Store(false)
	waitMesh(t, nodes, "api up again everywhere", func(st *statuspage.Status) bool {
		c := checkByName(st, "api")
		return c.State == "up" && c.IncidentID == ""
	})
	deadline := time.Now().Add(15 * time.Second)
	for len(hook.all()) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	// Let any duplicate a second sender might produce arrive, bounded by the
	// sent log's propagation: wait until every node knows both sends.
	for _, m := range nodes {
		deadline := time.Now().Add(10 * time.Second)
		for {
			k := m.n.mesh.Sent.Len()
			if k >= 2 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	evs := hook.onePage(t, incident)
	downRegions := 0
	for _, rv := range evs[0]["regions"].(map[string]any) {
		if rv.(map[string]any)["vote"] == "down" {
			downRegions++
		}
	}
	if downRegions < 2 {
		t.Fatalf("trigger names %d regions voting down, want at least the quorum: %v", downRegions, evs[0]["regions"])
	}
}

func TestMeshFastConfirmation(t *testing.T) {
	target, failing := switchableTarget(t)
	hook := newHookRecorder(t)
	// interval 60s, fail_after 2: without fast confirmation, down would take
	// at least a minute.
	nodes := startMesh(t, meshConfig(target.URL, hook.srv.URL, "60s"), []string{"eu", "us", "ap"})
	for _, m := range nodes {
		m.n.sched.RunNow("api") // first runs are spread over the interval: do not wait
	}
	waitMesh(t, nodes, "api up with three regions", func(st *statuspage.Status) bool {
		c := checkByName(st, "api")
		return c.State == "up" && c.Regions["eu"].Vote == "up" && c.Regions["us"].Vote == "up" && c.Regions["ap"].Vote == "up"
	})
	failing.Store(true)
	// The outage is first seen by one region's next probe: run it now.
	nodes[1].n.sched.RunNow("api")
	waitMesh(t, nodes, "api down everywhere", func(st *statuspage.Status) bool {
		return checkByName(st, "api").State == "down"
	})
	first := time.Unix(0, nodes[1].prober.first.Load())
	if took := time.Since(first); took > 10*time.Second {
		t.Fatalf("down %s after the first failed probe, want within 10s", took)
	}
	t.Logf("down %s after the first failed probe (interval 60s, fail_after 2)", time.Since(first).Round(time.Millisecond))
}

// idWatch polls every node's status and records each incident id a node
// shows while the check is down.
type idWatch struct {
	mu   sync.Mutex
	seen map[string]map[string]bool // incident id -> nodes that showed it
	stop chan struct{}
	done chan struct{}
}

func watchIDs(nodes []*meshNode, check string) *idWatch {
	w := &idWatch{seen: map[string]map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			for _, m := range nodes {
				c := checkByName(m.n.Status(), check)
				if c.State != "down" {
					continue
				}
				w.mu.Lock()
				if w.seen[c.IncidentID] == nil {
					w.seen[c.IncidentID] = map[string]bool{}
				}
				w.seen[c.IncidentID][m.n.o.Name] = true
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *idWatch) end() map[string]map[string]bool {
	close(w.stop)
	<-w.done
	return w.seen
}

// The contract: incident_id is non-empty from the moment a check shows down,
// and the same on every node. Nodes that reach the quorum on different
// partial views must still never show different ids, not even briefly.
func TestMeshIncidentIDSameOnEveryNodeFromTheStart(t *testing.T) {
	target, failing := switchableTarget(t)
	hook := newHookRecorder(t)
	nodes := startMesh(t, meshConfig(target.URL, hook.srv.URL, "1s"), []string{"eu", "us", "ap"})
	for round := 1; round <= 3; round++ {
		waitMesh(t, nodes, "api up with three voting regions", func(st *statuspage.Status) bool {
			c := checkByName(st, "api")
			return c.State == "up" && c.Regions["eu"].Vote == "up" && c.Regions["us"].Vote == "up" && c.Regions["ap"].Vote == "up"
		})
		w := watchIDs(nodes, "api")
		failing.Store(true)
		waitMesh(t, nodes, "api down everywhere", func(st *statuspage.Status) bool {
			return checkByName(st, "api").State == "down"
		})
		failing.Store(false)
		waitMesh(t, nodes, "api up again everywhere", func(st *statuspage.Status) bool {
			return checkByName(st, "api").State == "up"
		})
		seen := w.end()
		if len(seen) != 1 {
			t.Fatalf("outage %d: nodes showed %d incident ids while down: %v", round, len(seen), seen)
		}
		for id, by := range seen {
			if id == "" || len(by) != len(nodes) {
				t.Fatalf("outage %d: incident %q shown by %v", round, id, by)
			}
			t.Logf("outage %d: incident %s on every node", round, id)
		}
	}
}

// A slow delivery is not duplicated when the designated sender changes: the
// sender (ap-1) cannot deliver (the pager answers 503) when a node that
// sorts first (aa-1) joins mid-incident and becomes the sender. aa-1 takes
// the cluster's incident id, sees ap-1's live claim and queues nothing;
// ap-1 delivers once the pager accepts, and aa-1 then sends the resolve.
func TestMeshSendClaimSurvivesSenderChange(t *testing.T) {
	target, failing := switchableTarget(t)
	hook := newHookRecorder(t)
	hook.refuse.Store(true)
	cfgText := meshConfig(target.URL, hook.srv.URL, "1s")
	nodes := startMesh(t, cfgText, []string{"eu", "us", "ap"})
	failing.Store(true)
	waitMesh(t, nodes, "api down everywhere", func(st *statuspage.Status) bool {
		return checkByName(st, "api").State == "down"
	})
	incident := checkByName(nodes[0].n.Status(), "api").IncidentID
	deadline := time.Now().Add(20 * time.Second)
	for hook.refused.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the sender never tried to deliver the trigger")
		}
		time.Sleep(10 * time.Millisecond)
	}

	aa := addMeshNode(t, writeFile(t, "mesh2.yaml", cfgText), nodes[0].key, "aa-1", "eu", nodes[0].n.GossipAddr())
	all := append([]*meshNode{aa}, nodes...)
	waitMesh(t, all, "aa-1 the designated sender, api down under the cluster's incident", func(st *statuspage.Status) bool {
		c := checkByName(st, "api")
		return len(st.Cluster.Members) == 4 && c.State == "down" && c.IncidentID == incident
	})
	sender := aa.n.ev.View().Sender
	if sender != "aa-1" {
		t.Fatalf("test premise: aa-1 should be the designated sender, got %q", sender)
	}
	// Several sweeps of the new sender with the claim in force.
	seen := aa.n.PagerSweeps()
	for aa.n.PagerSweeps() < seen+3 {
		time.Sleep(10 * time.Millisecond)
	}
	if es, err := aa.n.outbox.Entries(context.Background(), incident); err != nil || len(es) != 0 {
		t.Fatalf("the new sender queued %d notifications of a claimed incident (err %v): %+v", len(es), err, es)
	}

	hook.refuse.Store(false)
	deadline = time.Now().Add(30 * time.Second)
	for len(hook.all()) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the claimed trigger was never delivered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	failing.Store(false)
	waitMesh(t, all, "api up again everywhere", func(st *statuspage.Status) bool {
		return checkByName(st, "api").State == "up"
	})
	deadline = time.Now().Add(15 * time.Second)
	for len(hook.all()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// Any duplicate would come from a queued entry: wait until no node has
	// one pending (a node whose retry backed off, up to 30 s, finds it
	// delivered by another on its next attempt).
	for _, m := range all {
		deadline := time.Now().Add(40 * time.Second)
		for {
			p, err := m.n.outbox.Pending(context.Background())
			if err == nil && len(p) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: outbox still pending: %v %v", m.n.o.Name, p, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	hook.onePage(t, incident)
	if es, _ := aa.n.outbox.Entries(context.Background(), incident); len(es) != 1 || es[0].Action != "resolve" {
		t.Fatalf("aa-1's outbox holds %+v, want only the resolve", es)
	}
}

// A target that accepts connections and hangs fails a probe only at the
// timeout (10 s here: interval 60s sets no shorter one). A probe that runs
// far longer than the check usually answers in gets the next one started
// alongside it and asks every region to probe, so the regions' confirming
// probes hang at the same time as the first instead of after it: down
// about 1.5 s after the first failed probe, not a whole timeout more (the
// precise timing is TestProbeLoopHangingTargetDownWithinTimeout's, on a
// fake clock; this bound leaves room for a loaded machine).
func TestMeshHangingTargetDownWithinHalfATimeout(t *testing.T) {
	var hang atomic.Bool
	release := make(chan struct{})
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang.Load() {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(func() { close(release); target.Close() })
	hook := newHookRecorder(t)
	nodes := startMesh(t, meshConfig(target.URL, hook.srv.URL, "60s"), []string{"eu", "us", "ap"})
	for _, m := range nodes {
		m.n.sched.RunNow("api")
	}
	waitMesh(t, nodes, "api up with three regions", func(st *statuspage.Status) bool {
		c := checkByName(st, "api")
		return c.State == "up" && c.Regions["eu"].Vote == "up" && c.Regions["us"].Vote == "up" && c.Regions["ap"].Vote == "up"
	})
	hang.Store(true)
	nodes[1].n.sched.RunNow("api") // the outage is first met by one region's probe
	waitMesh(t, nodes, "api down everywhere", func(st *statuspage.Status) bool {
		return checkByName(st, "api").State == "down"
	})
	var first time.Time
	for _, m := range nodes {
		if f := m.prober.first.Load(); f != 0 && (first.IsZero() || time.Unix(0, f).Before(first)) {
			first = time.Unix(0, f)
		}
	}
	took := time.Since(first)
	t.Logf("down %s after the first failed probe (a hanging target, timeout 10s)", took.Round(time.Millisecond))
	if took > 9*time.Second {
		t.Fatalf("down %s after the first failed probe of a hanging target; want about 1.5s", took)
	}
}
