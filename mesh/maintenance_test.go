package mesh

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// maintRig is one node's maintenance table on a settable clock, with what
// it broadcasts and what it hands on to be stored.
type maintRig struct {
	now     time.Time
	t       *Maintenance
	sent    [][]byte
	changes []Window
}

func newMaintRig() *maintRig {
	r := &maintRig{now: t0}
	r.t = NewMaintenance(func() time.Time { return r.now }, quiet)
	r.t.setBroadcaster(bcast(func(_ string, b []byte) { r.sent = append(r.sent, b) }))
	r.t.SetOnChange(func(ws []Window) { r.changes = append(r.changes, ws...) })
	return r
}

func oneOff(id string, start time.Duration, checks ...string) Window {
	return Window{ID: id, Version: 1, Title: "Planned work " + id, Checks: checks, Start: t0.Add(start), End: t0.Add(start + time.Hour),
		Author: "eu-1", Created: t0, Updated: t0}
}

func weekly(id string, checks ...string) Window {
	return Window{ID: id, Version: 1, Checks: checks, Every: "0 2 * * 0", DurationMS: (2 * time.Hour).Milliseconds(),
		Timezone: "Europe/Berlin", Author: "us-1", Created: t0, Updated: t0}
}

func msg(t *testing.T, ws ...Window) []byte {
	t.Helper()
	b, err := encodeEntries(ws)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMaintenanceScheduleCancelActive(t *testing.T) {
	a, b := newMaintRig(), newMaintRig()
	w := oneOff("00000000000000a1", 10*time.Minute, "api", "db")
	if err := a.t.Schedule(w); err != nil {
		t.Fatal(err)
	}
	if len(a.sent) != 1 {
		t.Fatalf("schedule broadcast %d messages", len(a.sent))
	}
	if a.t.Active("api", t0) || !a.t.Active("api", t0.Add(10*time.Minute)) || !a.t.Active("db", t0.Add(69*time.Minute)) ||
		a.t.Active("db", t0.Add(70*time.Minute)) || a.t.Active("web", t0.Add(30*time.Minute)) {
		t.Fatal("Active does not follow [start, end) of the window's checks")
	}
	// The broadcast reaches b: stored there (OnChange) and active.
	if err := b.t.Merge("eu-1", a.sent[0]); err != nil {
		t.Fatal(err)
	}
	if len(b.changes) != 1 || b.changes[0].ID != w.ID || !b.t.Active("api", t0.Add(30*time.Minute)) {
		t.Fatalf("b after the broadcast: %+v", b.changes)
	}
	// The same again changes nothing.
	if err := b.t.Merge("eu-1", a.sent[0]); err != nil || len(b.changes) != 1 {
		t.Fatalf("repeat: %v %d changes", err, len(b.changes))
	}
	if err := a.t.Schedule(w); err == nil {
		t.Fatal("an id scheduled twice")
	}

	// Cancelled on b: a tombstone of the next version, gossiped; a gets it
	// and the window is over everywhere.
	b.now = t0.Add(20 * time.Minute)
	tomb, was, err := b.t.Cancel(w.ID, "us-1")
	if err != nil || !tomb.Deleted || tomb.Version != 2 || was.Title != w.Title || len(tomb.Checks) != 0 {
		t.Fatalf("cancel: %+v %+v %v", tomb, was, err)
	}
	if _, _, err := b.t.Cancel(w.ID, "us-1"); !errors.Is(err, ErrNoWindow) {
		t.Fatalf("cancel twice: %v", err)
	}
	if _, _, err := b.t.Cancel("00000000000000ff", "us-1"); !errors.Is(err, ErrNoWindow) {
		t.Fatalf("cancel an unknown window: %v", err)
	}
	if err := a.t.Merge("us-1", b.sent[len(b.sent)-1]); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*maintRig{a, b} {
		if r.t.Active("api", t0.Add(30*time.Minute)) || len(r.t.Windows()) != 0 || r.t.Len() != 1 {
			t.Fatalf("after the cancellation: active %v, windows %v, entries %d", r.t.Active("api", t0.Add(30*time.Minute)), r.t.Windows(), r.t.Len())
		}
	}
	// The window arriving late (push-pull of a node that missed the
	// cancellation) does not come back.
	if err := a.t.Merge("ap-1", msg(t, w)); err != nil || len(a.t.Windows()) != 0 {
		t.Fatalf("an older version after the tombstone: %v %v", err, a.t.Windows())
	}

	// A recurring window: active during its occurrences, in its zone.
	rw := weekly("00000000000000b2", "api")
	if err := a.t.Schedule(rw); err != nil {
		t.Fatal(err)
	}
	// Sunday 6 Dec 2026 02:30 in Berlin is 01:30 UTC.
	if !a.t.Active("api", time.Date(2026, 12, 6, 1, 30, 0, 0, time.UTC)) || a.t.Active("api", time.Date(2026, 12, 6, 3, 30, 0, 0, time.UTC)) {
		t.Fatal("recurring window not active in its occurrence only")
	}
}

// The table depends on the set of versions, not on the order or the
// grouping in which they arrive.
func TestMaintenanceMergeOrderIndependent(t *testing.T) {
	var versions []Window
	for i := range 12 {
		w := oneOff(fmt.Sprintf("%016x", i+1), time.Duration(i)*time.Hour, "api")
		if i%3 == 0 {
			w = weekly(w.ID, "db")
		}
		w.Created = t0.Add(time.Duration(i) * time.Second)
		w.Updated = w.Created
		versions = append(versions, w)
		if i%2 == 0 { // cancelled, by two nodes at once for some
			tomb := Window{ID: w.ID, Version: 2, Deleted: true, Author: "us-1", Created: w.Created, Updated: w.Created.Add(time.Minute)}
			versions = append(versions, tomb)
			if i%4 == 0 {
				tomb.Author, tomb.Updated = "ap-1", tomb.Updated.Add(time.Second)
				versions = append(versions, tomb)
			}
		}
	}
	var want []Window
	rng := rand.New(rand.NewPCG(7, 9))
	for trial := range 50 {
		r := newMaintRig()
		r.now = t0.Add(time.Hour) // after every version was made
		vs := append([]Window(nil), versions...)
		rng.Shuffle(len(vs), func(i, j int) { vs[i], vs[j] = vs[j], vs[i] })
		for len(vs) > 0 {
			k := 1 + rng.IntN(len(vs))
			if err := r.t.Merge("peer", msg(t, vs[:k]...)); err != nil {
				t.Fatal(err)
			}
			vs = vs[k:]
		}
		// And a full state merged into a fresh table gives it again.
		full := newMaintRig()
		full.now = r.now
		if err := full.t.Merge("peer", mustMarshal(t, r.t)); err != nil {
			t.Fatal(err)
		}
		got := r.t.Entries()
		if !reflect.DeepEqual(got, full.t.Entries()) {
			t.Fatalf("trial %d: full state differs from the table", trial)
		}
		if want == nil {
			want = got
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("trial %d: order changed the table:\n got %+v\nwant %+v", trial, got, want)
		}
	}
	live, tombs := 0, 0
	for _, w := range want {
		if w.Deleted {
			tombs++
			if (w.ID == fmt.Sprintf("%016x", 1) || w.ID == fmt.Sprintf("%016x", 5) || w.ID == fmt.Sprintf("%016x", 9)) && w.Author != "ap-1" {
				t.Fatalf("equal versions: the later tombstone should win: %+v", w)
			}
		} else {
			live++
		}
	}
	if live != 6 || tombs != 6 {
		t.Fatalf("%d live windows, %d tombstones; want 6 and 6", live, tombs)
	}
}

// Tombstones and ended windows expire; expired versions are not taken
// back from a peer.
func TestMaintenanceExpiry(t *testing.T) {
	r := newMaintRig()
	w := oneOff("00000000000000a1", 0, "api")
	rec := weekly("00000000000000b2", "api")
	gone := oneOff("00000000000000c3", 0, "db")
	tomb := Window{ID: gone.ID, Version: 2, Deleted: true, Created: t0, Updated: t0}
	if err := r.t.Merge("peer", msg(t, w, rec, tomb)); err != nil {
		t.Fatal(err)
	}
	r.now = t0.Add(time.Hour + KeepEnded + time.Second)
	if !r.t.Expire(r.now) {
		t.Fatal("an ended window's expiry should be reported")
	}
	got := r.t.Entries()
	if len(got) != 2 || got[0].ID != rec.ID || got[1].ID != tomb.ID {
		t.Fatalf("after the one-off window's expiry: %+v", got)
	}
	r.now = t0.Add(TombstoneTTL + time.Second)
	if r.t.Expire(r.now) {
		t.Fatal("only a tombstone went")
	}
	if got := r.t.Entries(); len(got) != 1 || got[0].ID != rec.ID {
		t.Fatalf("after the tombstone's expiry: %+v", got)
	}
	// A peer still holding them does not bring them back.
	r.changes = nil
	if err := r.t.Merge("peer", msg(t, w, tomb)); err != nil || len(r.changes) != 0 || r.t.Len() != 1 {
		t.Fatalf("expired versions taken: %v %+v", err, r.changes)
	}
	// Seeding from the store skips them too.
	s := newMaintRig()
	s.now = r.now
	s.t.Seed([]Window{w, tomb, rec})
	if s.t.Len() != 1 || !s.t.Active("api", time.Date(2026, 12, 6, 1, 30, 0, 0, time.UTC)) {
		t.Fatalf("seeded: %+v", s.t.Entries())
	}
}

// Bounded: live windows, tombstones, a message's entries; invalid
// versions are refused and counted.
func TestMaintenanceBounds(t *testing.T) {
	r := newMaintRig()
	for i := range MaxWindows {
		if err := r.t.Schedule(oneOff(fmt.Sprintf("%016x", i+1), time.Hour, "api")); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.t.Schedule(oneOff(fmt.Sprintf("%016x", 999), time.Hour, "api")); !errors.Is(err, ErrWindowsFull) || !r.t.Full() {
		t.Fatalf("one window past the bound: %v", err)
	}
	// A peer's windows past the bound: the earliest scheduled are kept,
	// whatever the order.
	late := oneOff(fmt.Sprintf("%016x", 1000), time.Hour, "api")
	late.Created, late.Updated = t0.Add(time.Second), t0.Add(time.Second)
	early := oneOff(fmt.Sprintf("%016x", 1001), time.Hour, "api")
	early.Created, early.Updated = t0.Add(-time.Second), t0.Add(-time.Second)
	if err := r.t.Merge("peer", msg(t, late, early)); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, w := range r.t.Windows() {
		ids[w.ID] = true
	}
	if len(ids) != MaxWindows || !ids[early.ID] || ids[late.ID] {
		t.Fatalf("%d live windows (early kept %v, late kept %v)", len(ids), ids[early.ID], ids[late.ID])
	}
	// Only what survived went on to be stored.
	for _, w := range r.changes {
		if w.ID == late.ID {
			t.Fatal("a window dropped at once was handed on to be stored")
		}
	}

	// Tombstones: the latest maxTombstones kept.
	tr := newMaintRig()
	var tombs []Window
	for i := range maxTombstones + 10 {
		at := t0.Add(time.Duration(i) * time.Second)
		tombs = append(tombs, Window{ID: fmt.Sprintf("%016x", i+1), Version: 2, Deleted: true, Created: t0, Updated: at})
	}
	for i := 0; i < len(tombs); i += 100 {
		if err := tr.t.Merge("peer", msg(t, tombs[i:min(i+100, len(tombs))]...)); err != nil {
			t.Fatal(err)
		}
	}
	if tr.t.Len() != maxTombstones {
		t.Fatalf("%d tombstones kept, bound %d", tr.t.Len(), maxTombstones)
	}
	for i := len(tombs); i <= MaxWindows+maxTombstones; i++ {
		tombs = append(tombs, Window{ID: fmt.Sprintf("%016x", i+1), Version: 2, Deleted: true, Created: t0, Updated: t0})
	}
	if err := tr.t.Merge("peer", msg(t, tombs...)); err == nil {
		t.Fatal("a message of more versions than a table holds was taken")
	}

	// Invalid versions.
	bad := []Window{
		{ID: "XYZ", Version: 1, Checks: []string{"api"}, Start: t0, End: t0.Add(time.Hour), Created: t0, Updated: t0},
		func() Window { w := oneOff("00000000000000d1", 0, "api"); w.Version = 0; return w }(),
		func() Window { w := oneOff("00000000000000d2", 0, "Bad Name"); return w }(),
		func() Window { w := oneOff("00000000000000d3", 0, "api"); w.End = w.Start; return w }(),
		func() Window { w := oneOff("00000000000000d4", 0); return w }(),
		func() Window { w := oneOff("00000000000000d5", 0, "api", "api"); return w }(),
		func() Window { w := weekly("00000000000000d6", "api"); w.Every = "61 * * * *"; return w }(),
		func() Window { w := weekly("00000000000000d7", "api"); w.Timezone = "Mars/Olympus"; return w }(),
		func() Window { w := weekly("00000000000000d8", "api"); w.DurationMS = 0; return w }(),
		func() Window { w := weekly("00000000000000d9", "api"); w.Start = t0; return w }(),
		func() Window {
			w := oneOff("00000000000000da", 0, "api")
			w.End = w.Start.Add(MaxWindowSpan + time.Hour)
			return w
		}(),
		func() Window { w := oneOff("00000000000000db", 0, "api"); w.Title = strings.Repeat("x", 300); return w }(),
		func() Window {
			w := oneOff("00000000000000dc", 0, "api")
			w.Updated = w.Created.Add(-time.Second)
			return w
		}(),
		{ID: "00000000000000dd", Version: 2, Deleted: true, Checks: []string{"api"}, Created: t0, Updated: t0},
		func() Window { w := oneOff("00000000000000de", 0, "api"); w.Sent = t0.Add(-time.Minute); return w }(),
	}
	br := newMaintRig()
	err := br.t.Merge("peer", msg(t, bad...))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d invalid", len(bad))) || br.t.Len() != 0 || len(br.changes) != 0 {
		t.Fatalf("invalid versions: %v, %d taken", err, br.t.Len())
	}
	for _, w := range bad {
		if err := br.t.Schedule(w); err == nil && w.Sent.IsZero() {
			t.Fatalf("scheduled an invalid window %+v", w)
		}
	}
	// Malformed messages.
	for _, m := range [][]byte{nil, {fmtJSON}, {fmtJSON, '{'}, {9, '[', ']'}, append(msg(t, oneOff("00000000000000e1", 0, "api")), 'x')} {
		_ = br.t.Merge("peer", m)
	}
}

// The full state of a node carries tombstones and windows; a table
// taking a peer's full state stores what is new (OnChange).
func TestMaintenanceFullState(t *testing.T) {
	a, b := newMaintRig(), newMaintRig()
	for i, w := range []Window{oneOff("00000000000000a1", time.Hour, "api"), weekly("00000000000000b2", "db")} {
		w.Created = t0.Add(time.Duration(i) * time.Second)
		w.Updated = w.Created
		if err := a.t.Schedule(w); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := a.t.Cancel("00000000000000a1", "eu-1"); err != nil {
		t.Fatal(err)
	}
	full := mustMarshal(t, a.t)
	var wire []map[string]any
	if err := json.Unmarshal(full[1:], &wire); err != nil || len(wire) != 2 || wire[0]["sent"] == nil {
		t.Fatalf("full state %s: %v", full, err)
	}
	if err := b.t.Merge("eu-1", full); err != nil {
		t.Fatal(err)
	}
	if len(b.changes) != 2 || !reflect.DeepEqual(a.t.Entries(), b.t.Entries()) {
		t.Fatalf("b after a's full state: %+v", b.t.Entries())
	}
}

func FuzzMaintenanceMerge(f *testing.F) {
	a := newMaintRig()
	_ = a.t.Schedule(oneOff("00000000000000a1", time.Hour, "api"))
	_ = a.t.Schedule(weekly("00000000000000b2", "db"))
	_, _, _ = a.t.Cancel("00000000000000a1", "eu-1")
	full, _ := a.t.MarshalBinary()
	f.Add(full)
	f.Add([]byte{fmtJSON, '[', ']'})
	f.Add([]byte(`{"x":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newMaintRig()
		_ = r.t.Merge("eu-1", b)
		live := 0
		for _, w := range r.t.Entries() {
			if err := w.Validate(); err != nil {
				t.Fatalf("holds an invalid version %+v: %v", w, err)
			}
			if !w.Sent.IsZero() {
				t.Fatalf("holds a version with its message's time: %+v", w)
			}
			if !w.Deleted {
				live++
			}
		}
		if live > MaxWindows || r.t.Len() > MaxWindows+maxTombstones {
			t.Fatalf("%d live, %d in all: past the bounds", live, r.t.Len())
		}
		for _, w := range r.changes {
			if err := w.Validate(); err != nil {
				t.Fatalf("handed on an invalid version: %v", err)
			}
		}
		r.t.Active("api", t0)
	})
}
