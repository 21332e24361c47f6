package node

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vantage-dev/vantage/checker"
	"github.com/vantage-dev/vantage/quorum"
	"github.com/vantage-dev/vantage/statuspage"
	"github.com/vantage-dev/vantage/verdict"
)

// statusRefresh is the least time between two rebuilds of the status read
// model for results alone; a state change rebuilds it at the next read.
const statusRefresh = time.Second

// statusModel is the status read model: /api/v1/status, /metrics and the
// page read one immutable snapshot, rebuilt on demand when something
// changed (at once after a state change, at most every statusRefresh for
// new results), by one reader at a time, never under another part's lock.
// Probe results only mark it stale: a result costs O(1) here.
type statusModel struct {
	n       *Node
	stale   atomic.Bool // a result or a change arrived since the last build
	urgent  atomic.Bool // a state, membership or health change arrived
	buildMu sync.Mutex
	builtAt atomic.Int64 // unix ns of the last build
	snap    atomic.Pointer[snapshot]
}

// snapshot is one build of the read model.
type snapshot struct {
	status *statuspage.Status
	own    []ownResult // this node's latest result per check, for metrics
	view   *verdict.View
}

// ownResult is this node's latest result of one check, for the
// blackbox-style probe_* metrics.
type ownResult struct {
	check, typ string
	ok         bool
	// dns, connect, tls, first byte, total
	phases     [5]time.Duration
	statusCode int
	certExpiry time.Time // the served leaf's NotAfter (zero: none)
}

// touch marks the model stale; urgent for changes that must show at once.
func (m *statusModel) touch(urgent bool) {
	m.stale.Store(true)
	if urgent {
		m.urgent.Store(true)
	}
}

// get returns the current snapshot, rebuilding it when due.
func (m *statusModel) get() *snapshot {
	s := m.snap.Load()
	if s != nil && (!m.stale.Load() || (!m.urgent.Load() && time.Since(time.Unix(0, m.builtAt.Load())) < statusRefresh)) {
		return s
	}
	if s != nil && !m.buildMu.TryLock() {
		return s // another reader is building it
	}
	if s == nil {
		m.buildMu.Lock()
	}
	defer m.buildMu.Unlock()
	if s2 := m.snap.Load(); s2 != s && s2 != nil {
		return s2
	}
	m.stale.Store(false)
	m.urgent.Store(false)
	s = m.n.buildSnapshot()
	m.snap.Store(s)
	m.builtAt.Store(time.Now().UnixNano())
	return s
}

// Status implements statuspage.Source: an immutable snapshot, the same
// pointer while nothing changed.
func (n *Node) Status() *statuspage.Status { return n.status.get().status }

// buildSnapshot reads every check's view from the verdict.
func (n *Node) buildSnapshot() *snapshot {
	now := n.now()
	view := n.ev.View()
	st := &statuspage.Status{
		GeneratedAt: now.UTC(),
		Node:        statuspage.NodeInfo{Name: n.o.Name, Region: n.o.Region, Version: n.o.Version},
	}
	if own := n.mesh.Health.Own(); own.Degraded {
		st.Node.Degraded, st.Node.DegradedReason = true, own.DegradedReason
	}
	st.Cluster = statuspage.ClusterInfo{Quorum: view.Quorum, Regions: map[string]statuspage.RegionInfo{}}
	if cl := n.cl.Load(); cl != nil {
		for _, m := range cl.Members() {
			sm := statuspage.Member{Name: m.Name, Region: m.Region, State: m.State, Addr: m.Addr, Version: m.Version,
				ConfigHash: m.ConfigHash, ConfigMismatch: m.ConfigMismatch}
			if off, ok := cl.ClockOffset(m.Name); ok && m.Name != n.o.Name {
				ms := statuspage.MS(off)
				sm.ClockOffsetMS = &ms
			}
			st.Cluster.Members = append(st.Cluster.Members, sm)
		}
	}
	if len(st.Cluster.Members) == 0 {
		st.Cluster.Members = []statuspage.Member{{Name: n.o.Name, Region: n.o.Region, State: "alive", Version: n.o.Version}}
	}
	slices.SortFunc(st.Cluster.Members, func(a, b statuspage.Member) int { return strings.Compare(a.Name, b.Name) })
	for _, r := range view.Regions {
		ri := statuspage.RegionInfo{}
		var reasons []string
		for _, node := range view.Alive[r] {
			if ok, why := n.mesh.Health.Healthy(node); !ok {
				reasons = append(reasons, node+": "+why)
				continue
			}
			ri.Eligible = true
		}
		switch {
		case len(view.Alive[r]) == 0:
			ri.Reason = "no alive node in region"
		case !ri.Eligible:
			ri.Reason = strings.Join(reasons, "; ")
		}
		st.Cluster.Regions[r] = ri
	}
	names := n.ev.Names()
	suppressed := n.pager.Suppressions()
	st.Checks = make([]statuspage.CheckStatus, 0, len(names))
	own := make([]ownResult, 0, len(names))
	for _, name := range names {
		cv, ok := n.ev.Check(name)
		if !ok {
			continue
		}
		cs := n.checkStatus(cv)
		if sp, ok := suppressed[name]; ok {
			cs.SuppressedBy, cs.ParentIncidentID = sp.By, sp.ParentIncident
		}
		st.Checks = append(st.Checks, cs)
		if cv.HaveLast {
			r := cv.Last
			own = append(own, ownResult{check: name, typ: cv.Config.Type, ok: r.OK, statusCode: r.StatusCode, certExpiry: earliestCert(r),
				phases: [5]time.Duration{r.Phases.DNS, r.Phases.Connect, r.Phases.TLS, r.Phases.FirstByte, r.Latency}})
		}
	}
	return &snapshot{status: st, own: own, view: view}
}

// checkStatus is one check's entry in /api/v1/status.
func (n *Node) checkStatus(cv verdict.CheckView) statuspage.CheckStatus {
	c := cv.Config
	cs := statuspage.CheckStatus{
		Name: c.Name, State: string(cv.State), Since: cv.Since.UTC(), IncidentID: cv.IncidentID,
		Regions: make(map[string]*statuspage.RegionVote, len(cv.Regions)), Type: c.Type, Target: c.TargetString(), Group: c.Group,
	}
	for r, rv := range cv.Regions {
		if rv.At.IsZero() { // no fresh vote from the region
			cs.Regions[r] = &statuspage.RegionVote{Vote: string(quorum.VoteAbstain)}
			continue
		}
		v := &statuspage.RegionVote{Vote: string(rv.Vote), CheckedAt: rv.At.UTC(), LatencyMS: rv.LatencyMS, Error: rv.Code}
		if rv.Node == n.o.Name && cv.HaveLast {
			l := cv.Last
			v.Message = l.Message
			v.Phases = &statuspage.Phases{DNSMS: statuspage.MS(l.Phases.DNS), ConnectMS: statuspage.MS(l.Phases.Connect),
				TLSMS: statuspage.MS(l.Phases.TLS), FirstByteMS: statuspage.MS(l.Phases.FirstByte)}
		}
		cs.Regions[r] = v
	}
	if cv.HaveLast {
		if exp := earliestCert(cv.Last); !exp.IsZero() {
			exp = exp.UTC()
			cs.CertExpiry = &exp
		}
	}
	return cs
}

// earliestCert is when the earliest certificate that matters of a
// result expires (blackbox_exporter's probe_ssl_earliest_cert_expiry: of
// the verified chain, else of what the server sent), else the served
// leaf's expiry; zero without TLS.
func earliestCert(r checker.Result) time.Time {
	if !r.CertExpiry.IsZero() {
		return r.CertExpiry
	}
	return r.CertNotAfter
}

// Ready implements statuspage.Source: ready once the node has joined (when
// it has seeds) and every check has a result.
func (n *Node) Ready() (bool, string) {
	if own := n.mesh.Health.Own(); own.Degraded {
		return false, "degraded: " + own.DegradedReason
	}
	if n.o.Gossip != nil && len(n.o.Gossip.Join) > 0 {
		if cl := n.cl.Load(); cl == nil || cl.NumAlive() < 2 {
			return false, "not joined to the cluster yet"
		}
	}
	if missing, total := n.ev.Missing(); missing > 0 {
		return false, fmt.Sprintf("%d of %d checks have no result yet", missing, total)
	}
	return true, ""
}
