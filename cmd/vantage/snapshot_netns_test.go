package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	snap "github.com/vantage-dev/vantage/snapshot"
	"github.com/vantage-dev/vantage/statuspage"
)

// Routed paths to a second target address, different per region:
//
//	eu ── tg                      (1 hop: the target)
//	us ── ru ── tg                (2 hops)
//	ap ── ra1 ── ra2 ── tg        (3 hops; ra2 drops what it forwards to the target)
const (
	snapTgtIP  = "10.213.99.10"
	snapTgtURL = "http://" + snapTgtIP + ":8000/health"
	snapToken  = "netns-snapshot-token-0123456789"
)

func (l *netLab) routedPaths(t *testing.T) (blockAP func()) {
	t.Helper()
	suffix := make([]byte, 3)
	rand.Read(suffix)
	prefix := "vs" + hex.EncodeToString(suffix)
	routers := map[string]string{}
	t.Cleanup(func() {
		for _, ns := range routers {
			if err := labCmd("ip", "netns", "del", ns); err != nil {
				t.Logf("cleanup: %v", err)
			}
		}
	})
	for _, r := range []string{"ru", "ra1", "ra2"} {
		ns := prefix + "-" + r
		if err := labCmd("ip", "netns", "add", ns); err != nil {
			t.Fatal(err)
		}
		routers[r] = ns
	}
	ns := func(role string) string {
		if n, ok := routers[role]; ok {
			return n
		}
		return l.ns[role]
	}
	var steps [][]string
	// link joins two namespaces with a veth pair and addresses (/24).
	link := func(a, aIf, aIP, b, bIf, bIP string) {
		steps = append(steps,
			[]string{"ip", "-n", ns(a), "link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", ns(b)},
			[]string{"ip", "-n", ns(a), "addr", "add", aIP + "/24", "dev", aIf},
			[]string{"ip", "-n", ns(b), "addr", "add", bIP + "/24", "dev", bIf},
			[]string{"ip", "-n", ns(a), "link", "set", aIf, "up"},
			[]string{"ip", "-n", ns(b), "link", "set", bIf, "up"})
	}
	route := func(role, dst, via string) {
		steps = append(steps, []string{"ip", "-n", ns(role), "route", "add", dst, "via", via})
	}
	for _, r := range []string{"ru", "ra1", "ra2"} {
		steps = append(steps, []string{"ip", "-n", ns(r), "link", "set", "lo", "up"},
			[]string{"ip", "netns", "exec", ns(r), "sysctl", "-qw", "net.ipv4.ip_forward=1"})
	}
	steps = append(steps, []string{"ip", "-n", l.ns["tg"], "addr", "add", snapTgtIP + "/32", "dev", "lo"})
	// eu: straight to tg over the bridge.
	route("eu", snapTgtIP+"/32", labTgtIP)
	// us: through ru.
	link("us", "p1", "10.213.31.2", "ru", "ri", "10.213.31.1")
	link("ru", "ro", "10.213.32.1", "tg", "tu", "10.213.32.2")
	route("us", snapTgtIP+"/32", "10.213.31.1")
	route("ru", snapTgtIP+"/32", "10.213.32.2")
	route("tg", "10.213.31.0/24", "10.213.32.1")
	// ap: through ra1 and ra2.
	link("ap", "p1", "10.213.41.2", "ra1", "ri", "10.213.41.1")
	link("ra1", "ro", "10.213.42.1", "ra2", "ri", "10.213.42.2")
	link("ra2", "ro", "10.213.43.1", "tg", "ta", "10.213.43.2")
	route("ap", snapTgtIP+"/32", "10.213.41.1")
	route("ra1", snapTgtIP+"/32", "10.213.42.2")
	route("ra2", snapTgtIP+"/32", "10.213.43.2")
	route("ra2", "10.213.41.0/24", "10.213.42.1")
	route("tg", "10.213.41.0/24", "10.213.43.1")
	for _, s := range steps {
		if err := labCmd(s...); err != nil {
			t.Fatal(err)
		}
	}
	l.serve("tg", snapTgtIP+":8000", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.failing.Load() {
			w.Header().Set("Server", "tg-test")
			http.Error(w, "failing (test)", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	return func() {
		if err := labCmd("ip", "netns", "exec", ns("ra2"), "iptables", "-A", "FORWARD", "-d", snapTgtIP, "-j", "DROP"); err != nil {
			t.Fatal(err)
		}
	}
}

func (l *netLab) incidentSnapshots(n *labNode, id string) (*statuspage.IncidentSnapshots, error) {
	req, _ := http.NewRequest("GET", "http://"+n.addr+"/api/v1/incidents/"+id+"/snapshots", nil)
	req.Header.Set("Authorization", "Bearer "+snapToken)
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	var is statuspage.IncidentSnapshots
	return &is, json.NewDecoder(resp.Body).Decode(&is)
}

// TestNetnsSnapshotHopsDifferPerRegion: real nodes in three namespaces
// whose paths to the target differ; the target fails everywhere and ap's
// path also dies at its second router. Each region's snapshot traces its
// own path, every node serves all three, and the differences name them.
func TestNetnsSnapshotHopsDifferPerRegion(t *testing.T) {
	l := newNetLab(t)
	blockAP := l.routedPaths(t)
	l.cfg = writeFile(t, "snapshots.yaml", fmt.Sprintf(`
cluster:
  regions: [eu, us, ap]
  quorum: 2
  gossip: local
defaults:
  interval: 1s
  timeout: 800ms
  fail_after: 2
  recover_after: 2
checks:
  - name: api
    type: http
    url: %s
    notify: [hook]
notifiers:
  - name: hook
    type: webhook
    url: %s
statuspage:
  url: http://status.example.test
  api_token: %s
`, snapTgtURL, labHook, snapToken))
	l.key = make([]byte, 32)
	rand.Read(l.key)
	for _, region := range allRegions {
		l.startNode(region, t.TempDir())
	}
	l.wait("api up in every region", 60*time.Second, allRegions, func(_ string, st *statuspage.Status) bool {
		c := st.Checks[0]
		return aliveMembers(st) == 3 && c.State == "up" && c.Regions["eu"].Vote == "up" && c.Regions["us"].Vote == "up" && c.Regions["ap"].Vote == "up"
	}, nil)

	// ap's path dies at its second router (ap alone: no incident), then
	// the target fails for everyone.
	blockAP()
	l.wait("ap voting down", 30*time.Second, allRegions, func(_ string, st *statuspage.Status) bool {
		return st.Checks[0].Regions["ap"].Vote == "down"
	}, nil)
	l.failing.Store(true)
	incident := l.agreedIncident(30*time.Second, allRegions...)

	// Every node serves the three snapshots.
	var got map[string]*statuspage.IncidentSnapshots
	deadline := time.Now().Add(20 * time.Second)
	for {
		got = map[string]*statuspage.IncidentSnapshots{}
		for _, region := range allRegions {
			if is, err := l.incidentSnapshots(l.nodes[region], incident); err == nil && len(is.Snapshots) == 3 {
				got[region] = is
			}
		}
		if len(got) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshots on %d of 3 nodes", len(got))
		}
		time.Sleep(50 * time.Millisecond)
	}
	visible := time.Now()
	is := got["us"]
	var lastDown time.Time
	by := map[string]*snap.Snapshot{}
	for _, s := range is.Snapshots {
		by[s.Region] = s
		if s.DownSince.After(lastDown) {
			lastDown = s.DownSince
		}
		b, _ := snap.Encode(s)
		raw, _ := json.Marshal(s)
		t.Logf("%s: vote down %s, capture began %v later, took %.0f ms; %d bytes (%d as JSON); path %s",
			s.Region, s.DownSince.Format("15:04:05.000"), s.Taken.Sub(s.DownSince).Round(time.Millisecond), s.DurationMS,
			len(b), len(raw), hops(s))
	}
	t.Logf("the last down vote's snapshot was served by every node %v after the vote (polled every 50 ms)",
		visible.Sub(lastDown).Round(time.Millisecond))
	if visible.Sub(lastDown) > 10*time.Second {
		t.Errorf("visible everywhere %v after the down vote", visible.Sub(lastDown))
	}

	want := map[string]string{
		"eu": snapTgtIP + "*",
		"us": "10.213.31.1 " + snapTgtIP + "*",
		"ap": "10.213.41.1 10.213.42.2 -",
	}
	for region, w := range want {
		if h := hops(by[region]); h != w {
			t.Errorf("%s: path %q, want %q", region, h, w)
		}
	}
	if by["eu"].HTTP.Status != 503 || by["us"].HTTP.Status != 503 || by["ap"].HTTP.Status != 0 || by["ap"].Probe.Code != "connect_timeout" {
		t.Errorf("statuses eu %d us %d ap %d (%s)", by["eu"].HTTP.Status, by["us"].HTTP.Status, by["ap"].HTTP.Status, by["ap"].Probe.Code)
	}
	var sums []string
	trace := ""
	for _, d := range is.Differences {
		sums = append(sums, d.Field+": "+d.Summary)
		if d.Field == "traceroute.end" {
			trace = d.Summary
		}
	}
	t.Logf("differences:\n  %s", strings.Join(sums, "\n  "))
	if !strings.Contains(trace, "ap to 10.213.42.2 at hop 2, then nothing") || !strings.Contains(trace, "the target in 2 hops") {
		t.Errorf("traceroute difference %q", trace)
	}
}

// hops writes a path as "addr addr*" (* after the target, - for silence
// at the end).
func hops(s *snap.Snapshot) string {
	if s == nil || s.Trace == nil {
		return "(no traceroute)"
	}
	var parts []string
	for _, h := range s.Trace.Hops {
		switch {
		case h.Addr == "":
			parts = append(parts, "-")
		case h.Reached:
			parts = append(parts, h.Addr+"*")
		default:
			parts = append(parts, h.Addr)
		}
	}
	// Trailing silent hops say the same as one.
	for len(parts) > 1 && parts[len(parts)-1] == "-" && parts[len(parts)-2] == "-" {
		parts = parts[:len(parts)-1]
	}
	return strings.Join(parts, " ")
}
