package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/quorum"
	"github.com/vantage-dev/vantage/statuspage"
	"github.com/vantage-dev/vantage/store"
	"github.com/vantage-dev/vantage/verdict"
)

// apply takes the verdict's changes, in order: the pager first, then the
// probe pace, the store, and only then the status read model and the
// page (whose re-render reads the store: it must see the change).
func (n *Node) apply(ch verdict.Change) {
	n.pager.Apply(ch)
	n.subsChange(ch) // the page's subscribers (subscriptions.go)
	n.pace(ch)
	n.record(ch)
	n.status.touch(true)
	n.publish(ch)
}

// record stores a change: the incident's id replaced, the state change,
// the incident opened or resolved.
func (n *Node) record(ch verdict.Change) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ch.Replaced != "" {
		if err := n.store.ReplaceIncident(ctx, ch.Replaced, ch.IncidentID, ch.Start); err != nil && !errors.Is(err, store.ErrNotFound) {
			n.log.Error("replace incident", "check", ch.Check, "err", err)
		}
	}
	if ch.From == ch.To {
		return
	}
	c := ch.View.Config
	detail := fmt.Sprintf("down: %s; up: %s; abstain: %s", list(ch.Tally.Down), list(ch.Tally.Up), list(ch.Tally.Abstained))
	n.log.Info("check state changed", "check", ch.Check, "from", ch.From, "to", ch.To, "incident_id", ch.IncidentID, "votes", detail)
	if err := n.store.RecordStateChange(ctx, store.StateChange{
		Check: ch.Check, Time: ch.At, From: string(ch.From), To: string(ch.To), IncidentID: ch.IncidentID, Detail: detail,
	}); err != nil {
		n.log.Error("record state change", "check", ch.Check, "err", err)
	}
	switch {
	case ch.Opened:
		n.metrics.incidents.WithLabelValues(ch.Check).Inc()
		// Details in the form the page words ("not reachable from 2 of 3
		// regions (…): HTTP 503"), with the error codes of the votes.
		// A check whose listed check (depends_on) is down opens
		// suppressed: the pager decided so in Apply.
		inc := store.Incident{ID: ch.IncidentID, Check: ch.Check, Title: c.DisplayName + " is down", State: "open",
			StartedAt: ch.Start, Details: statuspage.IncidentDetailsOf(n.checkStatus(ch.View).Regions),
			ParentIncidentID: n.pager.Parent(ch.IncidentID)}
		if _, err := n.store.OpenIncident(ctx, inc); err != nil {
			n.log.Error("open incident", "check", ch.Check, "incident_id", ch.IncidentID, "err", err)
		}
	case ch.Resolved:
		if _, err := n.store.ResolveIncident(ctx, ch.IncidentID, ch.At); err != nil {
			n.log.Error("resolve incident", "check", ch.Check, "incident_id", ch.IncidentID, "err", err)
		}
	}
}

// recordParent stores that a listed check's incident (parent) suppressed
// a check's incident: the pager's Suppressed, for a check whose parent went
// down after its incident opened (or whose parent's id changed). An
// incident not stored yet gives store.ErrNotFound: the pager tells it again.
func (n *Node) recordParent(check, incident, parent string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := n.store.SetIncidentParent(ctx, incident, parent)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		n.log.Error("record the incident that suppresses an incident", "check", check, "incident_id", incident,
			"parent_incident_id", parent, "err", err)
	}
	return err
}

// publish sends a check's new state to the page's live clients: one
// check's event, whatever the number of checks.
func (n *Node) publish(ch verdict.Change) {
	cs := n.checkStatus(ch.View)
	n.http.Publish(statuspage.Event{Type: "check", Name: ch.Check, State: cs.State, Since: cs.Since,
		IncidentID: cs.IncidentID, Regions: cs.Regions})
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}

// pace probes a down check at its down_interval, and at its interval again
// once it is no longer down.
func (n *Node) pace(ch verdict.Change) {
	c := ch.View.Config
	if ch.From == ch.To || c == nil || c.Type == config.TypePush {
		return
	}
	d := time.Duration(0) // back to the interval
	if ch.To == quorum.StateDown {
		d = c.DownInterval
	}
	if err := n.sched.SetInterval(ch.Check, d); err != nil {
		n.log.Warn("pace probes", "check", ch.Check, "err", err)
	}
}
