package notifier

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
)

// The child side of TestOutboxSIGKILL: open the outbox, optionally enqueue
// one trigger, print "ready pending=N", then run until stdin closes (or a
// SIGKILL).
func outboxChild() {
	path, url := os.Getenv("VANTAGE_OUTBOX_PATH"), os.Getenv("VANTAGE_OUTBOX_URL")
	p, err := New(config.Notifier{Name: "hook", Type: "webhook", URL: url}, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	o, err := OpenOutbox(path, []Provider{p}, OutboxOptions{BaseBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	ctx := context.Background()
	if os.Getenv("VANTAGE_OUTBOX_ENQUEUE") == "1" {
		if err := o.Enqueue(ctx, sampleEv, "hook"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
	}
	pending, err := o.Pending(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Printf("ready pending=%d\n", pending["hook"])
	io.Copy(io.Discard, os.Stdin) // the parent closes stdin (or kills us)
	o.Close()
	os.Exit(0)
}

// child is a running outbox subprocess.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

func startChild(t *testing.T, path, url string, enqueue bool) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOutboxSIGKILL$")
	cmd.Env = append(os.Environ(), "VANTAGE_OUTBOX_CHILD=1", "VANTAGE_OUTBOX_PATH="+path, "VANTAGE_OUTBOX_URL="+url)
	if enqueue {
		cmd.Env = append(cmd.Env, "VANTAGE_OUTBOX_ENQUEUE=1")
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			c.lines <- s.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() { c.kill() })
	return c
}

// ready waits for the child's "ready pending=N" line and returns it.
func (c *child) ready(t *testing.T) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatal("child exited before it was ready")
			}
			if strings.HasPrefix(l, "ready ") {
				return l
			}
		case <-deadline:
			t.Fatal("timed out waiting for the child to be ready")
		}
	}
}

// kill sends SIGKILL (os.Process.Kill) and reaps the child.
func (c *child) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	c.cmd.Process.Kill()
	c.cmd.Wait()
	c.stdin.Close()
}

// outboxRow reads the trigger's row straight from the file.
func outboxRow(t *testing.T, path string) (state string, attempts int) {
	t.Helper()
	db, err := sql.Open("sqlite", outboxDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.QueryRow(`SELECT state, attempts FROM outbox WHERE incident_id = ? AND notifier = 'hook' AND action = 'trigger'`,
		sampleEv.IncidentID).Scan(&state, &attempts)
	if err != nil {
		t.Fatal(err)
	}
	return state, attempts
}

// TestOutboxSIGKILL kills a process with SIGKILL while its send is in
// flight; the next process on the same file delivers it exactly once, and a
// third finds nothing left to send.
func TestOutboxSIGKILL(t *testing.T) {
	if os.Getenv("VANTAGE_OUTBOX_CHILD") == "1" {
		outboxChild()
		return
	}
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	// The receiver holds the first request until the client goes away
	// (killed mid-send), answers 503 while failing is set, then accepts.
	const (
		hold = iota
		failing
		accepting
	)
	var mu sync.Mutex
	phase := hold
	var seen []string // "<phase>/<event>/<incident>" per request
	accepted := map[string]int{}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b WebhookBody
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &b)
		mu.Lock()
		p := phase
		seen = append(seen, fmt.Sprintf("%d/%s/%s", p, b.Event, b.IncidentID))
		if p == accepting {
			accepted[b.Event+"/"+b.IncidentID]++
		}
		mu.Unlock()
		switch p {
		case hold:
			select {
			case <-r.Context().Done():
			case <-release:
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		case failing:
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	defer srv.Close()
	defer close(release)
	requests := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }
	setPhase := func(p int) { mu.Lock(); phase = p; mu.Unlock() }

	path := filepath.Join(t.TempDir(), "outbox.db")
	first := startChild(t, path, srv.URL, true)
	if l := first.ready(t); l != "ready pending=1" {
		t.Fatalf("first child: %q", l)
	}
	waitFor(t, "the first child's send to reach the receiver", func() bool { return requests() >= 1 })
	first.kill() // SIGKILL while the request is held open
	if st, n := outboxRow(t, path); st != StatePending || n != 0 {
		t.Fatalf("after SIGKILL the row is %s with %d attempts, want pending with 0 (the attempt in flight never finished)", st, n)
	}

	// The second process resumes the pending send: it fails once more, then
	// the receiver accepts.
	setPhase(failing)
	second := startChild(t, path, srv.URL, true) // enqueueing again is a no-op
	if l := second.ready(t); l != "ready pending=1" {
		t.Fatalf("second child: %q", l)
	}
	waitFor(t, "a failed attempt by the second child", func() bool { return requests() >= 2 })
	setPhase(accepting)
	waitFor(t, "the row marked delivered", func() bool { st, _ := outboxRow(t, path); return st == StateDelivered })
	second.kill()

	// A third process has nothing left to send.
	third := startChild(t, path, srv.URL, true)
	if l := third.ready(t); l != "ready pending=0" {
		t.Fatalf("third child: %q", l)
	}
	third.stdin.Close()
	if err := third.cmd.Wait(); err != nil {
		t.Fatalf("third child: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if n := accepted["down/"+sampleEv.IncidentID]; n != 1 || len(accepted) != 1 {
		t.Fatalf("accepted %v, want exactly one down for %s; all requests: %v", accepted, sampleEv.IncidentID, seen)
	}
	if !strings.HasPrefix(seen[0], fmt.Sprintf("%d/down/", hold)) {
		t.Fatalf("requests %v", seen)
	}
	t.Logf("requests: %v", seen)
}
