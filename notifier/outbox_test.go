package notifier

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vantage-dev/vantage/config"
)

func hook(t *testing.T, name string, rec *recorder) Provider {
	t.Helper()
	return mustNew(t, config.Notifier{Name: name, Type: "webhook", URL: rec.URL})
}

func openOutbox(t *testing.T, path string, ps []Provider, opts OutboxOptions) *Outbox {
	t.Helper()
	if opts.BaseBackoff == 0 {
		opts.BaseBackoff = 10 * time.Millisecond
	}
	o, err := OpenOutbox(path, ps, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

func entry(t *testing.T, o *Outbox, notifier string, action Action) Entry {
	t.Helper()
	es, err := o.Entries(context.Background(), "inc-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Notifier == notifier && e.Action == action {
			return e
		}
	}
	return Entry{}
}

func waitState(t *testing.T, o *Outbox, notifier string, action Action, state string) Entry {
	t.Helper()
	var e Entry
	waitFor(t, notifier+" "+string(action)+" "+state, func() bool {
		e = entry(t, o, notifier, action)
		return e.State == state
	})
	return e
}

func eventOf(t *testing.T, r request) string {
	t.Helper()
	var b WebhookBody
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatal(err)
	}
	return b.Event
}

func TestOutboxRetriesUntilDelivered(t *testing.T) {
	rec := newRecorder(t, func(n int, _ http.ResponseWriter) int {
		if n < 3 {
			return http.StatusInternalServerError
		}
		return http.StatusAccepted
	})
	reg := prometheus.NewRegistry()
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), []Provider{hook(t, "hook", rec)},
		OutboxOptions{Registerer: reg})
	if err := o.Enqueue(context.Background(), sampleEv, "hook"); err != nil {
		t.Fatal(err)
	}
	e := waitState(t, o, "hook", ActionTrigger, StateDelivered)
	if e.Attempts != 4 || e.Receipt != `202 {"status":"ok"}` || e.DeliveredAt.IsZero() {
		t.Fatalf("entry %+v", e)
	}
	// Three failed attempts and the delivery, as the metrics count them.
	counterIs(t, reg, 3, "hook", ActionTrigger, outcomeRetry)
	counterIs(t, reg, 1, "hook", ActionTrigger, outcomeDelivered)
	o.Close()
	if n := rec.count(); n != 4 {
		t.Fatalf("receiver got %d requests, want 4", n)
	}
}

func TestOutboxHonoursRetryAfter(t *testing.T) {
	rec := newRecorder(t, func(n int, w http.ResponseWriter) int {
		if n == 0 {
			w.Header().Set("Retry-After", "1")
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	})
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), []Provider{hook(t, "hook", rec)}, OutboxOptions{})
	if err := o.Enqueue(context.Background(), sampleEv, "hook"); err != nil {
		t.Fatal(err)
	}
	waitState(t, o, "hook", ActionTrigger, StateDelivered)
	reqs := rec.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	if gap := reqs[1].At.Sub(reqs[0].At); gap < 950*time.Millisecond {
		t.Fatalf("retried after %v, Retry-After was 1s", gap)
	}
}

func TestOutboxPermanentFailureGoesToFallback(t *testing.T) {
	primary := newRecorder(t, always(http.StatusBadRequest))
	backup := newRecorder(t, always(http.StatusOK))
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"),
		[]Provider{hook(t, "primary", primary), hook(t, "backup", backup)},
		OutboxOptions{Fallbacks: map[string]Fallback{"primary": {To: []string{"backup"}, After: time.Hour}}})
	ctx := context.Background()
	if err := o.Enqueue(ctx, sampleEv, "primary"); err != nil {
		t.Fatal(err)
	}
	fb := waitState(t, o, "backup", ActionTrigger, StateDelivered)
	if fb.FallbackOf != "primary" {
		t.Fatalf("fallback entry %+v", fb)
	}
	p := entry(t, o, "primary", ActionTrigger)
	if p.State != StateFailed || p.Attempts != 1 || !p.FallbackDone || p.LastError == "" {
		t.Fatalf("primary entry %+v", p)
	}
	// The resolve follows the trigger to the fallback.
	if err := o.Enqueue(ctx, resolved(sampleEv), "primary"); err != nil {
		t.Fatal(err)
	}
	waitState(t, o, "backup", ActionResolve, StateDelivered)
	waitState(t, o, "primary", ActionResolve, StateFailed)
	o.Close()
	if n := primary.count(); n != 2 {
		t.Fatalf("primary got %d requests, want 2 (no retries)", n)
	}
	reqs := backup.requests()
	if len(reqs) != 2 || eventOf(t, reqs[0]) != "down" || eventOf(t, reqs[1]) != "up" {
		t.Fatalf("backup got %d requests", len(reqs))
	}
}

func TestOutboxFallbackAfterTimeout(t *testing.T) {
	primary := newRecorder(t, always(http.StatusServiceUnavailable))
	backup := newRecorder(t, always(http.StatusOK))
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"),
		[]Provider{hook(t, "primary", primary), hook(t, "backup", backup)},
		OutboxOptions{Fallbacks: map[string]Fallback{"primary": {To: []string{"backup"}, After: 200 * time.Millisecond}}})
	start := time.Now()
	if err := o.Enqueue(context.Background(), sampleEv, "primary"); err != nil {
		t.Fatal(err)
	}
	waitState(t, o, "backup", ActionTrigger, StateDelivered)
	if d := backup.requests()[0].At.Sub(start); d < 200*time.Millisecond {
		t.Fatalf("fallback after %v, want ≥ 200ms", d)
	}
	if p := entry(t, o, "primary", ActionTrigger); p.State != StatePending || !p.FallbackDone {
		t.Fatalf("primary entry %+v", p)
	}
	o.Close()
	if n := backup.count(); n != 1 {
		t.Fatalf("backup got %d requests", n)
	}
}

func TestOutboxResumesAfterReopen(t *testing.T) {
	var up atomic.Bool
	var accepted atomic.Int32
	rec := newRecorder(t, func(int, http.ResponseWriter) int {
		if !up.Load() {
			return http.StatusBadGateway
		}
		accepted.Add(1)
		return http.StatusAccepted
	})
	path := filepath.Join(t.TempDir(), "outbox.db")
	opts := OutboxOptions{BaseBackoff: 50 * time.Millisecond}
	o := openOutbox(t, path, []Provider{hook(t, "hook", rec)}, opts)
	if err := o.Enqueue(context.Background(), sampleEv, "hook"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a failed attempt", func() bool { return entry(t, o, "hook", ActionTrigger).Attempts >= 1 })
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	up.Store(true)
	o2 := openOutbox(t, path, []Provider{hook(t, "hook", rec)}, opts)
	e := waitState(t, o2, "hook", ActionTrigger, StateDelivered)
	// Enqueueing it again after the restart is a no-op.
	if err := o2.Enqueue(context.Background(), sampleEv, "hook"); err != nil {
		t.Fatal(err)
	}
	if err := o2.Enqueue(context.Background(), resolved(sampleEv), "hook"); err != nil {
		t.Fatal(err)
	}
	waitState(t, o2, "hook", ActionResolve, StateDelivered)
	o2.Close()
	if n := accepted.Load(); n != 2 {
		t.Fatalf("accepted %d sends, want 2 (one trigger, one resolve)", n)
	}
	if e.Attempts < 2 {
		t.Fatalf("entry %+v", e)
	}
}

func TestOutboxExactlyOnce(t *testing.T) {
	rec := newRecorder(t, always(http.StatusOK))
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), []Provider{hook(t, "hook", rec)}, OutboxOptions{})
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := o.Enqueue(ctx, sampleEv, "hook"); err != nil {
			t.Fatal(err)
		}
	}
	waitState(t, o, "hook", ActionTrigger, StateDelivered)
	if err := o.Enqueue(ctx, sampleEv, "hook"); err != nil { // already delivered
		t.Fatal(err)
	}
	// The resolve is queued behind any trigger, so once it is delivered
	// nothing else can be in flight.
	if err := o.Enqueue(ctx, resolved(sampleEv), "hook"); err != nil {
		t.Fatal(err)
	}
	waitState(t, o, "hook", ActionResolve, StateDelivered)
	o.Close()
	reqs := rec.requests()
	if len(reqs) != 2 || eventOf(t, reqs[0]) != "down" || eventOf(t, reqs[1]) != "up" {
		t.Fatalf("receiver got %d requests", len(reqs))
	}
}

func TestOutboxInOrderPerNotifier(t *testing.T) {
	// A trigger being retried holds back the resolve behind it.
	rec := newRecorder(t, func(n int, _ http.ResponseWriter) int {
		if n < 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), []Provider{hook(t, "hook", rec)}, OutboxOptions{})
	ctx := context.Background()
	if err := o.Enqueue(ctx, sampleEv, "hook"); err != nil {
		t.Fatal(err)
	}
	if err := o.Enqueue(ctx, resolved(sampleEv), "hook"); err != nil {
		t.Fatal(err)
	}
	waitState(t, o, "hook", ActionResolve, StateDelivered)
	o.Close()
	var events []string
	for _, r := range rec.requests() {
		events = append(events, eventOf(t, r))
	}
	if got := len(events); got != 4 || events[0] != "down" || events[1] != "down" || events[2] != "down" || events[3] != "up" {
		t.Fatalf("events %v", events)
	}
}

func TestOutboxValidation(t *testing.T) {
	rec := newRecorder(t, nil)
	dir := t.TempDir()
	if _, err := OpenOutbox(filepath.Join(dir, "a.db"), []Provider{hook(t, "hook", rec)},
		OutboxOptions{Fallbacks: map[string]Fallback{"hook": {To: []string{"nope"}}}}); err == nil {
		t.Fatal("unknown fallback accepted")
	}
	o := openOutbox(t, filepath.Join(dir, "b.db"), []Provider{hook(t, "hook", rec)}, OutboxOptions{})
	ctx := context.Background()
	if err := o.Enqueue(ctx, sampleEv, "nope"); err == nil {
		t.Fatal("unknown notifier accepted")
	}
	if err := o.Enqueue(ctx, Event{Action: ActionTrigger}, "hook"); err == nil {
		t.Fatal("event without incident id accepted")
	}
}

func TestBackoff(t *testing.T) {
	o := &Outbox{opts: OutboxOptions{BaseBackoff: time.Second, MaxBackoff: 30 * time.Second, MaxRetryAfter: time.Minute}}
	for n := 1; n < 70; n++ {
		want := min(time.Second<<min(n-1, 20), 30*time.Second)
		d := o.backoff(n, &SendError{Retryable: true})
		if d < want/2 || d > want {
			t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, d, want/2, want)
		}
	}
	if d := o.backoff(1, &SendError{Retryable: true, RetryAfter: 5 * time.Second}); d != 5*time.Second {
		t.Fatalf("Retry-After: %v", d)
	}
	if d := o.backoff(1, &SendError{Retryable: true, RetryAfter: time.Hour}); d != time.Minute {
		t.Fatalf("capped Retry-After: %v", d)
	}
}
