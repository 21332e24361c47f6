package node

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/notifier"
	"github.com/vantage-dev/vantage/paging"
)

// The outbox keeps delivered notifications for outboxKeep on the node's
// clock, then housekeeping's prune drops them; pending ones stay however
// old.
func TestPruneOutboxDropsOldDeliveries(t *testing.T) {
	var fail atomic.Bool
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(hook.Close)
	path := writeFile(t, "prune.yaml", `
checks:
  - name: api
    type: tcp
    target: 127.0.0.1:1
    notify: [hook]
notifiers:
  - name: hook
    type: webhook
    url: `+hook.URL+`
`)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	n, err := New(context.Background(), Options{Config: cfg, Name: "eu-1", Region: "eu", DBPath: filepath.Join(dir, "v.db"),
		OutboxPath: filepath.Join(dir, "outbox.db"), Now: func() time.Time { return time.Unix(0, now.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	now.Add(int64(paging.Takeover + time.Second)) // past the outbox's wait after joining
	ctx := context.Background()
	ob := n.Outbox()
	state := func(id string) string {
		es, err := ob.Entries(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			return "gone"
		}
		return es[0].State
	}
	ev := notifier.Event{Action: notifier.ActionTrigger, IncidentID: "inc-old", Check: "api", StartedAt: time.Now()}
	if err := ob.Enqueue(ctx, ev, "hook"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for state("inc-old") != notifier.StateDelivered {
		if time.Now().After(deadline) {
			es, _ := ob.Entries(ctx, "inc-old")
			t.Fatalf("inc-old: %+v, want delivered", es)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fail.Store(true)
	ev.IncidentID = "inc-pending"
	if err := ob.Enqueue(ctx, ev, "hook"); err != nil {
		t.Fatal(err)
	}

	n.pruneOutbox(ctx) // nothing is old yet
	if s := state("inc-old"); s != notifier.StateDelivered {
		t.Fatalf("inc-old after a prune on day 0: %s, want delivered", s)
	}
	now.Add(int64(outboxKeep + time.Hour))
	n.pruneOutbox(ctx)
	if s := state("inc-old"); s != "gone" {
		t.Fatalf("inc-old after a prune past outboxKeep: %s, want gone", s)
	}
	if s := state("inc-pending"); s != notifier.StatePending {
		t.Fatalf("inc-pending after the prune: %s, want pending", s)
	}
}
