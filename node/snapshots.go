package node

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/notifier"
	"github.com/vantage-dev/vantage/paging"
	snap "github.com/vantage-dev/vantage/snapshot"
	"github.com/vantage-dev/vantage/statuspage"
	"github.com/vantage-dev/vantage/store"
)

// Failure snapshots. The node is told of its own votes as it shares them
// (mesh.Votes.SetOnPut): when its vote on a check turns down (a new
// DownSince), it records a snapshot of the target (package snapshot),
// stores it and broadcasts it; peers' snapshots arrive through the mesh
// and are stored as they come. An incident's snapshots are, per node, the
// latest whose vote turned down between snapshotLead before the incident
// started and its end.
const (
	snapshotLead      = time.Hour
	snapshotRunning   = 8 // captures at a time
	snapshotIngestLen = 1024
)

type snapState struct {
	mu      sync.Mutex
	taken   map[string]time.Time // check -> the DownSince last captured
	running int
	ingest  chan mesh.SnapshotEntry
	// opts tune captures (tests point them at their own resolvers and
	// roots).
	opts snap.Options
}

func (x *snapState) init(n *Node) {
	x.taken = map[string]time.Time{}
	x.ingest = make(chan mesh.SnapshotEntry, snapshotIngestLen)
	t := n.mesh.Ops.Snapshots
	t.SetOnNew(func(e mesh.SnapshotEntry) {
		select {
		case x.ingest <- e:
		default:
			n.log.Warn("snapshot store queue full: a peer's snapshot waits for the next push-pull", "id", e.ID)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := n.store.RecentSnapshots(ctx, n.now().Add(-24*time.Hour), 512)
	if err != nil {
		n.log.Warn("load recent snapshots", "err", err)
	}
	var es []mesh.SnapshotEntry
	for _, r := range rows {
		es = append(es, mesh.SnapshotEntry{ID: r.ID, Check: r.Check, Node: r.Node, Region: r.Region, DownSince: r.DownSince, Taken: r.Taken, Data: r.Data})
	}
	t.Seed(es)
	n.mesh.Votes.SetOnPut(n.ownVote)
	n.goRun(n.expireSnapshots)
	n.goRun(n.storeSnapshots)
}

// ownVote is told of each vote this node shares (mesh.Votes.SetOnPut):
// when its vote on a check turns down (a DownSince not captured yet), it
// captures a snapshot. A vote that finds snapshotRunning captures running
// is taken up by the next one: a down vote is shared again with every
// probe result. It must not block: the capture runs on its own goroutine.
func (n *Node) ownVote(v mesh.Vote) {
	if v.Vote != mesh.VoteDown || v.DownSince.IsZero() || n.ctx.Err() != nil {
		return
	}
	x := &n.ext.snaps
	x.mu.Lock()
	if x.taken[v.Check].Equal(v.DownSince) || x.running >= snapshotRunning {
		x.mu.Unlock()
		return
	}
	c := n.cfg.Load().CheckByName(v.Check) // only for a vote not yet captured
	if c == nil || c.Type == config.TypePush {
		x.mu.Unlock()
		return
	}
	x.taken[v.Check] = v.DownSince
	x.running++
	x.mu.Unlock()
	n.wg.Add(1)
	go n.captureSnapshot(c, v)
}

// expireSnapshots drops replicated snapshots past their age every minute.
func (n *Node) expireSnapshots(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.mesh.Ops.Snapshots.Expire(n.now())
		}
	}
}

// captureSnapshot records, stores and shares one snapshot.
func (n *Node) captureSnapshot(c *config.Check, v mesh.Vote) {
	defer n.wg.Done()
	x := &n.ext.snaps
	defer func() {
		x.mu.Lock()
		x.running--
		x.mu.Unlock()
	}()
	x.mu.Lock()
	opts := x.opts
	x.mu.Unlock()
	opts.Now = n.now
	s := snap.Capture(n.ctx, c, opts)
	if n.ctx.Err() != nil {
		return
	}
	s.Node, s.Region, s.DownSince = n.o.Name, n.o.Region, v.DownSince.UTC()
	s.ID = snap.MakeID(c.Name, n.o.Name, v.DownSince)
	if cv, ok := n.ev.Check(c.Name); ok && cv.HaveLast {
		r := cv.Last
		s.Probe = &snap.Probe{Code: r.Code, Message: r.Message, LatencyMS: statuspage.MS(r.Latency), StatusCode: r.StatusCode,
			RemoteAddr: r.RemoteAddr, Timings: snap.Timings{DNSMS: statuspage.MS(r.Phases.DNS), ConnectMS: statuspage.MS(r.Phases.Connect),
				TLSMS: statuspage.MS(r.Phases.TLS), FirstByteMS: statuspage.MS(r.Phases.FirstByte), TotalMS: statuspage.MS(r.Latency)}}
		if r.OK && v.Code != "" {
			s.Probe.Code = v.Code
		}
	}
	data, err := snap.Encode(s)
	if err != nil {
		n.log.Error("encode snapshot", "check", c.Name, "err", err)
		return
	}
	e := mesh.SnapshotEntry{ID: s.ID, Check: c.Name, Node: n.o.Name, Region: n.o.Region, DownSince: s.DownSince, Taken: s.Taken, Data: data}
	ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
	defer cancel()
	if _, err := n.store.PutSnapshots(ctx, []store.SnapshotRow{rowOf(e)}); err != nil {
		n.log.Error("store snapshot", "check", c.Name, "err", err)
	}
	if err := n.mesh.Ops.Snapshots.Add(e); err != nil {
		n.log.Warn("share snapshot", "check", c.Name, "err", err)
	}
	n.log.Info("failure snapshot recorded", "check", c.Name, "id", e.ID, "bytes", len(data), "took_ms", s.DurationMS)
}

func rowOf(e mesh.SnapshotEntry) store.SnapshotRow {
	return store.SnapshotRow{ID: e.ID, Check: e.Check, Node: e.Node, Region: e.Region, DownSince: e.DownSince, Taken: e.Taken, Data: e.Data}
}

// storeSnapshots stores peers' snapshots as they arrive, in batches.
func (n *Node) storeSnapshots(ctx context.Context) {
	in := n.ext.snaps.ingest
	for {
		var batch []store.SnapshotRow
		select {
		case <-ctx.Done():
			return
		case e := <-in:
			batch = append(batch, rowOf(e))
		}
	more:
		for len(batch) < 64 {
			select {
			case e := <-in:
				batch = append(batch, rowOf(e))
			default:
				break more
			}
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := n.store.PutSnapshots(sctx, batch); err != nil && ctx.Err() == nil {
			n.log.Error("store peers' snapshots", "n", len(batch), "err", err)
		}
		cancel()
	}
}

// IncidentSnapshots gives an incident's snapshots, side by side per
// region (GET /api/v1/incidents/{id}/snapshots).
func (n *Node) IncidentSnapshots(ctx context.Context, id string) (*statuspage.IncidentSnapshots, error) {
	inc, err := n.store.Incident(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		// Not stored yet (a link followed the moment it was sent): the
		// open incident the verdict holds.
		for _, name := range n.ev.Names() {
			if cv, ok := n.ev.Check(name); ok && cv.IncidentID == id {
				inc, err = store.Incident{ID: id, Check: name, Title: cv.Config.DisplayName + " is down", StartedAt: cv.IncidentStart}, nil
				break
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if inc.Manual || inc.Check == "" {
		return nil, store.ErrNotFound
	}
	end := n.now()
	if inc.ResolvedAt != nil {
		end = *inc.ResolvedAt
	}
	rows, err := n.store.Snapshots(ctx, inc.Check, inc.StartedAt.Add(-snapshotLead), end)
	if err != nil {
		return nil, err
	}
	latest := map[string]store.SnapshotRow{} // by node
	for _, r := range rows {
		if cur, ok := latest[r.Node]; !ok || !r.DownSince.Before(cur.DownSince) {
			latest[r.Node] = r
		}
	}
	out := &statuspage.IncidentSnapshots{IncidentID: inc.ID, Check: inc.Check, Title: inc.Title, StartedAt: inc.StartedAt,
		ResolvedAt: inc.ResolvedAt}
	for _, r := range latest {
		s, err := snap.Decode(r.Data)
		if err != nil {
			n.log.Warn("decode snapshot", "id", r.ID, "err", err)
			continue
		}
		out.Snapshots = append(out.Snapshots, s)
	}
	order := map[string]int{}
	for i, r := range n.cfg.Load().Cluster.Regions {
		order[r] = i + 1
	}
	slices.SortFunc(out.Snapshots, func(a, b *snap.Snapshot) int {
		oa, ob := order[a.Region], order[b.Region]
		if oa == 0 {
			oa = 1 << 20
		}
		if ob == 0 {
			ob = 1 << 20
		}
		if oa != ob {
			return oa - ob
		}
		if c := strings.Compare(a.Region, b.Region); c != 0 {
			return c
		}
		return strings.Compare(a.Node, b.Node)
	})
	out.Differences = snap.Compare(out.Snapshots)
	return out, nil
}

// snapshotLinks is the pager's outbox with every incident event given the
// signed link to the incident's snapshots (PagerDuty links, webhook
// snapshots_url), when statuspage.url and an API token are set.
type snapshotLinks struct {
	paging.Outbox
	n *Node
}

func (o snapshotLinks) Enqueue(ctx context.Context, e notifier.Event, notifiers ...string) error {
	if e.IncidentID != "" && !e.IsNotice() && e.SnapshotsURL == "" {
		cfg := o.n.cfg.Load()
		e.SnapshotsURL = statuspage.SnapshotsURL(cfg.StatusPage.URL, o.n.tokenOnReload(cfg), e.IncidentID) // the token in force
	}
	return o.Outbox.Enqueue(ctx, e, notifiers...)
}
