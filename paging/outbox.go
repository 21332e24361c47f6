package paging

import (
	"log/slog"
	"time"

	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/notifier"
)

// OutboxLog is the mesh's sent log as the outbox's notifier.Log: the
// outbox skips what another node delivered and records its own
// deliveries, which the log gossips.
type OutboxLog struct {
	Sent   *mesh.SentLog
	Logger *slog.Logger
}

var _ notifier.Log = OutboxLog{}

// DeliveredBy implements notifier.Log.
func (l OutboxLog) DeliveredBy(incident, key, name string) (string, bool) {
	return l.Sent.DeliveredBy(incident, key, name)
}

// Delivered implements notifier.Log. Only an incident's own
// notifications name its check: the log's delivered triggers make an
// incident id final (mesh.SentLog.Paged), which a notice's id never is.
func (l OutboxLog) Delivered(e notifier.Event, name string) {
	s := mesh.Sent{Incident: e.IncidentID, Start: e.StartedAt, Action: e.Key(), Notifier: name}
	if !e.IsNotice() {
		s.Check = e.Check
	}
	if err := l.Sent.Record(s); err != nil && l.Logger != nil {
		l.Logger.Warn("gossip sent log", "incident_id", e.IncidentID, "notifier", name, "err", err)
	}
}

// Gate holds the outbox's deliveries while this node cannot see a
// majority of the regions (the other side of the partition, which can,
// pages instead), and for Takeover after it came to see one: a node back
// from a restart or a partition first learns the cluster's sent log, so
// that what a peer delivered meanwhile is skipped, not sent again.
type Gate struct {
	Checks Checks
	Now    func() time.Time
}

var _ notifier.Gate = Gate{}

// Hold implements notifier.Gate.
func (g Gate) Hold() (string, bool) {
	v := g.Checks.View()
	if !v.SeesMajority {
		return "this node cannot see a majority of the regions", true
	}
	if g.Now != nil && !v.MajoritySince.IsZero() && g.Now().Sub(v.MajoritySince) < Takeover {
		return "waiting for the cluster's sent log after joining", true
	}
	return "", false
}
