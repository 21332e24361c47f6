package mesh

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
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
	if err := w.head().validate("maintenance window", windowID); err != nil {
		return err
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

func (w Window) head() versionHead {
	return versionHead{ID: w.ID, Version: w.Version, Deleted: w.Deleted, Author: w.Author, Created: w.Created, Updated: w.Updated, Sent: w.Sent}
}

func (w Window) withSent(at time.Time) Window {
	w.Sent = at
	return w
}

func (Window) tombstone(id string, version uint64, author string, created, updated time.Time) Window {
	return Window{ID: id, Version: version, Deleted: true, Author: author, Created: created, Updated: updated}
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

// Maintenance is the table of runtime maintenance windows, a versioned
// table (versions.go): SetOnChange is told the versions learned from
// peers (to store them, and to show the windows); Seed adds versions read
// from the store; Entries (tests, and the node re-storing them after a
// failed write) and Len count tombstones too; Full reports whether it
// holds MaxWindows live windows.
type Maintenance struct {
	versions[Window]

	index atomic.Pointer[maintIndex]
}

// NewMaintenance returns an empty table.
func NewMaintenance(now func() time.Time, log *slog.Logger) *Maintenance {
	t := &Maintenance{versions: newVersions(versionsSpec[Window]{
		name: "maintenance", one: "maintenance window", many: "maintenance windows",
		from: "maintenance", tooMany: "maintenance from %s: %d windows in one message",
		maxLive: MaxWindows, maxTomb: maxTombstones,
		dropped: func(log *slog.Logger, w Window) {
			log.Warn("maintenance table full: a window scheduled elsewhere is dropped", "id", w.ID, "created", w.Created)
		},
	}, now, log)}
	t.changed = t.reindexLocked
	t.index.Store(&maintIndex{})
	return t
}

// Register registers the table with the cluster under KeyMaintenance.
func (t *Maintenance) Register(r Registry) error {
	return Register(r, map[string]sharer{KeyMaintenance: t})
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
	t.putLocked(w)
	b := t.b
	t.mu.Unlock()
	t.gossip(b, w)
	return nil
}

// Cancel replaces the live window id by a tombstone made by author, and
// gossips it; ErrNoWindow when there is no such live window. It returns
// the tombstone and the window it cancelled.
func (t *Maintenance) Cancel(id, author string) (tomb, was Window, err error) {
	if author != "" && !validNode(author) {
		return Window{}, Window{}, fmt.Errorf("mesh: cancel maintenance: bad author")
	}
	tomb, was, ok := t.remove(id, author)
	if !ok {
		return Window{}, Window{}, ErrNoWindow
	}
	return tomb, was, nil
}

// Windows returns the live windows, by creation time.
func (t *Maintenance) Windows() []Window {
	out := t.live()
	for i := range out {
		out[i].Checks = slices.Clone(out[i].Checks)
	}
	return out
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
func (t *Maintenance) Expire(now time.Time) bool { return t.expire(now) }

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
