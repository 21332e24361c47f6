package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/statuspage"
	"github.com/vantage-dev/vantage/store"
)

// Runtime maintenance windows (POST /api/v1/maintenance): the node takes
// them from the status page's API (it is the page's
// statuspage.MaintenanceScheduler), checks them against its config,
// stores them and shares them through the mesh's Maintenance table, as it
// does operators' incident updates. Every node uses every window: the
// verdict asks the table (verdict.Options.Maintenance) alongside the
// config's windows, so a check inside one is in maintenance and pages
// nobody; the page lists them with the config's (pageOf, through
// SetPage), and so do the Statuspage scheduled-maintenance documents.
// Versions learned from peers are queued and stored by one goroutine, off
// the cluster's delivery; the windows are read back from the store at
// start, so they survive a restart.

var _ statuspage.MaintenanceScheduler = (*Node)(nil)

// maintState is the node's side of the runtime windows.
type maintState struct {
	pageMu sync.Mutex // one page feed at a time, with the newest config
	apiMu  sync.Mutex // one API write at a time: bound check, store, share

	qmu  sync.Mutex
	q    []mesh.Window // learned from peers, to store
	wake chan struct{}
	// dirty: a write to the store failed; the table is stored again.
	dirty atomic.Bool
}

// maxQueuedWindows bounds the queue; what is dropped is stored again from
// the table (dirty).
const maxQueuedWindows = 4096

// initMaintenance reads the stored windows into the table and takes the
// table's news from peers; New calls it before the verdict and the page
// are built.
func (n *Node) initMaintenance(ctx context.Context) error {
	n.maint.wake = make(chan struct{}, 1)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stored, err := n.store.MaintenanceWindows(ctx)
	if err != nil {
		return fmt.Errorf("load maintenance windows: %w", err)
	}
	ws := make([]mesh.Window, 0, len(stored))
	for _, s := range stored {
		ws = append(ws, mesh.WindowOf(s))
	}
	n.mesh.Maint.Seed(ws)
	n.mesh.Maint.SetOnChange(n.maintLearned)
	if k := len(n.mesh.Maint.Windows()); k > 0 {
		n.log.Info("maintenance windows restored", "windows", k)
	}
	return nil
}

// maintLearned takes versions learned from peers (on the cluster's
// delivery goroutine): it never blocks.
func (n *Node) maintLearned(ws []mesh.Window) {
	n.maint.qmu.Lock()
	if len(n.maint.q)+len(ws) <= maxQueuedWindows {
		n.maint.q = append(n.maint.q, ws...)
	} else {
		n.maint.dirty.Store(true)
	}
	n.maint.qmu.Unlock()
	n.queueEvalAll() // the verdict reads the table itself: at once
	select {
	case n.maint.wake <- struct{}{}:
	default:
	}
}

// runMaintenance stores what peers shared, shows it, and expires and
// prunes windows, until ctx ends.
func (n *Node) runMaintenance(ctx context.Context) {
	expire := time.NewTicker(time.Minute)
	defer expire.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	n.pruneMaintenance(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.maint.wake:
			n.maint.qmu.Lock()
			batch := n.maint.q
			n.maint.q = nil
			n.maint.qmu.Unlock()
			for _, w := range batch {
				n.log.Info("maintenance window received", "id", w.ID, "version", w.Version, "cancelled", w.Deleted, "author", w.Author)
			}
			n.storeWindows(ctx, batch)
			n.refreshPage()
		case <-expire.C:
			if n.mesh.Maint.Expire(n.now()) {
				n.refreshPage()
				n.queueEvalAll()
			}
			if n.maint.dirty.Load() {
				n.storeWindows(ctx, n.mesh.Maint.Entries())
			}
		case <-prune.C:
			n.pruneMaintenance(ctx)
		}
	}
}

// storeWindows stores versions; a failure leaves the table to be stored
// again later.
func (n *Node) storeWindows(ctx context.Context, ws []mesh.Window) {
	if len(ws) == 0 && !n.maint.dirty.Load() {
		return
	}
	if n.maint.dirty.Swap(false) {
		ws = n.mesh.Maint.Entries()
	}
	sws := make([]store.MaintenanceWindow, len(ws))
	for i, w := range ws {
		sws[i] = w.StoreWindow()
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := n.store.PutMaintenance(ctx, sws...); err != nil {
		n.maint.dirty.Store(true)
		if !errors.Is(err, store.ErrClosed) && ctx.Err() == nil {
			n.log.Error("store maintenance windows; retried in a minute", "err", err)
		}
	}
}

func (n *Node) pruneMaintenance(ctx context.Context) {
	now := n.now()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := n.store.PruneMaintenance(ctx, now.Add(-mesh.TombstoneTTL), now.Add(-mesh.KeepEnded)); err != nil &&
		!errors.Is(err, store.ErrClosed) && ctx.Err() == nil {
		n.log.Warn("prune maintenance windows", "err", err)
	}
}

// pageOf is the page of cfg with the runtime windows: one-off ones with
// the config's one-off windows, recurring ones with its recurring ones.
func (n *Node) pageOf(cfg *config.Config) statuspage.Page {
	p := statuspage.PageFromConfig(cfg)
	for _, w := range n.mesh.Maint.Windows() {
		m := w.Maintenance()
		if m.Recurring() {
			p.Site.Recurring = append(p.Site.Recurring, m)
			continue
		}
		p.Maintenance = append(p.Maintenance, statuspage.MaintenanceWindow{Title: m.Title, Checks: m.Checks, Start: m.Start, End: m.End})
	}
	return p
}

// refreshPage gives the page the running config's presentation and every
// maintenance window (after a reload, and when runtime windows change).
func (n *Node) refreshPage() {
	n.maint.pageMu.Lock()
	defer n.maint.pageMu.Unlock()
	if n.http != nil {
		n.http.SetPage(n.pageOf(n.cfg.Load()))
	}
}

// maintChanged shows a change made here: on the page, and in the verdict.
func (n *Node) maintChanged() {
	n.refreshPage()
	n.queueEvalAll()
}

// ScheduleMaintenance implements statuspage.MaintenanceScheduler: check
// the window against the config, store it, share it.
func (n *Node) ScheduleMaintenance(ctx context.Context, m config.Maintenance) (statuspage.ScheduledWindow, error) {
	cfg := n.cfg.Load()
	for _, c := range m.Checks {
		if cfg.CheckByName(c) == nil {
			return statuspage.ScheduledWindow{}, fmt.Errorf("%w: unknown check %q", statuspage.ErrInvalidWindow, c)
		}
	}
	now := n.now().UTC().Truncate(time.Millisecond)
	w := mesh.Window{ID: mesh.NewWindowID(), Version: 1, Title: m.Title, Checks: slices.Clone(m.Checks), Author: n.o.Name,
		Created: now, Updated: now}
	if m.Recurring() {
		w.Every, w.DurationMS, w.Timezone = m.Every, m.Duration.Milliseconds(), m.Timezone
	} else {
		w.Start, w.End = m.Start.UTC().Truncate(time.Millisecond), m.End.UTC().Truncate(time.Millisecond)
	}
	if err := w.Validate(); err != nil {
		return statuspage.ScheduledWindow{}, fmt.Errorf("%w: %v", statuspage.ErrInvalidWindow, err)
	}
	n.maint.apiMu.Lock()
	defer n.maint.apiMu.Unlock()
	full := fmt.Errorf("%w: at most %d maintenance windows can be scheduled through the API; cancel one first",
		store.ErrConflict, mesh.MaxWindows)
	if n.mesh.Maint.Full() {
		return statuspage.ScheduledWindow{}, full
	}
	if _, err := n.store.PutMaintenance(ctx, w.StoreWindow()); err != nil {
		return statuspage.ScheduledWindow{}, err
	}
	if err := n.mesh.Maint.Schedule(w); err != nil {
		// Peers' windows filled the table meanwhile: the stored window is
		// cancelled, so that it does not come back at the next start.
		tomb := mesh.Window{ID: w.ID, Version: 2, Deleted: true, Author: n.o.Name, Created: now, Updated: now}
		if _, serr := n.store.PutMaintenance(ctx, tomb.StoreWindow()); serr != nil {
			n.log.Error("cancel a stored maintenance window the table refused", "id", w.ID, "err", serr)
		}
		if errors.Is(err, mesh.ErrWindowsFull) {
			return statuspage.ScheduledWindow{}, full
		}
		return statuspage.ScheduledWindow{}, err
	}
	n.log.Info("maintenance window scheduled", "id", w.ID, "checks", w.Checks, "title", w.Title, "start", w.Start, "end", w.End,
		"every", w.Every, "duration", w.Duration(), "timezone", w.Timezone)
	n.maintChanged()
	return scheduledOf(w), nil
}

// CancelMaintenance implements statuspage.MaintenanceScheduler: a
// tombstone, stored and shared.
func (n *Node) CancelMaintenance(ctx context.Context, id string) (statuspage.ScheduledWindow, error) {
	n.maint.apiMu.Lock()
	defer n.maint.apiMu.Unlock()
	tomb, was, err := n.mesh.Maint.Cancel(id, n.o.Name)
	if errors.Is(err, mesh.ErrNoWindow) {
		return statuspage.ScheduledWindow{}, fmt.Errorf("%w: maintenance window %s", store.ErrNotFound, id)
	}
	if err != nil {
		return statuspage.ScheduledWindow{}, err
	}
	if _, err := n.store.PutMaintenance(ctx, tomb.StoreWindow()); err != nil {
		// Cancelled here and shared already; stored again in a minute.
		n.maint.dirty.Store(true)
		n.log.Error("store a maintenance window's cancellation; retried in a minute", "id", id, "err", err)
	}
	n.log.Info("maintenance window cancelled", "id", id, "checks", was.Checks, "title", was.Title)
	n.maintChanged()
	return scheduledOf(was), nil
}

// MaintenanceWindows implements statuspage.MaintenanceScheduler.
func (n *Node) MaintenanceWindows() ([]config.Maintenance, []statuspage.ScheduledWindow) {
	cfg := slices.Clone(n.cfg.Load().Maintenance)
	ws := n.mesh.Maint.Windows()
	out := make([]statuspage.ScheduledWindow, len(ws))
	for i, w := range ws {
		out[i] = scheduledOf(w)
	}
	return cfg, out
}

func scheduledOf(w mesh.Window) statuspage.ScheduledWindow {
	return statuspage.ScheduledWindow{ID: w.ID, Maintenance: w.Maintenance(), CreatedAt: w.Created, Author: w.Author}
}

// tokenOnReload is the API token after a reload to cfg. A token the node
// was given at start that differs from its start config's
// (VANTAGE_API_TOKEN, resolved by `vantage run`) keeps winning over the
// file; otherwise the token is the new config's statuspage.api_token.
func (n *Node) tokenOnReload(cfg *config.Config) string {
	if n.o.APIToken != "" && n.o.APIToken != n.o.Config.StatusPage.APIToken {
		return n.o.APIToken
	}
	return cfg.StatusPage.APIToken
}
