package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/checker"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/statuspage"
)

func reloadConfig(target, hook, checks string) string {
	return fmt.Sprintf(`
defaults:
  interval: 1s
  fail_after: 1
  recover_after: 1
statuspage:
  title: Before
checks:
%s
notifiers:
  - name: hook
    type: webhook
    url: %s
`, strings.ReplaceAll(checks, "TARGET", target), hook)
}

// A reload adds, removes and changes checks in place: the check that stays
// keeps its open incident (same id, still down) and its history; a removed
// check's open incident is closed and resolved with on-call; a config this
// node cannot run is rejected whole.
func TestReloadKeepsIncidentsAndHistory(t *testing.T) {
	target, failing := switchableTarget(t)
	hook := newHookRecorder(t)
	path := writeFile(t, "reload.yaml", reloadConfig(target.URL, hook.srv.URL, `
  - {name: api, type: http, url: TARGET/api, notify: [hook]}
  - {name: old, type: http, url: TARGET/old, notify: [hook]}
`))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n, err := New(context.Background(), Options{Config: cfg, Name: "solo", Region: "local",
		DBPath: filepath.Join(dir, "v.db"), OutboxPath: filepath.Join(dir, "o.db"), Logger: log,
		Prober: checker.New(checker.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	wait := func(what string, cond func(*statuspage.Status) bool) *statuspage.Status {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			st := n.Status()
			if cond(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: %+v", what, st.Checks)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	failing.Store(true)
	st := wait("api and old down with incidents", func(st *statuspage.Status) bool {
		a, o := checkByName(st, "api"), checkByName(st, "old")
		return a.State == "down" && a.IncidentID != "" && o.State == "down" && o.IncidentID != ""
	})
	apiIncident, oldIncident := checkByName(st, "api").IncidentID, checkByName(st, "old").IncidentID
	waitHook := func(k int) []map[string]any {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for len(hook.all()) < k {
			if time.Now().After(deadline) {
				t.Fatalf("webhook got %v, want %d events", hook.all(), k)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return hook.all()
	}
	waitHook(2) // both triggers

	// Rejected: this node's region is not in the new regions.
	bad, err := config.Parse(path, []byte("cluster: {regions: [eu, us]}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Reload(bad); err == nil || !strings.Contains(err.Error(), "region") {
		t.Fatalf("reload into foreign regions: %v", err)
	}
	if checkByName(n.Status(), "old") == nil {
		t.Fatal("a rejected reload changed the running checks")
	}
	// Rejected: a route sends to a notifier this node does not run.
	routed, err := config.Parse(path, []byte(reloadConfig(target.URL, hook.srv.URL, `
  - {name: api, type: http, url: TARGET/api, notify: [hook]}
`)+`
  - {name: pager2, type: webhook, url: http://127.0.0.1:1/}
routes:
  - {match: {severity: critical}, notify: [pager2]}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Reload(routed); err == nil || !strings.Contains(err.Error(), `route 1 notifies "pager2"`) {
		t.Fatalf("reload routing to a new notifier: %v", err)
	}
	// Rejected: the monthly report goes through a notifier this node does not run.
	reported, err := config.Parse(path, []byte(reloadConfig(target.URL, hook.srv.URL, `
  - {name: api, type: http, url: TARGET/api, notify: [hook]}
`)+`
  - {name: mail, type: email, smtp: "127.0.0.1:25", from: "status@example.com", to: [ops@example.com]}
reports: {to: [cto@example.com], notifier: mail}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Reload(reported); err == nil || !strings.Contains(err.Error(), `reports notifies "mail"`) {
		t.Fatalf("reload mailing the report through a new notifier: %v", err)
	}

	next, err := config.Parse(path, []byte(reloadConfig(target.URL, hook.srv.URL, `
  - {name: new, type: http, url: TARGET/new, notify: [hook]}
  - {name: api, type: http, url: TARGET/api, notify: [hook], description: now with a description}
`)+"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	next.StatusPage.Title = "After"
	res, err := n.Reload(next)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Added, res.Removed, res.Changed) != "[new] [old] [api]" {
		t.Fatalf("reload result %+v", res)
	}
	st = n.Status()
	if a := checkByName(st, "api"); a.State != "down" || a.IncidentID != apiIncident {
		t.Fatalf("api after reload: %s %q, want down %q", a.State, a.IncidentID, apiIncident)
	}
	if checkByName(st, "old") != nil {
		t.Fatal("removed check still shown")
	}
	wait("the added check probed", func(st *statuspage.Status) bool {
		c := checkByName(st, "new")
		return c != nil && c.State == "down"
	})
	// The removed check's incident is closed in the store and resolved with
	// on-call; its history stays.
	inc, err := n.store.Incident(context.Background(), oldIncident)
	if err != nil || inc.Open() {
		t.Fatalf("removed check's incident: %+v, %v", inc, err)
	}
	evs := waitHook(4) // + new's trigger and old's resolve
	resolved := false
	for _, ev := range evs {
		resolved = resolved || (ev["event"] == "up" && ev["incident_id"] == oldIncident)
	}
	if !resolved {
		t.Fatalf("no resolve for the removed check's incident: %v", evs)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		hist, err := n.store.History(context.Background(), "old", time.Now().Add(-time.Hour), time.Now().Add(time.Minute), 10)
		if err == nil && len(hist) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("removed check's history: %d results, %v", len(hist), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Recovery still resolves the kept incident once.
	failing.Store(false)
	wait("api up", func(st *statuspage.Status) bool { return checkByName(st, "api").State == "up" })
	evs = waitHook(6)
	k := 0
	for _, ev := range evs {
		if ev["incident_id"] == apiIncident {
			k++
		}
	}
	if k != 2 {
		t.Fatalf("api incident got %d events, want a trigger and a resolve: %v", k, evs)
	}
}

// Watch reloads on SIGHUP and on a file change; an invalid file is
// rejected with FILE:LINE:COL and the running checks stay.
func TestWatchReloadsConfig(t *testing.T) {
	target, _ := switchableTarget(t)
	hook := newHookRecorder(t)
	path := writeFile(t, "run-reload.yaml", reloadConfig(target.URL, hook.srv.URL, `
  - {name: one, type: http, url: TARGET/one}
`))
	logs := &syncBuffer{}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	n, err := New(context.Background(), Options{Config: cfg, Name: "n1", Region: "local", DBPath: filepath.Join(dir, "v.db"),
		OutboxPath: filepath.Join(dir, "o.db"), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hup := make(chan os.Signal, 1)
	go n.Watch(ctx, path, hup)
	waitState(t, n, "one", "up")

	// An invalid file: rejected, one stays.
	if err := os.WriteFile(path, []byte("checks:\n  - {name: one, type: http}\n  - {name: two, type: tcp, target: 'x:1', interval: 1s, timeout: 5s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hup <- syscall.SIGHUP
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "config reload rejected") {
		if time.Now().After(deadline) {
			t.Fatalf("no rejection logged:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out := logs.String(); !strings.Contains(out, path+":2:5:") {
		t.Fatalf("rejection does not name FILE:LINE:COL:\n%s", out)
	}
	if st := n.Status(); checkByName(st, "one") == nil || len(st.Checks) != 1 {
		t.Fatalf("after a rejected reload: %+v", st)
	}

	// SIGHUP with a valid file adds a check.
	writeAtomically(t, path, reloadConfig(target.URL, hook.srv.URL, `
  - {name: one, type: http, url: TARGET/one}
  - {name: two, type: http, url: TARGET/two}
`))
	hup <- syscall.SIGHUP
	waitState(t, n, "two", "up")
	// A file change alone removes one.
	writeAtomically(t, path, reloadConfig(target.URL, hook.srv.URL, `
  - {name: two, type: http, url: TARGET/two}
`))
	deadline = time.Now().Add(20 * time.Second)
	for checkByName(n.Status(), "one") != nil {
		if time.Now().After(deadline) {
			t.Fatal("check one not removed on a file change")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeAtomically replaces a file as editors and ConfigMaps do.
func writeAtomically(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
