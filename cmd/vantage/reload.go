package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vantage-dev/vantage/cluster"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/quorum"
	"github.com/vantage-dev/vantage/statuspage"
	"github.com/vantage-dev/vantage/store"
)

// reloadResult says what a reload changed.
type reloadResult struct {
	Added, Removed, Changed []string
	// Ignored lists settings that differ but need a restart.
	Ignored []string
}

func (r reloadResult) String() string {
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
// cluster.canaries, notifiers, store:) keep their running values, listed
// in Ignored and logged. A config that cannot run (this node's region no
// longer listed, a check naming a notifier this node does not run) is
// rejected as a whole and the running one stays.
func (n *node) Reload(cfg *config.Config) (reloadResult, error) {
	var res reloadResult
	n.mu.Lock()
	old := n.cfg
	if len(cfg.Cluster.Regions) > 0 && !slices.Contains(cfg.Cluster.Regions, n.opts.Region) {
		n.mu.Unlock()
		return res, fmt.Errorf("region %q of this node is not in the new cluster.regions (%s)", n.opts.Region, strings.Join(cfg.Cluster.Regions, ", "))
	}
	running := map[string]bool{}
	for _, nc := range old.Notifiers {
		running[nc.Name] = true
	}
	for _, ref := range notifierRefs(cfg) {
		if !running[ref.name] {
			n.mu.Unlock()
			return res, fmt.Errorf("%s notifies %q, which this node does not run: adding notifiers needs a restart", ref.by, ref.name)
		}
	}
	next := *cfg
	// Kept from the running config: they need a restart.
	next.Node, next.Store = old.Node, old.Store
	next.Cluster.Gossip, next.Cluster.Canaries = old.Cluster.Gossip, old.Cluster.Canaries
	next.Notifiers = old.Notifiers
	for _, d := range []struct {
		name     string
		old, new any
	}{
		{"node", old.Node, cfg.Node}, {"store", old.Store, cfg.Store}, {"cluster.gossip", old.Cluster.Gossip, cfg.Cluster.Gossip},
		{"cluster.canaries", old.Cluster.Canaries, cfg.Cluster.Canaries}, {"notifiers", stripNotifierPos(old.Notifiers), stripNotifierPos(cfg.Notifiers)},
	} {
		if !reflect.DeepEqual(d.old, d.new) {
			res.Ignored = append(res.Ignored, d.name)
		}
	}

	checks := map[string]*checkState{}
	for i := range next.Checks {
		c := &next.Checks[i]
		cs, ok := n.checks[c.Name]
		if !ok {
			checks[c.Name] = &checkState{cfg: c, tracker: quorum.NewTracker(c.Name, n.now())}
			n.votes[c.Name] = map[string]cluster.VoteMsg{}
			res.Added = append(res.Added, c.Name)
			continue
		}
		if !sameCheck(*cs.cfg, *c, false) {
			res.Changed = append(res.Changed, c.Name)
			if !sameCheck(*cs.cfg, *c, true) {
				cs.streak, cs.downSince, cs.lastFail, cs.have = quorum.Streak{}, time.Time{}, "", false
				delete(n.votes[c.Name], n.opts.Name) // our vote was about the old probe
			}
		}
		cs.cfg = c
		checks[c.Name] = cs
	}
	type removedIncident struct {
		check, id string
		page      *page
		notifiers []string
	}
	var closed []removedIncident
	for name, cs := range n.checks {
		if _, ok := checks[name]; ok {
			continue
		}
		res.Removed = append(res.Removed, name)
		if id, _ := cs.tracker.Incident(); id != "" {
			ri := removedIncident{check: name, id: id}
			if pg, ok := n.pages[id]; ok && pg.triggered && pg.resolve == nil {
				at := n.now().UTC()
				ev := n.eventLocked(cs, id, pg.trigger.StartedAt, &at)
				pg.resolve = &ev
				ri.page = pg
				ri.notifiers = n.notifiersLocked(cs.cfg) // routed by the running config
			}
			closed = append(closed, ri)
		}
		delete(n.votes, name)
		delete(n.hints, name)
		delete(n.pagedIDs, name)
	}
	slices.Sort(res.Added)
	slices.Sort(res.Removed)
	slices.Sort(res.Changed)
	n.checks = checks
	n.cfg = &next
	view := n.viewLocked(n.params(&config.Check{}).Regions)
	isSender := view.sender == n.opts.Name
	n.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	if err := n.sched.Set(next.Checks); err != nil {
		errs = append(errs, fmt.Errorf("reschedule checks: %w", err))
	}
	for _, ri := range closed {
		if _, err := n.store.ResolveIncident(ctx, ri.id, n.now()); err != nil && !errors.Is(err, store.ErrNotFound) {
			errs = append(errs, fmt.Errorf("close incident %s of removed check %s: %w", ri.id, ri.check, err))
		}
		n.log.Warn("check removed from the configuration; its open incident is closed", "check", ri.check, "incident_id", ri.id)
		if ri.page != nil && isSender {
			if err := n.outbox.Enqueue(ctx, *ri.page.resolve, ri.notifiers...); err != nil {
				errs = append(errs, fmt.Errorf("queue resolve of %s: %w", ri.id, err))
			}
		}
	}
	n.mu.Lock()
	for _, ri := range closed {
		delete(n.pages, ri.id)
	}
	n.mu.Unlock()
	if cl := n.cl.Load(); cl != nil {
		if err := cl.SetConfigHash(configHash(&next)); err != nil {
			n.log.Warn("advertise new config hash", "err", err)
		}
	}
	n.http.SetPage(statuspage.PageFromConfig(&next))
	for _, c := range next.Checks {
		n.queueEval(c.Name)
	}
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
	return out
}

// sameCheck compares two definitions of a check, ignoring its place in the
// file; with probeOnly, only what its results depend on (the probe and its
// thresholds, not presentation or routing).
func sameCheck(a, b config.Check, probeOnly bool) bool {
	norm := func(c config.Check) (config.Check, string) {
		re := ""
		if c.Expect.BodyRegex != nil {
			re = c.Expect.BodyRegex.String()
		}
		c.Expect.BodyRegex, c.Line, c.Column = nil, 0, 0
		if probeOnly {
			c.Group, c.DisplayName, c.Description, c.Notify, c.Labels, c.Severity = "", "", "", nil, nil, ""
		}
		return c, re
	}
	na, ra := norm(a)
	nb, rb := norm(b)
	return ra == rb && reflect.DeepEqual(na, nb)
}

func stripNotifierPos(ns []config.Notifier) []config.Notifier {
	out := slices.Clone(ns)
	for i := range out {
		out[i].Line, out[i].Column = 0, 0
	}
	return out
}

// configWatcher reloads the node's configuration on SIGHUP and when the
// file changes (polled: its content hash, so editors that replace the file
// and mounted ConfigMaps that swap a symlink are both seen). An invalid
// file is rejected with its errors, one log line each, and the running
// configuration stays.
type configWatcher struct {
	path   string
	log    *slog.Logger
	poll   time.Duration
	last   [sha256.Size]byte
	reload func(*config.Config) (reloadResult, error)
}

func newConfigWatcher(path string, n *node, log *slog.Logger) *configWatcher {
	w := &configWatcher{path: path, log: log, poll: 2 * time.Second, reload: n.Reload}
	if b, err := os.ReadFile(path); err == nil {
		w.last = sha256.Sum256(b)
	}
	return w
}

// run watches until ctx ends.
func (w *configWatcher) run(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	t := time.NewTicker(w.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			w.log.Info("SIGHUP: reloading the configuration", "config", w.path)
			w.apply(true)
		case <-t.C:
			w.apply(false)
		}
	}
}

// apply reloads when forced (SIGHUP) or when the file's content changed.
func (w *configWatcher) apply(force bool) {
	b, err := os.ReadFile(w.path)
	if err != nil {
		if force {
			w.log.Error("config reload failed; keeping the running configuration", "config", w.path, "err", err)
		}
		return
	}
	sum := sha256.Sum256(b)
	if !force && sum == w.last {
		return
	}
	w.last = sum
	if !force {
		w.log.Info("configuration file changed: reloading", "config", w.path)
	}
	cfg, err := config.Parse(w.path, b, nil)
	if err != nil {
		var list config.Errors
		if errors.As(err, &list) {
			for _, e := range list {
				w.log.Error("config reload rejected; keeping the running configuration", "problem", e.Error())
			}
		} else {
			w.log.Error("config reload rejected; keeping the running configuration", "err", err)
		}
		return
	}
	res, err := w.reload(cfg)
	if err != nil {
		w.log.Error("config reload failed", "config", w.path, "err", err)
	} else {
		w.log.Info("configuration reloaded", "config", w.path, "checks", len(cfg.Checks), "added", len(res.Added),
			"removed", len(res.Removed), "changed", len(res.Changed), "summary", res.String())
	}
	for _, s := range res.Ignored {
		w.log.Warn("config reload: this setting changed but needs a restart; the running value stays", "setting", s)
	}
}
