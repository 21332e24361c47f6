package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	snap "github.com/vantage-dev/vantage/snapshot"
	"github.com/vantage-dev/vantage/statuspage"
)

const snapToken = "snapshot-test-token-0123456789"

// fakeResolver answers every A query with addr.
func fakeResolver(t *testing.T, addr string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30},
				A: net.ParseIP(addr)})
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// TestSnapshotsReplicatedWithTheIncident: three regions lose the target;
// each node records a snapshot when its vote turns down (ap's resolver
// answers another address), every node stores all three within seconds,
// the incident's snapshots show the difference, and the webhook carries a
// signed link that opens them.
func TestSnapshotsReplicatedWithTheIncident(t *testing.T) {
	target, failing := switchableTarget(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(target.URL, "http://"))
	hook := newHookRecorder(t)
	cfg := fmt.Sprintf(`
cluster:
  regions: [eu, us, ap]
  quorum: 2
  gossip: local
defaults:
  interval: 1s
  fail_after: 2
  recover_after: 2
checks:
  - name: api
    type: http
    url: http://localhost:%s/health
    notify: [hook]
notifiers:
  - name: hook
    type: webhook
    url: %s
statuspage:
  url: http://status.example.test
  api_token: %s
`, port, hook.srv.URL, snapToken)
	good, bad := fakeResolver(t, "127.0.0.1"), fakeResolver(t, "127.0.0.2")
	// The probes fail through the cut prober; the snapshots resolve the
	// name through each region's resolver.
	nodes := startMesh(t, cfg, []string{"eu", "us", "ap"})
	for _, m := range nodes {
		r := good
		if m.region == "ap" {
			r = bad
		}
		m.n.ext.snaps.mu.Lock()
		m.n.ext.snaps.opts = snap.Options{Resolvers: []string{r}, NoTrace: true}
		m.n.ext.snaps.mu.Unlock()
		m.prober.cut.Store(true)
	}
	failing.Store(true)

	waitMesh(t, nodes, "api down everywhere", func(st *statuspage.Status) bool {
		c := checkByName(st, "api")
		return c.State == "down" && c.IncidentID != ""
	})
	incident := checkByName(nodes[0].n.Status(), "api").IncidentID

	// Every node holds the three snapshots.
	ctx := context.Background()
	downAt := map[string]time.Time{}
	deadline := time.Now().Add(15 * time.Second)
	var visible time.Time
	for {
		all := true
		for _, m := range nodes {
			rows, err := m.n.Store().Snapshots(ctx, "api", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) < 3 {
				all = false
			}
			for _, r := range rows {
				downAt[r.Node] = r.DownSince
			}
		}
		if all {
			visible = time.Now()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the snapshots did not reach every node")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var last time.Time
	for _, d := range downAt {
		if d.After(last) {
			last = d
		}
	}
	t.Logf("the last region's vote turned down at %s; its snapshot was stored on every node %v later",
		last.Format("15:04:05.000"), visible.Sub(last).Round(time.Millisecond))
	if visible.Sub(last) > 10*time.Second {
		t.Fatalf("snapshots visible everywhere %v after the down vote", visible.Sub(last))
	}

	// The API: token or signed link only; three regions; ap stands out.
	srv := httptest.NewServer(nodes[1].n.Handler())
	t.Cleanup(srv.Close)
	get := func(path, token string) (int, []byte) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, _ := get("/api/v1/incidents/"+incident+"/snapshots", ""); code != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", code)
	}
	if code, _ := get("/api/v1/incidents/"+incident+"/snapshots?sig=00", ""); code != http.StatusUnauthorized {
		t.Fatalf("with a bad signature: %d", code)
	}
	if code, _ := get("/api/v1/incidents/nope/snapshots", snapToken); code != http.StatusNotFound {
		t.Fatalf("unknown incident: %d", code)
	}
	code, body := get("/api/v1/incidents/"+incident+"/snapshots", snapToken)
	for i := 0; code == http.StatusNotFound && i < 100; i++ { // until nodes[1] holds the incident
		time.Sleep(50 * time.Millisecond)
		code, body = get("/api/v1/incidents/"+incident+"/snapshots", snapToken)
	}
	var is statuspage.IncidentSnapshots
	if err := json.Unmarshal(body, &is); err != nil || code != 200 {
		t.Fatalf("%d %v %s", code, err, body)
	}
	if len(is.Snapshots) != 3 || is.Snapshots[0].Region != "eu" || is.Snapshots[2].Region != "ap" {
		t.Fatalf("snapshots: %s", body)
	}
	for _, sn := range is.Snapshots {
		b, _ := snap.Encode(sn)
		t.Logf("%s: vote down %s, capture began %v later and took %.0f ms; %d bytes encoded",
			sn.Region, sn.DownSince.Format("15:04:05.000"), sn.Taken.Sub(sn.DownSince).Round(time.Millisecond), sn.DurationMS, len(b))
	}
	ap, eu := is.Snapshots[2], is.Snapshots[0]
	if ap.DNS.Addrs[0] != "127.0.0.2" || ap.Connect == nil || ap.Connect.OK || eu.HTTP.Status != 503 || eu.Probe == nil || eu.Probe.Code == "" {
		t.Fatalf("ap %+v %+v; eu %+v %+v", ap.DNS, ap.Connect, eu.HTTP, eu.Probe)
	}
	want := "ap resolved localhost to 127.0.0.2; eu and us to 127.0.0.1"
	found := false
	for _, d := range is.Differences {
		found = found || d.Summary == want
	}
	if !found {
		t.Fatalf("differences %+v", is.Differences)
	}

	// The webhook's down event links the snapshots; the link opens them.
	var link string
	deadline = time.Now().Add(15 * time.Second)
	for link == "" && time.Now().Before(deadline) {
		for _, ev := range hook.all() {
			if ev["event"] == "down" {
				link, _ = ev["snapshots_url"].(string)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	u, err := url.Parse(link)
	if err != nil || u.Host != "status.example.test" || u.Path != "/incidents/"+incident+"/snapshots" || u.Query().Get("sig") == "" {
		t.Fatalf("webhook link %q", link)
	}
	code, body = get(u.RequestURI(), "")
	if code != 200 || !strings.Contains(string(body), want) || !strings.Contains(string(body), `class="diff"`) {
		t.Fatalf("the signed link: %d\n%s", code, body)
	}
	if code, _ := get("/api/v1/incidents/"+incident+"/snapshots?"+u.RawQuery, ""); code != 200 {
		t.Fatalf("the signed link on the JSON API: %d", code)
	}
}
