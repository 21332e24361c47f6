package mesh

import (
	"testing"
	"time"
)

// The decoders take whatever a peer sends: they must never panic, and
// whatever they accept must be valid.
func FuzzVotesMerge(f *testing.F) {
	a := newMeshRig("eu-1")
	_ = a.m.Votes.Put(Vote{Check: "api", Vote: "down", At: t0, Code: "x", LatencyMS: 3, DownSince: t0})
	full, _ := a.m.Votes.MarshalBinary()
	f.Add(full)
	delta := writer{b: []byte{fmtDelta}}
	delta.time(t0)
	f.Add(appendVote(delta.b, Vote{Check: "db", Vote: "up", At: t0}, false, t0))
	f.Add([]byte{fmtFull, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newMeshRig("us-1")
		_ = r.m.Votes.Merge("eu-1", b)
		r.m.Votes.mu.RLock()
		defer r.m.Votes.mu.RUnlock()
		for _, m := range r.m.Votes.byCheck {
			for _, v := range m {
				if err := v.valid(); err != nil {
					t.Fatalf("stored an invalid vote %+v: %v", v, err)
				}
			}
		}
	})
}

func FuzzEntriesMerge(f *testing.F) {
	a := newMeshRig("eu-1")
	_ = a.m.Incidents.Announce("api", "id1", t0, true)
	_ = a.m.Sent.Record(Sent{Incident: "i", Check: "api", Start: t0, Action: "trigger", Notifier: "pd"})
	_ = a.m.Claims.Claim("i", "trigger", []string{"pd"})
	_ = a.m.Health.Put(false, "x")
	_ = a.m.Receipts.Take("api")
	for _, s := range []interface{ MarshalBinary() ([]byte, error) }{a.m.Incidents, a.m.Sent, a.m.Claims, a.m.Health, a.m.Updates, a.m.Receipts} {
		b, _ := s.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte(`{"x":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newMeshRig("us-1")
		r.now = t0.Add(time.Hour)
		_ = r.m.Incidents.Merge("eu-1", b)
		_ = r.m.Sent.Merge("eu-1", b)
		_ = r.m.Claims.Merge("eu-1", b)
		_ = r.m.Health.Merge("eu-1", b)
		_ = r.m.Updates.Merge("eu-1", b)
		_ = r.m.Asks.Merge("eu-1", b)
		_ = r.m.Receipts.Merge("eu-1", b)
		for _, s := range r.m.Sent.All() {
			if err := s.valid(); err != nil {
				t.Fatalf("stored an invalid delivery %+v: %v", s, err)
			}
		}
		for _, w := range r.writes {
			if err := w.Validate(); err != nil {
				t.Fatalf("passed on an invalid write %+v: %v", w, err)
			}
		}
	})
}
