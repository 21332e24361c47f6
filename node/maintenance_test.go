package node

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/checker"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/statuspage"
)

func maintConfig(target, hook string) string {
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
    notify: [hook]
notifiers:
  - name: hook
    type: webhook
    url: %s
statuspage:
  title: Mesh Status
  api_token: %s
`, target, hook, meshToken)
}

func apiDo(t *testing.T, srv *httptest.Server, method, path, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// listed reports whether a node's GET /api/v1/maintenance lists the
// runtime window id.
func listed(t *testing.T, srv *httptest.Server, id string) bool {
	t.Helper()
	code, m := apiDo(t, srv, "GET", "/api/v1/maintenance", "")
	if code != 200 {
		t.Fatalf("GET /api/v1/maintenance: %d %v", code, m)
	}
	for _, w := range m["maintenance"].([]any) {
		if w := w.(map[string]any); w["id"] == id && w["source"] == "api" {
			return true
		}
	}
	return false
}

// activeMaintenances is the names in a node's Statuspage active.json.
func activeMaintenances(t *testing.T, srv *httptest.Server) []string {
	t.Helper()
	code, m := apiDo(t, srv, "GET", "/api/v2/scheduled-maintenances/active.json", "")
	if code != 200 {
		t.Fatalf("active.json: %d", code)
	}
	var names []string
	for _, sm := range m["scheduled_maintenances"].([]any) {
		names = append(names, sm.(map[string]any)["name"].(string))
	}
	return names
}

// A window scheduled on one node puts the check in maintenance on every
// node within seconds and is listed everywhere; an outage inside it pages
// nobody; a restarted node keeps it from its own store; cancelled on
// another node, the outage shows and pages once.
func TestMeshRuntimeMaintenance(t *testing.T) {
	target, failing := switchableTarget(t)
	hook := newHookRecorder(t)
	path := writeFile(t, "maint.yaml", maintConfig(target.URL, hook.srv.URL))
	key := make([]byte, 32)
	rand.Read(key)
	apDir := t.TempDir()
	eu := addMeshNode(t, path, key, "eu-1", "eu", "")
	nodes := []*meshNode{eu, addMeshNode(t, path, key, "us-1", "us", eu.n.GossipAddr()),
		addMeshNodeIn(t, path, key, "ap-1", "ap", eu.n.GossipAddr(), apDir)}
	waitMesh(t, nodes, "a whole mesh with api up", func(st *statuspage.Status) bool {
		return aliveCount(st) == 3 && checkByName(st, "api").State == "up"
	})
	serve := func(n *Node) *httptest.Server {
		s := httptest.NewServer(n.Handler())
		t.Cleanup(s.Close)
		return s
	}
	srvs := []*httptest.Server{serve(nodes[0].n), serve(nodes[1].n), serve(nodes[2].n)}

	// Refused: no token, an unknown check (the node's config decides).
	now := time.Now().UTC()
	body := fmt.Sprintf(`{"checks":["api"],"title":"Core switch replacement","start":%q,"end":%q}`,
		now.Add(-time.Minute).Format(time.RFC3339), now.Add(10*time.Minute).Format(time.RFC3339))
	if code, _, m := apiPost(t, srvs[0], "/api/v1/maintenance", "", body); code != 401 {
		t.Fatalf("without the token: %d %v", code, m)
	}
	if code, _, m := apiPost(t, srvs[0], "/api/v1/maintenance", meshToken, strings.Replace(body, `"api"`, `"nope"`, 1)); code != 400 ||
		!strings.Contains(fmt.Sprint(m["error"]), `unknown check "nope"`) {
		t.Fatalf("an unknown check: %d %v", code, m)
	}

	// Scheduled on eu-1: maintenance everywhere within seconds.
	posted := time.Now()
	code, _, m := apiPost(t, srvs[0], "/api/v1/maintenance", meshToken, body)
	if code != 201 {
		t.Fatalf("schedule: %d %v", code, m)
	}
	id := m["id"].(string)
	waitMesh(t, nodes, "api in maintenance on every node", func(st *statuspage.Status) bool {
		return checkByName(st, "api").State == "maintenance"
	})
	took := time.Since(posted)
	t.Logf("api in maintenance on every node %s after the POST", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Fatalf("maintenance reached every node after %s", took)
	}
	for i, s := range srvs {
		deadline := time.Now().Add(10 * time.Second)
		for !listed(t, s, id) || !contains(activeMaintenances(t, s), "Core switch replacement") {
			if time.Now().After(deadline) {
				t.Fatalf("node %d does not list the window: %v", i, activeMaintenances(t, s))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// An outage inside the window: every region votes down, nobody pages.
	failing.Store(true)
	waitMesh(t, nodes, "every region voting down, api still in maintenance", func(st *statuspage.Status) bool {
		c := checkByName(st, "api")
		return c.State == "maintenance" && c.Regions["eu"].Vote == "down" && c.Regions["us"].Vote == "down" && c.Regions["ap"].Vote == "down"
	})
	time.Sleep(3 * time.Second) // what would have paged has had its time
	for _, mn := range nodes {
		if c := checkByName(mn.n.Status(), "api"); c.State != "maintenance" || c.IncidentID != "" {
			t.Fatalf("%s: api %s with incident %q during the window", mn.region, c.State, c.IncidentID)
		}
	}
	if evs := hook.all(); len(evs) != 0 {
		t.Fatalf("an outage during maintenance paged: %v", evs)
	}

	// ap-1 restarts alone (no peer to learn from): its store keeps the
	// window, and api is in maintenance there too.
	if err := nodes[2].n.Close(); err != nil {
		t.Fatal(err)
	}
	alone := addMeshNodeIn(t, path, key, "ap-1", "ap", "", apDir)
	if ws := alone.n.mesh.Maint.Windows(); len(ws) != 1 || ws[0].ID != id {
		t.Fatalf("restarted node's windows: %+v", ws)
	}
	waitMesh(t, []*meshNode{alone}, "api in maintenance on the restarted node", func(st *statuspage.Status) bool {
		return aliveCount(st) == 1 && checkByName(st, "api").State == "maintenance"
	})
	if !listed(t, serve(alone.n), id) {
		t.Fatal("the restarted node does not list the window")
	}
	if err := alone.n.Close(); err != nil {
		t.Fatal(err)
	}
	nodes[2] = addMeshNodeIn(t, path, key, "ap-1", "ap", eu.n.GossipAddr(), apDir)
	srvs[2] = serve(nodes[2].n)
	waitMesh(t, nodes, "ap-1 back, api still in maintenance", func(st *statuspage.Status) bool {
		return aliveCount(st) == 3 && checkByName(st, "api").State == "maintenance"
	})

	// Cancelled on us-1: the outage shows everywhere and pages once.
	if code, m := apiDo(t, srvs[1], "DELETE", "/api/v1/maintenance/"+id, ""); code != 401 {
		t.Fatalf("cancel without the token: %d %v", code, m)
	}
	if code, m := apiDo(t, srvs[1], "DELETE", "/api/v1/maintenance/"+id, meshToken); code != 200 || m["status"] != "cancelled" {
		t.Fatalf("cancel: %d %v", code, m)
	}
	waitMesh(t, nodes, "api down everywhere with one incident id", func(st *statuspage.Status) bool {
		c := checkByName(st, "api")
		return c.State == "down" && c.IncidentID != "" && c.IncidentID == checkByName(nodes[0].n.Status(), "api").IncidentID
	})
	incident := checkByName(nodes[0].n.Status(), "api").IncidentID
	for i, s := range srvs {
		if listed(t, s, id) {
			t.Fatalf("node %d still lists the cancelled window", i)
		}
	}
	// Every node stored the cancellation.
	for _, mn := range nodes {
		deadline := time.Now().Add(10 * time.Second)
		for {
			ws, err := mn.n.store.MaintenanceWindows(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(ws) == 1 && ws[0].Deleted {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s stored %+v, want the cancellation", mn.region, ws)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	failing.Store(false)
	waitMesh(t, nodes, "api up again everywhere", func(st *statuspage.Status) bool {
		c := checkByName(st, "api")
		return c.State == "up" && c.IncidentID == ""
	})
	for deadline := time.Now().Add(15 * time.Second); len(hook.all()) < 2 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second)
	hook.onePage(t, incident)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// A changed statuspage.api_token applies on reload: the old token is
// refused at once, the new one taken. A token the node was given at start
// (VANTAGE_API_TOKEN) keeps winning over the file.
func TestReloadRotatesAPIToken(t *testing.T) {
	const (
		oldTok = "the-old-token-0123456789"
		newTok = "the-new-token-0123456789"
		envTok = "from-the-environment-0123456789"
	)
	text := func(tok string) string {
		return fmt.Sprintf("statuspage: {api_token: %s}\nchecks:\n  - {name: api, type: tcp, target: 127.0.0.1:1, interval: 1s}\n", tok)
	}
	path := writeFile(t, "token.yaml", text(oldTok))
	start := func(apiToken string) (*Node, *httptest.Server) {
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		n, err := New(context.Background(), Options{Config: cfg, Name: "solo", Region: "local", APIToken: apiToken,
			DBPath: filepath.Join(dir, "v.db"), OutboxPath: filepath.Join(dir, "o.db"),
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
			Prober: checker.New(checker.Options{})})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		s := httptest.NewServer(n.Handler())
		t.Cleanup(s.Close)
		return n, s
	}
	now := time.Now().UTC()
	body := fmt.Sprintf(`{"checks":["api"],"start":%q,"end":%q}`, now.Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	post := func(s *httptest.Server, tok string) int {
		code, _, _ := apiPost(t, s, "/api/v1/maintenance", tok, body)
		return code
	}
	reload := func(n *Node, tok string) {
		writeAtomically(t, path, text(tok))
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Reload(cfg); err != nil {
			t.Fatal(err)
		}
	}

	// The file's token (vantage run passes it as the resolved one).
	n, s := start(oldTok)
	if code := post(s, oldTok); code != 201 {
		t.Fatalf("old token before the reload: %d", code)
	}
	reload(n, newTok)
	if code := post(s, oldTok); code != 401 {
		t.Fatalf("old token right after the reload: %d, want 401", code)
	}
	if code := post(s, newTok); code != 201 {
		t.Fatalf("new token right after the reload: %d, want 201", code)
	}
	if code, _ := apiDo(t, s, "GET", "/api/v1/status", oldTok); code != 401 {
		t.Fatalf("old token on the operator view: %d", code)
	}

	// The environment's token stays whatever the file says.
	reload(n, oldTok) // the file as it was at start
	n2, s2 := start(envTok)
	reload(n2, newTok)
	if code := post(s2, envTok); code != 201 {
		t.Fatalf("environment token after a reload: %d, want 201", code)
	}
	if code := post(s2, newTok); code != 401 {
		t.Fatalf("file token while the environment's is set: %d, want 401", code)
	}
}
