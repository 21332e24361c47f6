package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/notifier"
	"github.com/vantage-dev/vantage/paging"
	"github.com/vantage-dev/vantage/store"
	"github.com/vantage-dev/vantage/subscribe"
	"github.com/vantage-dev/vantage/verdict"
)

// The status page's subscribers (statuspage.subscriptions). The node
// takes subscriptions through the page (the subscribe.Service behind
// statuspage.Subscriptions), stores them and shares them through the
// mesh's Subscribers table, as it does maintenance windows; versions
// learned from peers are stored by one goroutine, off the gossip path.
// Every node feeds every incident event to its subscribe.Dispatcher: the
// verdict's changes (apply) and operators' writes, its own and its
// peers' (writes.go); the designated sender queues each event for each
// subscriber once, in an outbox of its own (the subscriptions outbox,
// beside the notification outbox), whose sent log is the mesh's
// subscribers' sent log.

// SubscriberProvider is the subscriptions outbox's one provider.
const SubscriberProvider = "subscribers"

// subsState is the node's side of the subscriptions; svc is nil while
// they are off.
type subsState struct {
	svc    *subscribe.Service
	disp   *subscribe.Dispatcher
	outbox *notifier.Outbox

	qmu  sync.Mutex
	q    []mesh.Subscriber // learned from peers, to store
	wake chan struct{}
	// dirty: a write to the store failed; the table is stored again.
	dirty atomic.Bool
}

// subsOutboxKeep is how long the subscriptions outbox keeps delivered
// and failed messages.
const subsOutboxKeep = 7 * 24 * time.Hour

// maxQueuedSubscribers bounds the queue; what is dropped is stored again
// from the table (dirty).
const maxQueuedSubscribers = 4096

// subsOutboxPath is the subscriptions outbox's file, beside the
// notification outbox.
func subsOutboxPath(outbox string) string {
	ext := filepath.Ext(outbox)
	return strings.TrimSuffix(outbox, ext) + "-subscribers" + ext
}

// initSubscriptions reads the stored subscribers into the table, opens
// the subscriptions outbox and gives the page the service; New calls it
// once the page exists. Without statuspage.subscriptions.enabled it does
// nothing (the table still takes peers' versions: a node whose config
// enables them later has them).
func (n *Node) initSubscriptions(ctx context.Context) error {
	x := &n.subs
	x.wake = make(chan struct{}, 1)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stored, err := n.store.Subscribers(ctx)
	if err != nil {
		return fmt.Errorf("load subscribers: %w", err)
	}
	ss := make([]mesh.Subscriber, 0, len(stored))
	for _, s := range stored {
		ss = append(ss, subscribe.MeshSubscriber(s))
	}
	n.mesh.Subs.Seed(ss)
	n.mesh.Subs.SetOnChange(n.subsLearned)
	cfg := n.cfg.Load()
	sc := cfg.StatusPage.Subscriptions
	if !sc.Enabled {
		n.goRun(n.runSubscriptions)
		return nil
	}
	var mailer = cfg.NotifierByName(sc.Email)
	if sc.Email == "" {
		mailer = nil
	}
	prov, err := notifier.NewSubscriberProvider(SubscriberProvider, mailer, notifier.Options{Logger: n.log})
	if err != nil {
		return err
	}
	ob, err := notifier.OpenOutbox(subsOutboxPath(n.o.OutboxPath), []notifier.Provider{prov}, notifier.OutboxOptions{
		Logger: n.log, Log: subscribe.Log{Sent: n.mesh.SubSent, Logger: n.log}, Gate: paging.Gate{Checks: n.ev, Now: n.now}, Self: n.o.Name,
	})
	if err != nil {
		return fmt.Errorf("open subscriptions outbox: %w", err)
	}
	x.outbox = ob
	var gossipKey []byte
	if n.o.Gossip != nil {
		gossipKey = n.o.Gossip.Key
	}
	key := subscribe.Secret(sc.Secret, gossipKey, apiToken(n.o))
	if mailer != nil && key == nil {
		n.log.Warn("subscriptions by email need a key to sign their links: set statuspage.subscriptions.secret (or a gossip key, or an API token); the form is off")
	}
	x.svc = subscribe.NewService(subscribe.ServiceOptions{Self: n.o.Name, Now: n.now, Signer: subscribe.Signer{Key: key},
		Settings: n.subsSettings, Table: n.mesh.Subs, Store: n.store, Outbox: ob, Provider: SubscriberProvider,
		Mail: mailer != nil, Logger: n.log, OnStoreError: func() { x.dirty.Store(true) }})
	x.disp = subscribe.NewDispatcher(subscribe.DispatchOptions{Self: n.o.Name, Now: n.now, Sent: n.mesh.SubSent, Claims: n.mesh.SubClaims,
		Subscribers: n.mesh.Subs.Live, Outbox: ob, Provider: SubscriberProvider, Compose: x.svc.Compose, Logger: n.log,
		Sender: func() (bool, func(string) bool) {
			v := n.ev.View()
			return v.Sender == n.o.Name, v.IsAlive
		}})
	n.http.SetSubscriptions(x.svc)
	n.log.Info("subscriptions enabled", "email", sc.Email, "subscribers", len(n.mesh.Subs.Live()))
	n.goRun(n.runSubscriptions) // from now on: Close stops it, and it closes the outbox
	return nil
}

// subsSettings are what subscribers' messages say, from the running
// config.
func (n *Node) subsSettings() subscribe.Settings {
	cfg := n.cfg.Load()
	sp := cfg.StatusPage
	site := sp.Title
	if site == "" {
		site = "Status"
	}
	return subscribe.Settings{Site: site, BaseURL: strings.TrimRight(sp.Subscriptions.URL, "/"), From: sp.Subscriptions.From,
		Locale: sp.Locale, Location: sp.Location(), ConfirmWithin: sp.Subscriptions.ConfirmWithin}
}

// subsLearned takes versions learned from peers (on the cluster's
// delivery goroutine): it never blocks.
func (n *Node) subsLearned(ss []mesh.Subscriber) {
	x := &n.subs
	x.qmu.Lock()
	if len(x.q)+len(ss) <= maxQueuedSubscribers {
		x.q = append(x.q, ss...)
	} else {
		x.dirty.Store(true)
	}
	x.qmu.Unlock()
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// runSubscriptions stores what peers shared and prunes old tombstones
// until ctx ends; with subscriptions on, it runs the dispatcher, and
// closes the subscriptions outbox once it stopped.
func (n *Node) runSubscriptions(ctx context.Context) {
	x := &n.subs
	if x.disp != nil {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			x.disp.Run(ctx)
		}()
		defer func() {
			wg.Wait()
			if err := x.outbox.Close(); err != nil {
				n.log.Warn("close subscriptions outbox", "err", err)
			}
		}()
	}
	retry := time.NewTicker(time.Minute)
	defer retry.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-x.wake:
			x.qmu.Lock()
			batch := x.q
			x.q = nil
			x.qmu.Unlock()
			for _, s := range batch {
				n.log.Info("subscriber received", "subscriber", s.ID, "version", s.Version, "removed", s.Deleted, "author", s.Author)
			}
			n.storeSubscribers(ctx, batch)
		case <-retry.C:
			if x.dirty.Load() {
				n.storeSubscribers(ctx, nil)
			}
		case <-prune.C:
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if _, err := n.store.PruneSubscribers(pctx, n.now().Add(-mesh.TombstoneTTL)); err != nil &&
				!errors.Is(err, store.ErrClosed) && pctx.Err() == nil {
				n.log.Warn("prune subscribers", "err", err)
			}
			// Delivered and failed messages of events no sender queues any
			// more (events live a day, the subscribers' sent log 3 days).
			if x.outbox != nil {
				if _, err := x.outbox.Prune(pctx, n.now().Add(-subsOutboxKeep)); err != nil && pctx.Err() == nil {
					n.log.Warn("prune subscriptions outbox", "err", err)
				}
			}
			cancel()
		}
	}
}

// storeSubscribers stores versions; a failure leaves the table to be
// stored again later.
func (n *Node) storeSubscribers(ctx context.Context, ss []mesh.Subscriber) {
	x := &n.subs
	if x.dirty.Swap(false) {
		ss = n.mesh.Subs.Entries()
	}
	if len(ss) == 0 {
		return
	}
	out := make([]store.Subscriber, len(ss))
	for i, s := range ss {
		out[i] = subscribe.StoreSubscriber(s)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := n.store.PutSubscribers(ctx, out...); err != nil {
		x.dirty.Store(true)
		if !errors.Is(err, store.ErrClosed) && ctx.Err() == nil {
			n.log.Error("store subscribers; retried in a minute", "err", err)
		}
	}
}

// subsChange feeds a verdict change to the dispatcher: an incident
// opened or resolved, or its id replaced by the sender's.
func (n *Node) subsChange(ch verdict.Change) {
	d := n.subs.disp
	if d == nil {
		return
	}
	if ch.Replaced != "" {
		d.Rename(ch.Replaced, ch.IncidentID)
	}
	if !ch.Opened && !ch.Resolved {
		return
	}
	c := ch.View.Config
	name := c.Name
	if c.DisplayName != "" {
		name = c.DisplayName
	}
	e := subscribe.Event{Incident: ch.IncidentID, Check: c.Name, Title: name + " is down", At: ch.Start}
	if ch.Opened {
		e.Action = notifier.ActionTrigger
		regions := make(map[string]notifier.RegionVote, len(ch.View.Regions))
		for r, rv := range ch.View.Regions {
			regions[r] = notifier.RegionVote{Vote: string(rv.Vote), Error: rv.Code, LatencyMS: rv.LatencyMS}
		}
		e.Body = notifier.Headline(notifier.Event{Action: notifier.ActionTrigger, Check: c.Name, DisplayName: c.DisplayName, Regions: regions})
	} else {
		e.Action, e.At = notifier.ActionResolve, ch.At
	}
	d.Add(e)
}

// subsWrite feeds an operator's write to the dispatcher: a manual
// incident's first update is its start, its resolved update its
// resolution; every other update is an update.
func (n *Node) subsWrite(inc store.Incident, u store.IncidentUpdate) {
	d := n.subs.disp
	if d == nil {
		return
	}
	e := subscribe.Event{Incident: inc.ID, Check: inc.Check, Title: inc.Title, Status: u.Status, Body: u.Body, Manual: inc.Manual, At: u.CreatedAt}
	switch {
	case inc.Manual && u.CreatedAt.Equal(inc.StartedAt):
		e.Action = notifier.ActionTrigger
	case inc.Manual && u.Status == store.StatusResolved:
		e.Action = notifier.ActionResolve
	default:
		e.Action, e.Seq = notifier.ActionUpdate, subscribe.UpdateSeq(u.ID)
	}
	d.Add(e)
}

// SubscriptionsOutbox is the subscriptions outbox (tests); nil while
// subscriptions are off.
func (n *Node) SubscriptionsOutbox() *notifier.Outbox { return n.subs.outbox }
