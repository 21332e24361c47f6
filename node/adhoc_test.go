package node

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/statuspage"
)

const probeToken = "probe-test-token-0123456789"

func probeMeshConfig(target string) string {
	return fmt.Sprintf(`
cluster:
  regions: [eu, us, ap]
  quorum: 2
  gossip: local
defaults:
  interval: 30s
checks:
  - name: api
    type: http
    url: %s/health
statuspage:
  api_token: %s
`, target, probeToken)
}

func postProbe(t *testing.T, srv *httptest.Server, token, body string) (int, http.Header, *statuspage.ProbeAnswer, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/probe", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	json.NewDecoder(resp.Body).Decode(&raw)
	var ans statuspage.ProbeAnswer
	json.Unmarshal(raw, &ans)
	return resp.StatusCode, resp.Header, &ans, string(raw)
}

func regionOf(ans *statuspage.ProbeAnswer, region string) statuspage.RegionProbe {
	for _, r := range ans.Regions {
		if r.Region == region {
			return r
		}
	}
	return statuspage.RegionProbe{}
}

// TestAdhocProbeFromEveryRegion: three nodes, one per region, on loopback;
// the node asked names one node per region, each probes once and gossips
// its result back.
func TestAdhocProbeFromEveryRegion(t *testing.T) {
	target, _ := switchableTarget(t)
	nodes := startMesh(t, probeMeshConfig(target.URL), []string{"eu", "us", "ap"})
	srv := httptest.NewServer(nodes[0].n.Handler())
	t.Cleanup(srv.Close)

	// Unauthenticated callers get nothing probed.
	if code, _, _, _ := postProbe(t, srv, "", `{"target":"`+target.URL+`"}`); code != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", code)
	}

	// A healthy target: every region up, the verdict up, well within 2 s.
	start := time.Now()
	code, _, ans, raw := postProbe(t, srv, probeToken, `{"target":"`+target.URL+`/health"}`)
	elapsed := time.Since(start)
	if code != 200 || ans.Verdict != "up" || len(ans.Regions) != 3 || len(ans.Up) != 3 || ans.Type != "http" || ans.Quorum != 2 {
		t.Fatalf("healthy target: %d %s", code, raw)
	}
	host := strings.TrimPrefix(target.URL, "http://")
	for _, r := range ans.Regions {
		if r.State != "up" || r.Node != r.Region+"-1" || r.RemoteAddr != host || r.LatencyMS <= 0 || r.StatusCode != 200 || r.ConnectMS <= 0 {
			t.Fatalf("region %s: %+v", r.Region, r)
		}
	}
	t.Logf("ad-hoc probe of a healthy target from 3 regions: %v (the API's own count %.1f ms)", elapsed, ans.ElapsedMS)
	if elapsed > 2*time.Second {
		t.Fatalf("took %v", elapsed)
	}

	// One region's path is cut: it says down, the verdict stays up.
	nodes[1].prober.cut.Store(true)
	_, _, ans, raw = postProbe(t, srv, probeToken, `{"target":"`+target.URL+`/health","timeout":"2s"}`)
	if ans.Verdict != "up" || regionOf(ans, "us").State != "down" || regionOf(ans, "us").Code != "connect_timeout" || len(ans.Down) != 1 {
		t.Fatalf("one region cut: %s", raw)
	}
	// Two regions cut: down, as the quorum rules would page.
	nodes[2].prober.cut.Store(true)
	_, _, ans, raw = postProbe(t, srv, probeToken, `{"target":"`+target.URL+`/health","timeout":"2s"}`)
	if ans.Verdict != "down" || len(ans.Down) != 2 || regionOf(ans, "eu").State != "up" {
		t.Fatalf("two regions cut: %s", raw)
	}
	nodes[1].prober.cut.Store(false)
	nodes[2].prober.cut.Store(false)

	// A TCP port nobody listens on: refused everywhere, down.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	_, _, ans, raw = postProbe(t, srv, probeToken, `{"target":"`+closed+`"}`)
	if ans.Type != "tcp" || ans.Verdict != "down" || regionOf(ans, "ap").Code != "connect_refused" {
		t.Fatalf("closed port: %s", raw)
	}

	// A region whose node is gone cannot answer: with two regions left,
	// one down is not a quorum; with one left, the cluster cannot tell.
	nodes[2].n.Close()
	waitMesh(t, nodes[:2], "ap-1 gone", func(st *statuspage.Status) bool {
		for _, m := range st.Cluster.Members {
			if m.Name == "ap-1" {
				return m.State != "alive"
			}
		}
		return true
	})
	nodes[1].prober.cut.Store(true)
	_, _, ans, raw = postProbe(t, srv, probeToken, `{"target":"`+target.URL+`/health","timeout":"1s"}`)
	if ans.Verdict != "up" || regionOf(ans, "ap").State != "no_answer" || regionOf(ans, "ap").Note != "no node of this region is alive" {
		t.Fatalf("a region without nodes: %s", raw)
	}
	nodes[1].n.Close()
	waitMesh(t, nodes[:1], "us-1 gone", func(st *statuspage.Status) bool {
		for _, m := range st.Cluster.Members {
			if m.Name == "us-1" {
				return m.State != "alive"
			}
		}
		return true
	})
	_, _, ans, raw = postProbe(t, srv, probeToken, `{"target":"`+target.URL+`/health","timeout":"1s"}`)
	if ans.Verdict != "unknown" || len(ans.Up) != 1 || len(ans.NoAnswer) != 2 {
		t.Fatalf("one region left: %s", raw)
	}

	// Bad requests.
	for _, body := range []string{`{}`, `{"target":"http://"}`, `{"target":"x:99999"}`, `{"target":"a.example","type":"smtp"}`,
		`{"target":"a.example","timeout":"5m"}`, `{"target":"a.example","type":"dns","record":"SRV"}`, `{"target":"a","bogus":1}`} {
		if code, _, _, raw := postProbe(t, srv, probeToken, body); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", body, code, raw)
		}
	}

	// The rate limit: a burst, then 429 with Retry-After.
	limited := false
	for range adhocBurst + 2 {
		code, h, _, _ := postProbe(t, srv, probeToken, `{"target":"`+closed+`","timeout":"200ms"}`)
		if code == http.StatusTooManyRequests {
			limited = h.Get("Retry-After") != ""
			break
		}
	}
	if !limited {
		t.Fatal("no 429 after a burst of requests")
	}
}
