package notifier

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeLog is a sent log: by names who delivered what ("incident/key/notifier"),
// delivered records this node's Delivered calls, and onDelivered, when
// set, runs inside each.
type fakeLog struct {
	mu          sync.Mutex
	by          map[string]string
	delivered   []string
	onDelivered func(e Event, notifier string)
}

func (l *fakeLog) DeliveredBy(incident, key, notifier string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, ok := l.by[incident+"/"+key+"/"+notifier]
	return n, ok
}

func (l *fakeLog) Delivered(e Event, notifier string) {
	if l.onDelivered != nil {
		l.onDelivered(e, notifier)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.delivered = append(l.delivered, e.IncidentID+"/"+e.Key()+"/"+notifier)
}

func (l *fakeLog) records() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.delivered...)
}

// fakeGate is held while held is set.
type fakeGate struct{ held atomic.Bool }

func (g *fakeGate) Hold() (string, bool) {
	return "this node cannot see a majority of the regions", g.held.Load()
}

// metric reads one sample (counter or gauge) from reg; ok is false when
// there is none with these labels.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) (v float64, ok bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		if mf.GetHelp() == "" {
			t.Fatalf("%s has no help text", name)
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func counterIs(t *testing.T, reg *prometheus.Registry, want float64, notifier string, action Action, outcome string) {
	t.Helper()
	if v, _ := metric(t, reg, "vantage_notifications_total", "notifier", notifier, "action", string(action), "outcome", outcome); v != want {
		t.Errorf("vantage_notifications_total{notifier=%q,action=%q,outcome=%q} = %v, want %v", notifier, action, outcome, v, want)
	}
}

// TestOutboxLogSkipsWhatAnotherNodeDelivered: the sent log names another
// node: marked delivered, not sent, not recorded again. It names this
// node: sent (the outbox's own row is what counts for itself).
func TestOutboxLogSkipsWhatAnotherNodeDelivered(t *testing.T) {
	clock := newManualClock()
	srv := newHookServer(t, clock, nil)
	log := &fakeLog{by: map[string]string{"inc-1/trigger/hook": "node-b", "inc-1/repeat#1/hook": "node-a"}}
	reg := prometheus.NewRegistry()
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), []Provider{hookOn(t, "hook", srv)},
		OutboxOptions{Clock: clock, Log: log, Self: "node-a", Registerer: reg})
	enqueue(t, o, sampleEv, "hook")
	e := waitState2(t, o, "inc-1", "hook", ActionTrigger, StateDelivered)
	if e.Receipt != "not sent: already delivered by node-b" || e.Attempts != 0 || e.DeliveredAt.IsZero() {
		t.Fatalf("skipped trigger %+v", e)
	}
	enqueue(t, o, reminder(1, t0.Add(time.Hour)), "hook")
	enqueue(t, o, resolved(sampleEv), "hook")
	waitState2(t, o, "inc-1", "hook", ActionResolve, StateDelivered)
	counterIs(t, reg, 1, "hook", ActionTrigger, outcomeSkipped)
	counterIs(t, reg, 0, "hook", ActionTrigger, outcomeDelivered)
	counterIs(t, reg, 1, "hook", ActionRepeat, outcomeDelivered)
	counterIs(t, reg, 1, "hook", ActionResolve, outcomeDelivered)
	o.Close()
	if got := strings.Join(srv.events("", false), " "); got != "repeat/inc-1#1 up/inc-1" {
		t.Fatalf("receiver got %s", got)
	}
	if got := strings.Join(log.records(), " "); got != "inc-1/repeat#1/hook inc-1/resolve/hook" {
		t.Fatalf("recorded %s", got)
	}
	// The skip called no provider: two requests, each delivered once.
	if n := srv.count(); n != 2 {
		t.Fatalf("%d requests, want 2 (the skip called no provider)", n)
	}
}

// captureLog collects log messages.
type captureLog struct {
	mu   sync.Mutex
	msgs []string
}

type captureHandler struct{ c *captureLog }

func (h captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.c.mu.Lock()
	h.c.msgs = append(h.c.msgs, r.Message)
	h.c.mu.Unlock()
	return nil
}
func (h captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h captureHandler) WithGroup(string) slog.Handler      { return h }

func (c *captureLog) count(msg string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// TestOutboxLogRecordsOnlyCommittedDeliveries: the provider accepts, but
// marking the row delivered fails (a trigger in the database aborts it):
// nothing is recorded in the sent log, also when the outbox is closed
// meanwhile. Once the write succeeds the delivery is recorded once, after
// the row is committed.
func TestOutboxLogRecordsOnlyCommittedDeliveries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	clock := newManualClock()
	srv := newHookServer(t, clock, nil)
	side, err := sql.Open("sqlite", outboxDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer side.Close()
	var stateAtRecord []string
	log := &fakeLog{}
	log.onDelivered = func(e Event, notifier string) {
		var st string
		if err := side.QueryRow(`SELECT state FROM outbox WHERE incident_id = ? AND notifier = ? AND action = ?`,
			e.IncidentID, notifier, string(e.Action)).Scan(&st); err != nil {
			st = err.Error()
		}
		stateAtRecord = append(stateAtRecord, st)
	}
	logs := &captureLog{}
	opts := OutboxOptions{Clock: clock, Log: log, Logger: slog.New(captureHandler{logs})}
	o := openOutbox(t, path, []Provider{hookOn(t, "hook", srv)}, opts)
	if _, err := side.Exec(`CREATE TRIGGER refuse_delivered BEFORE UPDATE OF state ON outbox WHEN NEW.state = 'delivered'
		BEGIN SELECT RAISE(ABORT, 'injected commit failure'); END`); err != nil {
		t.Fatal(err)
	}
	enqueue(t, o, sampleEv, "hook")
	waitFor(t, "the failed commit logged", func() bool { return logs.count("outbox: marking entry delivered") >= 1 })
	if srv.count() != 1 || len(log.records()) != 0 {
		t.Fatalf("%d requests, recorded %v", srv.count(), log.records())
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if len(log.records()) != 0 {
		t.Fatalf("an uncommitted delivery was recorded: %v", log.records())
	}

	// Reopened: the row is still pending, so it is sent again; the commit
	// fails until the trigger goes, then it is recorded once.
	o = openOutbox(t, path, []Provider{hookOn(t, "hook", srv)}, opts)
	waitFor(t, "the second failed commit logged", func() bool { return logs.count("outbox: marking entry delivered") >= 2 })
	if srv.count() != 2 || len(log.records()) != 0 {
		t.Fatalf("%d requests, recorded %v", srv.count(), log.records())
	}
	if _, err := side.Exec(`DROP TRIGGER refuse_delivered`); err != nil {
		t.Fatal(err)
	}
	advanceUntil(t, clock, 100*time.Millisecond, "the delivery recorded", func() bool { return len(log.records()) == 1 })
	o.Close()
	if got := log.records(); len(got) != 1 || got[0] != "inc-1/trigger/hook" || len(stateAtRecord) != 1 || stateAtRecord[0] != StateDelivered {
		t.Fatalf("recorded %v, row state when recorded %v", got, stateAtRecord)
	}
	if srv.count() != 2 {
		t.Fatalf("%d requests", srv.count())
	}
}

// TestOutboxGateHoldsThenReleases: while the gate is held nothing is sent;
// the row is retried later with a growing wait and the holds are not
// counted as attempts. Released, it is delivered once.
func TestOutboxGateHoldsThenReleases(t *testing.T) {
	clock := newManualClock()
	srv := newHookServer(t, clock, nil)
	gate := &fakeGate{}
	gate.held.Store(true)
	reg := prometheus.NewRegistry()
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), []Provider{hookOn(t, "hook", srv)},
		OutboxOptions{Clock: clock, Gate: gate, Registerer: reg, BaseBackoff: time.Second, MaxBackoff: time.Minute})
	enqueue(t, o, sampleEv, "hook")
	waitFor(t, "the first hold", func() bool { return entryOf(t, o, "inc-1", "hook", ActionTrigger, 0).Holds == 1 })
	e := entryOf(t, o, "inc-1", "hook", ActionTrigger, 0)
	if e.State != StatePending || e.Attempts != 0 || e.LastError != "held: this node cannot see a majority of the regions" ||
		!e.NextAt.After(clock.Now()) {
		t.Fatalf("held entry %+v", e)
	}
	advanceUntil(t, clock, time.Second, "five holds", func() bool { return entryOf(t, o, "inc-1", "hook", ActionTrigger, 0).Holds >= 5 })
	e = entryOf(t, o, "inc-1", "hook", ActionTrigger, 0)
	// The fifth hold waits BaseBackoff·2^4 = 16 s, jittered to [8 s, 16 s].
	if wait := e.NextAt.Sub(clock.Now()); e.Holds == 5 && (wait < 6*time.Second || wait > 16*time.Second) {
		t.Fatalf("after %d holds the next try is in %v", e.Holds, wait)
	}
	if e := entryOf(t, o, "inc-1", "hook", ActionTrigger, 0); srv.count() != 0 || e.Attempts != 0 {
		t.Fatalf("sent while held: %d requests, entry %+v", srv.count(), e)
	}
	gate.held.Store(false)
	advanceUntil(t, clock, time.Second, "delivered after the release", func() bool {
		return entryOf(t, o, "inc-1", "hook", ActionTrigger, 0).State == StateDelivered
	})
	e = entryOf(t, o, "inc-1", "hook", ActionTrigger, 0)
	holds, _ := metric(t, reg, "vantage_notifications_total", "notifier", "hook", "outcome", "held")
	o.Close()
	if srv.count() != 1 || e.Attempts != 1 {
		t.Fatalf("%d requests, entry %+v", srv.count(), e)
	}
	if holds < 5 {
		t.Fatalf("held counted %v times", holds)
	}
}

// TestOutboxHeldRowNotHandedToFallback: a row the gate holds past
// fallback_after is not handed over (its fallbacks would be held as well);
// once the gate opens and the primary fails, it is.
func TestOutboxHeldRowNotHandedToFallback(t *testing.T) {
	clock := newManualClock()
	primary := newHookServer(t, clock, func(WebhookBody, http.ResponseWriter) int { return http.StatusServiceUnavailable })
	backup := newHookServer(t, clock, nil)
	gate := &fakeGate{}
	gate.held.Store(true)
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"),
		[]Provider{hookOn(t, "primary", primary), hookOn(t, "backup", backup)},
		OutboxOptions{Clock: clock, Gate: gate, BaseBackoff: time.Second, MaxBackoff: 10 * time.Second,
			Fallbacks: map[string]Fallback{"primary": {To: []string{"backup"}, After: time.Minute}}})
	enqueue(t, o, sampleEv, "primary")
	advanceUntil(t, clock, 5*time.Second, "held past fallback_after", func() bool {
		return clock.elapsed() > 2*time.Minute && entryOf(t, o, "inc-1", "primary", ActionTrigger, 0).Holds >= 3
	})
	if _, err := o.checkFallbacks(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b := entryOf(t, o, "inc-1", "backup", ActionTrigger, 0); b.ID != 0 {
		t.Fatalf("handed to the fallback while held: %+v", b)
	}
	gate.held.Store(false)
	advanceUntil(t, clock, 5*time.Second, "the backup delivered", func() bool {
		return entryOf(t, o, "inc-1", "backup", ActionTrigger, 0).State == StateDelivered
	})
	o.Close()
	if primary.count() < 1 || backup.count() != 1 {
		t.Fatalf("primary %d requests, backup %d", primary.count(), backup.count())
	}
}

// TestOutboxMetrics: the outcome counters and the pending gauge, read
// through a registry; Close unregisters them, so an outbox opened again
// registers on the same registry; a registry that already has them is
// refused.
func TestOutboxMetrics(t *testing.T) {
	clock := newManualClock()
	ok := newHookServer(t, clock, nil)
	down := newHookServer(t, clock, func(WebhookBody, http.ResponseWriter) int { return http.StatusServiceUnavailable })
	bad := newHookServer(t, clock, func(WebhookBody, http.ResponseWriter) int { return http.StatusNotFound })
	providers := func() []Provider {
		return []Provider{hookOn(t, "ok", ok), hookOn(t, "down", down), hookOn(t, "bad", bad)}
	}
	reg := prometheus.NewRegistry()
	path := filepath.Join(t.TempDir(), "outbox.db")
	log := &fakeLog{by: map[string]string{"inc-2/trigger/ok": "node-b"}}
	opts := OutboxOptions{Clock: clock, Registerer: reg, Log: log, Self: "node-a"}
	o := openOutbox(t, path, providers(), opts)
	enqueue(t, o, sampleEv, "ok", "down", "bad")
	enqueue(t, o, incident("inc-2"), "ok")
	waitFor(t, "every notifier tried", func() bool {
		return entryOf(t, o, "inc-1", "ok", ActionTrigger, 0).State == StateDelivered &&
			entryOf(t, o, "inc-2", "ok", ActionTrigger, 0).State == StateDelivered &&
			entryOf(t, o, "inc-1", "bad", ActionTrigger, 0).State == StateFailed &&
			entryOf(t, o, "inc-1", "down", ActionTrigger, 0).Attempts == 1
	})
	counterIs(t, reg, 1, "ok", ActionTrigger, "delivered")
	counterIs(t, reg, 1, "ok", ActionTrigger, "skipped")
	counterIs(t, reg, 1, "down", ActionTrigger, "retry")
	counterIs(t, reg, 1, "bad", ActionTrigger, "failed")
	for name, want := range map[string]float64{"ok": 0, "down": 1, "bad": 0} {
		if v, found := metric(t, reg, "vantage_outbox_pending", "notifier", name); !found || v != want {
			t.Errorf("vantage_outbox_pending{notifier=%q} = %v (%v), want %v", name, v, found, want)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if _, found := metric(t, reg, "vantage_outbox_pending", "notifier", "down"); found {
		t.Fatal("metrics still registered after Close")
	}
	// Opened again without "down": its entry still waits, and is reported.
	o = openOutbox(t, path, []Provider{hookOn(t, "ok", ok)}, opts)
	if v, found := metric(t, reg, "vantage_outbox_pending", "notifier", "down"); !found || v != 1 {
		t.Fatalf("pending for an unconfigured notifier: %v %v", v, found)
	}
	if v, found := metric(t, reg, "vantage_outbox_pending", "notifier", "ok"); !found || v != 0 {
		t.Fatalf("pending for ok: %v %v", v, found)
	}
	// A second outbox on the same registry is refused.
	_, err := OpenOutbox(filepath.Join(t.TempDir(), "other.db"), []Provider{hookOn(t, "ok", ok)}, opts)
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) || !strings.Contains(err.Error(), "vantage_notifications_total") {
		t.Fatalf("second registration: %v", err)
	}
	o.Close()
}
