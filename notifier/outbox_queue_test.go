package notifier

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// manualClock is a Clock that moves only when the test advances it: a
// worker waiting for a retry stays waiting until then, so a test can tell
// what is sent without the clock moving (nothing waits) from what is sent
// only after it.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []clockTimer
}

type clockTimer struct {
	at time.Time
	ch chan time.Time
}

func newManualClock() *manualClock { return &manualClock{now: t0} }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, clockTimer{c.now.Add(d), ch})
	return ch
}

// Advance moves the clock by d and fires the timers that are due.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.timers[:0]
	for _, tm := range c.timers {
		if tm.at.After(c.now) {
			keep = append(keep, tm)
			continue
		}
		tm.ch <- c.now
	}
	c.timers = keep
}

// elapsed is the virtual time since t0.
func (c *manualClock) elapsed() time.Duration { return c.Now().Sub(t0) }

// advanceUntil advances the clock by step until cond holds (real-time
// deadline: waitFor's).
func advanceUntil(t *testing.T, c *manualClock, step time.Duration, what string, cond func() bool) {
	t.Helper()
	waitFor(t, what, func() bool {
		if cond() {
			return true
		}
		c.Advance(step)
		return false
	})
}

// hookServer is a webhook receiver (httptest) that answers each body with
// the status its reply func chooses and records what it got, with the
// virtual time of arrival.
type hookServer struct {
	*httptest.Server
	clock *manualClock
	mu    sync.Mutex
	got   []hookRequest
	reply func(b WebhookBody, w http.ResponseWriter) int
}

type hookRequest struct {
	WebhookBody
	Status int
	At     time.Duration // virtual time since t0
}

func newHookServer(t *testing.T, clock *manualClock, reply func(b WebhookBody, w http.ResponseWriter) int) *hookServer {
	t.Helper()
	h := &hookServer{clock: clock, reply: reply}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var b WebhookBody
		if err := json.Unmarshal(raw, &b); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		status := http.StatusOK
		if h.reply != nil {
			status = h.reply(b, w)
		}
		h.mu.Lock()
		h.got = append(h.got, hookRequest{b, status, clock.elapsed()})
		h.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) requests() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest(nil), h.got...)
}

func (h *hookServer) count() int { return len(h.requests()) }

// events lists "event/incident" (with "#seq" for a reminder) of the
// requests for incident ("" for all), in arrival order; accepted only
// keeps the 2xx ones.
func (h *hookServer) events(incident string, accepted bool) []string {
	var out []string
	for _, r := range h.requests() {
		if (incident != "" && r.IncidentID != incident) || (accepted && r.Status >= 300) {
			continue
		}
		s := r.Event + "/" + r.IncidentID
		if r.Seq != 0 {
			s += "#" + string(rune('0'+r.Seq))
		}
		out = append(out, s)
	}
	return out
}

func hookOn(t *testing.T, name string, h *hookServer) Provider {
	t.Helper()
	return hook(t, name, &recorder{Server: h.Server})
}

// incident is sampleEv for another incident.
func incident(id string) Event {
	e := sampleEv
	e.IncidentID = id
	return e
}

func entryOf(t *testing.T, o *Outbox, incident, notifier string, action Action, seq int) Entry {
	t.Helper()
	es, err := o.Entries(context.Background(), incident)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Notifier == notifier && e.Action == action && e.Seq == seq {
			return e
		}
	}
	return Entry{}
}

func enqueue(t *testing.T, o *Outbox, e Event, notifiers ...string) {
	t.Helper()
	if err := o.Enqueue(context.Background(), e, notifiers...); err != nil {
		t.Fatal(err)
	}
}

// TestOutboxNoHeadOfLineBlocking: incident A's webhook answers 503 for
// ever (with a long Retry-After); incident B, queued later, is delivered at
// once, and incident C while A keeps being retried.
func TestOutboxNoHeadOfLineBlocking(t *testing.T) {
	clock := newManualClock()
	srv := newHookServer(t, clock, func(b WebhookBody, w http.ResponseWriter) int {
		if b.IncidentID == "inc-a" {
			w.Header().Set("Retry-After", "600")
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), []Provider{hookOn(t, "hook", srv)},
		OutboxOptions{Clock: clock, BaseBackoff: time.Second, MaxBackoff: 30 * time.Second})
	enqueue(t, o, incident("inc-a"), "hook")
	waitFor(t, "a failed attempt at A", func() bool { return entryOf(t, o, "inc-a", "hook", ActionTrigger, 0).Attempts == 1 })
	if a := entryOf(t, o, "inc-a", "hook", ActionTrigger, 0); a.NextAt.Sub(t0) != 10*time.Minute {
		t.Fatalf("A's retry at %v, want the Retry-After, 10m", a.NextAt.Sub(t0))
	}

	// B is due now; A is not due for 10 minutes. The clock does not move.
	enqueue(t, o, incident("inc-b"), "hook")
	b := waitState2(t, o, "inc-b", "hook", ActionTrigger, StateDelivered)
	if b.Attempts != 1 || clock.elapsed() != 0 {
		t.Fatalf("B %+v delivered at %v", b, clock.elapsed())
	}

	// A keeps failing, and C queued meanwhile goes out between A's retries.
	advanceUntil(t, clock, 5*time.Minute, "A retried twice more", func() bool {
		return entryOf(t, o, "inc-a", "hook", ActionTrigger, 0).Attempts >= 3
	})
	enqueue(t, o, incident("inc-c"), "hook")
	waitState2(t, o, "inc-c", "hook", ActionTrigger, StateDelivered)
	if a := entryOf(t, o, "inc-a", "hook", ActionTrigger, 0); a.State != StatePending || a.NextAt.Before(clock.Now()) {
		t.Fatalf("A %+v", a)
	}
	o.Close()
	if got := strings.Join(srv.events("", true), " "); got != "down/inc-b down/inc-c" {
		t.Fatalf("accepted %s", got)
	}
}

// waitState2 waits for the entry of (incident, notifier, action, seq 0 or
// the reminder's) to reach state.
func waitState2(t *testing.T, o *Outbox, incident, notifier string, action Action, state string) Entry {
	t.Helper()
	var e Entry
	waitFor(t, incident+" "+notifier+" "+string(action)+" "+state, func() bool {
		e = entryOf(t, o, incident, notifier, action, 0)
		return e.State == state
	})
	return e
}

// TestOutboxPerIncidentOrderKept: while an incident's trigger is being
// retried, its reminder and resolve wait behind it; another incident's
// notifications go out meanwhile. Once the trigger is delivered the rest
// follow in order.
func TestOutboxPerIncidentOrderKept(t *testing.T) {
	clock := newManualClock()
	var mu sync.Mutex
	aUp := false
	srv := newHookServer(t, clock, func(b WebhookBody, w http.ResponseWriter) int {
		mu.Lock()
		defer mu.Unlock()
		if b.IncidentID == "inc-a" && !aUp {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), []Provider{hookOn(t, "hook", srv)},
		OutboxOptions{Clock: clock, BaseBackoff: time.Second, MaxBackoff: 10 * time.Second})
	a, b := incident("inc-a"), incident("inc-b")
	remindA := reminder(1, t0.Add(time.Hour))
	remindA.IncidentID = "inc-a"
	for _, e := range []Event{a, b, remindA, resolved(b), resolved(a)} {
		enqueue(t, o, e, "hook")
	}
	waitState2(t, o, "inc-b", "hook", ActionResolve, StateDelivered)
	advanceUntil(t, clock, 10*time.Second, "A's trigger retried 4 times", func() bool {
		return entryOf(t, o, "inc-a", "hook", ActionTrigger, 0).Attempts >= 4
	})
	for _, e := range []Entry{entryOf(t, o, "inc-a", "hook", ActionRepeat, 1), entryOf(t, o, "inc-a", "hook", ActionResolve, 0)} {
		if e.State != StatePending || e.Attempts != 0 {
			t.Fatalf("%s went before its trigger: %+v", e.Action, e)
		}
	}
	mu.Lock()
	aUp = true
	mu.Unlock()
	advanceUntil(t, clock, 10*time.Second, "A's resolve delivered", func() bool {
		return entryOf(t, o, "inc-a", "hook", ActionResolve, 0).State == StateDelivered
	})
	o.Close()
	var tried []string
	for _, e := range srv.events("inc-a", false) {
		if len(tried) == 0 || tried[len(tried)-1] != e {
			tried = append(tried, e)
		}
	}
	if got := strings.Join(tried, " "); got != "down/inc-a repeat/inc-a#1 up/inc-a" {
		t.Fatalf("incident A's requests in order: %s", got)
	}
	if got := strings.Join(srv.events("inc-b", false), " "); got != "down/inc-b up/inc-b" {
		t.Fatalf("incident B: %s", got)
	}
}

// TestOutboxRetryableReachesFallbackAfterAttempts: a primary answering
// 503 for ever hands its entries to the fallback after FallbackAttempts
// failed attempts (no fallback_after), taking the reminder queued behind
// the trigger along, and keeps retrying.
func TestOutboxRetryableReachesFallbackAfterAttempts(t *testing.T) {
	for _, tc := range []struct {
		opt, want int
	}{{3, 3}, {0, DefaultFallbackAttempts}} {
		t.Run(fmt.Sprintf("FallbackAttempts=%d", tc.opt), func(t *testing.T) {
			clock := newManualClock()
			primary := newHookServer(t, clock, func(WebhookBody, http.ResponseWriter) int { return http.StatusServiceUnavailable })
			var mu sync.Mutex
			primaryAtFallback := -1
			backup := newHookServer(t, clock, func(WebhookBody, http.ResponseWriter) int {
				mu.Lock()
				if primaryAtFallback < 0 {
					primaryAtFallback = primary.count()
				}
				mu.Unlock()
				return http.StatusOK
			})
			o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"),
				[]Provider{hookOn(t, "primary", primary), hookOn(t, "backup", backup)},
				OutboxOptions{Clock: clock, BaseBackoff: time.Second, MaxBackoff: 4 * time.Second, FallbackAttempts: tc.opt,
					Fallbacks: map[string]Fallback{"primary": {To: []string{"backup"}}}})
			enqueue(t, o, sampleEv, "primary")
			enqueue(t, o, reminder(1, t0.Add(time.Hour)), "primary")
			advanceUntil(t, clock, 4*time.Second, "the backup's reminder delivered", func() bool {
				return entryOf(t, o, "inc-1", "backup", ActionRepeat, 1).State == StateDelivered
			})
			mu.Lock()
			n := primaryAtFallback
			mu.Unlock()
			if n < tc.want {
				t.Fatalf("fell back after %d failed attempts, want %d", n, tc.want)
			}
			p := entryOf(t, o, "inc-1", "primary", ActionTrigger, 0)
			if p.State != StatePending || !p.FallbackDone || p.Attempts < tc.want {
				t.Fatalf("primary %+v", p)
			}
			if fb := entryOf(t, o, "inc-1", "backup", ActionTrigger, 0); fb.FallbackOf != "primary" || fb.State != StateDelivered {
				t.Fatalf("backup %+v", fb)
			}
			// The resolve follows; the primary keeps retrying.
			enqueue(t, o, resolved(sampleEv), "primary")
			waitState2(t, o, "inc-1", "backup", ActionResolve, StateDelivered)
			before := primary.count()
			advanceUntil(t, clock, 4*time.Second, "the primary retried", func() bool { return primary.count() > before })
			o.Close()
			if got := strings.Join(backup.events("", false), " "); got != "down/inc-1 repeat/inc-1#1 up/inc-1" {
				t.Fatalf("backup got %s", got)
			}
		})
	}
}

// TestOutboxRetryableReachesFallbackAfterTimeout: with a high attempt
// bound, a 503-ing primary hands over at fallback_after, in virtual time.
func TestOutboxRetryableReachesFallbackAfterTimeout(t *testing.T) {
	clock := newManualClock()
	primary := newHookServer(t, clock, func(WebhookBody, http.ResponseWriter) int { return http.StatusBadGateway })
	backup := newHookServer(t, clock, nil)
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"),
		[]Provider{hookOn(t, "primary", primary), hookOn(t, "backup", backup)},
		OutboxOptions{Clock: clock, BaseBackoff: time.Second, MaxBackoff: 30 * time.Second, FallbackAttempts: 1000,
			Fallbacks: map[string]Fallback{"primary": {To: []string{"backup"}, After: 2 * time.Minute}}})
	enqueue(t, o, sampleEv, "primary")
	advanceUntil(t, clock, 5*time.Second, "the trigger handed to the backup", func() bool {
		return entryOf(t, o, "inc-1", "backup", ActionTrigger, 0).ID != 0
	})
	fb := waitState2(t, o, "inc-1", "backup", ActionTrigger, StateDelivered)
	// Handed over at the first check at or after 2m (the clock moves 5 s
	// a step; allow for a few steps of scheduling delay).
	if at := fb.EnqueuedAt.Sub(t0); at < 2*time.Minute || at > 2*time.Minute+30*time.Second {
		t.Fatalf("handed over at %v (virtual), want 2m", at)
	}
	if p := entryOf(t, o, "inc-1", "primary", ActionTrigger, 0); p.State != StatePending || !p.FallbackDone || p.Attempts < 2 ||
		p.Attempts >= 1000 {
		t.Fatalf("primary %+v", p)
	}
	o.Close()
	if reqs := backup.requests(); len(reqs) != 1 || reqs[0].At < 2*time.Minute {
		t.Fatalf("backup requests %+v, want one after 2m (virtual)", reqs)
	}
}

// TestOutbox429PausesNotifier: a 429 is about the sender, not the
// incident: nothing else goes to that notifier until its Retry-After.
func TestOutbox429PausesNotifier(t *testing.T) {
	clock := newManualClock()
	var mu sync.Mutex
	limited := true
	srv := newHookServer(t, clock, func(b WebhookBody, w http.ResponseWriter) int {
		mu.Lock()
		defer mu.Unlock()
		if limited {
			limited = false
			w.Header().Set("Retry-After", "60")
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	})
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), []Provider{hookOn(t, "hook", srv)},
		OutboxOptions{Clock: clock, BaseBackoff: time.Second})
	enqueue(t, o, incident("inc-a"), "hook")
	waitFor(t, "A throttled", func() bool { return entryOf(t, o, "inc-a", "hook", ActionTrigger, 0).Attempts == 1 })
	enqueue(t, o, incident("inc-b"), "hook")
	advanceUntil(t, clock, 10*time.Second, "both delivered", func() bool {
		return entryOf(t, o, "inc-a", "hook", ActionTrigger, 0).State == StateDelivered &&
			entryOf(t, o, "inc-b", "hook", ActionTrigger, 0).State == StateDelivered
	})
	o.Close()
	reqs := srv.requests()
	if len(reqs) != 3 || reqs[0].Status != http.StatusTooManyRequests {
		t.Fatalf("requests %+v", reqs)
	}
	for _, r := range reqs[1:] {
		if r.At < time.Minute {
			t.Fatalf("%s sent %v after the 429, want at least its Retry-After (1m): %+v", r.IncidentID, r.At, reqs)
		}
	}
}

// outboxSchemaV2 is the version 2 schema, verbatim.
const outboxSchemaV2 = `
CREATE TABLE outbox (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	incident_id   TEXT    NOT NULL,
	notifier      TEXT    NOT NULL,
	action        TEXT    NOT NULL,
	seq           INTEGER NOT NULL DEFAULT 0,
	event         TEXT    NOT NULL,
	state         TEXT    NOT NULL DEFAULT 'pending',
	attempts      INTEGER NOT NULL DEFAULT 0,
	enqueued_at   INTEGER NOT NULL,
	next_at       INTEGER NOT NULL,
	delivered_at  INTEGER NOT NULL DEFAULT 0,
	last_error    TEXT    NOT NULL DEFAULT '',
	receipt       TEXT    NOT NULL DEFAULT '',
	fallback_done INTEGER NOT NULL DEFAULT 0,
	fallback_of   TEXT    NOT NULL DEFAULT '',
	UNIQUE (incident_id, notifier, action, seq)
);
CREATE INDEX outbox_queue ON outbox (notifier, state, id);
PRAGMA user_version = 2;
`

func TestOutboxMigratesVersion2KeepingPendingRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	db, err := sql.Open("sqlite", outboxDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(outboxSchemaV2); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(sampleEv)
	rem, _ := json.Marshal(reminder(1, t0.Add(time.Hour)))
	now := t0.UnixNano()
	if _, err := db.Exec(`INSERT INTO outbox (incident_id, notifier, action, seq, event, attempts, enqueued_at, next_at, last_error)
		VALUES ('inc-1', 'hook', 'trigger', 0, ?, 2, ?, ?, 'status 503'), ('inc-1', 'hook', 'repeat', 1, ?, 0, ?, ?, '')`,
		string(raw), now, now, string(rem), now, now); err != nil {
		t.Fatal(err)
	}
	db.Close()

	clock := newManualClock()
	srv := newHookServer(t, clock, nil)
	o := openOutbox(t, path, []Provider{hookOn(t, "hook", srv)}, OutboxOptions{Clock: clock})
	waitFor(t, "the reminder delivered", func() bool {
		return entryOf(t, o, "inc-1", "hook", ActionRepeat, 1).State == StateDelivered
	})
	if e := entryOf(t, o, "inc-1", "hook", ActionTrigger, 0); e.State != StateDelivered || e.Attempts != 3 || e.Holds != 0 {
		t.Fatalf("migrated trigger %+v", e)
	}
	var version int
	if err := o.db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil || version != outboxVersion {
		t.Fatalf("user_version %d, %v", version, err)
	}
	var indexes []string
	rows, err := o.db.Query(`SELECT sql FROM sqlite_master WHERE type = 'index' AND name LIKE 'outbox_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		indexes = append(indexes, s)
	}
	rows.Close()
	if got := strings.Join(indexes, "; "); got != strings.TrimSuffix(outboxIncidentIndex, ";")+"; "+strings.TrimSuffix(outboxQueueIndex, ";") {
		t.Fatalf("indexes after migration: %s", got)
	}
	o.Close()
	if got := strings.Join(srv.events("", true), " "); got != "down/inc-1 repeat/inc-1#1" {
		t.Fatalf("receiver got %s", got)
	}
}
