package mesh

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/vantage-dev/vantage/store"
)

// Operators' incident updates and manual incidents. The node stores a
// write taken through its API and Shares it: gossiped at once (the
// cluster cuts a large one into chunks), and kept in this table, whose
// full state (the writes of the last 7 days, at most shareMax updates and
// about shareBytes of text, newest first) push-pull carries to a node that
// was down, cut off or joins later. Writes learned from peers go to
// OnWrite to be stored (the store is idempotent by id, so a write arriving
// by both paths is stored once) and are shared on in turn.
const (
	shareWindow = 7 * 24 * time.Hour
	shareMax    = 200
	shareBytes  = 256 << 10
)

// ManualIncident is a manual incident on the wire.
type ManualIncident struct {
	ID         string    `json:"id"`
	Title      string    `json:"title"`
	Impact     string    `json:"impact,omitempty"`
	Components []string  `json:"components,omitempty"`
	Author     string    `json:"author,omitempty"`
	Started    time.Time `json:"started"`
	Details    string    `json:"details,omitempty"`
}

// Update is an incident update on the wire.
type Update struct {
	ID       string    `json:"id"`
	Incident string    `json:"incident"`
	Status   string    `json:"status"`
	Body     string    `json:"body"`
	Author   string    `json:"author,omitempty"`
	At       time.Time `json:"at"`
}

// Write is one operator's write: an update, with its incident when that is
// a manual one (so a node can store it without the incident having
// arrived first).
type Write struct {
	Incident *ManualIncident `json:"incident,omitempty"`
	Update   Update          `json:"update"`
	// Sent is the sender's clock when it sent the write: a receiver
	// places the write's times on its own clock (now - (Sent - At)), so
	// updates are ordered as they were made, whatever the peers' clocks
	// say, and refuses one made well after it was sent.
	Sent time.Time `json:"sent,omitempty"`
}

// WriteOf returns the write of an update of inc.
func WriteOf(inc store.Incident, u store.IncidentUpdate) Write {
	w := Write{Update: Update{ID: u.ID, Incident: u.IncidentID, Status: u.Status, Body: u.Body, Author: u.Author, At: u.CreatedAt.UTC()}}
	if inc.Manual {
		w.Incident = &ManualIncident{ID: inc.ID, Title: inc.Title, Impact: inc.Impact, Components: slices.Clone(inc.Components),
			Author: inc.Author, Started: inc.StartedAt.UTC(), Details: inc.Details}
	}
	return w
}

// StoreUpdate is the update as the store keeps it.
func (w Write) StoreUpdate() store.IncidentUpdate {
	u := w.Update
	return store.IncidentUpdate{ID: u.ID, IncidentID: u.Incident, Status: u.Status, Body: u.Body, Author: u.Author, CreatedAt: u.At}
}

// StoreIncident is the manual incident as the store keeps it (ok false
// when the write has none).
func (w Write) StoreIncident() (store.Incident, bool) {
	i := w.Incident
	if i == nil {
		return store.Incident{}, false
	}
	return store.Incident{ID: i.ID, Title: i.Title, Impact: i.Impact, Components: i.Components, Author: i.Author,
		StartedAt: i.Started, Details: i.Details, Manual: true}, true
}

// Validate checks a write as the write API checks what it takes.
func (w Write) Validate() error {
	if err := store.ValidateUpdate(w.StoreUpdate()); err != nil {
		return err
	}
	if !validTime(w.Update.At) {
		return fmt.Errorf("update %s: time out of range", w.Update.ID)
	}
	if inc, ok := w.StoreIncident(); ok {
		if err := store.ValidateManual(inc); err != nil {
			return err
		}
		if inc.ID != w.Update.Incident {
			return fmt.Errorf("update %s of incident %s carries incident %s", w.Update.ID, w.Update.Incident, inc.ID)
		}
		if !validTime(inc.StartedAt) {
			return fmt.Errorf("incident %s: time out of range", inc.ID)
		}
	}
	return nil
}

// maxKnown bounds the ids remembered as stored; past it they are
// forgotten (the store dedupes anyway).
const maxKnown = 4 * shareMax

// Updates is the table of operators' recent writes.
type Updates struct {
	now     func() time.Time
	onWrite func(Write)
	log     *slog.Logger

	mu     sync.Mutex
	b      Broadcaster
	writes map[string]Write // by update id: what push-pull shares
	known  map[string]bool  // update ids stored here
}

// NewUpdates returns an empty table; onWrite (may be nil) gets writes
// learned from peers, to store.
func NewUpdates(now func() time.Time, onWrite func(Write), log *slog.Logger) *Updates {
	if onWrite == nil {
		onWrite = func(Write) {}
	}
	return &Updates{now: now, onWrite: onWrite, log: log, b: nopBroadcaster{}, writes: map[string]Write{}, known: map[string]bool{}}
}

func (t *Updates) setBroadcaster(b Broadcaster) {
	t.mu.Lock()
	t.b = b
	t.mu.Unlock()
}

// Seed replaces the shared writes with ws, read from the store (at start
// and now and then, so older ones age out and open incidents' stay).
func (t *Updates) Seed(ws []Write) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.writes = map[string]Write{}
	for _, w := range ws {
		t.addLocked(w)
	}
	t.trimLocked()
}

// Share adds a write taken here and gossips it.
func (t *Updates) Share(w Write) error {
	if err := w.Validate(); err != nil {
		return fmt.Errorf("mesh: share write: %w", err)
	}
	t.mu.Lock()
	t.addLocked(w)
	t.trimLocked()
	b := t.b
	t.mu.Unlock()
	w.Sent = t.now().UTC()
	return broadcastEntries(b, broadcastName("update", w.Update.ID), w)
}

func (t *Updates) addLocked(w Write) {
	t.writes[w.Update.ID] = w
	if len(t.known) >= maxKnown {
		clear(t.known)
	}
	t.known[w.Update.ID] = true
}

// trimLocked keeps the shared writes within the window and bounds.
func (t *Updates) trimLocked() {
	horizon := t.now().Add(-shareWindow)
	ws := make([]Write, 0, len(t.writes))
	for id, w := range t.writes {
		if w.Update.At.Before(horizon) {
			delete(t.writes, id)
			continue
		}
		ws = append(ws, w)
	}
	slices.SortFunc(ws, func(a, b Write) int { return b.Update.At.Compare(a.Update.At) })
	size := 0
	for i, w := range ws {
		size += len(w.Update.Body) + 100
		if i >= shareMax || size > shareBytes {
			delete(t.writes, w.Update.ID)
		}
	}
}

// Len is the number of writes shared.
func (t *Updates) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.writes)
}

// MarshalBinary implements cluster.State: the recent writes, sent now.
func (t *Updates) MarshalBinary() ([]byte, error) {
	now := t.now().UTC()
	t.mu.Lock()
	ws := make([]Write, 0, len(t.writes))
	for _, w := range t.writes {
		w.Sent = now
		ws = append(ws, w)
	}
	t.mu.Unlock()
	slices.SortFunc(ws, func(a, b Write) int { return b.Update.At.Compare(a.Update.At) })
	return encodeEntries(ws)
}

// local places a peer's write on this node's clock.
func local(w Write, now time.Time) (Write, error) {
	if w.Sent.IsZero() {
		return w, nil
	}
	if w.Update.At.After(w.Sent.Add(maxFuture)) {
		return w, fmt.Errorf("update %s made %v after it was sent", w.Update.ID, w.Update.At.Sub(w.Sent))
	}
	shift := now.Sub(w.Sent)
	w.Update.At = w.Update.At.Add(shift).Truncate(time.Millisecond)
	if w.Incident != nil {
		inc := *w.Incident
		inc.Started = inc.Started.Add(shift).Truncate(time.Millisecond)
		w.Incident = &inc
	}
	w.Sent = time.Time{}
	return w, nil
}

// Merge implements cluster.State: writes new to this node go to OnWrite
// and are shared on.
func (t *Updates) Merge(from string, b []byte) error {
	ws, err := decodeEntries[Write](b)
	if err != nil {
		return fmt.Errorf("updates from %s: %w", from, err)
	}
	var bad invalid
	var fresh []Write
	now := t.now().UTC()
	t.mu.Lock()
	for _, w := range ws {
		if err := w.Validate(); err != nil {
			bad.add(err)
			continue
		}
		if t.known[w.Update.ID] {
			continue
		}
		w, err := local(w, now)
		if err != nil {
			bad.add(err)
			continue
		}
		t.addLocked(w)
		fresh = append(fresh, w)
	}
	if len(fresh) > 0 {
		t.trimLocked()
	}
	t.mu.Unlock()
	for _, w := range fresh {
		t.onWrite(w)
	}
	return bad.err("writes", from)
}

// maxFuture, for writes too: how far past its message a write's time may
// lie.

// Forget drops a write this node could not store, so that the next
// push-pull that carries it delivers it again.
func (t *Updates) Forget(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.known, id)
	delete(t.writes, id)
}
