package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/statuspage"
	"github.com/vantage-dev/vantage/store"
)

// Operators' incident updates and manual incidents: the node takes them
// from the status page's write API (it is the page's statuspage.Writer),
// stores them and shares them through the mesh's Updates table. Writes
// that peers share arrive in a queue and are stored by one goroutine, off
// the cluster's delivery: a slow disk delays them, nothing else.

var _ statuspage.Writer = (*Node)(nil)

// PostUpdate implements statuspage.Writer: store, then share.
func (n *Node) PostUpdate(ctx context.Context, u store.IncidentUpdate) (store.Incident, store.IncidentUpdate, error) {
	u.Author = n.o.Name
	if u.CreatedAt.IsZero() {
		u.CreatedAt = n.now()
	}
	inc, u, err := n.store.PostIncidentUpdate(ctx, u)
	if errors.Is(err, store.ErrNotFound) && n.ensureIncident(ctx, u.IncidentID) {
		inc, u, err = n.store.PostIncidentUpdate(ctx, u)
	}
	if err != nil {
		return inc, u, err
	}
	n.share(inc, u)
	n.subsWrite(inc, u) // subscriptions.go
	return inc, u, nil
}

// ensureIncident stores the open incident of a check under id when the
// verdict holds it but the store does not yet (its change is still on the
// way there: an operator was quicker), and reports whether it did.
func (n *Node) ensureIncident(ctx context.Context, id string) bool {
	for _, name := range n.ev.Names() {
		cv, ok := n.ev.Check(name)
		if !ok || cv.IncidentID != id {
			continue
		}
		inc := store.Incident{ID: id, Check: name, Title: cv.Config.DisplayName + " is down", State: "open",
			StartedAt: cv.IncidentStart, Details: statuspage.IncidentDetailsOf(n.checkStatus(cv).Regions)}
		_, err := n.store.OpenIncident(ctx, inc)
		return err == nil
	}
	return false
}

// OpenIncident implements statuspage.Writer: a manual incident.
func (n *Node) OpenIncident(ctx context.Context, inc store.Incident, first store.IncidentUpdate) (store.Incident, store.IncidentUpdate, error) {
	inc.Author, first.Author = n.o.Name, n.o.Name
	if inc.StartedAt.IsZero() {
		inc.StartedAt = n.now()
	}
	inc, first, err := n.store.OpenManualIncident(ctx, inc, first)
	if err != nil {
		return inc, first, err
	}
	n.log.Info("manual incident opened", "incident_id", inc.ID, "title", inc.Title, "impact", inc.Impact)
	n.share(inc, first)
	n.subsWrite(inc, first) // subscriptions.go
	return inc, first, nil
}

func (n *Node) share(inc store.Incident, u store.IncidentUpdate) {
	if err := n.mesh.Updates.Share(mesh.WriteOf(inc, u)); err != nil {
		n.log.Warn("gossip incident update; push-pull delivers it", "incident_id", u.IncidentID, "err", err)
	}
}

// reseedWrites loads the writes to share from the store: those of the
// last 7 days, at most 200.
func (n *Node) reseedWrites(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	incs, ups, err := n.store.RecentIncidentUpdates(ctx, n.now().Add(-7*24*time.Hour), 200)
	if err != nil {
		if errors.Is(err, store.ErrClosed) {
			return nil
		}
		return err
	}
	manual := map[string]store.Incident{}
	for _, i := range incs {
		manual[i.ID] = i
	}
	ws := make([]mesh.Write, 0, len(ups))
	for _, u := range ups {
		ws = append(ws, mesh.WriteOf(manual[u.IncidentID], u))
	}
	n.mesh.Updates.Seed(ws)
	return nil
}

// writeQueue holds writes learned from peers until they are stored.
type writeQueue struct {
	mu   sync.Mutex
	q    []mesh.Write
	wake chan struct{}
}

// maxQueuedWrites bounds the queue; a write dropped here is forgotten by
// the table too, so push-pull brings it again.
const maxQueuedWrites = 4096

func (w *writeQueue) init() { w.wake = make(chan struct{}, 1) }

// push queues a write; it never blocks.
func (w *writeQueue) push(m mesh.Write) {
	w.mu.Lock()
	if len(w.q) < maxQueuedWrites {
		w.q = append(w.q, m)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run stores queued writes until ctx ends.
func (w *writeQueue) run(n *Node) func(context.Context) {
	return func(ctx context.Context) {
		for {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			}
			w.mu.Lock()
			batch := w.q
			w.q = nil
			w.mu.Unlock()
			if len(batch) > 0 {
				n.storeWrites(ctx, batch)
			}
		}
	}
}

// storeWrites stores writes from peers and shows the new ones.
func (n *Node) storeWrites(ctx context.Context, ws []mesh.Write) {
	var incs []store.Incident
	ups := make([]store.IncidentUpdate, 0, len(ws))
	for _, w := range ws {
		if inc, ok := w.StoreIncident(); ok {
			incs = append(incs, inc)
		}
		ups = append(ups, w.StoreUpdate())
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	added, err := n.store.MergeIncidents(ctx, incs, ups)
	if err != nil {
		if !errors.Is(err, store.ErrClosed) {
			n.log.Error("store gossiped incident updates; push-pull brings them again", "err", err)
		}
		for _, w := range ws {
			n.mesh.Updates.Forget(w.Update.ID)
		}
		return
	}
	if len(incs) > 0 && len(added) == 0 {
		n.http.Refresh()
	}
	for _, u := range added {
		inc, err := n.store.Incident(ctx, u.IncidentID)
		if err != nil {
			// An update of an incident this node never saw (it was away
			// while a check's incident opened): kept, shown if it comes.
			n.log.Debug("incident update for an unknown incident", "incident_id", u.IncidentID, "update_id", u.ID)
			continue
		}
		n.log.Info("incident update received", "incident_id", u.IncidentID, "status", u.Status, "update_id", u.ID, "author", u.Author)
		n.http.PublishIncident(inc, u)
		n.subsWrite(inc, u) // subscriptions.go
	}
}
