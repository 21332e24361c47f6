package mesh

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Announcement is the incident a node holds open for a check. Nodes take
// the designated sender's id (verdict); Paged says a trigger of it went
// out, which makes the id final everywhere.
type Announcement struct {
	Node  string    `json:"node"`
	Check string    `json:"check"`
	ID    string    `json:"id"`
	Start time.Time `json:"start"`
	Paged bool      `json:"paged,omitempty"`
	At    time.Time `json:"at"` // when the node announced it (its clock): the newest wins
}

func (a Announcement) valid() error {
	switch {
	case !validNode(a.Node):
		return fmt.Errorf("incident: bad node name %q", a.Node)
	case !validCheck(a.Check):
		return fmt.Errorf("incident: bad check name %q", a.Check)
	case a.ID == "" || len(a.ID) > maxIDLen:
		return fmt.Errorf("incident: bad id %q", a.ID)
	case !validTime(a.Start) || !validTime(a.At):
		return fmt.Errorf("incident: time out of range")
	}
	return nil
}

const (
	// announceTTL is how long a peer's announcement is kept without being
	// renewed (push-pull renews every open one).
	announceTTL = 7 * 24 * time.Hour
	// maxAnnouncers bounds the nodes announcing per check.
	maxAnnouncers = 1024
)

// Incidents is the table of announced incidents: per check, the incident
// each node holds open. A node announces only its own (Merge refuses an
// announcement made by another node than its sender), and shares only its
// own in push-pull.
type Incidents struct {
	self   string
	now    func() time.Time
	notify func(check string)
	log    *slog.Logger

	mu      sync.RWMutex
	b       Broadcaster
	byCheck map[string]map[string]Announcement // check -> node -> announcement
	keep    map[string]bool
}

// NewIncidents returns an empty table that accepts no check until Retain.
func NewIncidents(self string, now func() time.Time, notify func(string), log *slog.Logger) *Incidents {
	return &Incidents{self: self, now: now, notify: notify, log: log, b: nopBroadcaster{},
		byCheck: map[string]map[string]Announcement{}, keep: map[string]bool{}}
}

func (t *Incidents) setBroadcaster(b Broadcaster) {
	t.mu.Lock()
	t.b = b
	t.mu.Unlock()
}

// Announce records and gossips the incident this node holds open for
// check.
func (t *Incidents) Announce(check, id string, start time.Time, paged bool) error {
	a := Announcement{Node: t.self, Check: check, ID: id, Start: start.UTC(), Paged: paged, At: t.now().UTC()}
	if err := a.valid(); err != nil {
		return err
	}
	t.mu.Lock()
	if !t.keep[check] {
		t.mu.Unlock()
		return fmt.Errorf("mesh: announcement of unknown check %q", check)
	}
	t.setLocked(a)
	b := t.b
	t.mu.Unlock()
	return broadcastEntries(b, broadcastName("incident", check), a)
}

// MarkPaged re-announces this node's incident of check as paged, if it is
// id.
func (t *Incidents) MarkPaged(check, id string) error {
	t.mu.RLock()
	a, ok := t.byCheck[check][t.self]
	t.mu.RUnlock()
	if !ok || a.ID != id || a.Paged {
		return nil
	}
	return t.Announce(check, id, a.Start, true)
}

func (t *Incidents) setLocked(a Announcement) {
	m := t.byCheck[a.Check]
	if m == nil {
		m = map[string]Announcement{}
		t.byCheck[a.Check] = m
	}
	m[a.Node] = a
}

// Forget drops every announcement of check: its incident was resolved
// here. Late announcements of the resolved incident come back; the
// verdict ignores them.
func (t *Incidents) Forget(check string) {
	t.mu.Lock()
	delete(t.byCheck, check)
	t.mu.Unlock()
}

// Of appends the announcements of check to buf.
func (t *Incidents) Of(check string, buf []Announcement) []Announcement {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, a := range t.byCheck[check] {
		buf = append(buf, a)
	}
	return buf
}

// Get returns node's announcement of check.
func (t *Incidents) Get(check, node string) (Announcement, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	a, ok := t.byCheck[check][node]
	return a, ok
}

// Own returns this node's announcements.
func (t *Incidents) Own() []Announcement {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []Announcement
	for _, m := range t.byCheck {
		if a, ok := m[t.self]; ok {
			out = append(out, a)
		}
	}
	return out
}

// Retain keeps the checks in keep and accepts only those from now on.
func (t *Incidents) Retain(keep map[string]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keep = retain(t.byCheck, keep)
}

// Expire drops peers' announcements not renewed within announceTTL.
func (t *Incidents) Expire(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c, m := range t.byCheck {
		for n, a := range m {
			if n != t.self && now.Sub(a.At) > announceTTL {
				delete(m, n)
			}
		}
		if len(m) == 0 {
			delete(t.byCheck, c)
		}
	}
}

// MarshalBinary implements cluster.State: this node's own announcements.
func (t *Incidents) MarshalBinary() ([]byte, error) {
	return encodeEntries(t.Own())
}

// Merge implements cluster.State.
func (t *Incidents) Merge(from string, b []byte) error {
	as, err := decodeEntries[Announcement](b)
	if err != nil {
		return fmt.Errorf("incidents from %s: %w", from, err)
	}
	var bad invalid
	changed := map[string]bool{}
	t.mu.Lock()
	for _, a := range as {
		if err := a.valid(); err != nil {
			bad.add(err)
			continue
		}
		if a.Node != from {
			bad.add(fmt.Errorf("incident: %s announced by %s", a.Node, from))
			continue
		}
		if a.Node == t.self || !t.keep[a.Check] {
			continue
		}
		m := t.byCheck[a.Check]
		old, have := m[a.Node]
		if have && (a.At.Before(old.At) || (a.At.Equal(old.At) && a.ID == old.ID && a.Paged == old.Paged)) {
			continue
		}
		if !have && len(m) >= maxAnnouncers {
			continue
		}
		t.setLocked(a)
		changed[a.Check] = true
	}
	t.mu.Unlock()
	for c := range changed {
		t.notify(c)
	}
	return bad.err("announcements", from)
}
