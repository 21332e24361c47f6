package mesh

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/cluster"
)

// A probe that finishes while its node stops shares its vote into a
// cluster that has shut down: the table keeps the vote and reports no
// error (the node is leaving), where the cluster itself says ErrShutdown.
func TestPutAfterClusterShutdown(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	now := func() time.Time { return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC) }
	c, err := cluster.Create(cluster.Config{Name: "a", Region: "eu", Bind: "127.0.0.1:0",
		Profile: cluster.ProfileLocal, Insecure: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	votes := NewVotes("a", "eu", now, func(string) {}, log)
	votes.Retain(map[string]bool{"api": true})
	if err := Register(c, map[string]sharer{KeyVotes: votes}); err != nil {
		t.Fatal(err)
	}
	probe, err := c.AddState("probe", votes)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if err := votes.Put(Vote{Check: "api", Vote: "up", At: now()}); err != nil {
		t.Fatalf("put while running: %v", err)
	}
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := probe.Broadcast("x", []byte{1}); !errors.Is(err, cluster.ErrShutdown) {
		t.Fatalf("cluster broadcast after shutdown: %v, want ErrShutdown", err)
	}
	if err := votes.Put(Vote{Check: "api", Vote: "down", At: now()}); err != nil {
		t.Fatalf("put after shutdown: %v, want nil", err)
	}
	if v, ok := votes.Get("api", "a"); !ok || v.Vote != "down" {
		t.Fatalf("vote kept locally: %+v %v", v, ok)
	}
}
