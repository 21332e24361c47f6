package store

import (
	"path/filepath"
	"testing"
	"time"
)

// Subscribers persist across a reopen; a greater version replaces a
// smaller one, never the other way; tombstones are pruned.
func TestSubscribersPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vantage.db")
	s := openTest(t, path, Options{})
	ctx := ctxT(t)
	if subs, err := s.Subscribers(ctx); err != nil || len(subs) != 0 {
		t.Fatalf("fresh database: %v %v", subs, err)
	}
	ann := Subscriber{ID: "00000000000000a1", Version: 1, Email: "ann@example.com", Author: "eu-1", CreatedAt: t0, UpdatedAt: t0}
	hook := Subscriber{ID: "00000000000000b2", Version: 1, URL: "https://hooks.example.com/x", Secret: "s", Author: "eu-1", CreatedAt: t0, UpdatedAt: t0}
	if changed, err := s.PutSubscribers(ctx, ann, hook); err != nil || len(changed) != 2 {
		t.Fatalf("put: %v %v", changed, err)
	}
	tomb := Subscriber{ID: ann.ID, Version: 2, Deleted: true, Author: "us-1", CreatedAt: t0, UpdatedAt: t0.Add(time.Minute)}
	if changed, err := s.PutSubscribers(ctx, tomb); err != nil || len(changed) != 1 {
		t.Fatalf("tombstone: %v %v", changed, err)
	}
	if changed, err := s.PutSubscribers(ctx, ann); err != nil || len(changed) != 0 {
		t.Fatalf("older version after the tombstone: %v %v", changed, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path, Options{})
	subs, err := s.Subscribers(ctx)
	if err != nil || len(subs) != 2 || !subs[0].Deleted && !subs[1].Deleted {
		t.Fatalf("after reopen: %+v %v", subs, err)
	}
	for _, sub := range subs {
		if sub.ID == hook.ID && (sub.URL != hook.URL || sub.Secret != "s" || !sub.CreatedAt.Equal(t0)) {
			t.Errorf("webhook subscriber read back as %+v", sub)
		}
	}
	if n, err := s.PruneSubscribers(ctx, t0.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("prune: %d %v", n, err)
	}
	if subs, _ := s.Subscribers(ctx); len(subs) != 1 || subs[0].ID != hook.ID {
		t.Fatalf("after prune: %+v", subs)
	}
}
