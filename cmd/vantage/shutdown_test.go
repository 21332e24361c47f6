package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/store"
)

// A node with 10,000 checks stops on SIGTERM within 10 s with exit code 0,
// its store flushed, and sends nothing about the checks it stops probing
// (systemd and Kubernetes kill a process 30 to 90 s after SIGTERM).
func TestRunStopsPromptlyWithTenThousandChecks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 10,000 checks")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // a tcp target: accept and close
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	var hooked atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		hooked.Add(1)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer hook.Close()

	const checks = 10_000
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "defaults: {interval: 10s, timeout: 2s, unknown_after: 10s}\ncoverage: {notify: [hook]}\nnotifiers:\n  - {name: hook, type: webhook, url: %s}\nchecks:\n", hook.URL)
	for i := range checks {
		fmt.Fprintf(&cfg, "  - {name: c%05d, type: tcp, target: %s, notify: [hook]}\n", i, ln.Addr())
	}
	httpAddr := freePort(t)
	data := t.TempDir()
	p := startVantage(t, "run", "--config", writeFile(t, "big.yaml", cfg.String()), "--http", httpAddr, "--data", data,
		"--gossip", "127.0.0.1:0", "--node", "big", "--log-level", "warn")
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 90 s:\n%s", p.out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10 s after SIGTERM:\n%s", p.out.String())
	}
	t.Logf("stopped %s after SIGTERM with %d checks", time.Since(start).Round(time.Millisecond), checks)
	if n := hooked.Load(); n != 0 {
		t.Fatalf("%d notifications sent while starting or stopping", n)
	}
	// The store was flushed: every check's first result is on disk.
	st, err := store.Open(filepath.Join(data, "vantage.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, name := range []string{"c00000", "c04999", "c09999"} {
		rs, err := st.History(context.Background(), name, time.Now().Add(-time.Hour), time.Now(), 10)
		if err != nil || len(rs) == 0 {
			t.Fatalf("no result of %s on disk after SIGTERM (err %v)", name, err)
		}
	}
}
