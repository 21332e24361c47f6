package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// A caller of exec that gives up before the writer reaches its function
// gets its context's error and the function never runs; one that gives up
// while the function runs waits for it, so the function never writes the
// caller's variables after exec returned (a data race seen under -race).
func TestExecGivenUp(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "v.db"), Options{})
	release := make(chan struct{})
	running := make(chan struct{})
	firstDone := make(chan error, 1)
	go func() {
		firstDone <- s.exec(context.Background(), func(*sql.Tx) error {
			close(running)
			<-release
			return nil
		})
	}()
	<-running

	// Queued behind the blocked one, given up: never runs.
	var ran atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() {
		queued <- s.exec(ctx, func(*sql.Tx) error { ran.Store(true); return nil })
	}()
	time.AfterFunc(50*time.Millisecond, cancel)
	select {
	case err := <-queued:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("queued exec given up: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("queued exec did not return when its context was cancelled")
	}
	close(release)
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ran.Load() {
		t.Fatal("the function of an exec given up before it ran was run")
	}

	// Given up while running: exec waits and returns the function's result.
	ctx2, cancel2 := context.WithCancel(context.Background())
	started, cancelled := make(chan struct{}), make(chan struct{})
	var n int
	done := make(chan error, 1)
	go func() {
		done <- s.exec(ctx2, func(*sql.Tx) error {
			close(started)
			<-cancelled // the caller's cancel lands while this runs
			n = 42
			return nil
		})
	}()
	<-started
	cancel2()
	close(cancelled)
	if err := <-done; err != nil {
		t.Fatalf("exec given up while running: %v, want the function's nil", err)
	}
	if n != 42 {
		t.Fatalf("n = %d after exec returned, want 42", n)
	}
}
