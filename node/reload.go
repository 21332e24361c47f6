package node

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/store"
)

// ReloadResult says what a reload changed.
type ReloadResult struct {
	Added, Removed, Changed []string
	// Ignored lists settings that differ but need a restart.
	Ignored []string
}

func (r ReloadResult) String() string {
	f := func(s []string) string {
		if len(s) == 0 {
			return "none"
		}
		return strings.Join(s, ",")
	}
	return fmt.Sprintf("added %s; removed %s; changed %s", f(r.Added), f(r.Removed), f(r.Changed))
}

// Reload applies a new configuration without a restart. Checks added,
// removed and changed take effect at once; a check that stays keeps its
// schedule phase (unless its interval changed), its votes, its state, its
// open incident and its history; a check whose probe changed (target,
// type, expectations, timing) restarts its streak, since old results say
// nothing about the new probe. A removed check's open incident is closed
// and, when its trigger went out, resolved by the designated sender.
// Regions, quorum, maintenance windows and the status page's presentation
// change too. Settings that need a restart (node:, cluster.gossip,
// cluster.canaries, notifiers, store:, statuspage.subscriptions) keep their running values, listed
// in Ignored. A config that cannot run (this node's region no longer
// listed, a check naming a notifier this node does not run) is rejected as
// a whole and the running one stays.
func (n *Node) Reload(cfg *config.Config) (ReloadResult, error) {
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()
	var res ReloadResult
	old := n.cfg.Load()
	if len(cfg.Cluster.Regions) > 0 && !slices.Contains(cfg.Cluster.Regions, n.o.Region) {
		return res, fmt.Errorf("region %q of this node is not in the new cluster.regions (%s)", n.o.Region, strings.Join(cfg.Cluster.Regions, ", "))
	}
	running := map[string]bool{}
	for _, nc := range old.Notifiers {
		running[nc.Name] = true
	}
	for _, ref := range notifierRefs(cfg) {
		if !running[ref.name] {
			return res, fmt.Errorf("%s notifies %q, which this node does not run: adding notifiers needs a restart", ref.by, ref.name)
		}
	}
	next := *cfg
	// Kept from the running config: they need a restart.
	next.Node, next.Store = old.Node, old.Store
	next.Cluster.Gossip, next.Cluster.Canaries = old.Cluster.Gossip, old.Cluster.Canaries
	next.Notifiers = old.Notifiers
	next.StatusPage.Subscriptions = old.StatusPage.Subscriptions // its outbox and link key are made at start (subscriptions.go)
	for _, d := range []struct {
		name     string
		old, new any
	}{
		{"node", old.Node, cfg.Node}, {"store", old.Store, cfg.Store}, {"cluster.gossip", old.Cluster.Gossip, cfg.Cluster.Gossip},
		{"cluster.canaries", old.Cluster.Canaries, cfg.Cluster.Canaries}, {"notifiers", stripNotifierPos(old.Notifiers), stripNotifierPos(cfg.Notifiers)},
		{"statuspage.subscriptions", old.StatusPage.Subscriptions, cfg.StatusPage.Subscriptions},
	} {
		if !reflect.DeepEqual(d.old, d.new) {
			res.Ignored = append(res.Ignored, d.name)
		}
	}

	n.mesh.Retain(checkSet(&next))
	n.loop.retain(checkSet(&next))
	diff := n.ev.SetConfig(&next)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.pager.Removed(ctx, diff.Closed) // routed by the running config
	n.pager.SetConfig(&next)
	n.cfg.Store(&next)
	tokens := pushTokens(&next)
	n.pushes.Store(&tokens)
	res.Added, res.Removed, res.Changed = diff.Added, diff.Removed, diff.Changed
	slices.Sort(res.Added)
	slices.Sort(res.Removed)
	slices.Sort(res.Changed)

	var errs []error
	if err := n.sched.Set(probed(&next)); err != nil {
		errs = append(errs, fmt.Errorf("reschedule checks: %w", err))
	}
	for _, cl := range diff.Closed {
		if _, err := n.store.ResolveIncident(ctx, cl.IncidentID, n.now()); err != nil && !errors.Is(err, store.ErrNotFound) {
			errs = append(errs, fmt.Errorf("close incident %s of removed check %s: %w", cl.IncidentID, cl.Check.Name, err))
		}
		n.log.Warn("check removed from the configuration; its open incident is closed", "check", cl.Check.Name, "incident_id", cl.IncidentID)
	}
	if cl := n.cl.Load(); cl != nil {
		if err := cl.SetConfigHash(ConfigHash(&next)); err != nil {
			n.log.Warn("advertise new config hash", "err", err)
		}
	}
	n.refreshPage()                            // the page, with runtime maintenance windows (maintenance.go)
	n.http.SetAPIToken(n.tokenOnReload(&next)) // the old token stops working now (maintenance.go)
	n.status.touch(true)
	n.queueEvalAll()
	return res, errors.Join(errs...)
}

type notifierRef struct{ by, name string }

// notifierRefs lists every notifier name a config sends to, with what
// names it: checks, routes and coverage.
func notifierRefs(cfg *config.Config) []notifierRef {
	var out []notifierRef
	for _, c := range cfg.Checks {
		for _, name := range c.Notify {
			out = append(out, notifierRef{fmt.Sprintf("check %q", c.Name), name})
		}
	}
	for i, r := range cfg.Routes {
		for _, name := range r.Notify {
			out = append(out, notifierRef{fmt.Sprintf("route %d", i+1), name})
		}
	}
	for _, name := range cfg.Coverage.Notify {
		out = append(out, notifierRef{"coverage", name})
	}
	if cfg.Reports.Notifier != "" {
		out = append(out, notifierRef{"reports", cfg.Reports.Notifier})
	}
	return out
}

func stripNotifierPos(ns []config.Notifier) []config.Notifier {
	out := slices.Clone(ns)
	for i := range out {
		out[i].Line, out[i].Column = 0, 0
	}
	return out
}
