package mesh

import (
	"bytes"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/store"
)

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// rec records what a table broadcasts.
type rec struct{ names []string }

func (r *rec) Broadcast(name string, b []byte) error {
	r.names = append(r.names, name)
	return nil
}

type meshRig struct {
	now     time.Time
	m       *Mesh
	b       *rec
	changed []string
	asks    []string
	writes  []Write
	health  int
}

func newMeshRig(self string) *meshRig {
	r := &meshRig{now: t0, b: &rec{}}
	r.m = New(Options{Self: self, Region: "eu", Now: func() time.Time { return r.now }, Logger: quiet,
		Notify: func(c string) { r.changed = append(r.changed, c) }, OnHealth: func() { r.health++ },
		OnAsk: func(c, from string) { r.asks = append(r.asks, from+":"+c) }, OnWrite: func(w Write) { r.writes = append(r.writes, w) }})
	for _, t := range []sharer{r.m.Votes, r.m.Health, r.m.Incidents, r.m.Sent, r.m.Claims, r.m.Updates, r.m.Asks, r.m.Receipts} {
		t.setBroadcaster(r.b)
	}
	r.m.Retain(map[string]bool{"api": true, "db": true})
	return r
}

func mustMarshal(t *testing.T, s interface{ MarshalBinary() ([]byte, error) }) []byte {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A node's newest vote wins; this node's own vote is its own; votes of
// checks the node does not run are refused; bad values are rejected.
func TestVotesMerge(t *testing.T) {
	a, b := newMeshRig("eu-1"), newMeshRig("us-1")
	steps := []struct {
		name    string
		vote    Vote
		wantErr bool
		want    string // b's view of a's vote on api after the step
	}{
		{"first", Vote{Check: "api", Vote: "up", At: t0}, false, "up"},
		{"newer wins", Vote{Check: "api", Vote: "down", At: t0.Add(time.Second), DownSince: t0.Add(time.Second), Code: "http_503"}, false, "down"},
		{"older loses", Vote{Check: "api", Vote: "up", At: t0.Add(500 * time.Millisecond)}, false, "down"},
		{"unknown check refused", Vote{Check: "web", Vote: "up", At: t0.Add(2 * time.Second)}, true, "down"},
	}
	for _, s := range steps {
		err := a.m.Votes.Put(s.vote)
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: put error %v", s.name, err)
		}
		if err := b.m.Votes.Merge("eu-1", mustMarshal(t, a.m.Votes)); err != nil {
			t.Fatalf("%s: merge: %v", s.name, err)
		}
		if v, _ := b.m.Votes.Get("api", "eu-1"); v.Vote != s.want {
			t.Fatalf("%s: b sees %q, want %q", s.name, v.Vote, s.want)
		}
	}
	// The older vote merged from a's full state cannot override b's view.
	if len(b.changed) != 2 {
		t.Fatalf("b was told of %d changes (%v), want 2", len(b.changed), b.changed)
	}
	// b's own vote is not taken from a peer.
	if err := b.m.Votes.Put(Vote{Check: "api", Vote: "up", At: t0}); err != nil {
		t.Fatal(err)
	}
	forged := Vote{Node: "us-1", Check: "api", Vote: "down", At: t0.Add(time.Hour)}
	full := fullVotes(t0.Add(time.Hour), forged)
	if err := b.m.Votes.Merge("eu-1", full); err != nil {
		t.Fatal(err)
	}
	if v, _ := b.m.Votes.Get("api", "us-1"); v.Vote != "up" {
		t.Fatalf("own vote overridden by a peer: %+v", v)
	}
	// Invalid values are rejected with an error and not stored.
	for _, bad := range []Vote{
		{Node: "x", Check: "api", Vote: "sideways", At: t0},
		{Node: "x", Check: "api", Vote: "up", At: t0, LatencyMS: math.NaN()},
		{Node: "x", Check: "api", Vote: "up", At: t0, LatencyMS: math.Inf(1)},
		{Node: "x", Check: "API!", Vote: "up", At: t0},
		{Node: "", Check: "api", Vote: "up", At: t0},
	} {
		msg := fullVotes(t0, bad)
		if err := b.m.Votes.Merge("x", msg); err == nil {
			t.Fatalf("invalid vote %+v accepted", bad)
		}
		if _, ok := b.m.Votes.Get(bad.Check, bad.Node); ok {
			t.Fatalf("invalid vote %+v stored", bad)
		}
	}
	// Expire drops votes older than the horizon; Retain drops checks.
	b.m.Votes.Expire(t0.Add(time.Minute))
	if n := b.m.Votes.Len(); n != 0 {
		t.Fatalf("%d votes after expiry", n)
	}
}

// A delta broadcast by Put arrives with the sender's name from the cluster.
func TestVotesDelta(t *testing.T) {
	var got []byte
	a := newMeshRig("eu-1")
	a.m.Votes.setBroadcaster(bcast(func(name string, b []byte) { got = b }))
	if err := a.m.Votes.Put(Vote{Check: "db", Vote: "down", At: t0, Code: "connect_refused", LatencyMS: 1.5, DownSince: t0}); err != nil {
		t.Fatal(err)
	}
	b := newMeshRig("us-1")
	if err := b.m.Votes.Merge("eu-1", got); err != nil {
		t.Fatal(err)
	}
	v, ok := b.m.Votes.Get("db", "eu-1")
	if !ok || v.Region != "eu" || v.Code != "connect_refused" || v.LatencyMS != 1.5 || !v.DownSince.Equal(t0) {
		t.Fatalf("delta vote %+v", v)
	}
}

// TestVotesOnPut: this node's own votes are told as they are stored (with
// its name and region), refused ones and peers' merged votes are not.
func TestVotesOnPut(t *testing.T) {
	a, b := newMeshRig("eu-1"), newMeshRig("us-1")
	var told []Vote
	a.m.Votes.SetOnPut(func(v Vote) { told = append(told, v) })
	steps := []struct {
		name string
		put  *Vote // this node's vote, or nil: merge b's
		want int   // votes told after the step
	}{
		{"own vote told", &Vote{Check: "api", Vote: "down", At: t0, DownSince: t0}, 1},
		{"unknown check not told", &Vote{Check: "web", Vote: "down", At: t0}, 1},
		{"peer's vote not told", nil, 1},
		{"next own vote told", &Vote{Check: "api", Vote: "up", At: t0.Add(time.Second)}, 2},
	}
	for _, s := range steps {
		if s.put != nil {
			a.m.Votes.Put(*s.put)
		} else {
			if err := b.m.Votes.Put(Vote{Check: "api", Vote: "down", At: t0, DownSince: t0}); err != nil {
				t.Fatal(err)
			}
			if err := a.m.Votes.Merge("us-1", mustMarshal(t, b.m.Votes)); err != nil {
				t.Fatal(err)
			}
		}
		if len(told) != s.want {
			t.Fatalf("%s: told %d votes (%+v), want %d", s.name, len(told), told, s.want)
		}
	}
	if v := told[0]; v.Node != "eu-1" || v.Region != "eu" || v.Vote != VoteDown || !v.DownSince.Equal(t0) {
		t.Fatalf("told %+v", v)
	}
}

type bcast func(name string, b []byte)

func (f bcast) Broadcast(name string, b []byte) error { f(name, b); return nil }

// Announcements: only a node's own, newest first, forgotten on resolve.
func TestIncidents(t *testing.T) {
	a, b := newMeshRig("eu-1"), newMeshRig("us-1")
	if err := a.m.Incidents.Announce("api", "id1", t0, false); err != nil {
		t.Fatal(err)
	}
	if err := b.m.Incidents.Merge("eu-1", mustMarshal(t, a.m.Incidents)); err != nil {
		t.Fatal(err)
	}
	if x, ok := b.m.Incidents.Get("api", "eu-1"); !ok || x.ID != "id1" {
		t.Fatalf("announcement %+v", x)
	}
	// A node may not announce for another.
	if err := b.m.Incidents.Merge("ap-1", mustMarshal(t, a.m.Incidents)); err == nil {
		t.Fatal("an announcement relayed under another node's name was accepted")
	}
	a.now = t0.Add(time.Second)
	if err := a.m.Incidents.MarkPaged("api", "id1"); err != nil {
		t.Fatal(err)
	}
	if err := b.m.Incidents.Merge("eu-1", mustMarshal(t, a.m.Incidents)); err != nil {
		t.Fatal(err)
	}
	if x, _ := b.m.Incidents.Get("api", "eu-1"); !x.Paged {
		t.Fatalf("paged not learned: %+v", x)
	}
	b.m.Incidents.Forget("api")
	if _, ok := b.m.Incidents.Get("api", "eu-1"); ok {
		t.Fatal("kept after Forget")
	}
	b.now = t0.Add(announceTTL + time.Hour)
	if err := b.m.Incidents.Merge("eu-1", mustMarshal(t, a.m.Incidents)); err != nil {
		t.Fatal(err)
	}
	b.m.Incidents.Expire(b.now)
	if _, ok := b.m.Incidents.Get("api", "eu-1"); ok {
		t.Fatal("an announcement not renewed for announceTTL was kept")
	}
}

// The sent log keeps the first record of each delivery, indexes the
// latest paged incident per check, and is bounded.
func TestSentLog(t *testing.T) {
	a, b := newMeshRig("eu-1"), newMeshRig("us-1")
	for _, s := range []Sent{
		{Incident: "i1", Check: "api", Start: t0, Action: "trigger", Notifier: "pd"},
		{Incident: "i2", Check: "api", Start: t0.Add(time.Hour), Action: "trigger", Notifier: "pd"},
		{Incident: "i1", Check: "api", Start: t0, Action: "resolve", Notifier: "pd"},
	} {
		if err := a.m.Sent.Record(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.m.Sent.Merge("eu-1", mustMarshal(t, a.m.Sent)); err != nil {
		t.Fatal(err)
	}
	if p, ok := b.m.Sent.Paged("api"); !ok || p.Incident != "i2" {
		t.Fatalf("paged %+v, want i2", p)
	}
	if !b.m.Sent.Triggered("i1") || b.m.Sent.Triggered("i3") {
		t.Fatal("Triggered wrong")
	}
	if got := b.m.Sent.Unsent("i1", "resolve", []string{"pd", "chat"}); len(got) != 1 || got[0] != "chat" {
		t.Fatalf("unsent %v", got)
	}
	if by, ok := b.m.Sent.DeliveredBy("i1", "trigger", "pd"); !ok || by != "eu-1" {
		t.Fatalf("delivered by %q", by)
	}
	// Bounded: past maxSent the oldest go.
	c := newMeshRig("ap-1")
	for i := range maxSent + 10 {
		c.now = t0.Add(time.Duration(i) * time.Second)
		if err := c.m.Sent.Record(Sent{Incident: "x" + strings.Repeat("0", 3) + string(rune('a'+i%26)) + itoa(i), Action: "trigger", Notifier: "pd"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.m.Sent.Len(); n != maxSent {
		t.Fatalf("sent log of %d entries, want the bound %d", n, maxSent)
	}
	c.m.Sent.Expire(c.now.Add(sentTTL + time.Hour))
	if n := c.m.Sent.Len(); n != 0 {
		t.Fatalf("%d entries after expiry", n)
	}
}

func itoa(i int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		i /= 10
		if i == 0 {
			return string(b)
		}
	}
}

// Claims: the newest wins, a released or lapsed claim holds nothing, a
// dead claimer's neither.
func TestClaims(t *testing.T) {
	a, b := newMeshRig("eu-1"), newMeshRig("us-1")
	if err := a.m.Claims.Claim("i1", "trigger", []string{"pd"}); err != nil {
		t.Fatal(err)
	}
	if err := b.m.Claims.Merge("eu-1", mustMarshal(t, a.m.Claims)); err != nil {
		t.Fatal(err)
	}
	alive := func(string) bool { return true }
	if who, held := b.m.Claims.Held("i1", "trigger", t0.Add(time.Minute), alive); !held || who != "eu-1" {
		t.Fatal("a live claim does not hold")
	}
	if _, held := b.m.Claims.Held("i1", "trigger", t0.Add(ClaimLease), alive); held {
		t.Fatal("a lapsed claim holds")
	}
	if _, held := b.m.Claims.Held("i1", "trigger", t0, func(string) bool { return false }); held {
		t.Fatal("a dead node's claim holds")
	}
	a.now = t0.Add(time.Second)
	if err := a.m.Claims.Release("i1", "trigger"); err != nil {
		t.Fatal(err)
	}
	if err := b.m.Claims.Merge("eu-1", mustMarshal(t, a.m.Claims)); err != nil {
		t.Fatal(err)
	}
	if _, held := b.m.Claims.Held("i1", "trigger", t0.Add(2*time.Second), alive); held {
		t.Fatal("a released claim holds")
	}
	b.m.Claims.Expire(t0.Add(3 * ClaimLease))
	b.m.Claims.mu.RLock()
	n := len(b.m.Claims.m)
	b.m.Claims.mu.RUnlock()
	if n != 0 {
		t.Fatalf("%d claims after expiry", n)
	}
}

// Health: a flip is told; a node without an entry counts as healthy.
func TestHealth(t *testing.T) {
	a, b := newMeshRig("eu-1"), newMeshRig("us-1")
	if ok, _ := b.m.Health.Healthy("eu-1"); !ok {
		t.Fatal("unknown node unhealthy")
	}
	if err := a.m.Health.Put(true, ""); err != nil {
		t.Fatal(err)
	}
	_ = b.m.Health.Merge("eu-1", mustMarshal(t, a.m.Health))
	if b.health != 0 {
		t.Fatal("a healthy node's first verdict counted as a flip")
	}
	a.now = t0.Add(time.Second)
	if err := a.m.Health.Put(false, "canaries failing"); err != nil {
		t.Fatal(err)
	}
	_ = b.m.Health.Merge("eu-1", mustMarshal(t, a.m.Health))
	if ok, why := b.m.Health.Healthy("eu-1"); ok || why != "canaries failing" || b.health != 1 {
		t.Fatalf("healthy %v %q flips %d", ok, why, b.health)
	}
}

// Asks reach OnAsk with the asking node; bad names are refused.
func TestAsks(t *testing.T) {
	var msg []byte
	a := newMeshRig("eu-1")
	a.m.Asks.setBroadcaster(bcast(func(_ string, b []byte) { msg = b }))
	if err := a.m.Asks.Ask("api"); err != nil {
		t.Fatal(err)
	}
	b := newMeshRig("us-1")
	if err := b.m.Asks.Merge("eu-1", msg); err != nil || len(b.asks) != 1 || b.asks[0] != "eu-1:api" {
		t.Fatalf("asks %v err %v", b.asks, err)
	}
	if err := b.m.Asks.Merge("eu-1", []byte{fmtAsk, '.', '/'}); err == nil {
		t.Fatal("a bad check name was accepted")
	}
}

// Updates: writes new to a node go to OnWrite once, are validated as the
// write API validates, and are shared on; the shared set is bounded.
func TestUpdates(t *testing.T) {
	a, b := newMeshRig("eu-1"), newMeshRig("us-1")
	inc := store.Incident{ID: "m1", Title: "Payments degraded", Impact: "minor", Manual: true, StartedAt: t0, Author: "eu-1"}
	u := store.IncidentUpdate{ID: "u1", IncidentID: "m1", Status: "investigating", Body: "Looking into it", CreatedAt: t0, Author: "eu-1"}
	if err := a.m.Updates.Share(WriteOf(inc, u)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := b.m.Updates.Merge("eu-1", mustMarshal(t, a.m.Updates)); err != nil {
			t.Fatal(err)
		}
	}
	if len(b.writes) != 1 || b.writes[0].Incident == nil || b.writes[0].Update.Body != "Looking into it" {
		t.Fatalf("writes %+v", b.writes)
	}
	if b.m.Updates.Len() != 1 {
		t.Fatal("a learned write is not shared on")
	}
	bad := WriteOf(inc, u)
	bad.Update.ID, bad.Update.Status = "u2", "panicking"
	msg, _ := encodeEntries([]Write{bad})
	if err := b.m.Updates.Merge("eu-1", msg); err == nil || len(b.writes) != 1 {
		t.Fatalf("an invalid status was accepted (%v)", err)
	}
	ctrl := WriteOf(inc, u)
	ctrl.Update.ID, ctrl.Update.Body = "u3", "bell\x07"
	msg, _ = encodeEntries([]Write{ctrl})
	if err := b.m.Updates.Merge("eu-1", msg); err == nil {
		t.Fatal("a control character was accepted")
	}
	// Bounded: at most shareMax writes of the last week are shared.
	c := newMeshRig("ap-1")
	c.now = t0.Add(24 * time.Hour)
	var ws []Write
	for i := range shareMax + 50 {
		w := WriteOf(store.Incident{ID: "c1"}, store.IncidentUpdate{ID: "u" + itoa(i), IncidentID: "c1", Status: "monitoring", Body: "x", CreatedAt: t0.Add(time.Duration(i) * time.Second)})
		ws = append(ws, w)
	}
	ws = append(ws, WriteOf(store.Incident{ID: "c1"}, store.IncidentUpdate{ID: "old", IncidentID: "c1", Status: "monitoring", Body: "x", CreatedAt: t0.Add(-8 * 24 * time.Hour)}))
	c.m.Updates.Seed(ws)
	if n := c.m.Updates.Len(); n != shareMax {
		t.Fatalf("%d writes shared, want %d", n, shareMax)
	}
}

// Malformed input is an error, never a panic or a partial store.
func TestMalformed(t *testing.T) {
	r := newMeshRig("eu-1")
	for name, s := range map[string]interface{ Merge(string, []byte) error }{
		"votes": r.m.Votes, "health": r.m.Health, "incidents": r.m.Incidents, "sent": r.m.Sent,
		"claims": r.m.Claims, "updates": r.m.Updates, "asks": r.m.Asks, "receipts": r.m.Receipts,
	} {
		for _, b := range [][]byte{{9}, {1, 0xff}, {2, 0xff, 0xff, 0xff, 0xff, 0x0f}, bytes.Repeat([]byte{1}, 40), {1, '[', '{'}} {
			if err := s.Merge("x", b); err == nil && name != "asks" {
				t.Errorf("%s accepted % x", name, b)
			}
		}
	}
	if n := r.m.Votes.Len(); n != 0 {
		t.Fatalf("%d votes from malformed input", n)
	}
}

// fullVotes encodes votes as a full state sent at sent.
func fullVotes(sent time.Time, vs ...Vote) []byte {
	w := writer{b: []byte{fmtFull}}
	w.time(sent)
	w.uvarint(uint64(len(vs)))
	for _, v := range vs {
		w.b = appendVote(w.b, v, true, sent)
	}
	return w.b
}

// Freshness is judged on this node's clock: a vote made by a node whose
// clock is ten minutes behind or ahead is placed at the moment it was
// made here; one made well after its message was sent is refused.
func TestVotesSkewedClocks(t *testing.T) {
	for _, skew := range []time.Duration{-10 * time.Minute, 10 * time.Minute} {
		a, b := newMeshRig("eu-1"), newMeshRig("us-1")
		a.now = t0.Add(skew)
		if err := a.m.Votes.Put(Vote{Check: "api", Vote: "up", At: a.now.Add(-3 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		if err := b.m.Votes.Merge("eu-1", mustMarshal(t, a.m.Votes)); err != nil {
			t.Fatal(err)
		}
		v, _ := b.m.Votes.Get("api", "eu-1")
		if want := t0.Add(-3 * time.Second); !v.Recv.Equal(want) {
			t.Fatalf("skew %v: vote placed at %v on the receiver's clock, want %v", skew, v.Recv, want)
		}
		b.m.Votes.Expire(t0.Add(-time.Minute))
		if _, ok := b.m.Votes.Get("api", "eu-1"); !ok {
			t.Fatalf("skew %v: a fresh vote expired by the sender's clock", skew)
		}
	}
	b := newMeshRig("us-1")
	future := Vote{Node: "eu-1", Region: "eu", Check: "api", Vote: "down", At: t0.Add(time.Minute)}
	if err := b.m.Votes.Merge("eu-1", fullVotes(t0, future)); err == nil {
		t.Fatal("a vote made a minute after its message was sent was taken")
	}
}

// A write from a node whose clock is ten minutes ahead is placed on the
// receiver's clock, so updates are ordered as they were made.
func TestUpdatesSkewedClock(t *testing.T) {
	a, b := newMeshRig("eu-1"), newMeshRig("us-1")
	a.now = t0.Add(10 * time.Minute)
	u := store.IncidentUpdate{ID: "u1", IncidentID: "m1", Status: "monitoring", Body: "fixed", CreatedAt: a.now.Add(-time.Second)}
	if err := a.m.Updates.Share(WriteOf(store.Incident{ID: "m1", Title: "T", Manual: true, StartedAt: a.now.Add(-time.Hour)}, u)); err != nil {
		t.Fatal(err)
	}
	if err := b.m.Updates.Merge("eu-1", mustMarshal(t, a.m.Updates)); err != nil {
		t.Fatal(err)
	}
	if len(b.writes) != 1 || !b.writes[0].Update.At.Equal(t0.Add(-time.Second)) || !b.writes[0].Incident.Started.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("write placed at %+v, want on the receiver's clock", b.writes)
	}
	w := WriteOf(store.Incident{ID: "m1"}, store.IncidentUpdate{ID: "u2", IncidentID: "m1", Status: "monitoring", Body: "x", CreatedAt: t0.Add(time.Minute)})
	w.Sent = t0
	msg, _ := encodeEntries([]Write{w})
	if err := b.m.Updates.Merge("eu-1", msg); err == nil {
		t.Fatal("a write made a minute after it was sent was taken")
	}
}
