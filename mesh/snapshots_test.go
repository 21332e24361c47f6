package mesh

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

type recBroadcaster struct{ msgs map[string][]byte }

func (r *recBroadcaster) Broadcast(name string, b []byte) error {
	r.msgs[name] = append([]byte(nil), b...)
	return nil
}

func TestSnapshotsReplicate(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a, b := NewSnapshots("eu-1", clock, nil), NewSnapshots("us-1", clock, nil)
	rec := &recBroadcaster{msgs: map[string][]byte{}}
	a.setBroadcaster(rec)
	var got []SnapshotEntry
	b.SetOnNew(func(e SnapshotEntry) { got = append(got, e) })

	e := SnapshotEntry{ID: "00112233445566778899aabb", Check: "api", Region: "eu", DownSince: now.Add(-time.Second), Taken: now, Data: []byte("gz")}
	if err := a.Add(e); err != nil {
		t.Fatal(err)
	}
	msg := rec.msgs["snap/"+e.ID]
	if err := b.Merge("eu-1", msg); err != nil || len(got) != 1 || got[0].Node != "eu-1" || !bytes.Equal(got[0].Data, e.Data) {
		t.Fatalf("%v %+v", err, got)
	}
	// Again, and through push-pull: nothing new.
	full, _ := a.MarshalBinary()
	if err := b.Merge("eu-1", msg); err != nil || b.Merge("eu-1", full) != nil || len(got) != 1 {
		t.Fatalf("duplicates: %d", len(got))
	}
	// A late node gets it from push-pull.
	c := NewSnapshots("ap-1", clock, nil)
	var late int
	c.SetOnNew(func(SnapshotEntry) { late++ })
	if err := c.Merge("us-1", full); err != nil || late != 1 {
		t.Fatalf("late node: %v %d", err, late)
	}
	// Older than a day: neither kept nor shared.
	now = now.Add(25 * time.Hour)
	a.Expire(now)
	if full, _ := a.MarshalBinary(); full != nil || a.Len() != 0 {
		t.Fatal("a day-old snapshot kept")
	}
}

func TestSnapshotsRefuseMalformed(t *testing.T) {
	now := time.Now()
	tb := NewSnapshots("x", time.Now, nil)
	good := SnapshotEntry{ID: "0011223344556677", Check: "api", Node: "n", Region: "eu", DownSince: now, Taken: now, Data: []byte("d")}
	for name, e := range map[string]SnapshotEntry{
		"id":    {ID: "NOT-HEX", Check: "api", Node: "n", DownSince: now, Taken: now, Data: []byte("d")},
		"check": {ID: good.ID, Check: "Bad Name", Node: "n", DownSince: now, Taken: now, Data: []byte("d")},
		"empty": {ID: good.ID, Check: "api", Node: "n", DownSince: now, Taken: now},
		"time":  {ID: good.ID, Check: "api", Node: "n", Taken: now, Data: []byte("d")},
	} {
		if err := tb.Merge("n", encodeSnapshots([]SnapshotEntry{e})); err == nil || tb.Len() != 0 {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := tb.Merge("n", []byte{snapshotVersion, 200}); err == nil {
		t.Error("a truncated message was accepted")
	}
	w := writer{b: []byte{snapshotVersion}}
	w.uvarint(1)
	w.str(good.ID, maxIDLen)
	w.str(good.Check, MaxNameLen)
	w.str(good.Node, MaxNameLen)
	w.str(good.Region, MaxRegionLen)
	w.time(good.DownSince)
	w.time(good.Taken)
	w.str(strings.Repeat("x", MaxSnapshotData+1), MaxSnapshotData+1)
	if err := tb.Merge("n", w.b); err == nil || tb.Len() != 0 {
		t.Error("an oversized snapshot was accepted")
	}
	// The table stays bounded.
	for i := range maxSnapshots + 10 {
		e := good
		e.ID = strings.Repeat("0", 8) + string("0123456789abcdef"[i%16]) + strings.Repeat("a", 7) + hex4(i)
		e.Taken = now.Add(time.Duration(i) * time.Millisecond)
		tb.Merge("n", encodeSnapshots([]SnapshotEntry{e}))
	}
	if tb.Len() != maxSnapshots {
		t.Fatalf("%d snapshots held", tb.Len())
	}
}

func hex4(i int) string {
	const h = "0123456789abcdef"
	return string([]byte{h[i>>12&15], h[i>>8&15], h[i>>4&15], h[i&15]})
}
