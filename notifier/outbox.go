package notifier

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vantage-dev/vantage/config"

	_ "modernc.org/sqlite" // driver "sqlite"
)

// Outbox entry states.
const (
	StatePending   = "pending"   // written, not yet accepted by the provider
	StateDelivered = "delivered" // the provider accepted it
	StateFailed    = "failed"    // the provider refused it permanently (non-429 4xx)
)

// Clock is the time source of an Outbox; tests may inject their own.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Fallback is a notifier's fallback chain: when it has not delivered an
// entry within After of enqueueing it (After 0: never by time), failed it
// permanently, or failed OutboxOptions.FallbackAttempts attempts at it, the
// same event is enqueued once to each of To.
type Fallback struct {
	To    []string
	After time.Duration
}

// FallbacksFrom collects the fallback chains of the configured notifiers.
func FallbacksFrom(ns []config.Notifier) map[string]Fallback {
	m := map[string]Fallback{}
	for _, n := range ns {
		if len(n.Fallback) > 0 {
			m[n.Name] = Fallback{To: append([]string(nil), n.Fallback...), After: n.FallbackAfter}
		}
	}
	return m
}

// Log is the cluster's record of deliveries (the mesh's sent log). The
// outbox consults it before each attempt and writes to it after each
// delivery. Its methods are called from the outbox's worker goroutines,
// concurrently, and must not call back into the Outbox.
type Log interface {
	// DeliveredBy reports the node that delivered (incident, key, notifier),
	// when one did. key is Event.Key() ("trigger", "resolve", "repeat#3", ...).
	DeliveredBy(incident, key, notifier string) (node string, ok bool)
	// Delivered records that this node delivered e through notifier; called
	// after the outbox committed the delivery.
	Delivered(e Event, notifier string)
}

// Gate holds deliveries while this node must not send (it cannot see a
// majority of the regions). Hold is called from the outbox's worker
// goroutines, concurrently, and must not call back into the Outbox.
type Gate interface {
	Hold() (reason string, held bool)
}

// OutboxOptions tune an Outbox. The zero value is usable.
type OutboxOptions struct {
	Logger *slog.Logger
	Clock  Clock // default: the real clock
	// BaseBackoff is the wait after the first failed attempt (default 1 s);
	// it doubles with each further failure up to MaxBackoff (default 30 s).
	// Each wait is jittered to between half and all of its value.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// MaxRetryAfter caps a provider's Retry-After (default 10 min).
	MaxRetryAfter time.Duration
	// SendTimeout bounds one attempt (default 30 s).
	SendTimeout time.Duration
	// Fallbacks by notifier name; see FallbacksFrom.
	Fallbacks map[string]Fallback
	// FallbackAttempts: a pending entry is handed to its notifier's
	// fallbacks after this many failed attempts (default 10; negative:
	// never by attempts), even before its Fallback.After. The notifier
	// keeps retrying it.
	FallbackAttempts int
	// Log, when set, is the cluster's sent log: an entry it shows delivered
	// by a node other than Self is marked delivered without being sent
	// (receipt "not sent: already delivered by NODE"), and every delivery
	// is recorded in it once committed.
	Log Log
	// Gate, when set, holds deliveries: while it is held, a due entry is
	// not sent but retried later ("held: REASON"), with its own backoff.
	Gate Gate
	// Self is this node's name: a Log entry naming Self does not skip.
	Self string
	// Registerer, when set, gets the outbox's metrics:
	// vantage_notifications_total{notifier,action,outcome} and
	// vantage_outbox_pending{notifier}. Close unregisters them.
	Registerer prometheus.Registerer
	// RateLimits by notifier name (see RateLimitsFrom); a notifier not
	// named uses its provider's RateLimit when it has one, else none.
	RateLimits map[string]Rate
	// Limiter spaces the sends that share a rate key; default: a new one.
	// Outboxes that send through the same providers may share one.
	Limiter *Limiter
}

func (o *OutboxOptions) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = 10 * time.Minute
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 30 * time.Second
	}
	if o.Limiter == nil {
		o.Limiter = NewLimiter()
	}
	if o.FallbackAttempts == 0 {
		o.FallbackAttempts = DefaultFallbackAttempts
	}
}

// DefaultFallbackAttempts is OutboxOptions.FallbackAttempts' default.
const DefaultFallbackAttempts = 10

// Entry is one row of the outbox.
type Entry struct {
	ID           int64
	IncidentID   string
	Notifier     string
	Action       Action
	Seq          int // a reminder's number; 0 for other actions
	State        string
	Attempts     int // calls to the provider
	Holds        int // tries held by the Gate since the last call to the provider
	EnqueuedAt   time.Time
	NextAt       time.Time
	DeliveredAt  time.Time // zero until delivered
	LastError    string
	Receipt      string
	FallbackDone bool   // the entry has been handed to its notifier's fallbacks
	FallbackOf   string // the notifier this entry is a fallback for ("" for a direct entry)
	Event        Event
}

// Outbox is a durable, per-node notification queue in its own SQLite file.
//
// Every (incident_id, notifier, action, seq) is stored once (seq numbers
// reminders, 0 for other actions): Enqueue writes it
// before anything is sent, a worker goroutine per notifier delivers its
// due entries, each incident's in order, and an entry is marked delivered
// only after the provider accepted it. Entries left pending by a crash or
// shutdown are sent when the outbox is opened again.
type Outbox struct {
	db        *sql.DB
	opts      OutboxOptions
	log       *slog.Logger
	providers map[string]Provider
	rates     map[string]Rate
	wake      map[string]chan struct{}
	fbWake    chan struct{}
	metrics   *outboxMetrics
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// outboxVersion is the schema version (PRAGMA user_version). Version 1
// was unique on (incident_id, notifier, action); version 2 adds seq;
// version 3 adds holds, orders the queue index by next_at and indexes rows
// by incident.
const outboxVersion = 3

const outboxTable = `
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
	holds         INTEGER NOT NULL DEFAULT 0,
	UNIQUE (incident_id, notifier, action, seq)
);
` + outboxQueueIndex + outboxIncidentIndex

// outboxQueueIndex and outboxIncidentIndex serve the workers' query
// (nextRowQuery): a notifier's pending rows by next_at, and whether an
// earlier row of the same incident is still pending.
const (
	outboxQueueIndex    = `CREATE INDEX outbox_queue ON outbox (notifier, state, next_at, id);`
	outboxIncidentIndex = `CREATE INDEX outbox_incident ON outbox (incident_id, notifier, state, id);`
)

// v1Columns are the columns a version 1 table has, copied by the migration.
const v1Columns = `id, incident_id, notifier, action, event, state, attempts, enqueued_at, next_at, delivered_at,
	last_error, receipt, fallback_done, fallback_of`

// migrate creates the outbox table, or brings an older one to
// outboxVersion in one transaction, keeping every row (pending ones too).
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var version, tables int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return err
	}
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'outbox'`).Scan(&tables); err != nil {
		return err
	}
	switch {
	case version > outboxVersion:
		return fmt.Errorf("schema version %d is newer than this program's (%d)", version, outboxVersion)
	case tables == 0:
		if _, err := tx.ExecContext(ctx, outboxTable); err != nil {
			return err
		}
	case version == outboxVersion:
		return nil
	case version == 2:
		for _, q := range []string{
			`ALTER TABLE outbox ADD COLUMN holds INTEGER NOT NULL DEFAULT 0`,
			`DROP INDEX IF EXISTS outbox_queue`,
			outboxQueueIndex,
			outboxIncidentIndex,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("migrate from version %d: %w", version, err)
			}
		}
	default: // version 1 (or 0: a table from before versions were recorded)
		for _, q := range []string{
			`DROP INDEX IF EXISTS outbox_queue`,
			`ALTER TABLE outbox RENAME TO outbox_v1`,
			outboxTable,
			`INSERT INTO outbox (` + v1Columns + `, seq) SELECT ` + v1Columns + `, 0 FROM outbox_v1`,
			`DROP TABLE outbox_v1`,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("migrate from version %d: %w", version, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, outboxVersion)); err != nil {
		return err
	}
	return tx.Commit()
}

func outboxDSN(path string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return "file:" + r.Replace(path) + "?" + strings.Join([]string{
		"_pragma=busy_timeout(5000)",
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous(FULL)",
		"_txlock=immediate",
	}, "&")
}

// OpenOutbox opens (creating if needed) the outbox database at path and
// starts one delivery worker per provider. Every fallback target must be
// among providers.
func OpenOutbox(path string, providers []Provider, opts OutboxOptions) (*Outbox, error) {
	opts.setDefaults()
	o := &Outbox{
		opts:      opts,
		log:       opts.Logger.With("component", "outbox"),
		providers: map[string]Provider{},
		rates:     map[string]Rate{},
		wake:      map[string]chan struct{}{},
		fbWake:    make(chan struct{}, 1),
	}
	for _, p := range providers {
		if _, dup := o.providers[p.Name()]; dup {
			return nil, fmt.Errorf("outbox: duplicate notifier %q", p.Name())
		}
		o.providers[p.Name()] = p
		o.wake[p.Name()] = make(chan struct{}, 1)
		if r, ok := opts.RateLimits[p.Name()]; ok {
			o.rates[p.Name()] = r
		} else if rl, ok := p.(RateLimited); ok {
			o.rates[p.Name()] = rl.RateLimit()
		}
	}
	for from, fb := range opts.Fallbacks {
		for _, to := range fb.To {
			if o.providers[to] == nil {
				return nil, fmt.Errorf("outbox: notifier %q falls back to unknown notifier %q", from, to)
			}
		}
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
	}
	db, err := sql.Open("sqlite", outboxDSN(path))
	if err != nil {
		return nil, fmt.Errorf("outbox: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	ctx := context.Background()
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		db.Close()
		return nil, fmt.Errorf("outbox: open %s: journal_mode %q, want wal (%v)", path, mode, err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("outbox: open %s: schema: %w", path, err)
	}
	o.db = db
	o.metrics = newOutboxMetrics(o)
	if err := o.metrics.register(); err != nil {
		db.Close()
		return nil, fmt.Errorf("outbox: %w", err)
	}

	rows, err := db.QueryContext(ctx, `SELECT notifier, COUNT(*) FROM outbox WHERE state = 'pending' GROUP BY notifier`)
	if err == nil {
		for rows.Next() {
			var name string
			var n int
			if rows.Scan(&name, &n) == nil {
				if o.providers[name] == nil {
					o.log.Warn("outbox: pending notifications for a notifier that is not configured; they stay queued",
						"notifier", name, "pending", n)
				} else {
					o.log.Info("outbox: resuming pending notifications", "notifier", name, "pending", n)
				}
			}
		}
		rows.Close()
	}

	wctx, cancel := context.WithCancel(context.Background())
	o.cancel = cancel
	for name := range o.providers {
		o.wg.Add(1)
		go o.worker(wctx, name)
	}
	o.wg.Add(1)
	go o.fallbackLoop(wctx)
	return o, nil
}

// Close stops the workers (an attempt in flight is abandoned and its entry
// stays pending) and closes the database.
func (o *Outbox) Close() error {
	o.closeOnce.Do(func() {
		o.cancel()
		o.wg.Wait()
		o.metrics.unregister()
		o.closeErr = o.db.Close()
	})
	return o.closeErr
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Enqueue durably queues e for each named notifier. An (incident_id,
// notifier, action, seq) already in the outbox, whatever its state, is left
// alone: each is delivered at most once by this node. A resolve or a
// reminder for an incident whose trigger was handed to fallbacks is queued
// for those fallbacks too. Enqueue returns once the entries are committed
// to disk.
func (o *Outbox) Enqueue(ctx context.Context, e Event, notifiers ...string) error {
	if err := validEvent(e); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	for _, n := range notifiers {
		if o.providers[n] == nil {
			return fmt.Errorf("outbox: unknown notifier %q", n)
		}
		if _, ok := o.providers[n].(reportMailer); e.Kind == KindReport && !ok {
			return fmt.Errorf("outbox: notifier %q does not mail reports: only email notifiers do", n)
		}
	}
	raw, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	now := o.opts.Clock.Now().UnixNano()
	woken := map[string]bool{}
	err = o.tx(ctx, func(tx *sql.Tx) error {
		for _, n := range notifiers {
			ins, err := insertEntry(ctx, tx, e.IncidentID, n, e.Action, e.Seq, raw, now, "")
			if err != nil {
				return err
			}
			if !ins {
				continue
			}
			woken[n] = true
			if e.Action != ActionResolve && e.Action != ActionRepeat && e.Action != ActionUpdate {
				continue
			}
			// The trigger went to the fallbacks: so do the resolve and the
			// reminders.
			var done int
			err = tx.QueryRowContext(ctx, `SELECT fallback_done FROM outbox WHERE incident_id = ? AND notifier = ? AND action = ? AND seq = 0`,
				e.IncidentID, n, string(ActionTrigger)).Scan(&done)
			if errors.Is(err, sql.ErrNoRows) || (err == nil && done == 0) {
				continue
			}
			if err != nil {
				return err
			}
			if err := o.fallBack(ctx, tx, e.IncidentID, n, e.Action, e.Seq, raw, now, woken); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: enqueue: %w", err)
	}
	for n := range woken {
		poke(o.wake[n])
	}
	poke(o.fbWake)
	return nil
}

// validEvent checks what Enqueue accepts.
func validEvent(e Event) error {
	if e.IncidentID == "" {
		return errors.New("event without incident_id")
	}
	switch e.Action {
	case ActionTrigger, ActionResolve, ActionTest:
		if e.Seq != 0 {
			return fmt.Errorf("seq %d on a %s: only reminders are numbered", e.Seq, e.Action)
		}
	case ActionRepeat:
		if e.Seq < 1 {
			return fmt.Errorf("reminder with seq %d: reminders are numbered from 1", e.Seq)
		}
	case ActionUpdate:
		if (e.Kind != KindGroup && e.Kind != KindSubscriber) || e.Seq < 1 {
			return fmt.Errorf("update of kind %q with seq %d: only grouped pages are updated, numbered by their checks", e.Kind, e.Seq)
		}
	default:
		return fmt.Errorf("unknown action %q", e.Action)
	}
	switch e.Kind {
	case KindIncident:
	case KindGroup:
		if !strings.HasPrefix(e.IncidentID, KindGroup+"-") {
			return fmt.Errorf("grouped page with id %q: its id must start with %q", e.IncidentID, KindGroup+"-")
		}
		if e.Action == ActionTest {
			return errors.New("a grouped page is never a test")
		}
	case KindReport: // report.go
		return validMail(e)
	case KindSubscriber: // subscriber.go
		return validSubscriberEvent(e)
	case KindFlapping, KindCoverage, KindCert, KindMaintenance:
		prefix := e.Kind + "-"
		if e.Kind == KindCert {
			prefix = KindCert + ":"
		}
		if !strings.HasPrefix(e.IncidentID, prefix) {
			return fmt.Errorf("%s notice with id %q: its id must start with %q", e.Kind, e.IncidentID, prefix)
		}
		if e.Action != ActionTrigger && e.Action != ActionResolve {
			return fmt.Errorf("%s notice with action %q: only trigger and resolve", e.Kind, e.Action)
		}
	default:
		return fmt.Errorf("unknown event kind %q", e.Kind)
	}
	return nil
}

func insertEntry(ctx context.Context, tx *sql.Tx, incident, notifier string, action Action, seq int, event []byte, now int64, fallbackOf string) (bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO outbox (incident_id, notifier, action, seq, event, enqueued_at, next_at, fallback_of)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (incident_id, notifier, action, seq) DO NOTHING`,
		incident, notifier, string(action), seq, string(event), now, now, fallbackOf)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// fallBack queues (incident, action, seq) of notifier for each of its
// fallbacks and marks the entry as handed over.
func (o *Outbox) fallBack(ctx context.Context, tx *sql.Tx, incident, notifier string, action Action, seq int, event []byte, now int64, woken map[string]bool) error {
	fb, ok := o.opts.Fallbacks[notifier]
	if !ok || len(fb.To) == 0 {
		return nil
	}
	targets := fb.To
	if strings.HasPrefix(incident, KindReport+":") {
		targets = nil // a report mail is no page: marked handed over, to nobody (report.go)
	}
	for _, to := range targets {
		ins, err := insertEntry(ctx, tx, incident, to, action, seq, event, now, notifier)
		if err != nil {
			return err
		}
		if ins {
			woken[to] = true
			o.log.Warn("outbox: handing notification to fallback", "notifier", notifier, "fallback", to,
				"incident_id", incident, "action", actionKey(action, seq))
		}
	}
	_, err := tx.ExecContext(ctx, `UPDATE outbox SET fallback_done = 1 WHERE incident_id = ? AND notifier = ? AND action = ? AND seq = ?`,
		incident, notifier, string(action), seq)
	return err
}

func (o *Outbox) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// wait blocks for d, or until ctx ends (false); wake, when not nil, ends the
// wait early.
func (o *Outbox) wait(ctx context.Context, d time.Duration, wake chan struct{}) bool {
	var timer <-chan time.Time
	if d >= 0 {
		timer = o.opts.Clock.After(d)
	}
	select {
	case <-ctx.Done():
		return false
	case <-timer:
	case <-wake:
	}
	return true
}

type pendingRow struct {
	id       int64
	incident string
	action   Action
	seq      int
	event    Event
	attempts int
	holds    int
	nextAt   int64
}

// nextRowQuery picks a notifier's next entry: the pending row with the
// earliest next_at (ties by id) that no earlier pending row of the same
// incident and notifier holds back. A row waiting for its retry therefore
// delays only its own incident's later rows, never other incidents'.
const nextRowQuery = `SELECT id, incident_id, action, seq, event, attempts, holds, next_at FROM outbox AS o
	WHERE notifier = ? AND state = 'pending' AND NOT EXISTS (
		SELECT 1 FROM outbox AS b WHERE b.incident_id = o.incident_id AND b.notifier = o.notifier
			AND b.state = 'pending' AND b.id < o.id)
	ORDER BY next_at, id LIMIT 1`

func (o *Outbox) worker(ctx context.Context, name string) {
	defer o.wg.Done()
	p := o.providers[name]
	log := o.log.With("notifier", name)
	// pausedUntil: a provider that answered 429 (too many requests) gets
	// nothing from this notifier until then, whatever the incident.
	var pausedUntil time.Time
	for ctx.Err() == nil {
		var r pendingRow
		var raw, action string
		err := o.db.QueryRowContext(ctx, nextRowQuery, name).
			Scan(&r.id, &r.incident, &action, &r.seq, &raw, &r.attempts, &r.holds, &r.nextAt)
		if errors.Is(err, sql.ErrNoRows) {
			o.wait(ctx, -1, o.wake[name])
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				log.Error("outbox: reading queue", "err", err)
				o.wait(ctx, time.Second, nil)
			}
			continue
		}
		r.action = Action(action)
		if err := json.Unmarshal([]byte(raw), &r.event); err != nil {
			log.Error("outbox: undecodable entry; marking failed", "id", r.id, "err", err)
			o.finish(ctx, r.id, StateFailed, 0, "", "undecodable event: "+err.Error())
			continue
		}
		// Not due yet: wait for it, or for a new entry (which may be due
		// sooner).
		if d := time.Duration(r.nextAt - o.opts.Clock.Now().UnixNano()); d > 0 {
			o.wait(ctx, d, o.wake[name])
			continue
		}
		if o.settle(ctx, name, r, log) {
			continue
		}
		if d := pausedUntil.Sub(o.opts.Clock.Now()); d > 0 {
			o.wait(ctx, d, o.wake[name])
			continue
		}
		// Stay under the provider's rate limit: wait for a slot.
		if d := o.opts.Limiter.Reserve(o.rates[name], o.opts.Clock.Now()); d > 0 {
			if !o.wait(ctx, d, nil) {
				continue
			}
		}
		if pause := o.attempt(ctx, p, r, log); pause > 0 {
			pausedUntil = o.opts.Clock.Now().Add(pause)
		}
	}
}

// settle consults the Log and the Gate about a due row, before any call to
// the provider: a row another node delivered is marked delivered; while the
// Gate is held the row is retried later. It reports whether it settled the
// row this way (no attempt is to be made now).
func (o *Outbox) settle(ctx context.Context, name string, r pendingRow, log *slog.Logger) bool {
	key := actionKey(r.action, r.seq)
	if o.opts.Log != nil {
		if by, ok := o.opts.Log.DeliveredBy(r.incident, key, name); ok && by != o.opts.Self {
			receipt := "not sent: already delivered by " + by
			if o.finish(ctx, r.id, StateDelivered, r.attempts, receipt, "") {
				o.metrics.count(name, r.action, outcomeSkipped)
				log.Info("outbox: not sending: another node delivered it", "incident_id", r.incident, "action", key, "by", by)
			}
			return true
		}
	}
	if o.opts.Gate != nil {
		if reason, held := o.opts.Gate.Hold(); held {
			holds := r.holds + 1
			retryIn := o.backoff(holds, nil)
			next := o.opts.Clock.Now().Add(retryIn).UnixNano()
			if o.hold(ctx, r.id, holds, next, "held: "+reason) {
				o.metrics.count(name, r.action, outcomeHeld)
				lvl := slog.LevelDebug
				if holds == 1 {
					lvl = slog.LevelWarn
				}
				log.Log(ctx, lvl, "outbox: delivery held", "incident_id", r.incident, "action", key, "reason", reason,
					"holds", holds, "retry_in", retryIn)
			}
			return true
		}
	}
	return false
}

// attempt sends r through p and records the outcome. It returns how long
// the notifier should send nothing more when the provider answered 429.
func (o *Outbox) attempt(ctx context.Context, p Provider, r pendingRow, log *slog.Logger) (pause time.Duration) {
	sctx, cancel := context.WithTimeout(ctx, o.opts.SendTimeout)
	rc, err := p.Send(sctx, r.event)
	cancel()
	if ctx.Err() != nil {
		return 0 // shutting down: the entry stays pending, the attempt is not counted
	}
	name := p.Name()
	n := r.attempts + 1
	switch {
	case err == nil:
		o.metrics.count(name, r.action, outcomeDelivered)
		committed := o.finish(ctx, r.id, StateDelivered, n, rc.String(), "")
		if committed && o.opts.Log != nil {
			o.opts.Log.Delivered(r.event, name)
		}
		log.Info("outbox: delivered", "incident_id", r.incident, "action", actionKey(r.action, r.seq), "attempt", n,
			"answer", rc.String(), "recorded", committed)
	case IsRetryable(err):
		retryIn := o.backoff(n, err)
		o.metrics.count(name, r.action, outcomeRetry)
		next := o.opts.Clock.Now().Add(retryIn).UnixNano()
		o.retryLater(ctx, r.id, n, next, err.Error())
		log.Warn("outbox: delivery failed; will retry", "incident_id", r.incident, "action", actionKey(r.action, r.seq),
			"attempt", n, "retry_in", retryIn, "err", err)
		if _, ok := o.opts.Fallbacks[name]; ok {
			poke(o.fbWake) // it may have reached FallbackAttempts, or be past its Fallback.After
		}
		var se *SendError
		if errors.As(err, &se) && se.Status == http.StatusTooManyRequests {
			pause = retryIn
		}
	default:
		o.metrics.count(name, r.action, outcomeFailed)
		o.finish(ctx, r.id, StateFailed, n, "", err.Error())
		log.Error("outbox: delivery refused permanently; not retrying", "incident_id", r.incident,
			"action", actionKey(r.action, r.seq), "attempt", n, "err", err)
		poke(o.fbWake)
	}
	return pause
}

// backoff is the wait after the n-th failed attempt: BaseBackoff·2^(n-1)
// capped at MaxBackoff, jittered to [½, 1] of that, and at least the
// provider's Retry-After (capped at MaxRetryAfter).
func (o *Outbox) backoff(n int, err error) time.Duration {
	d := o.opts.MaxBackoff
	if n-1 < 30 {
		if b := o.opts.BaseBackoff << (n - 1); b > 0 && b < d {
			d = b
		}
	}
	d = d/2 + rand.N(d/2+1)
	var se *SendError
	if errors.As(err, &se) && se.RetryAfter > d {
		d = min(se.RetryAfter, o.opts.MaxRetryAfter)
	}
	return d
}

// dbRetry runs f until it succeeds (true) or ctx ends (false): a delivered
// entry that could not be marked would be sent again.
func (o *Outbox) dbRetry(ctx context.Context, what string, f func() error) bool {
	for {
		err := f()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		o.log.Error("outbox: "+what, "err", err)
		if !o.wait(ctx, 100*time.Millisecond, nil) {
			return false
		}
	}
}

// finish sets an entry's final state; it reports whether that was
// committed.
func (o *Outbox) finish(ctx context.Context, id int64, state string, attempts int, receipt, lastErr string) bool {
	now := o.opts.Clock.Now().UnixNano()
	return o.dbRetry(ctx, "marking entry "+state, func() error {
		delivered := int64(0)
		if state == StateDelivered {
			delivered = now
		}
		_, err := o.db.ExecContext(context.WithoutCancel(ctx), `UPDATE outbox SET state = ?, attempts = ?, delivered_at = ?,
			receipt = ?, last_error = ? WHERE id = ?`, state, attempts, delivered, receipt, lastErr, id)
		return err
	})
}

// retryLater records a failed attempt; the row's holds start again from 0.
func (o *Outbox) retryLater(ctx context.Context, id int64, attempts int, next int64, lastErr string) bool {
	return o.dbRetry(ctx, "scheduling retry", func() error {
		_, err := o.db.ExecContext(context.WithoutCancel(ctx), `UPDATE outbox SET attempts = ?, holds = 0, next_at = ?,
			last_error = ? WHERE id = ?`, attempts, next, lastErr, id)
		return err
	})
}

// hold records a try held by the Gate.
func (o *Outbox) hold(ctx context.Context, id int64, holds int, next int64, lastErr string) bool {
	return o.dbRetry(ctx, "scheduling held entry", func() error {
		_, err := o.db.ExecContext(context.WithoutCancel(ctx), `UPDATE outbox SET holds = ?, next_at = ?, last_error = ?
			WHERE id = ?`, holds, next, lastErr, id)
		return err
	})
}

// fallbackLoop hands entries to fallbacks when their notifier failed them
// permanently, failed FallbackAttempts attempts at them, or has not
// delivered them within Fallback.After.
func (o *Outbox) fallbackLoop(ctx context.Context) {
	defer o.wg.Done()
	if len(o.opts.Fallbacks) == 0 {
		return
	}
	for ctx.Err() == nil {
		next, err := o.checkFallbacks(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			o.log.Error("outbox: fallback check", "err", err)
			next = time.Second
		}
		o.wait(ctx, next, o.fbWake)
	}
}

// checkFallbacks hands over every due entry and returns the wait until the
// next one is due by time (-1: none). An entry is due when it failed
// permanently, or is pending after FallbackAttempts failed attempts or
// Fallback.After; an entry whose last try the Gate held is not due (its
// fallbacks would be held too) until its notifier has been tried again.
func (o *Outbox) checkFallbacks(ctx context.Context) (time.Duration, error) {
	now := o.opts.Clock.Now().UnixNano()
	next := time.Duration(-1)
	woken := map[string]bool{}
	err := o.tx(ctx, func(tx *sql.Tx) error {
		for name, fb := range o.opts.Fallbacks {
			var pendingDue []string
			args := []any{name}
			if o.opts.FallbackAttempts > 0 {
				pendingDue = append(pendingDue, `attempts >= ?`)
				args = append(args, o.opts.FallbackAttempts)
			}
			if fb.After > 0 {
				pendingDue = append(pendingDue, `enqueued_at <= ?`)
				args = append(args, now-int64(fb.After))
			}
			cond := `state = 'failed'`
			if len(pendingDue) > 0 {
				cond = `(state = 'failed' OR (state = 'pending' AND holds = 0 AND (` + strings.Join(pendingDue, ` OR `) + `)))`
			}
			rows, err := tx.QueryContext(ctx, `SELECT incident_id, action, seq, event FROM outbox
				WHERE notifier = ? AND fallback_done = 0 AND `+cond+` ORDER BY id`, args...)
			if err != nil {
				return err
			}
			type due struct {
				incident string
				action   Action
				seq      int
				event    []byte
			}
			var dues []due
			for rows.Next() {
				var d due
				var action, raw string
				if err := rows.Scan(&d.incident, &action, &d.seq, &raw); err != nil {
					rows.Close()
					return err
				}
				d.action, d.event = Action(action), []byte(raw)
				dues = append(dues, d)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			handed := map[string]bool{}
			for _, d := range dues {
				if err := o.fallBack(ctx, tx, d.incident, name, d.action, d.seq, d.event, now, woken); err != nil {
					return err
				}
				if d.action == ActionTrigger {
					handed[d.incident] = true
				}
			}
			// A trigger handed over takes its queued resolve and pending
			// reminders (and a grouped page's updates) along (they wait
			// behind it), so the fallback's page gets reminded and closed
			// too.
			for incident := range handed {
				rows, err := tx.QueryContext(ctx, `SELECT action, seq, event FROM outbox WHERE incident_id = ? AND notifier = ?
					AND fallback_done = 0 AND (action = ? OR (action IN (?, ?) AND state = 'pending')) ORDER BY id`,
					incident, name, string(ActionResolve), string(ActionRepeat), string(ActionUpdate))
				if err != nil {
					return err
				}
				var along []due
				for rows.Next() {
					d := due{incident: incident}
					var action, raw string
					if err := rows.Scan(&action, &d.seq, &raw); err != nil {
						rows.Close()
						return err
					}
					d.action, d.event = Action(action), []byte(raw)
					along = append(along, d)
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					return err
				}
				for _, d := range along {
					if err := o.fallBack(ctx, tx, d.incident, name, d.action, d.seq, d.event, now, woken); err != nil {
						return err
					}
				}
			}
			if fb.After > 0 {
				var oldest sql.NullInt64
				if err := tx.QueryRowContext(ctx, `SELECT MIN(enqueued_at) FROM outbox
					WHERE notifier = ? AND state = 'pending' AND fallback_done = 0 AND holds = 0`, name).Scan(&oldest); err != nil {
					return err
				}
				if oldest.Valid {
					d := max(time.Duration(oldest.Int64+int64(fb.After)-now), 0)
					if next < 0 || d < next {
						next = d
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for n := range woken {
		poke(o.wake[n])
	}
	return next, nil
}

// Entries lists the outbox entries of an incident (every incident when
// incidentID is empty), oldest first.
func (o *Outbox) Entries(ctx context.Context, incidentID string) ([]Entry, error) {
	q := `SELECT id, incident_id, notifier, action, seq, event, state, attempts, holds, enqueued_at, next_at, delivered_at,
		last_error, receipt, fallback_done, fallback_of FROM outbox`
	var args []any
	if incidentID != "" {
		q += ` WHERE incident_id = ?`
		args = append(args, incidentID)
	}
	rows, err := o.db.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var action, raw string
		var enq, next, deliv int64
		var fb int
		if err := rows.Scan(&e.ID, &e.IncidentID, &e.Notifier, &action, &e.Seq, &raw, &e.State, &e.Attempts, &e.Holds, &enq, &next,
			&deliv, &e.LastError, &e.Receipt, &fb, &e.FallbackOf); err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
		e.Action = Action(action)
		e.EnqueuedAt, e.NextAt = time.Unix(0, enq), time.Unix(0, next)
		if deliv != 0 {
			e.DeliveredAt = time.Unix(0, deliv)
		}
		e.FallbackDone = fb != 0
		_ = json.Unmarshal([]byte(raw), &e.Event)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Pending counts the entries not yet delivered, by notifier.
func (o *Outbox) Pending(ctx context.Context) (map[string]int, error) {
	rows, err := o.db.QueryContext(ctx, `SELECT notifier, COUNT(*) FROM outbox WHERE state = 'pending' GROUP BY notifier`)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	defer rows.Close()
	m := map[string]int{}
	for rows.Next() {
		var n string
		var c int
		if err := rows.Scan(&n, &c); err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
		m[n] = c
	}
	return m, rows.Err()
}

// Prune deletes delivered and failed entries enqueued before t. Pruned
// entries no longer deduplicate, so t should lie well before any incident
// that may still be re-announced.
func (o *Outbox) Prune(ctx context.Context, before time.Time) (int64, error) {
	res, err := o.db.ExecContext(ctx, `DELETE FROM outbox WHERE state IN ('delivered', 'failed') AND enqueued_at < ?`,
		before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("outbox: %w", err)
	}
	return res.RowsAffected()
}
