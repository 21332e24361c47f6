package notifier

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
)

// outboxSchemaV1 is the outbox schema as the first release wrote it,
// verbatim: unique on (incident_id, notifier, action), user_version 1.
const outboxSchemaV1 = `
CREATE TABLE IF NOT EXISTS outbox (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	incident_id   TEXT    NOT NULL,
	notifier      TEXT    NOT NULL,
	action        TEXT    NOT NULL,
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
	UNIQUE (incident_id, notifier, action)
);
CREATE INDEX IF NOT EXISTS outbox_queue ON outbox (notifier, state, id);
PRAGMA user_version = 1;
`

// webhookEvents decodes the webhook bodies a recorder received.
func webhookEvents(t *testing.T, reqs []request) []WebhookBody {
	t.Helper()
	var out []WebhookBody
	for _, r := range reqs {
		var b WebhookBody
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestOutboxMigratesVersion1KeepingPendingRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	db, err := sql.Open("sqlite", outboxDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(outboxSchemaV1); err != nil {
		t.Fatal(err)
	}
	old := sampleEv
	old.IncidentID = "inc-0"
	oldRaw, _ := json.Marshal(resolved(old))
	raw, _ := json.Marshal(sampleEv)
	now := time.Now().UnixNano()
	// A delivered resolve of an old incident, and a pending trigger that a
	// crash left behind.
	if _, err := db.Exec(`INSERT INTO outbox (incident_id, notifier, action, event, state, attempts, enqueued_at, next_at, delivered_at, receipt)
		VALUES ('inc-0', 'hook', 'resolve', ?, 'delivered', 1, ?, ?, ?, '200')`, string(oldRaw), now, now, now); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO outbox (incident_id, notifier, action, event, attempts, enqueued_at, next_at, last_error)
		VALUES ('inc-1', 'hook', 'trigger', ?, 2, ?, ?, 'status 503')`, string(raw), now, now); err != nil {
		t.Fatal(err)
	}
	db.Close()

	rec := newRecorder(t, always(http.StatusOK))
	o := openOutbox(t, path, []Provider{hook(t, "hook", rec)}, OutboxOptions{})
	e := waitState(t, o, "hook", ActionTrigger, StateDelivered)
	if e.Attempts != 3 || e.Seq != 0 || e.ID != 2 {
		t.Fatalf("migrated pending row %+v", e)
	}
	ctx := context.Background()
	// The old delivered row still deduplicates; reminders are new rows.
	if err := o.Enqueue(ctx, resolved(old), "hook"); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []int{1, 2, 1} {
		if err := o.Enqueue(ctx, reminder(seq, t0.Add(time.Duration(seq)*time.Hour)), "hook"); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Enqueue(ctx, resolved(sampleEv), "hook"); err != nil {
		t.Fatal(err)
	}
	waitState(t, o, "hook", ActionResolve, StateDelivered)
	var version int
	if err := o.db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil || version != outboxVersion {
		t.Fatalf("user_version %d, %v", version, err)
	}
	all, err := o.Entries(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 5 || all[0].IncidentID != "inc-0" || all[0].State != StateDelivered || all[0].Receipt != "200" {
		t.Fatalf("entries after migration: %+v", all)
	}
	o.Close()
	var got []string
	for _, b := range webhookEvents(t, rec.requests()) {
		got = append(got, b.Event+"/"+b.IncidentID)
		if b.Event == WebhookRepeat {
			got[len(got)-1] += "#" + string(rune('0'+b.Seq))
		}
	}
	if want := "down/inc-1 repeat/inc-1#1 repeat/inc-1#2 up/inc-1"; strings.Join(got, " ") != want {
		t.Fatalf("receiver got %v, want %s", got, want)
	}
	// Opening the migrated file again changes nothing.
	o2 := openOutbox(t, path, []Provider{hook(t, "hook", rec)}, OutboxOptions{})
	again, _ := o2.Entries(ctx, "")
	if len(again) != 5 {
		t.Fatalf("%d entries after reopening", len(again))
	}
}

func TestOutboxRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	db, err := sql.Open("sqlite", outboxDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE outbox (id INTEGER); PRAGMA user_version = 9`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := OpenOutbox(path, nil, OutboxOptions{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("opened a newer schema: %v", err)
	}
}

func TestOutboxRemindersOncePerSeq(t *testing.T) {
	rec := newRecorder(t, always(http.StatusOK))
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), []Provider{hook(t, "hook", rec)}, OutboxOptions{})
	ctx := context.Background()
	for _, e := range []Event{sampleEv, reminder(1, t0.Add(time.Hour)), reminder(1, t0.Add(time.Hour)),
		reminder(2, t0.Add(2*time.Hour)), sampleEv, resolved(sampleEv), reminder(2, t0.Add(2*time.Hour))} {
		if err := o.Enqueue(ctx, e, "hook"); err != nil {
			t.Fatal(err)
		}
	}
	waitState(t, o, "hook", ActionResolve, StateDelivered)
	entries, err := o.Entries(ctx, "inc-1")
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	var keys []string
	for _, e := range entries {
		if e.Attempts != 1 || e.State != StateDelivered {
			t.Errorf("entry %s: %d attempts, %s", actionKey(e.Action, e.Seq), e.Attempts, e.State)
		}
		keys = append(keys, actionKey(e.Action, e.Seq))
	}
	evs := webhookEvents(t, rec.requests())
	if len(evs) != 4 || evs[0].Event != "down" || evs[1].Event != "repeat" || evs[1].Seq != 1 ||
		evs[2].Event != "repeat" || evs[2].Seq != 2 || evs[3].Event != "up" {
		t.Fatalf("receiver got %+v", evs)
	}
	if strings.Join(keys, " ") != "trigger repeat#1 repeat#2 resolve" {
		t.Fatalf("entries %v", keys)
	}
}

func TestOutboxReminderFollowsTriggerToFallback(t *testing.T) {
	primary := newRecorder(t, always(http.StatusBadRequest))
	backup := newRecorder(t, always(http.StatusOK))
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"),
		[]Provider{hook(t, "primary", primary), hook(t, "backup", backup)},
		OutboxOptions{Fallbacks: map[string]Fallback{"primary": {To: []string{"backup"}}}})
	ctx := context.Background()
	if err := o.Enqueue(ctx, sampleEv, "primary"); err != nil {
		t.Fatal(err)
	}
	waitState(t, o, "backup", ActionTrigger, StateDelivered)
	if err := o.Enqueue(ctx, reminder(1, t0.Add(time.Hour)), "primary"); err != nil {
		t.Fatal(err)
	}
	waitState(t, o, "backup", ActionRepeat, StateDelivered)
	o.Close()
	evs := webhookEvents(t, backup.requests())
	if len(evs) != 2 || evs[1].Event != "repeat" || evs[1].Seq != 1 {
		t.Fatalf("backup got %+v", evs)
	}
}

func TestOutboxEventValidation(t *testing.T) {
	rec := newRecorder(t, nil)
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), []Provider{hook(t, "hook", rec)}, OutboxOptions{})
	ctx := context.Background()
	bad := func(e Event, want string) {
		t.Helper()
		if err := o.Enqueue(ctx, e, "hook"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Enqueue(%s %s seq %d id %s) = %v, want an error about %q", e.Kind, e.Action, e.Seq, e.IncidentID, err, want)
		}
	}
	bad(reminder(0, t0), "numbered from 1")
	numbered := sampleEv
	numbered.Seq = 2
	bad(numbered, "only reminders are numbered")
	cov := coverageLost()
	cov.IncidentID = "inc-1"
	bad(cov, `must start with "coverage-"`)
	cov = coverageLost()
	cov.Action, cov.Seq = ActionRepeat, 1
	bad(cov, "only trigger and resolve")
	odd := sampleEv
	odd.Kind = "outage"
	bad(odd, "unknown event kind")
	odd = sampleEv
	odd.Action = "ack"
	bad(odd, "unknown action")
	for _, e := range []Event{coverageLost(), coverageBack(), flapping(), stable()} {
		if err := o.Enqueue(ctx, e, "hook"); err != nil {
			t.Errorf("Enqueue(%s %s): %v", e.Kind, e.Action, err)
		}
	}
}

// autoClock is a Clock whose After returns at once, moving the time
// forward by the wait: an outbox with one worker runs in virtual time,
// deterministically and without sleeping.
type autoClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func (c *autoClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *autoClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.waits = append(c.waits, d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// virtualTimes records the virtual time at which each request arrives.
func virtualTimes(t *testing.T, clock *autoClock) (*recorder, func() []time.Duration) {
	var mu sync.Mutex
	var at []time.Duration
	rec := newRecorder(t, func(int, http.ResponseWriter) int {
		mu.Lock()
		at = append(at, clock.Now().Sub(t0))
		mu.Unlock()
		return http.StatusOK
	})
	return rec, func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), at...)
	}
}

func TestOutboxRateLimitQueuesNeverDrops(t *testing.T) {
	for _, tc := range []struct {
		name  string
		typ   string
		limit *config.RateLimit
		every time.Duration
	}{
		{"slack default 1/s", "slack", nil, time.Second},
		{"slack rate_limit 2/s", "slack", &config.RateLimit{Count: 2, Per: time.Second}, 500 * time.Millisecond},
		{"discord default 30/m", "discord", nil, 2 * time.Second},
		{"slack rate_limit none", "slack", &config.RateLimit{}, 0},
		{"webhook unlimited", "webhook", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &autoClock{now: t0}
			rec, times := virtualTimes(t, clock)
			p := mustNew(t, config.Notifier{Name: "chat", Type: tc.typ, URL: rec.URL + "/hook", RateLimit: tc.limit})
			o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), []Provider{p}, OutboxOptions{Clock: clock})
			const n = 6
			ctx := context.Background()
			for i := 0; i < n; i++ {
				e := sampleEv
				e.IncidentID = "inc-" + string(rune('a'+i))
				if err := o.Enqueue(ctx, e, "chat"); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "every notification delivered", func() bool { return rec.count() == n })
			o.Close()
			at := times()
			if len(at) != n {
				t.Fatalf("receiver got %d requests, want %d", len(at), n)
			}
			for i := 1; i < n; i++ {
				if gap := at[i] - at[i-1]; gap < tc.every {
					t.Fatalf("requests %d and %d %v apart in virtual time, want at least %v (all: %v)", i-1, i, gap, tc.every, at)
				}
			}
			if tc.every > 0 && at[n-1] != time.Duration(n-1)*tc.every {
				t.Fatalf("last request at %v, want %v: the queue should not wait longer than the limit (all: %v)",
					at[n-1], time.Duration(n-1)*tc.every, at)
			}
			if tc.every == 0 && at[n-1] != 0 {
				t.Fatalf("unlimited notifier waited: %v", at)
			}
			// The per-incident order is kept and nothing was dropped.
			for i, r := range rec.requests() {
				if !strings.Contains(string(r.Body), "inc-"+string(rune('a'+i))) {
					t.Fatalf("request %d out of order: %s", i, r.Body)
				}
			}
		})
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter()
	slackA := RateOf(config.Notifier{Type: "slack", URL: "https://hooks.example.com/a"})
	slackA2 := RateOf(config.Notifier{Name: "other", Type: "slack", URL: "https://hooks.example.com/a"})
	slackB := RateOf(config.Notifier{Type: "slack", URL: "https://hooks.example.com/b"})
	if slackA != slackA2 || slackA == slackB || slackA.Every != time.Second {
		t.Fatalf("slack rates %+v %+v %+v", slackA, slackA2, slackB)
	}
	if strings.Contains(slackA.Key, "hooks.example.com") {
		t.Fatalf("the key shows the webhook URL: %s", slackA.Key)
	}
	for i, tc := range []struct {
		r    Rate
		at   time.Duration
		want time.Duration
	}{
		{slackA, 0, 0},
		{slackA2, 0, time.Second}, // same webhook: shares the budget
		{slackB, 0, 0},            // another webhook: its own
		{slackA, 500 * time.Millisecond, 1500 * time.Millisecond},
		{slackA, 10 * time.Second, 0}, // idle long enough: no wait, no burst credit
		{slackA, 10 * time.Second, time.Second},
		{Rate{}, 0, 0}, // unlimited
		{Rate{Key: "x"}, 0, 0},
	} {
		if got := l.Reserve(tc.r, t0.Add(tc.at)); got != tc.want {
			t.Errorf("step %d: Reserve at %v = %v, want %v", i, tc.at, got, tc.want)
		}
	}
	for _, tc := range []struct {
		n    config.Notifier
		want time.Duration
	}{
		{config.Notifier{Type: "pagerduty", RoutingKey: "k"}, 500 * time.Millisecond},
		{config.Notifier{Type: "telegram", BotToken: "1:a", ChatID: "5"}, time.Second},
		{config.Notifier{Type: "discord", URL: "https://d.example/"}, 2 * time.Second},
		{config.Notifier{Type: "msteams", URL: "https://t.example/"}, 250 * time.Millisecond},
		{config.Notifier{Type: "opsgenie", APIKey: "k"}, 0},
		{config.Notifier{Type: "webhook", URL: "https://w.example/"}, 0},
		{config.Notifier{Type: "email", SMTP: "m:25"}, 0},
		{config.Notifier{Type: "webhook", URL: "https://w.example/", RateLimit: &config.RateLimit{Count: 10, Per: time.Minute}}, 6 * time.Second},
		{config.Notifier{Type: "pagerduty", RoutingKey: "k", RateLimit: &config.RateLimit{}}, 0},
	} {
		if got := RateOf(tc.n).Every; got != tc.want {
			t.Errorf("RateOf(%s, %+v) every %v, want %v", tc.n.Type, tc.n.RateLimit, got, tc.want)
		}
	}
	// PagerDuty is limited per routing key, Telegram per chat.
	if RateOf(config.Notifier{Type: "pagerduty", RoutingKey: "a"}) == RateOf(config.Notifier{Type: "pagerduty", RoutingKey: "b"}) ||
		RateOf(config.Notifier{Type: "telegram", BotToken: "t", ChatID: "1"}) == RateOf(config.Notifier{Type: "telegram", BotToken: "t", ChatID: "2"}) {
		t.Error("rate keys")
	}
	if m := RateLimitsFrom([]config.Notifier{{Name: "chat", Type: "slack", URL: "https://hooks.example.com/a"}}); m["chat"] != slackA {
		t.Errorf("RateLimitsFrom = %v", m)
	}
}

func TestOutboxRateLimitFromOptions(t *testing.T) {
	// A wrapped provider (as the node wraps them) has no RateLimit method:
	// OutboxOptions.RateLimits supplies it.
	clock := &autoClock{now: t0}
	rec, times := virtualTimes(t, clock)
	p := struct{ Provider }{hook(t, "hook", rec)}
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), []Provider{p}, OutboxOptions{Clock: clock,
		RateLimits: map[string]Rate{"hook": {Key: "k", Every: 3 * time.Second}}})
	ctx := context.Background()
	for _, e := range []Event{sampleEv, reminder(1, t0), resolved(sampleEv)} {
		if err := o.Enqueue(ctx, e, "hook"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "three deliveries", func() bool { return rec.count() == 3 })
	o.Close()
	if at := times(); at[0] != 0 || at[1] != 3*time.Second || at[2] != 6*time.Second {
		t.Fatalf("virtual times %v", at)
	}
}
