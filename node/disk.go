package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// diskCheckEvery is how often the node tries to write its data directory.
const diskCheckEvery = 2 * time.Second

// watchDisk marks the node degraded while it cannot write its data
// directory (disk full, read-only, gone): every diskCheckEvery it writes,
// syncs and removes a small file there, and it looks for failed store
// transactions since the last look. A degraded node keeps probing and
// voting, answers 503 on /readyz, shows node.degraded in /api/v1/status and
// does not act as the designated sender, so the next node pages.
func (n *Node) watchDisk(ctx context.Context) {
	dir := filepath.Dir(n.o.DBPath)
	t := time.NewTicker(diskCheckEvery)
	defer t.Stop()
	lastErrors := n.store.Stats().BatchErrors
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		reason := ""
		if err := writeProbe(dir); err != nil {
			reason = err.Error()
		}
		if e := n.store.Stats().BatchErrors; e > lastErrors {
			if reason == "" {
				reason = fmt.Sprintf("%d store transactions failed", e-lastErrors)
			}
			lastErrors = e
		}
		n.setDegraded(reason != "", reason)
	}
}

// writeProbe writes, syncs and removes a small file in dir.
func writeProbe(dir string) error {
	p := filepath.Join(dir, ".vantage-write-check")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("data directory %s cannot be written: %w", dir, err)
	}
	_, werr := f.Write(make([]byte, 4096))
	serr := f.Sync()
	cerr := f.Close()
	os.Remove(p)
	for _, err := range []error{werr, serr, cerr} {
		if err != nil {
			return fmt.Errorf("data directory %s cannot be written: %w", dir, err)
		}
	}
	return nil
}

// setDegraded records this node's degraded state, shares it and steps
// aside as sender (or back).
func (n *Node) setDegraded(degraded bool, reason string) {
	own := n.mesh.Health.Own()
	if own.Degraded == degraded && (!degraded || own.DegradedReason == reason) {
		return
	}
	if degraded {
		n.log.Error("node degraded: it keeps probing and voting but does not page", "reason", reason)
	} else {
		n.log.Info("data directory writable again: node no longer degraded")
	}
	if err := n.mesh.Health.PutDegraded(degraded, reason); err != nil {
		n.log.Warn("gossip health", "err", err)
	}
	n.healthChanged()
}

// healthChanged takes a change of any node's health: who may send, who
// may vote.
func (n *Node) healthChanged() {
	n.ev.SetDegraded(n.mesh.Health.Degraded())
	n.status.touch(true)
	n.queueEvalAll()
}
