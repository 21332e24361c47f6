package mesh

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// A versioned table (the runtime maintenance windows, the subscribers)
// holds entries that change by versions: 1 when made, a greater one
// marked Deleted (a tombstone, without the entry's fields) when removed.
// Of two versions of one id the greater wins (version, then a tombstone
// over a live entry, then the later Updated, then the greater author, then
// the greater encoding without Sent), so the table does not depend on the
// order in which versions arrive. Versions made here are gossiped at once;
// push-pull carries the whole table; versions learned from peers go to
// OnChange. The table keeps at most maxLive live entries (the earliest
// made) and maxTombstones tombstones (the latest); the choice depends
// only on the entries, so nodes that hold the same versions keep the same
// ones. What each entry holds, how it is validated and when it expires
// are the entry type's.

// versionHead is what a versioned table orders, bounds and checks its
// entries by.
type versionHead struct {
	ID      string
	Version uint64
	Deleted bool
	Author  string
	Created time.Time
	Updated time.Time
	Sent    time.Time
}

// validate checks the head's fields, which every entry type has, naming
// the entry kind ("subscriber") in its errors; idRe is the kind's ids.
func (h versionHead) validate(kind string, idRe *regexp.Regexp) error {
	switch {
	case !idRe.MatchString(h.ID):
		return fmt.Errorf("%s: bad id %q", kind, h.ID)
	case h.Version == 0 || h.Version > maxVersion:
		return fmt.Errorf("%s %s: version %d", kind, h.ID, h.Version)
	case h.Author != "" && !validNode(h.Author):
		return fmt.Errorf("%s %s: bad author", kind, h.ID)
	case !validTime(h.Created) || !validTime(h.Updated) || h.Updated.Before(h.Created):
		return fmt.Errorf("%s %s: times out of range", kind, h.ID)
	}
	return nil
}

// version is an entry type of a versioned table.
type version[V any] interface {
	head() versionHead
	// withSent is the version with Sent set to at.
	withSent(at time.Time) V
	// tombstone is the removal of an entry: version, author and times
	// set, the entry's own fields empty.
	tombstone(id string, version uint64, author string, created, updated time.Time) V
	Validate() error
	// expired reports whether the version has outlived its use at now.
	expired(now time.Time) bool
}

// canonical is a version's encoding without Sent: the last tie-break.
func canonical[V version[V]](v V) []byte {
	b, _ := json.Marshal(v.withSent(time.Time{}))
	return b
}

// newerVersion reports whether a is a greater version of its entry than b.
func newerVersion[V version[V]](a, b V) bool {
	ha, hb := a.head(), b.head()
	switch {
	case ha.Version != hb.Version:
		return ha.Version > hb.Version
	case ha.Deleted != hb.Deleted:
		return ha.Deleted
	case !ha.Updated.Equal(hb.Updated):
		return ha.Updated.After(hb.Updated)
	case ha.Author != hb.Author:
		return ha.Author > hb.Author
	}
	return bytes.Compare(canonical(a), canonical(b)) > 0
}

// byCreated orders entries by the time they were made, then by id.
func byCreated[V version[V]](a, b V) int {
	ha, hb := a.head(), b.head()
	if c := ha.Created.Compare(hb.Created); c != 0 {
		return c
	}
	return strings.Compare(ha.ID, hb.ID)
}

// versionsSpec names a versioned table's entries and bounds it.
type versionsSpec[V any] struct {
	name    string // broadcasts are named name/id
	one     string // an entry, in the log and in errors
	many    string // entries, in Merge's error counting the invalid ones
	from    string // a peer's message, in Merge's errors: "FROM from PEER: ..."
	tooMany string // Merge's error for a message of more entries than the bounds, given the peer and the count
	maxLive int
	maxTomb int
	// dropped is told of a live entry dropped to keep the bound.
	dropped func(log *slog.Logger, v V)
}

// versions is a versioned table's state, embedded in the table.
type versions[V version[V]] struct {
	spec versionsSpec[V]
	now  func() time.Time
	log  *slog.Logger
	// changed, when set, is called with mu held after the entries changed.
	changed func()

	mu       sync.Mutex
	b        Broadcaster
	entries  map[string]V // by id: live entries and tombstones
	onChange func([]V)
}

func newVersions[V version[V]](spec versionsSpec[V], now func() time.Time, log *slog.Logger) versions[V] {
	if log == nil {
		log = slog.Default()
	}
	return versions[V]{spec: spec, now: now, log: log, b: nopBroadcaster{}, entries: map[string]V{}, onChange: func([]V) {}}
}

// SetOnChange sets the function told the versions learned from peers (to
// store them); it must not block.
func (t *versions[V]) SetOnChange(f func([]V)) {
	if f == nil {
		f = func([]V) {}
	}
	t.mu.Lock()
	t.onChange = f
	t.mu.Unlock()
}

func (t *versions[V]) setBroadcaster(b Broadcaster) {
	t.mu.Lock()
	t.b = b
	t.mu.Unlock()
}

// Seed adds versions read from the store (at start), keeping the greater
// of what the table holds.
func (t *versions[V]) Seed(vs []V) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, v := range vs {
		if v.Validate() != nil || v.expired(now) {
			continue
		}
		if cur, ok := t.entries[v.head().ID]; !ok || newerVersion(v, cur) {
			t.entries[v.head().ID] = v
		}
	}
	t.trimLocked()
}

// putLocked stores a version made here and keeps the bounds.
func (t *versions[V]) putLocked(v V) {
	t.entries[v.head().ID] = v
	t.trimLocked()
}

// gossip broadcasts a version made here; a failure is logged (push-pull
// delivers it).
func (t *versions[V]) gossip(b Broadcaster, v V) {
	v = v.withSent(t.now().UTC())
	id := v.head().ID
	if err := broadcastEntries(b, broadcastName(t.spec.name, id), v); err != nil {
		t.log.Warn("gossip "+t.spec.one+"; push-pull delivers it", "id", id, "err", err)
	}
}

// remove replaces the live entry id by a tombstone made by author and
// gossips it; ok is false when there is no such live entry.
func (t *versions[V]) remove(id, author string) (tomb, was V, ok bool) {
	now := t.now().UTC().Truncate(time.Millisecond)
	t.mu.Lock()
	cur, found := t.entries[id]
	if !found || cur.head().Deleted {
		t.mu.Unlock()
		return tomb, was, false
	}
	h := cur.head()
	if now.Before(h.Updated) {
		now = h.Updated
	}
	tomb = tomb.tombstone(id, h.Version+1, author, h.Created, now)
	t.putLocked(tomb)
	b := t.b
	t.mu.Unlock()
	t.gossip(b, tomb)
	return tomb, cur, true
}

// live returns the live entries, by the time they were made.
func (t *versions[V]) live() []V {
	t.mu.Lock()
	out := make([]V, 0, len(t.entries))
	for _, v := range t.entries {
		if !v.head().Deleted {
			out = append(out, v)
		}
	}
	t.mu.Unlock()
	slices.SortFunc(out, byCreated)
	return out
}

// Entries returns every version the table holds, tombstones included, by
// id.
func (t *versions[V]) Entries() []V {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]V, 0, len(t.entries))
	for _, v := range t.entries {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b V) int { return strings.Compare(a.head().ID, b.head().ID) })
	return out
}

// Len is the number of versions held, tombstones included.
func (t *versions[V]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

// Full reports whether the table holds as many live entries as it may.
func (t *versions[V]) Full() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.liveLocked() >= t.spec.maxLive
}

// expire drops the versions that outlived their use; it reports whether
// a live entry went.
func (t *versions[V]) expire(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	live := false
	for id, v := range t.entries {
		if v.expired(now) {
			delete(t.entries, id)
			live = live || !v.head().Deleted
		}
	}
	if live && t.changed != nil {
		t.changed()
	}
	return live
}

// MarshalBinary implements cluster.State: every version held, sent now.
func (t *versions[V]) MarshalBinary() ([]byte, error) {
	now := t.now().UTC()
	vs := t.Entries()
	for i := range vs {
		vs[i] = vs[i].withSent(now)
	}
	return encodeEntries(vs)
}

// Merge implements cluster.State: versions greater than the table's are
// taken and go to OnChange.
func (t *versions[V]) Merge(from string, b []byte) error {
	vs, err := decodeEntries[V](b)
	if err != nil {
		return fmt.Errorf("%s from %s: %w", t.spec.from, from, err)
	}
	if len(vs) > t.spec.maxLive+t.spec.maxTomb {
		return fmt.Errorf(t.spec.tooMany, from, len(vs))
	}
	var bad invalid
	now := t.now()
	t.mu.Lock()
	var fresh []V
	for _, v := range vs {
		if err := v.Validate(); err != nil {
			bad.add(err)
			continue
		}
		if h := v.head(); !h.Sent.IsZero() {
			if !validTime(h.Sent) || h.Updated.After(h.Sent.Add(maxFuture)) {
				bad.add(fmt.Errorf("%s %s made %v after it was sent", t.spec.one, h.ID, h.Updated.Sub(h.Sent)))
				continue
			}
			v = v.withSent(time.Time{})
		}
		if v.expired(now) {
			continue
		}
		if cur, ok := t.entries[v.head().ID]; ok && !newerVersion(v, cur) {
			continue
		}
		t.entries[v.head().ID] = v
		fresh = append(fresh, v)
	}
	var kept []V
	if len(fresh) > 0 {
		t.trimLocked()
		for _, v := range fresh {
			h := v.head()
			if cur, ok := t.entries[h.ID]; ok {
				if ch := cur.head(); ch.Version == h.Version && ch.Deleted == h.Deleted && ch.Updated.Equal(h.Updated) {
					kept = append(kept, v)
				}
			}
		}
	}
	onChange := t.onChange
	t.mu.Unlock()
	if len(kept) > 0 {
		onChange(kept)
	}
	return bad.err(t.spec.many, from)
}

func (t *versions[V]) liveLocked() int {
	n := 0
	for _, v := range t.entries {
		if !v.head().Deleted {
			n++
		}
	}
	return n
}

// trimLocked keeps the table within its bounds: the earliest made maxLive
// live entries and the latest maxTomb tombstones; then it calls changed.
func (t *versions[V]) trimLocked() {
	var live, tombs []V
	for _, v := range t.entries {
		if v.head().Deleted {
			tombs = append(tombs, v)
		} else {
			live = append(live, v)
		}
	}
	if len(live) > t.spec.maxLive {
		slices.SortFunc(live, byCreated)
		for _, v := range live[t.spec.maxLive:] {
			delete(t.entries, v.head().ID)
			t.spec.dropped(t.log, v)
		}
	}
	if len(tombs) > t.spec.maxTomb {
		slices.SortFunc(tombs, func(a, b V) int {
			ha, hb := a.head(), b.head()
			if c := hb.Updated.Compare(ha.Updated); c != 0 {
				return c
			}
			return strings.Compare(ha.ID, hb.ID)
		})
		for _, v := range tombs[t.spec.maxTomb:] {
			delete(t.entries, v.head().ID)
		}
	}
	if t.changed != nil {
		t.changed()
	}
}
