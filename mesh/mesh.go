// Package mesh holds the tables a node shares with its peers: each
// replicated table is its own type with its own lock, a MarshalBinary /
// Merge pair, and a bound on its size, registered with the cluster under a
// key (cluster.State), as Alertmanager's nflog and silences are over its
// cluster.State.
//
//	key        table        what it holds
//	votes      Votes        each node's latest vote on each check
//	health     Health       each node's canary verdict
//	incidents  Incidents    the incident each node holds open per check
//	sent       SentLog      notifications the cluster delivered
//	claims     Claims       notifications a node is delivering now
//	updates    Updates      operators' incident updates and manual incidents
//	asks       Asks         "probe this check now" requests (no state)
//	receipts   Receipts     push checks' latest reports
//	maintenance Maintenance windows scheduled through the API
//	subscribers Subscribers the page's email and webhook subscribers
//	subsent    SentLog      deliveries to subscribers
//	subclaims  Claims       deliveries to subscribers in progress
//	series     Series       every node's history buckets (series.go)
//	snapshots  Snapshots    failure snapshots (Ops)
//	probes     Probes       ad-hoc probe requests and answers (Ops)
//
// A table changes in two ways: this node writes its own entry (Put,
// Announce, Record, Claim, ...), which updates the table and broadcasts
// the entry, or a peer's broadcast or full state arrives through Merge.
// Merge treats its input as untrusted: it decodes with bounds, validates
// every entry (names, enumerations, finite numbers, sane times) and drops
// what fails, so a malformed or hostile message costs nothing but a log
// line. Every table is bounded: entries expire (a departed node's votes,
// delivered sends, lapsed claims) and entries of checks this node does not
// run are refused and pruned (Retain).
//
// Tables tell their consumers about peers' changes through a function
// given at construction (Notify): the data flows from the mesh to the
// verdict and the pager, never back. Merge runs on the cluster's delivery
// goroutine for the table's key, so a Notify must not block.
package mesh

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/vantage-dev/vantage/cluster"
)

// Keys under which the tables are registered with the cluster.
const (
	KeyVotes     = "votes"
	KeyHealth    = "health"
	KeyIncidents = "incidents"
	KeySent      = "sent"
	KeyClaims    = "claims"
	KeyUpdates   = "updates"
	KeyAsks      = "asks"
	KeyReceipts  = "receipts"
)

// Broadcaster gossips one table's entries: a *cluster.Channel, or nothing
// for a node without peers.
type Broadcaster interface {
	Broadcast(name string, b []byte) error
}

// nopBroadcaster is the Broadcaster of a node without gossip.
type nopBroadcaster struct{}

func (nopBroadcaster) Broadcast(string, []byte) error { return nil }

// Registry is where tables register: a *cluster.Cluster before Start.
type Registry interface {
	AddState(key string, s cluster.State) (*cluster.Channel, error)
}

// sharer is what every table is to the cluster, plus the hook that hands
// it its channel.
type sharer interface {
	cluster.State
	setBroadcaster(Broadcaster)
}

// Register registers each table under its key and gives it the channel it
// broadcasts on. Without a registry (a node without gossip) tables keep
// their entries to themselves.
func Register(r Registry, tables map[string]sharer) error {
	for key, t := range tables {
		ch, err := r.AddState(key, t)
		if err != nil {
			return fmt.Errorf("mesh: register %s: %w", key, err)
		}
		t.setBroadcaster(stopping{ch})
	}
	return nil
}

// stopping drops a table's broadcasts once the cluster has shut down: the
// node is stopping, the entry is kept locally, and the probes still in
// flight as it stops would otherwise each report an error.
type stopping struct{ b Broadcaster }

func (s stopping) Broadcast(name string, b []byte) error {
	if err := s.b.Broadcast(name, b); err != nil && !errors.Is(err, cluster.ErrShutdown) {
		return err
	}
	return nil
}

// Mesh bundles a node's tables.
type Mesh struct {
	Votes     *Votes
	Health    *Health
	Incidents *Incidents
	Sent      *SentLog
	Claims    *Claims
	Updates   *Updates
	Asks      *Asks
	Receipts  *Receipts
	Ops       *Ops         // ad-hoc probes and failure snapshots (probes.go, snapshots.go)
	Maint     *Maintenance // runtime maintenance windows (maintenance.go)
	// The page's subscribers, their deliveries and claims (subscribers.go).
	Subs      *Subscribers
	SubSent   *SentLog
	SubClaims *Claims
}

// Options configure a Mesh.
type Options struct {
	Self   string           // this node's name
	Region string           // this node's region
	Now    func() time.Time // the clock
	Logger *slog.Logger
	// Notify is told the check whose votes, incidents or sent log changed
	// through a peer; it must not block.
	Notify func(check string)
	// OnHealth is told a peer's canary verdict changed; it must not block.
	OnHealth func()
	// OnAsk is told a peer asks this node to probe check now; it must not
	// block.
	OnAsk func(check, from string)
	// OnWrite receives operators' writes learned from peers, to store
	// them; it must not block (Updates queues them).
	OnWrite func(Write)
}

// New returns the tables of one node.
func New(o Options) *Mesh {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	notify := o.Notify
	if notify == nil {
		notify = func(string) {}
	}
	return &Mesh{
		Votes:     NewVotes(o.Self, o.Region, o.Now, notify, o.Logger),
		Health:    NewHealth(o.Self, o.Now, o.OnHealth, o.Logger),
		Incidents: NewIncidents(o.Self, o.Now, notify, o.Logger),
		Sent:      NewSentLog(o.Self, o.Now, notify, o.Logger),
		Claims:    NewClaims(o.Self, o.Now, o.Logger),
		Updates:   NewUpdates(o.Now, o.OnWrite, o.Logger),
		Asks:      NewAsks(o.Self, o.OnAsk, o.Logger),
		Receipts:  NewReceipts(o.Self, o.Now, notify, o.Logger),
		Ops:       NewOps(o),
		Maint:     NewMaintenance(o.Now, o.Logger), // runtime maintenance windows (maintenance.go)
		Subs:      NewSubscribers(o.Now, o.Logger), // subscribers.go
		SubSent:   NewSentLogBounded(o.Self, o.Now, nil, o.Logger, SubSentMax, SubSentTTL),
		SubClaims: NewClaims(o.Self, o.Now, o.Logger),
	}
}

// Register registers every table with the cluster.
func (m *Mesh) Register(r Registry) error {
	return Register(r, map[string]sharer{
		KeyVotes: m.Votes, KeyHealth: m.Health, KeyIncidents: m.Incidents, KeySent: m.Sent,
		KeyClaims: m.Claims, KeyUpdates: m.Updates, KeyAsks: m.Asks, KeyReceipts: m.Receipts,
		KeyProbes: m.Ops.Probes, KeySnapshots: m.Ops.Snapshots,
		KeyMaintenance: m.Maint,                                                  // runtime maintenance windows (maintenance.go)
		KeySubscribers: m.Subs, KeySubSent: m.SubSent, KeySubClaims: m.SubClaims, // subscribers.go
	})
}

// Retain drops every table's entries of checks not in keep (after a
// reload) and refuses them from now on.
func (m *Mesh) Retain(keep map[string]bool) {
	m.Votes.Retain(keep)
	m.Incidents.Retain(keep)
	m.Receipts.Retain(keep)
}

// Expire drops entries that have outlived their use: votes older than
// voteAge, and the other tables' own horizons.
func (m *Mesh) Expire(now time.Time, voteAge time.Duration) {
	m.Votes.Expire(now.Add(-voteAge))
	m.Health.Expire(now)
	m.Incidents.Expire(now)
	m.Sent.Expire(now)
	m.Claims.Expire(now)
	m.Subs.Expire(now)
	m.SubSent.Expire(now)
	m.SubClaims.Expire(now)
}

// maxBroadcastName is the cluster's bound on a broadcast's name.
const maxBroadcastName = cluster.MaxStateNameLen

// broadcastName joins parts into a broadcast name; one that would be too
// long keeps its start and ends in a digest of the whole, so distinct
// names stay distinct.
func broadcastName(parts ...string) string {
	s := strings.Join(parts, "/")
	if len(s) <= maxBroadcastName {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	h := hex.EncodeToString(sum[:12])
	return s[:maxBroadcastName-len(h)-1] + "#" + h
}
