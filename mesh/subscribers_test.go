package mesh

import (
	"strings"
	"testing"
	"time"
)

type subRig struct {
	now     time.Time
	t       *Subscribers
	sent    [][]byte
	changes []Subscriber
}

func newSubRig() *subRig {
	r := &subRig{now: t0}
	r.t = NewSubscribers(func() time.Time { return r.now }, quiet)
	r.t.setBroadcaster(bcast(func(_ string, b []byte) { r.sent = append(r.sent, b) }))
	r.t.SetOnChange(func(ss []Subscriber) { r.changes = append(r.changes, ss...) })
	return r
}

// A subscription made on one node reaches another by its broadcast and
// by push-pull; an unsubscription (a tombstone) wins over it, a new
// subscription over the tombstone; the same address is one subscriber on
// every node; tombstones expire.
func TestSubscribersReplicate(t *testing.T) {
	a, b := newSubRig(), newSubRig()
	s, had, err := a.t.Add(Subscriber{ID: SubscriberID("Ann@Example.com"), Email: "Ann@Example.com"}, "eu-1")
	if err != nil || had || s.Version != 1 {
		t.Fatalf("Add = %+v, %v, %v", s, had, err)
	}
	if s2, had, _ := a.t.Add(Subscriber{ID: s.ID, Email: s.Email}, "eu-1"); !had || s2.Version != 1 {
		t.Fatalf("second Add = %+v, %v; want the live one kept", s2, had)
	}
	if err := b.t.Merge("eu-1", a.sent[0]); err != nil {
		t.Fatal(err)
	}
	if live := b.t.Live(); len(live) != 1 || live[0].Email != "Ann@Example.com" || len(b.changes) != 1 {
		t.Fatalf("b after the broadcast: %+v, changes %d", live, len(b.changes))
	}
	if SubscriberID("ann@example.com ") != s.ID {
		t.Error("an address's id depends on its case")
	}
	a.now = a.now.Add(time.Minute)
	tomb, was, ok := a.t.Remove(s.ID, "eu-1")
	if !ok || !tomb.Deleted || tomb.Version != 2 || was.Email != s.Email {
		t.Fatalf("Remove = %+v, %+v, %v", tomb, was, ok)
	}
	full, _ := a.t.MarshalBinary()
	if err := b.t.Merge("eu-1", full); err != nil {
		t.Fatal(err)
	}
	if len(b.t.Live()) != 0 {
		t.Fatal("the removal did not reach b")
	}
	// An older version arriving late changes nothing.
	if err := b.t.Merge("eu-1", a.sent[0]); err != nil || len(b.t.Live()) != 0 {
		t.Fatalf("a stale version brought the subscriber back: %v", err)
	}
	// Subscribing again on b makes version 3, which a takes.
	b.now = b.now.Add(2 * time.Minute)
	s3, _, err := b.t.Add(Subscriber{ID: s.ID, Email: s.Email}, "us-1")
	if err != nil || s3.Version != 3 {
		t.Fatalf("re-subscribe = %+v, %v", s3, err)
	}
	if err := a.t.Merge("us-1", b.sent[len(b.sent)-1]); err != nil || len(a.t.Live()) != 1 {
		t.Fatalf("a did not take the new subscription: %v", err)
	}
	// Tombstones expire.
	a.t.Remove(s.ID, "eu-1")
	a.t.Expire(a.now.Add(TombstoneTTL + time.Hour))
	if len(a.t.Entries()) != 0 {
		t.Errorf("tombstone kept past its TTL: %+v", a.t.Entries())
	}
}

// Merge refuses what the write side would: bad addresses, both an
// address and a URL, a removal with fields, an id not of its address,
// versions made after they were sent, oversized values.
func TestSubscribersMergeValidates(t *testing.T) {
	ok := Subscriber{ID: SubscriberID("a@b.example"), Version: 1, Email: "a@b.example", Created: t0, Updated: t0}
	hook := Subscriber{ID: "0123456789abcdef", Version: 1, URL: "https://hooks.example/x", Secret: "s", Created: t0, Updated: t0}
	bad := []Subscriber{
		{ID: ok.ID, Version: 1, Email: "not an address", Created: t0, Updated: t0},
		{ID: ok.ID, Version: 1, Email: "Ann <a@b.example>", Created: t0, Updated: t0},
		{ID: "0123456789abcdef", Version: 1, Email: "a@b.example", Created: t0, Updated: t0},
		{ID: ok.ID, Version: 1, Email: "a@b.example", URL: "https://x.example", Created: t0, Updated: t0},
		{ID: ok.ID, Version: 2, Deleted: true, Email: "a@b.example", Created: t0, Updated: t0},
		{ID: "0123456789abcdef", Version: 1, URL: "ftp://x.example/", Created: t0, Updated: t0},
		{ID: "0123456789abcdef", Version: 1, URL: "https://u:p@x.example/", Created: t0, Updated: t0},
		{ID: "0123456789abcdef", Version: 1, URL: "https://x.example/" + strings.Repeat("a", MaxSubscriberURL), Created: t0, Updated: t0},
		{ID: "0123456789abcdef", Version: 1, URL: "https://x.example/", Secret: strings.Repeat("s", MaxSubscriberSecret+1), Created: t0, Updated: t0},
		{ID: "XYZ", Version: 1, URL: "https://x.example/", Created: t0, Updated: t0},
		{ID: ok.ID, Version: 0, Email: "a@b.example", Created: t0, Updated: t0},
		{ID: ok.ID, Version: 1, Email: "a@b.example", Created: t0, Updated: t0.Add(-time.Second)},
		{ID: ok.ID, Version: 1, Email: "a@b.example", Created: t0, Updated: t0.Add(time.Hour), Sent: t0},
	}
	for i, s := range bad {
		r := newSubRig()
		b, _ := encodeEntries([]Subscriber{s})
		if err := r.t.Merge("x", b); err == nil || len(r.t.Entries()) != 0 {
			t.Errorf("%d: %+v taken (err %v)", i, s, err)
		}
	}
	r := newSubRig()
	b, _ := encodeEntries([]Subscriber{ok, hook})
	if err := r.t.Merge("x", b); err != nil || len(r.t.Live()) != 2 {
		t.Fatalf("valid subscribers refused: %v", err)
	}
}

// The table keeps MaxSubscribers live subscribers; Add refuses more.
func TestSubscribersBounded(t *testing.T) {
	r := newSubRig()
	var many []Subscriber
	for i := range MaxSubscribers + 10 {
		e := "u" + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + "@n" + itoa(i) + ".example"
		many = append(many, Subscriber{ID: SubscriberID(e), Version: 1, Email: e, Created: t0.Add(time.Duration(i) * time.Millisecond),
			Updated: t0.Add(time.Duration(i) * time.Millisecond)})
	}
	b, _ := encodeEntries(many)
	r.now = t0.Add(time.Hour)
	if err := r.t.Merge("x", b); err != nil {
		t.Fatal(err)
	}
	if n := len(r.t.Live()); n != MaxSubscribers {
		t.Fatalf("%d live, want %d", n, MaxSubscribers)
	}
	if _, _, err := r.t.Add(Subscriber{ID: SubscriberID("new@x.example"), Email: "new@x.example"}, "eu-1"); err != ErrSubscribersFull {
		t.Fatalf("Add past the bound: %v", err)
	}
}

func FuzzSubscribersMerge(f *testing.F) {
	a := newSubRig()
	_, _, _ = a.t.Add(Subscriber{ID: SubscriberID("a@b.example"), Email: "a@b.example"}, "eu-1")
	_, _, _ = a.t.Add(Subscriber{ID: "0123456789abcdef", URL: "https://hooks.example/x", Secret: "s3cret"}, "eu-1")
	a.t.Remove("0123456789abcdef", "eu-1")
	full, _ := a.t.MarshalBinary()
	f.Add(full)
	for _, b := range a.sent {
		f.Add(b)
	}
	f.Add([]byte{fmtJSON, '[', '{', '}', ']'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newSubRig()
		r.now = t0.Add(time.Hour)
		_ = r.t.Merge("eu-1", b)
		for _, s := range r.t.Entries() {
			if err := s.Validate(); err != nil {
				t.Fatalf("stored an invalid subscriber %+v: %v", s, err)
			}
		}
		if n := len(r.t.Live()); n > MaxSubscribers {
			t.Fatalf("%d live subscribers", n)
		}
	})
}
