package node

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/checker"
)

// promtool returns the path of promtool, or skips the test saying how to
// get it. CI (.ci/run) installs it.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not on PATH (Debian: unpack /usr/bin/promtool of the prometheus package, as .ci/run does); skipping")
	}
	return p
}

// runPromtool runs promtool with args and stdin, failing the test with its
// output when it exits non-zero.
func runPromtool(t *testing.T, bin string, stdin []byte, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// A running node's /metrics (an http check over TLS, a tcp check, a
// webhook notifier, canaries: every family it exports) passes
// `promtool check metrics`.
func TestPromtoolCheckMetrics(t *testing.T) {
	bin := promtool(t)
	tlsTarget := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	t.Cleanup(tlsTarget.Close)
	ln := closingListener(t)
	hook := newHookRecorder(t)
	n := soloNode(t, `
cluster:
  canaries: ["tcp://`+ln.Addr().String()+`"]
defaults: {interval: 1s, fail_after: 1, recover_after: 1}
checks:
  - {name: api, type: http, url: "`+tlsTarget.URL+`/", insecure_skip_verify: true, notify: [hook]}
  - {name: db, type: tcp, target: "`+ln.Addr().String()+`", notify: [hook]}
notifiers:
  - {name: hook, type: webhook, url: "`+hook.srv.URL+`"}
`, checker.New(checker.Options{}))
	waitState(t, n, "api", "up")
	waitState(t, n, "db", "up")
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(srv.Close)
	var body []byte
	want := []string{"probe_ssl_earliest_cert_expiry{", "probe_success{", "vantage_canaries_ok ", "vantage_outbox_pending{", "vantage_check_state{"}
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		missing := ""
		for _, w := range want {
			if !bytes.Contains(body, []byte(w)) {
				missing = w
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics still lacks %s:\n%s", missing, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	out := runPromtool(t, bin, body, "check", "metrics")
	if strings.TrimSpace(out) != "" {
		// promtool exits 0 but prints what it would lint; treat it as a failure.
		t.Fatalf("promtool check metrics:\n%s", out)
	}
}

// The alert rules suggested in docs/operations.md (its yaml block that
// starts with groups:) pass `promtool check rules`, and every vantage_* or
// probe_* metric they use is in that page's metrics table.
func TestPromtoolCheckRules(t *testing.T) {
	bin := promtool(t)
	doc, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := rulesBlocks(string(doc))
	if len(blocks) != 1 {
		t.Fatalf("docs/operations.md has %d yaml blocks of alert rules (starting with groups:), want 1", len(blocks))
	}
	rules := blocks[0]
	file := filepath.Join(t.TempDir(), "vantage-rules.yaml")
	if err := os.WriteFile(file, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	out := runPromtool(t, bin, nil, "check", "rules", file)
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool check rules did not report success:\n%s", out)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_:]+)`").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	// Rows listing several metrics name each in backquotes.
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "| `vantage_") {
			cell := strings.SplitN(line, "|", 3)[1]
			for _, m := range regexp.MustCompile("`([a-z_:]+)`").FindAllStringSubmatch(cell, -1) {
				documented[m[1]] = true
			}
		}
	}
	used := 0
	for _, m := range regexp.MustCompile(`\b(?:vantage|probe)_[a-z_]+`).FindAllString(rulesExprs(rules), -1) {
		used++
		if !documented[m] {
			t.Errorf("the suggested rules use %s, which the metrics table of docs/operations.md does not list", m)
		}
	}
	if used == 0 {
		t.Fatal("the suggested rules use no vantage_* or probe_* metric")
	}
}

// rulesBlocks returns the bodies of the ```yaml blocks of a markdown page
// whose first line is "groups:".
func rulesBlocks(doc string) []string {
	var blocks []string
	var cur *strings.Builder
	sc := bufio.NewScanner(strings.NewReader(doc))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```yaml":
			cur = &strings.Builder{}
		case cur != nil && strings.TrimSpace(line) == "```":
			if b := cur.String(); strings.HasPrefix(b, "groups:") {
				blocks = append(blocks, b)
			}
			cur = nil
		case cur != nil:
			cur.WriteString(line)
			cur.WriteByte('\n')
		}
	}
	return blocks
}

// rulesExprs joins the expr: lines of a rules file.
func rulesExprs(rules string) string {
	var b strings.Builder
	for _, line := range strings.Split(rules, "\n") {
		if _, e, ok := strings.Cut(line, "expr:"); ok {
			b.WriteString(e)
			b.WriteByte('\n')
		}
	}
	return b.String()
}
