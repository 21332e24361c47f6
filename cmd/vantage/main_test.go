package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/statuspage"
	"github.com/vantage-dev/vantage/store"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vantage-bin")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "vantage")
	out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build vantage: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func vantage(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestValidate(t *testing.T) {
	good := writeFile(t, "good.yaml", `
checks:
  - name: api
    type: http
    url: http://127.0.0.1:1/health
  - name: db
    type: tcp
    target: 127.0.0.1:5432
`)
	out, errOut, code := vantage(t, nil, "validate", "--config", good)
	if code != 0 || strings.TrimSpace(out) != "OK: 2 checks, 0 notifiers" {
		t.Fatalf("validate good: code %d, out %q, err %q", code, out, errOut)
	}

	bad := writeFile(t, "bad.yaml", `defaults:
  interval: 10s
  timeout: 5s
checks:
  - name: api
    type: http
    url: http://127.0.0.1:1/health
    timeout: 20s
  - name: api
    type: tcp
    target: 127.0.0.1:5432
`)
	out, errOut, code = vantage(t, nil, "validate", "--config", bad)
	if code != 2 || out != "" {
		t.Fatalf("validate bad: code %d, stdout %q", code, out)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 problems, one per line, got:\n%s", errOut)
	}
	if !strings.HasPrefix(lines[0], bad+":8:5: timeout") || !strings.HasPrefix(lines[1], bad+":9:5: duplicate") {
		t.Fatalf("problems not located at the timeout key and the duplicate name:\n%s", errOut)
	}

	if _, _, code := vantage(t, nil, "validate", "--config", filepath.Join(t.TempDir(), "missing.yaml")); code != 2 {
		t.Fatalf("missing file: code %d, want 2", code)
	}
	if _, _, code := vantage(t, nil, "validate"); code != 2 {
		t.Fatalf("no --config: code %d, want 2", code)
	}
}

func TestExampleConfigValid(t *testing.T) {
	out, errOut, code := vantage(t, nil, "validate", "--config", "../../example.yaml")
	if code != 0 || !strings.HasPrefix(out, "OK: ") {
		t.Fatalf("example.yaml: code %d, out %q, err %q", code, out, errOut)
	}
}

func TestVersion(t *testing.T) {
	out, _, code := vantage(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "vantage ") || !strings.Contains(out, "go1.") {
		t.Fatalf("version: code %d, out %q", code, out)
	}
}

func TestRunRefusesPeersWithoutKey(t *testing.T) {
	cfg := writeFile(t, "c.yaml", `
cluster:
  regions: [eu, us, ap]
checks: []
`)
	_, errOut, code := vantage(t, []string{"VANTAGE_GOSSIP_KEY="}, "run", "--config", cfg, "--region", "eu", "--data", t.TempDir(), "--http", "127.0.0.1:0")
	if code != 2 || !strings.Contains(errOut, "gossip key") {
		t.Fatalf("clustered node without key: code %d, stderr %q", code, errOut)
	}
	_, errOut, code = vantage(t, []string{"VANTAGE_GOSSIP_KEY=bm90IGEga2V5"}, "run", "--config", cfg, "--region", "eu", "--data", t.TempDir())
	if code != 2 || !strings.Contains(errOut, "want 16, 24 or 32") {
		t.Fatalf("short key: code %d, stderr %q", code, errOut)
	}
	_, errOut, code = vantage(t, nil, "run", "--config", cfg, "--region", "mars", "--data", t.TempDir(), "--insecure-gossip")
	if code != 2 || !strings.Contains(errOut, "not one of cluster.regions") {
		t.Fatalf("unknown region: code %d, stderr %q", code, errOut)
	}
	if _, _, code := vantage(t, nil, "run", "--bogus"); code != 2 {
		t.Fatalf("bad flag: code %d, want 2", code)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func getStatus(addr string) (*statuspage.Status, error) {
	resp, err := http.Get("http://" + addr + "/api/v1/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st statuspage.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

func waitStatus(t *testing.T, addr, what string, cond func(*statuspage.Status) bool) *statuspage.Status {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last *statuspage.Status
	for time.Now().Before(deadline) {
		if st, err := getStatus(addr); err == nil {
			last = st
			if cond(st) {
				return st
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := json.MarshalIndent(last, "", " ")
	t.Fatalf("timed out waiting for %s; last status:\n%s", what, b)
	return nil
}

func checkByName(st *statuspage.Status, name string) *statuspage.CheckStatus {
	for i := range st.Checks {
		if st.Checks[i].Name == name {
			return &st.Checks[i]
		}
	}
	return nil
}

// lockedBuffer collects a child's stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is a vantage child process started by a test.
type proc struct {
	cmd    *exec.Cmd
	out    *lockedBuffer // stdout and stderr
	exited chan error
}

// startVantage starts the binary with args; the process is killed at the
// end of the test unless it exited, and its output is logged on failure.
func startVantage(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binPath, args...), out: &lockedBuffer{}, exited: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("vantage %s output:\n%s", args[0], p.out.String())
		}
	})
	return p
}

// stop sends sig and waits for a clean exit.
func (p *proc) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("exit after %v: %v", sig, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("did not stop after %v", sig)
	}
}

func TestRunSingleNodeLifecycle(t *testing.T) {
	var failing atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, `{"status":"ok"}`)
	}))
	defer target.Close()
	tcpTarget := strings.TrimPrefix(target.URL, "http://")

	// The on-call side: a webhook receiver recording every event.
	var hookMu sync.Mutex
	var events []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte("s3cret"))
		mac.Write(body)
		if r.Header.Get("X-Vantage-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev map[string]any
		json.Unmarshal(body, &ev)
		hookMu.Lock()
		events = append(events, ev)
		hookMu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer hook.Close()
	hookEvents := func() []map[string]any {
		hookMu.Lock()
		defer hookMu.Unlock()
		return append([]map[string]any(nil), events...)
	}

	httpAddr := freePort(t)
	data := t.TempDir()
	cfg := writeFile(t, "run.yaml", fmt.Sprintf(`
defaults:
  interval: 1s
  timeout: 800ms
  fail_after: 2
  recover_after: 2
checks:
  - name: api
    type: http
    url: %s/health
    expect:
      status: ["200-299"]
      body_contains: '"status":"ok"'
    notify: [hook]
  - name: port
    type: tcp
    target: %s
notifiers:
  - name: hook
    type: webhook
    url: %s
    secret: s3cret
`, target.URL, tcpTarget, hook.URL))

	node := startVantage(t, "run", "--config", cfg, "--node", "n1", "--region", "eu-west", "--http", httpAddr, "--data", data, "--gossip", "127.0.0.1:0")

	st := waitStatus(t, httpAddr, "both checks up", func(st *statuspage.Status) bool {
		a, p := checkByName(st, "api"), checkByName(st, "port")
		return a != nil && p != nil && a.State == "up" && p.State == "up"
	})
	if st.Node.Name != "n1" || st.Node.Region != "eu-west" || st.Cluster.Quorum != 1 {
		t.Fatalf("node info %+v quorum %d", st.Node, st.Cluster.Quorum)
	}
	api := checkByName(st, "api")
	rv, ok := api.Regions["eu-west"]
	if !ok || rv.Vote != "up" || rv.LatencyMS <= 0 || rv.CheckedAt.IsZero() || rv.Error != "" {
		t.Fatalf("region vote %+v", rv)
	}
	if !strings.Contains(node.out.String(), "vantage started") {
		t.Fatal("no startup log line")
	}
	resp, err := http.Get("http://" + httpAddr + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()

	failing.Store(true)
	st = waitStatus(t, httpAddr, "api down", func(st *statuspage.Status) bool { return checkByName(st, "api").State == "down" })
	api = checkByName(st, "api")
	if api.IncidentID == "" || api.Regions["eu-west"].Error != "http_status" || api.Regions["eu-west"].Vote != "down" {
		t.Fatalf("down check %+v", api)
	}
	incident := api.IncidentID
	if checkByName(st, "port").State != "up" {
		t.Fatal("tcp check went down with the http answer")
	}

	failing.Store(false)
	waitStatus(t, httpAddr, "api up again", func(st *statuspage.Status) bool {
		a := checkByName(st, "api")
		return a.State == "up" && a.IncidentID == ""
	})

	// Exactly one down and one up event reached on-call, for this incident.
	deadline := time.Now().Add(20 * time.Second)
	for len(hookEvents()) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	evs := hookEvents()
	if len(evs) != 2 || evs[0]["event"] != "down" || evs[1]["event"] != "up" {
		t.Fatalf("webhook events %v, want one down then one up", evs)
	}
	for _, ev := range evs {
		if ev["incident_id"] != incident || ev["check"] != "api" || ev["target"] != target.URL+"/health" {
			t.Fatalf("webhook event %v", ev)
		}
	}
	if evs[0]["resolved_at"] != nil || evs[1]["resolved_at"] == nil {
		t.Fatalf("resolved_at: down %v, up %v", evs[0]["resolved_at"], evs[1]["resolved_at"])
	}
	if rv := evs[0]["regions"].(map[string]any)["eu-west"].(map[string]any); rv["vote"] != "down" || rv["error"] != "http_status" {
		t.Fatalf("down event region vote %v", rv)
	}

	node.stop(t, syscall.SIGTERM)

	// Everything was flushed: results and the incident are in SQLite.
	s, err := store.Open(filepath.Join(data, "vantage.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	hist, err := s.History(ctx, "api", time.Now().Add(-time.Hour), time.Now().Add(time.Minute), 10000)
	if err != nil {
		t.Fatal(err)
	}
	var oks, fails int
	for _, r := range hist {
		if r.OK {
			oks++
		} else {
			fails++
		}
	}
	if oks == 0 || fails < 2 {
		t.Fatalf("history has %d ok and %d failed results", oks, fails)
	}
	inc, err := s.Incident(ctx, incident)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Check != "api" || inc.ResolvedAt == nil {
		t.Fatalf("incident %+v not stored as resolved", inc)
	}
}

// TestDemo runs `vantage demo` until its three nodes report their checks up,
// then stops it with SIGINT: exit 0.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("demo takes a few seconds")
	}
	addr := freePort(t)
	demo := startVantage(t, "demo", "--http", addr)
	st := waitStatus(t, addr, "the demo's checks up in three regions", func(st *statuspage.Status) bool {
		if len(st.Checks) != 4 {
			return false
		}
		for _, c := range st.Checks {
			if c.State != "up" {
				return false
			}
		}
		return true
	})
	if st.Cluster.Quorum != 2 || len(st.Cluster.Members) != 3 {
		t.Fatalf("demo cluster: quorum %d, %d members", st.Cluster.Quorum, len(st.Cluster.Members))
	}
	if !strings.Contains(demo.out.String(), "Status page: http://"+addr+"/") {
		t.Fatal("demo did not print its status page URL")
	}
	demo.stop(t, os.Interrupt)
}
