package mesh

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/store"
)

// Maintenance windows scheduled at runtime (POST /api/v1/maintenance),
// replicated as operators' incident updates are: the node that takes one
// stores it and Schedules it here (gossiped at once); push-pull carries
// the whole table to a node that was away or joins later; versions learned
// from peers go to OnChange to be stored (off the gossip path).
//
// A window is identified by a random id and changes by versions: 1 when
// scheduled, a greater one marked Deleted (a tombstone, without the
// window's fields) when cancelled. Of two versions of one id the greater
// wins (version, then a tombstone over a window, then the later Updated,
// then the greater author, then the greater encoding), so the table does
// not depend on the order in which versions arrive. A tombstone is kept
// for TombstoneTTL after the cancellation, then dropped everywhere: a node
// away for longer than that can bring a cancelled window back (cancel it
// again). A one-off window is dropped KeepEnded after its end.
//
// Times are the operator's (Start, End) and the stamps of the node that
// made a version (Created, Updated). Nothing is ordered by the stamps
// except equal versions, and they only decide when a tombstone expires,
// so peers' clocks need not agree; a version stamped after the message
// that carried it is refused as malformed.

// KeyMaintenance is the cluster key of the runtime maintenance table.
const KeyMaintenance = "maintenance"

// Bounds of the runtime maintenance table.
const (
	// MaxWindows bounds the live runtime windows (scheduling another
	// fails with ErrWindowsFull).
	MaxWindows = 100
	// MaxWindowChecks bounds the checks one window names, and
	// maxWindowNameBytes their names' total length.
	MaxWindowChecks    = store.MaxComponents
	maxWindowNameBytes = 4096
	// MaxWindowSpan bounds a one-off window's length and a recurring
	// window's duration.
	MaxWindowSpan = 366 * 24 * time.Hour
	// maxTombstones bounds the cancellations remembered.
	maxTombstones = 500
	// TombstoneTTL is how long a cancellation is remembered.
	TombstoneTTL = 30 * 24 * time.Hour
	// KeepEnded is how long a one-off window is kept after its end (the
	// Statuspage documents list maintenances completed in the last week).
	KeepEnded   = 7 * 24 * time.Hour
	maxEvery    = 100
	maxTimezone = 64
	maxVersion  = 1 << 40
)

// Errors of Schedule and Cancel.
var (
	// ErrWindowsFull: MaxWindows live windows already.
	ErrWindowsFull = errors.New("too many maintenance windows")
	// ErrNoWindow: no live window has that id.
	ErrNoWindow = errors.New("no such maintenance window")
)

// Window is one version of a runtime maintenance window, on the wire.
type Window struct {
	ID      string `json:"id"` // 8 to 64 lowercase hex digits
	Version uint64 `json:"version"`
	Deleted bool   `json:"deleted,omitempty"` // a tombstone: no window fields

	Title      string    `json:"title,omitempty"`
	Checks     []string  `json:"checks,omitempty"`
	Start      time.Time `json:"start,omitzero"` // one-off: [Start, End)
	End        time.Time `json:"end,omitzero"`
	Every      string    `json:"every,omitempty"` // recurring: cron, read in Timezone
	DurationMS int64     `json:"duration_ms,omitempty"`
	Timezone   string    `json:"timezone,omitempty"`

	Author  string    `json:"author,omitempty"` // the node that made this version
	Created time.Time `json:"created"`          // when the window was scheduled
	Updated time.Time `json:"updated"`          // when this version was made
	// Sent is the sender's clock when it sent the version: a version
	// stamped well after it is refused.
	Sent time.Time `json:"sent,omitzero"`
}

// Duration is a recurring window's duration.
func (w Window) Duration() time.Duration { return time.Duration(w.DurationMS) * time.Millisecond }

// Recurring reports whether the window repeats.
func (w Window) Recurring() bool { return w.Every != "" }

// Maintenance is the window as the config would hold it (the caller has
// validated w; a recurring window whose schedule does not parse covers
// nothing).
func (w Window) Maintenance() config.Maintenance {
	checks := slices.Clone(w.Checks)
	if w.Recurring() {
		m, err := config.NewRecurringMaintenance(w.Title, checks, w.Every, w.Duration(), w.Timezone)
		if err != nil {
			return config.Maintenance{Title: w.Title, Checks: checks, Every: w.Every, Duration: w.Duration(), Timezone: w.Timezone}
		}
		return m
	}
	return config.Maintenance{Title: w.Title, Checks: checks, Start: w.Start, End: w.End}
}

// WindowOf is a stored window on the wire.
func WindowOf(s store.MaintenanceWindow) Window {
	return Window{ID: s.ID, Version: s.Version, Deleted: s.Deleted, Title: s.Title, Checks: slices.Clone(s.Checks),
		Start: s.Start.UTC(), End: s.End.UTC(), Every: s.Every, DurationMS: s.Duration.Milliseconds(), Timezone: s.Timezone,
		Author: s.Author, Created: s.CreatedAt.UTC(), Updated: s.UpdatedAt.UTC()}
}

// StoreWindow is the window as the store keeps it.
func (w Window) StoreWindow() store.MaintenanceWindow {
	return store.MaintenanceWindow{ID: w.ID, Version: w.Version, Deleted: w.Deleted, Title: w.Title, Checks: slices.Clone(w.Checks),
		Start: w.Start, End: w.End, Every: w.Every, Duration: w.Duration(), Timezone: w.Timezone,
		Author: w.Author, CreatedAt: w.Created, UpdatedAt: w.Updated}
}

var windowID = regexp.MustCompile(`^[0-9a-f]{8,64}$`)

// NewWindowID returns a random window id.
func NewWindowID() string { return store.NewID() }

// Validate checks a version of a window by the config's rules for
// maintenance windows (known check names aside: a peer's config may list
// checks this node's does not yet) and the table's bounds.
func (w Window) Validate() error {
	switch {
	case !windowID.MatchString(w.ID):
		return fmt.Errorf("maintenance window: bad id %q", w.ID)
	case w.Version == 0 || w.Version > maxVersion:
		return fmt.Errorf("maintenance window %s: version %d", w.ID, w.Version)
	case w.Author != "" && !validNode(w.Author):
		return fmt.Errorf("maintenance window %s: bad author", w.ID)
	case !validTime(w.Created) || !validTime(w.Updated) || w.Updated.Before(w.Created):
		return fmt.Errorf("maintenance window %s: times out of range", w.ID)
	}
	if w.Deleted {
		if w.Title != "" || len(w.Checks) > 0 || !w.Start.IsZero() || !w.End.IsZero() || w.Every != "" || w.DurationMS != 0 || w.Timezone != "" {
			return fmt.Errorf("maintenance window %s: a cancellation carries the window's fields", w.ID)
		}
		return nil
	}
	return w.validWindow()
}

// validWindow checks the window's own fields, the write API's rules.
func (w Window) validWindow() error {
	if w.Title != "" {
		if err := store.CheckTitle(w.Title); err != nil {
			return err
		}
	}
	if len(w.Checks) == 0 {
		return errors.New("a maintenance window needs checks: at least one check name")
	}
	if len(w.Checks) > MaxWindowChecks {
		return fmt.Errorf("%d checks, at most %d", len(w.Checks), MaxWindowChecks)
	}
	size := 0
	for i, c := range w.Checks {
		if !validCheck(c) {
			return fmt.Errorf("bad check name %q", c)
		}
		if slices.Contains(w.Checks[:i], c) {
			return fmt.Errorf("check %q named twice", c)
		}
		size += len(c)
	}
	if size > maxWindowNameBytes {
		return fmt.Errorf("check names of %d bytes, at most %d", size, maxWindowNameBytes)
	}
	if !w.Recurring() {
		if w.DurationMS != 0 || w.Timezone != "" {
			return errors.New("duration and timezone apply to a recurring window (with every); a one-off window has start and end")
		}
		switch {
		case w.Start.IsZero() || w.End.IsZero():
			return errors.New("a maintenance window needs start and end (RFC 3339 times), or every and duration")
		case !validTime(w.Start) || !validTime(w.End):
			return errors.New("start or end out of range")
		case !w.End.After(w.Start):
			return fmt.Errorf("end %s must be after start %s", w.End.Format(time.RFC3339), w.Start.Format(time.RFC3339))
		case w.End.Sub(w.Start) > MaxWindowSpan:
			return fmt.Errorf("a window of %s is longer than %s", w.End.Sub(w.Start), MaxWindowSpan)
		}
		return nil
	}
	if !w.Start.IsZero() || !w.End.IsZero() {
		return errors.New("start and end do not go with every: a recurring window has every and duration, a one-off window start and end")
	}
	if len(w.Every) > maxEvery || !utf8.ValidString(w.Every) {
		return fmt.Errorf("every of %d bytes, at most %d", len(w.Every), maxEvery)
	}
	if len(w.Timezone) > maxTimezone {
		return fmt.Errorf("timezone of %d bytes, at most %d", len(w.Timezone), maxTimezone)
	}
	if d := w.Duration(); d > MaxWindowSpan {
		return fmt.Errorf("duration %s is longer than %s", d, MaxWindowSpan)
	}
	if _, err := config.NewRecurringMaintenance(w.Title, w.Checks, w.Every, w.Duration(), w.Timezone); err != nil {
		return err
	}
	return nil
}

// expired reports whether a version has outlived its use at now: a
// tombstone TombstoneTTL after the cancellation, a one-off window
// KeepEnded after its end.
func (w Window) expired(now time.Time) bool {
	if w.Deleted {
		return now.Sub(w.Updated) > TombstoneTTL
	}
	return !w.Recurring() && now.Sub(w.End) > KeepEnded
}

// canonical is the version's encoding without Sent: the last tie-break.
func (w Window) canonical() []byte {
	w.Sent = time.Time{}
	b, _ := json.Marshal(w)
	return b
}

// newer reports whether a is a greater version of its window than b.
func newer(a, b Window) bool {
	switch {
	case a.Version != b.Version:
		return a.Version > b.Version
	case a.Deleted != b.Deleted:
		return a.Deleted
	case !a.Updated.Equal(b.Updated):
		return a.Updated.After(b.Updated)
	case a.Author != b.Author:
		return a.Author > b.Author
	}
	return bytes.Compare(a.canonical(), b.canonical()) > 0
}

// size estimates a version's share of a message.
func (w Window) size() int {
	n := 200 + len(w.Title) + len(w.Every) + len(w.Timezone) + len(w.Author)
	for _, c := range w.Checks {
		n += len(c) + 3
	}
	return n
}

// maintIndex is the live windows by check, read without a lock.
type maintIndex struct {
	byCheck map[string][]config.Maintenance
}

// Maintenance is the table of runtime maintenance windows.
type Maintenance struct {
	now func() time.Time
	log *slog.Logger

	mu       sync.Mutex
	b        Broadcaster
	entries  map[string]Window // by id: live windows and tombstones
	onChange func([]Window)

	index atomic.Pointer[maintIndex]
}

// NewMaintenance returns an empty table.
func NewMaintenance(now func() time.Time, log *slog.Logger) *Maintenance {
	if log == nil {
		log = slog.Default()
	}
	t := &Maintenance{now: now, log: log, b: nopBroadcaster{}, entries: map[string]Window{}, onChange: func([]Window) {}}
	t.index.Store(&maintIndex{})
	return t
}

// SetOnChange sets the function told the versions learned from peers
// (to store them, and to show the windows); it must not block.
func (t *Maintenance) SetOnChange(f func([]Window)) {
	if f == nil {
		f = func([]Window) {}
	}
	t.mu.Lock()
	t.onChange = f
	t.mu.Unlock()
}

func (t *Maintenance) setBroadcaster(b Broadcaster) {
	t.mu.Lock()
	t.b = b
	t.mu.Unlock()
}

// Register registers the table with the cluster under KeyMaintenance.
func (t *Maintenance) Register(r Registry) error {
	return Register(r, map[string]sharer{KeyMaintenance: t})
}

// Seed adds versions read from the store (at start), keeping the greater
// of what the table holds.
func (t *Maintenance) Seed(ws []Window) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, w := range ws {
		if w.Validate() != nil || w.expired(now) {
			continue
		}
		if cur, ok := t.entries[w.ID]; !ok || newer(w, cur) {
			t.entries[w.ID] = w
		}
	}
	t.trimLocked()
	t.reindexLocked()
}

// Schedule adds a window taken here (version 1, validated by the caller
// against the config's checks) and gossips it. It fails when the window
// is invalid, its id taken, or the table holds MaxWindows live windows
// (ErrWindowsFull).
func (t *Maintenance) Schedule(w Window) error {
	if err := w.Validate(); err != nil {
		return fmt.Errorf("mesh: schedule maintenance: %w", err)
	}
	if w.Deleted {
		return errors.New("mesh: schedule maintenance: a cancellation")
	}
	t.mu.Lock()
	if _, ok := t.entries[w.ID]; ok {
		t.mu.Unlock()
		return fmt.Errorf("mesh: schedule maintenance: id %s taken", w.ID)
	}
	if t.liveLocked() >= MaxWindows {
		t.mu.Unlock()
		return ErrWindowsFull
	}
	t.entries[w.ID] = w
	t.trimLocked()
	t.reindexLocked()
	b := t.b
	t.mu.Unlock()
	t.gossip(b, w)
	return nil
}

// gossip broadcasts a version made here; a failure is logged (push-pull
// delivers it).
func (t *Maintenance) gossip(b Broadcaster, w Window) {
	w.Sent = t.now().UTC()
	if err := broadcastEntries(b, broadcastName("maintenance", w.ID), w); err != nil {
		t.log.Warn("gossip maintenance window; push-pull delivers it", "id", w.ID, "err", err)
	}
}

// Cancel replaces the live window id by a tombstone made by author, and
// gossips it; ErrNoWindow when there is no such live window. It returns
// the tombstone and the window it cancelled.
func (t *Maintenance) Cancel(id, author string) (tomb, was Window, err error) {
	if author != "" && !validNode(author) {
		return Window{}, Window{}, fmt.Errorf("mesh: cancel maintenance: bad author")
	}
	now := t.now().UTC().Truncate(time.Millisecond)
	t.mu.Lock()
	cur, ok := t.entries[id]
	if !ok || cur.Deleted {
		t.mu.Unlock()
		return Window{}, Window{}, ErrNoWindow
	}
	tomb = Window{ID: id, Version: cur.Version + 1, Deleted: true, Author: author, Created: cur.Created, Updated: now}
	if tomb.Updated.Before(cur.Updated) {
		tomb.Updated = cur.Updated
	}
	t.entries[id] = tomb
	t.trimLocked()
	t.reindexLocked()
	b := t.b
	t.mu.Unlock()
	t.gossip(b, tomb)
	return tomb, cur, nil
}

// Full reports whether the table holds MaxWindows live windows.
func (t *Maintenance) Full() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.liveLocked() >= MaxWindows
}

// Windows returns the live windows, by creation time.
func (t *Maintenance) Windows() []Window {
	t.mu.Lock()
	out := make([]Window, 0, len(t.entries))
	for _, w := range t.entries {
		if !w.Deleted {
			w.Checks = slices.Clone(w.Checks)
			out = append(out, w)
		}
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b Window) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Entries returns every version the table holds, tombstones included
// (tests, and the node re-storing them after a failed write).
func (t *Maintenance) Entries() []Window {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Window, 0, len(t.entries))
	for _, w := range t.entries {
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b Window) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Len is the number of versions held, tombstones included.
func (t *Maintenance) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

// Active reports whether a runtime window covers check at instant at. It
// takes no lock (the verdict calls it for every check once a second).
func (t *Maintenance) Active(check string, at time.Time) bool {
	for _, m := range t.index.Load().byCheck[check] {
		if m.Contains(at) {
			return true
		}
	}
	return false
}

// Expire drops the versions that outlived their use; it reports whether
// a live window went.
func (t *Maintenance) Expire(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	live := false
	for id, w := range t.entries {
		if w.expired(now) {
			delete(t.entries, id)
			live = live || !w.Deleted
		}
	}
	if live {
		t.reindexLocked()
	}
	return live
}

// MarshalBinary implements cluster.State: every version held, sent now.
func (t *Maintenance) MarshalBinary() ([]byte, error) {
	now := t.now().UTC()
	ws := t.Entries()
	for i := range ws {
		ws[i].Sent = now
	}
	return encodeEntries(ws)
}

// Merge implements cluster.State: versions greater than the table's are
// taken and go to OnChange.
func (t *Maintenance) Merge(from string, b []byte) error {
	ws, err := decodeEntries[Window](b)
	if err != nil {
		return fmt.Errorf("maintenance from %s: %w", from, err)
	}
	if len(ws) > MaxWindows+maxTombstones {
		return fmt.Errorf("maintenance from %s: %d windows in one message", from, len(ws))
	}
	var bad invalid
	now := t.now()
	t.mu.Lock()
	var fresh []Window
	for _, w := range ws {
		if err := w.Validate(); err != nil {
			bad.add(err)
			continue
		}
		if !w.Sent.IsZero() {
			if !validTime(w.Sent) || w.Updated.After(w.Sent.Add(maxFuture)) {
				bad.add(fmt.Errorf("maintenance window %s made %v after it was sent", w.ID, w.Updated.Sub(w.Sent)))
				continue
			}
			w.Sent = time.Time{}
		}
		if w.expired(now) {
			continue
		}
		if cur, ok := t.entries[w.ID]; ok && !newer(w, cur) {
			continue
		}
		t.entries[w.ID] = w
		fresh = append(fresh, w)
	}
	var kept []Window
	if len(fresh) > 0 {
		t.trimLocked()
		for _, w := range fresh {
			if cur, ok := t.entries[w.ID]; ok && cur.Version == w.Version && cur.Deleted == w.Deleted && cur.Updated.Equal(w.Updated) {
				kept = append(kept, w)
			}
		}
		t.reindexLocked()
	}
	onChange := t.onChange
	t.mu.Unlock()
	if len(kept) > 0 {
		onChange(kept)
	}
	return bad.err("maintenance windows", from)
}

func (t *Maintenance) liveLocked() int {
	n := 0
	for _, w := range t.entries {
		if !w.Deleted {
			n++
		}
	}
	return n
}

// trimLocked keeps the table within its bounds: at most MaxWindows live
// windows (the earliest scheduled kept) and maxTombstones tombstones (the
// latest kept). The choice depends only on the entries, so nodes that
// hold the same versions keep the same ones.
func (t *Maintenance) trimLocked() {
	var live, tombs []Window
	for _, w := range t.entries {
		if w.Deleted {
			tombs = append(tombs, w)
		} else {
			live = append(live, w)
		}
	}
	if len(live) > MaxWindows {
		slices.SortFunc(live, func(a, b Window) int {
			if c := a.Created.Compare(b.Created); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
		for _, w := range live[MaxWindows:] {
			delete(t.entries, w.ID)
			t.log.Warn("maintenance table full: a window scheduled elsewhere is dropped", "id", w.ID, "created", w.Created)
		}
	}
	if len(tombs) > maxTombstones {
		slices.SortFunc(tombs, func(a, b Window) int {
			if c := b.Updated.Compare(a.Updated); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
		for _, w := range tombs[maxTombstones:] {
			delete(t.entries, w.ID)
		}
	}
}

// reindexLocked rebuilds the index Active reads.
func (t *Maintenance) reindexLocked() {
	idx := &maintIndex{byCheck: map[string][]config.Maintenance{}}
	for _, w := range t.entries {
		if w.Deleted {
			continue
		}
		m := w.Maintenance()
		for _, c := range w.Checks {
			idx.byCheck[c] = append(idx.byCheck[c], m)
		}
	}
	t.index.Store(idx)
}
