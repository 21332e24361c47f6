package mesh

import (
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"time"
)

// KeySnapshots is the key the snapshot table registers under.
const KeySnapshots = "snapshots"

// Bounds of the snapshot table.
const (
	// MaxSnapshotData bounds one encoded snapshot.
	MaxSnapshotData = 24 << 10
	// snapshotKeep is how long a snapshot stays in the table (and in
	// push-pull, so a node that was away catches up); the store keeps it
	// for good.
	snapshotKeep = 24 * time.Hour
	// maxSnapshots bounds the table; the oldest go first.
	maxSnapshots = 512
	// maxSnapshotShare bounds the snapshots a push-pull carries.
	maxSnapshotShare = 512 << 10
	snapshotVersion  = 1
)

// SnapshotEntry is one node's failure snapshot as it travels: the fields
// that place it, and the encoded snapshot.
type SnapshotEntry struct {
	ID        string
	Check     string
	Node      string
	Region    string
	DownSince time.Time
	Taken     time.Time
	Data      []byte
}

var snapshotID = regexp.MustCompile(`^[0-9a-f]{8,64}$`)

func (e SnapshotEntry) valid() error {
	switch {
	case !snapshotID.MatchString(e.ID):
		return fmt.Errorf("snapshot: bad id %q", e.ID)
	case !validCheck(e.Check) || !validNode(e.Node) || len(e.Region) > MaxRegionLen:
		return fmt.Errorf("snapshot: bad check, node or region")
	case !validTime(e.DownSince) || !validTime(e.Taken):
		return fmt.Errorf("snapshot: time out of range")
	case len(e.Data) == 0 || len(e.Data) > MaxSnapshotData:
		return fmt.Errorf("snapshot: %d bytes", len(e.Data))
	}
	return nil
}

// Snapshots is the table of recent failure snapshots: each is broadcast
// once by the node that took it, and push-pull carries those of the last
// day, so every node, a late one too, stores every snapshot.
type Snapshots struct {
	self string
	now  func() time.Time
	log  *slog.Logger

	mu    sync.Mutex
	b     Broadcaster
	onNew func(SnapshotEntry)
	byID  map[string]SnapshotEntry
}

// NewSnapshots returns an empty table.
func NewSnapshots(self string, now func() time.Time, log *slog.Logger) *Snapshots {
	return &Snapshots{self: self, now: now, log: log, b: nopBroadcaster{}, onNew: func(SnapshotEntry) {},
		byID: map[string]SnapshotEntry{}}
}

// SetOnNew sets what is told of a peer's snapshot new to this node (it must
// not block).
func (t *Snapshots) SetOnNew(f func(SnapshotEntry)) {
	t.mu.Lock()
	t.onNew = f
	t.mu.Unlock()
}

func (t *Snapshots) setBroadcaster(b Broadcaster) {
	t.mu.Lock()
	t.b = b
	t.mu.Unlock()
}

// Add records this node's snapshot and broadcasts it.
func (t *Snapshots) Add(e SnapshotEntry) error {
	e.Node = t.self
	if err := e.valid(); err != nil {
		return fmt.Errorf("mesh: %w", err)
	}
	t.mu.Lock()
	t.putLocked(e)
	b := t.b
	t.mu.Unlock()
	return b.Broadcast(broadcastName("snap", e.ID), encodeSnapshots([]SnapshotEntry{e}))
}

// Seed loads stored snapshots (after a restart) without telling anyone.
func (t *Snapshots) Seed(es []SnapshotEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range es {
		if e.valid() == nil {
			t.putLocked(e)
		}
	}
}

// Len is the number of snapshots held.
func (t *Snapshots) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}

func (t *Snapshots) putLocked(e SnapshotEntry) bool {
	if _, ok := t.byID[e.ID]; ok {
		return false
	}
	if t.now().Sub(e.Taken) > snapshotKeep {
		return false
	}
	t.byID[e.ID] = e
	for len(t.byID) > maxSnapshots {
		oldest := ""
		for id, x := range t.byID {
			if oldest == "" || x.Taken.Before(t.byID[oldest].Taken) || (x.Taken.Equal(t.byID[oldest].Taken) && id < oldest) {
				oldest = id
			}
		}
		delete(t.byID, oldest)
	}
	return true
}

// Expire drops snapshots older than a day.
func (t *Snapshots) Expire(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, e := range t.byID {
		if now.Sub(e.Taken) > snapshotKeep {
			delete(t.byID, id)
		}
	}
}

// MarshalBinary implements cluster.State: the recent snapshots, newest
// first, up to maxSnapshotShare bytes.
func (t *Snapshots) MarshalBinary() ([]byte, error) {
	t.mu.Lock()
	es := make([]SnapshotEntry, 0, len(t.byID))
	now := t.now()
	for _, e := range t.byID {
		if now.Sub(e.Taken) <= snapshotKeep {
			es = append(es, e)
		}
	}
	t.mu.Unlock()
	slices.SortFunc(es, func(a, b SnapshotEntry) int { return b.Taken.Compare(a.Taken) })
	size := 0
	for i, e := range es {
		size += len(e.Data) + 128
		if size > maxSnapshotShare {
			es = es[:i]
			break
		}
	}
	if len(es) == 0 {
		return nil, nil
	}
	return encodeSnapshots(es), nil
}

// Merge implements cluster.State: a peer's snapshot or a full table.
func (t *Snapshots) Merge(from string, b []byte) error {
	es, err := decodeSnapshots(b)
	if err != nil {
		return fmt.Errorf("mesh: snapshots from %s: %w", from, err)
	}
	var bad invalid
	var fresh []SnapshotEntry
	t.mu.Lock()
	for _, e := range es {
		if err := e.valid(); err != nil {
			bad.add(err)
			continue
		}
		if t.putLocked(e) {
			fresh = append(fresh, e)
		}
	}
	on := t.onNew
	t.mu.Unlock()
	for _, e := range fresh {
		on(e)
	}
	return bad.err("snapshots", from)
}

func encodeSnapshots(es []SnapshotEntry) []byte {
	w := writer{b: []byte{snapshotVersion}}
	w.uvarint(uint64(len(es)))
	for _, e := range es {
		w.str(e.ID, maxIDLen)
		w.str(e.Check, MaxNameLen)
		w.str(e.Node, MaxNameLen)
		w.str(e.Region, MaxRegionLen)
		w.time(e.DownSince)
		w.time(e.Taken)
		w.str(string(e.Data), MaxSnapshotData)
	}
	return w.b
}

func decodeSnapshots(b []byte) ([]SnapshotEntry, error) {
	if len(b) == 0 {
		return nil, nil
	}
	r := reader{b: b}
	r.version(snapshotVersion)
	n := r.count(8)
	es := make([]SnapshotEntry, 0, min(n, maxSnapshots))
	for i := 0; i < n && r.err == nil; i++ {
		e := SnapshotEntry{ID: r.str(maxIDLen), Check: r.str(MaxNameLen), Node: r.str(MaxNameLen), Region: r.str(MaxRegionLen),
			DownSince: r.time(), Taken: r.time()}
		e.Data = []byte(r.str(MaxSnapshotData))
		es = append(es, e)
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	return es, nil
}
