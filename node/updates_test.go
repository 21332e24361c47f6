package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/checker"
	"github.com/vantage-dev/vantage/cluster"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/statuspage"
)

const meshToken = "mesh-test-token-0123456789"

func updatesConfig(target string) string {
	return fmt.Sprintf(`
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
    url: %s/health
statuspage:
  title: Mesh Status
  api_token: %s
`, target, meshToken)
}

// apiPost posts JSON to a node's handler.
func apiPost(t *testing.T, srv *httptest.Server, path, token, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp.StatusCode, resp.Header, m
}

type summaryDoc struct {
	Incidents []struct {
		ID              string `json:"id"`
		Name            string `json:"name"`
		Status          string `json:"status"`
		Impact          string `json:"impact"`
		IncidentUpdates []struct {
			ID, Status, Body string
		} `json:"incident_updates"`
	} `json:"incidents"`
	Status struct {
		Indicator string `json:"indicator"`
	} `json:"status"`
}

func getSummary(t *testing.T, srv *httptest.Server) summaryDoc {
	t.Helper()
	resp, err := http.Get(srv.URL + "/api/v2/summary.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d summaryDoc
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

// waitSummary waits until cond holds for a node's summary.json.
func waitSummary(t *testing.T, srv *httptest.Server, what string, within time.Duration, cond func(summaryDoc) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		d := getSummary(t, srv)
		if cond(d) {
			return
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(d, "", " ")
			t.Fatalf("timed out after %s waiting for %s; summary:\n%s", within, what, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasUpdate(d summaryDoc, incident, body string) bool {
	for _, i := range d.Incidents {
		if i.ID != incident {
			continue
		}
		for _, u := range i.IncidentUpdates {
			if u.Body == body {
				return true
			}
		}
	}
	return false
}

// operatorWrites counts a node's manual incidents and stored updates.
func operatorWrites(t *testing.T, n *Node) (manual, updates int) {
	t.Helper()
	ctx := context.Background()
	incs, err := n.store.Incidents(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, i := range incs {
		ids = append(ids, i.ID)
		if i.Manual {
			manual++
		}
	}
	ups, err := n.store.IncidentUpdates(ctx, ids...)
	if err != nil {
		t.Fatal(err)
	}
	for _, us := range ups {
		updates += len(us)
	}
	return manual, updates
}

// An update posted on one node shows on every node; a write without the
// token is refused and nothing reaches any node; a node that joins later
// catches up through push-pull.
func TestMeshIncidentUpdates(t *testing.T) {
	target, failing := switchableTarget(t)
	nodes := startMesh(t, updatesConfig(target.URL), []string{"eu", "us", "ap"})
	var srvs []*httptest.Server
	for _, m := range nodes {
		s := httptest.NewServer(m.n.Handler())
		t.Cleanup(s.Close)
		srvs = append(srvs, s)
	}
	a, c := srvs[0], srvs[2]

	// Without the token, or with a wrong one: 401 and nothing stored.
	for _, tok := range []string{"", "wrong-token-wrong-token"} {
		code, hdr, m := apiPost(t, a, "/api/v1/incidents", tok, `{"title":"Unauthorized","body":"x","impact":"critical"}`)
		if code != 401 || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("manual incident with token %q: %d %v", tok, code, m)
		}
	}

	// A manual incident opened on A, updated on B, shows on C.
	start := time.Now()
	code, _, m := apiPost(t, a, "/api/v1/incidents", meshToken,
		`{"title":"Email delays","body":"Emails arrive late.","impact":"major","checks":["api"]}`)
	if code != 201 {
		t.Fatalf("open manual incident: %d %v", code, m)
	}
	id := m["incident"].(map[string]any)["id"].(string)
	waitSummary(t, c, "the manual incident on node C", 30*time.Second, func(d summaryDoc) bool {
		return hasUpdate(d, id, "Emails arrive late.")
	})
	t.Logf("manual incident on node C after %s", time.Since(start).Round(time.Millisecond))

	// A long update (several gossip chunks) posted on B.
	var long strings.Builder
	r := rand.New(rand.NewPCG(1, 2))
	for long.Len() < statuspage.MaxUpdateBody-20 {
		long.WriteString(fmt.Sprintf("%x ", r.Uint64()))
	}
	body, _ := json.Marshal(map[string]string{"status": "identified", "body": long.String()})
	start = time.Now()
	if code, _, m := apiPost(t, srvs[1], "/api/v1/incidents/"+id+"/updates", meshToken, string(body)); code != 201 {
		t.Fatalf("update on B: %d %v", code, m)
	}
	for _, s := range []*httptest.Server{a, c} {
		waitSummary(t, s, "the long update on nodes A and C", 30*time.Second, func(d summaryDoc) bool {
			return hasUpdate(d, id, strings.TrimSpace(long.String())) && d.Incidents[0].Status == "identified"
		})
	}
	t.Logf("10 KB update on A and C after %s", time.Since(start).Round(time.Millisecond))

	// Resolved on C: gone from every node's unresolved incidents.
	if code, _, m := apiPost(t, c, "/api/v1/incidents/"+id+"/updates", meshToken, `{"status":"resolved","body":"All delivered."}`); code != 201 {
		t.Fatalf("resolve on C: %d %v", code, m)
	}
	for _, s := range srvs {
		waitSummary(t, s, "the manual incident resolved everywhere", 30*time.Second, func(d summaryDoc) bool {
			for _, i := range d.Incidents {
				if i.ID == id {
					return false
				}
			}
			return true
		})
	}

	// A check's incident: an update posted on A shows on C.
	failing.Store(true)
	waitMesh(t, nodes, "api down everywhere with one incident id", func(st *statuspage.Status) bool {
		c := checkByName(st, "api")
		return c.State == "down" && c.IncidentID != "" && c.IncidentID == checkByName(nodes[0].n.Status(), "api").IncidentID
	})
	incID := checkByName(nodes[0].n.Status(), "api").IncidentID
	if code, _, m := apiPost(t, a, "/api/v1/incidents/"+incID+"/updates", meshToken, `{"status":"resolved","body":"Fixed?"}`); code != 409 {
		t.Fatalf("resolving a down check's incident by hand: %d %v", code, m)
	}
	if code, _, m := apiPost(t, a, "/api/v1/incidents/"+incID+"/updates", meshToken, `{"status":"identified","body":"A bad deploy; rolling back."}`); code != 201 {
		t.Fatalf("update of the check's incident: %d %v", code, m)
	}
	waitSummary(t, c, "the check incident's update on node C", 30*time.Second, func(d summaryDoc) bool {
		return hasUpdate(d, incID, "A bad deploy; rolling back.")
	})

	// Every node holds exactly the authorized writes: one manual incident
	// and its three updates, and the check incident's update.
	for _, m := range nodes {
		manual, updates := operatorWrites(t, m.n)
		if manual != 1 || updates != 4 {
			t.Fatalf("%s: %d manual incidents, %d updates; want 1 and 4", m.region, manual, updates)
		}
	}

	// A node that joins now, while the check is down, catches up through
	// push-pull: the manual incident and every update, and shows the
	// check incident's update once it sees the check down itself.
	late := startLateNode(t, nodes[0], "eu-2", "eu")
	ls := httptest.NewServer(late.Handler())
	t.Cleanup(ls.Close)
	start = time.Now()
	waitSummary(t, ls, "the check incident's update on a late node", 30*time.Second, func(d summaryDoc) bool {
		return hasUpdate(d, incID, "A bad deploy; rolling back.")
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		manual, updates := operatorWrites(t, late)
		if manual == 1 && updates == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("late node: %d manual incidents, %d updates; want 1 and 4", manual, updates)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("late node caught up after %s", time.Since(start).Round(time.Millisecond))
	failing.Store(false)
}

// startLateNode starts another node with the mesh's config and key, joined
// to seed.
func startLateNode(t *testing.T, seed *meshNode, name, region string) *Node {
	t.Helper()
	so := seed.n.o
	dir := t.TempDir()
	level := slog.LevelWarn
	if os.Getenv("VANTAGE_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("node", name)
	cfg, err := config.Load(so.Config.Path)
	if err != nil {
		t.Fatal(err)
	}
	g := &cluster.Config{Name: name, Region: region, Bind: "127.0.0.1:0", Profile: "local", Key: so.Gossip.Key, Logger: log,
		Join: []string{seed.n.GossipAddr()}}
	n, err := New(context.Background(), Options{Config: cfg, Name: name, Region: region,
		DBPath: filepath.Join(dir, "v.db"), OutboxPath: filepath.Join(dir, "outbox.db"), Logger: log, Gossip: g,
		Prober: &cutProber{inner: checker.New(checker.Options{})}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// Without a resolved token the node takes the config's.
func TestAPITokenFromConfig(t *testing.T) {
	cfg, err := config.Load(writeFile(t, "t.yaml", "statuspage: {api_token: from-config-0123456789}\nchecks:\n  - {name: a, type: tcp, target: 127.0.0.1:1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if tok := apiToken(Options{Config: cfg}); tok != "from-config-0123456789" {
		t.Fatalf("node token without a setting: %q", tok)
	}
	if tok := apiToken(Options{Config: cfg, APIToken: "resolved-0123456789"}); tok != "resolved-0123456789" {
		t.Fatalf("node token with a setting: %q", tok)
	}
}
