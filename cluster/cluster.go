// Package cluster is Vantage's gossip transport: it wraps hashicorp/memberlist
// to form the probe mesh, advertises each node's region, version and config
// hash as node metadata, and carries replicated tables ("states") between
// nodes. It knows no domain types: a state's content is bytes to it.
//
// # Lifecycle
//
// Create validates a Config and prepares a node; AddState registers the
// states; Start opens the sockets and starts memberlist, the states'
// delivery goroutines and the background joiner. Leave announces a
// departure; Shutdown stops everything. Changes signals membership
// changes; Members and NumAlive read the membership.
//
// # States and Channels
//
// A replicated table is a State, registered under a key (1 to 32 bytes of
// [a-z0-9-]) with AddState between Create and Start. The Channel AddState
// returns broadcasts the state's deltas: named broadcasts piggybacked on
// memberlist's gossip, where a newer one with the same name replaces an
// older one still queued. Each peer's state of the same key receives them
// through Merge, with the name of the node that made them. In a cluster
// larger than memberlist's GossipNodes, receivers relay what they get, so
// that it reaches every node. The full content, MarshalBinary, travels
// through memberlist's TCP push-pull on join and every PushPullInterval:
// the anti-entropy that repairs lost messages and brings a late joiner up
// to date (the receiver's Merge gets it with the remote node's name). Keys
// a node has not registered are ignored (and still relayed).
//
// A broadcast larger than fits a packet (MaxMessageSize) is cut into
// chunks, at most MaxStateMessage bytes in all; each chunk carries the
// SHA-256 prefix of the whole message, and receivers reassemble and check
// it before Merge. The chunks are gossiped and also sent once, directly,
// to every alive member, since gossip alone sends each queued message to a
// few random peers only. Reassembly is bounded: chunks per message, partial
// messages kept (2 minutes at most), completed messages remembered.
//
// Delivery never runs on memberlist's goroutines: they only decode,
// validate and enqueue. Each state has a bounded FIFO drained by its own
// goroutine, one Merge at a time, so a slow state delays neither failure
// detection nor the other states. When a queue is full, new items are
// dropped, counted (StateStats) and logged at most every 10 s; push-pull
// repairs what was lost.
//
// Every decoder (envelope, chunk, push-pull state, node metadata) takes
// untrusted bytes and allocates no more than their length (or a small
// constant bound); the wire format is described in wire.go, chunk.go and
// state.go.
//
// # Transport
//
// Traffic counts the bytes memberlist sends and receives, per protocol (a
// wrapper around its UDP/TCP transport).
//
// With a key, every packet and stream is encrypted and authenticated with
// AES-GCM (memberlist's keyring); GossipVerifyIncoming and
// GossipVerifyOutgoing are on, so a node without the key can neither join
// nor inject messages.
//
// A background joiner contacts the seeds until one answers, then, every
// RejoinInterval while a seed or a previously seen member is missing, it
// contacts them again so that the two halves of a healed partition merge.
//
// Member states are alive, suspect, dead and left. memberlist does not
// expose its suspect state, so suspect here means this node's own probe of
// the member failed and the member has neither answered a probe since nor
// been declared dead; left means the member announced its Leave.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrShutdown is returned for a broadcast or leave after Shutdown: the
// node is stopping and its messages no longer go out.
var ErrShutdown = errors.New("cluster: shut down")

// Profiles.
const (
	ProfileWAN   = "wan"
	ProfileLAN   = "lan"
	ProfileLocal = "local"
)

// DefaultPort is the gossip port (TCP and UDP).
const DefaultPort = 7946

// DefaultRejoinInterval is how often missing seeds and members are
// re-contacted.
const DefaultRejoinInterval = 10 * time.Second

// deadRetention is how long a dead member is remembered and re-contacted.
const deadRetention = 24 * time.Hour

// Config configures a node's gossip.
type Config struct {
	Name       string // unique node name
	Region     string
	Version    string
	ConfigHash string // hash of the node's configuration, compared with peers'

	Bind      string   // HOST:PORT to bind, TCP and UDP; default 0.0.0.0:7946; port 0 picks a free port
	Advertise string   // HOST:PORT peers use to reach us; default: the bind address
	Join      []string // seeds, HOST:PORT; our own address may be listed

	Profile string // wan (default), lan or local

	Key []byte // 16, 24 or 32 bytes: AES-128/192/256-GCM
	// OldKeys are further keys this node accepts (decrypts) but never
	// sends with: the step of a key rotation where some nodes already
	// send with the new key and others still with the old one.
	OldKeys [][]byte

	Insecure bool // allow a nil Key: no encryption, no authentication

	// lookupIP resolves seed host names (tests); nil: the system resolver.
	lookupIP func(ctx context.Context, host string) ([]net.IP, error)

	Logger         *slog.Logger
	RejoinInterval time.Duration // default 10s
	// Now is this node's clock for the stamps of its messages and the
	// peers' clock offsets; default time.Now (tests skew it).
	Now func() time.Time
}

// Cluster is a running gossip node.
type Cluster struct {
	cfg   Config
	log   *slog.Logger
	ml    *memberlist.Memberlist
	mlc   *memberlist.Config
	queue *memberlist.TransmitLimitedQueue
	tr    *countingTransport
	self  string // our advertised HOST:PORT

	mu         sync.Mutex
	peers      map[string]*peer     // by node name, including ourselves
	leaving    map[string]bool      // nodes that announced Leave
	seen       map[string]seenEntry // origin, kind and name -> newest stamp
	warnedHash map[string]string    // node -> config hash we warned about
	lastStamp  uint64               // our last broadcast stamp
	offsets    offsets              // peers' clock offsets (offsets.go)
	configHash string               // ours, may change with SetConfigHash
	suspectTTL time.Duration
	left       bool
	closed     bool
	starting   bool // Start is opening the sockets
	started    bool
	changes    chan struct{} // Changes

	// states are registered before Start, then only read.
	states    map[string]*stateEntry
	stateList []*stateEntry // in registration order

	done chan struct{}
	wg   sync.WaitGroup
}

type peer struct {
	node      memberlist.Node
	meta      nodeMeta
	metaErr   error
	state     string
	changedAt time.Time
}

type seenEntry struct {
	stamp  uint64
	recvAt time.Time
}

// Member is one node as seen in gossip. Its fields match
// statuspage.Member, so a value converts with statuspage.Member(m).
type Member struct {
	Name           string
	Region         string
	State          string // alive, suspect, dead or left
	Addr           string // HOST:PORT
	Version        string
	ConfigHash     string
	ConfigMismatch bool // ConfigHash differs from ours
}

// Member states.
const (
	StateAlive   = "alive"
	StateSuspect = "suspect"
	StateDead    = "dead"
	StateLeft    = "left"
)

// profileConfig returns memberlist's configuration for a profile.
func profileConfig(profile string) (*memberlist.Config, error) {
	switch profile {
	case "", ProfileWAN:
		c := memberlist.DefaultWANConfig()
		c.DeadNodeReclaimTime = 30 * time.Second
		return c, nil
	case ProfileLAN:
		c := memberlist.DefaultLANConfig()
		c.DeadNodeReclaimTime = 30 * time.Second
		return c, nil
	case ProfileLocal:
		c := memberlist.DefaultLocalConfig()
		// One machine: detect a dead node within 5 s. A node is probed by
		// each peer in turn every ProbeInterval; a failed probe (direct
		// after ProbeTimeout, then indirect until the end of the interval)
		// makes it suspect; it is declared dead after the suspicion timeout,
		// SuspicionMult*max(1,log10(n))*ProbeInterval = 1.2 s with one
		// confirmation, at most SuspicionMaxTimeoutMult times that (2.4 s).
		// Worst case with three nodes: 0.8 s + 0.4 s + 2.4 s ≈ 3.6 s.
		c.ProbeInterval = 400 * time.Millisecond
		c.ProbeTimeout = 200 * time.Millisecond
		c.SuspicionMult = 3
		c.SuspicionMaxTimeoutMult = 2
		c.GossipInterval = 100 * time.Millisecond
		// Loopback is cheap: retransmit more and sync full state often, so
		// membership and states converge within seconds even under load.
		c.RetransmitMult = 4
		c.PushPullInterval = 5 * time.Second
		c.TCPTimeout = time.Second
		c.GossipToTheDeadTime = 5 * time.Second
		c.DeadNodeReclaimTime = 2 * time.Second
		return c, nil
	}
	return nil, fmt.Errorf("cluster: unknown gossip profile %q (want wan, lan or local)", profile)
}

// splitHostPort parses HOST:PORT; an empty host means all addresses.
func splitHostPort(s string, defPort int) (string, int, error) {
	host, ps, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port := defPort
	if ps != "" {
		p, err := strconv.Atoi(ps)
		if err != nil || p < 0 || p > 65535 {
			return "", 0, fmt.Errorf("bad port %q", ps)
		}
		port = p
	}
	return host, port, nil
}

// Create validates cfg and prepares a node without opening sockets:
// register states with AddState, then Start it.
func Create(cfg Config) (*Cluster, error) {
	if cfg.Name == "" {
		return nil, errors.New("cluster: node name is required")
	}
	if len(cfg.Name) > MaxNameLen || len(cfg.Region) > MaxRegionLen {
		return nil, fmt.Errorf("cluster: node name (max %d bytes) or region (max %d) too long", MaxNameLen, MaxRegionLen)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RejoinInterval <= 0 {
		cfg.RejoinInterval = DefaultRejoinInterval
	}
	if cfg.Bind == "" {
		cfg.Bind = net.JoinHostPort("0.0.0.0", strconv.Itoa(DefaultPort))
	}
	mlc, err := profileConfig(cfg.Profile)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.Key != nil:
		if err := memberlist.ValidateKey(cfg.Key); err != nil {
			return nil, fmt.Errorf("cluster: gossip key: %w", err)
		}
		for i, k := range cfg.OldKeys {
			if err := memberlist.ValidateKey(k); err != nil {
				return nil, fmt.Errorf("cluster: gossip key %d: %w", i+2, err)
			}
		}
		kr, err := memberlist.NewKeyring(append([][]byte{cfg.Key}, cfg.OldKeys...), cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("cluster: gossip key: %w", err)
		}
		mlc.Keyring = kr
		mlc.SecretKey = cfg.Key
		mlc.GossipVerifyIncoming = true
		mlc.GossipVerifyOutgoing = true
	case !cfg.Insecure:
		return nil, errors.New("cluster: a gossip key is required (or Insecure)")
	}

	bindHost, bindPort, err := splitHostPort(cfg.Bind, DefaultPort)
	if err != nil {
		return nil, fmt.Errorf("cluster: bind address %q: %w", cfg.Bind, err)
	}
	if bindHost == "" {
		bindHost = "0.0.0.0"
	}
	mlc.Name = cfg.Name
	mlc.BindAddr = bindHost
	mlc.BindPort = bindPort
	mlc.AdvertisePort = bindPort
	if cfg.Advertise != "" {
		ah, ap, err := splitHostPort(cfg.Advertise, bindPort)
		if err != nil {
			return nil, fmt.Errorf("cluster: advertise address %q: %w", cfg.Advertise, err)
		}
		if ah != "" && net.ParseIP(ah) == nil {
			ips, err := net.LookupIP(ah)
			if err != nil || len(ips) == 0 {
				return nil, fmt.Errorf("cluster: advertise address %q: cannot resolve %s: %v", cfg.Advertise, ah, err)
			}
			ah = ips[0].String()
		}
		mlc.AdvertiseAddr = ah
		if ap != 0 {
			mlc.AdvertisePort = ap
		}
	}

	c := &Cluster{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "cluster"),
		mlc:        mlc,
		peers:      map[string]*peer{},
		leaving:    map[string]bool{},
		seen:       map[string]seenEntry{},
		warnedHash: map[string]string{},
		configHash: cfg.ConfigHash,
		changes:    make(chan struct{}, 1),
		states:     map[string]*stateEntry{},
		done:       make(chan struct{}),
	}
	c.suspectTTL = time.Duration(mlc.SuspicionMult*mlc.SuspicionMaxTimeoutMult) * mlc.ProbeInterval * 2
	c.queue = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return max(1, c.NumAlive()) },
		RetransmitMult: mlc.RetransmitMult,
	}
	d := &delegate{c: c}
	mlc.Delegate = d
	mlc.Events = d
	mlc.Ping = d
	mlc.Logger = log.New(&mlLogWriter{c: c}, "", 0)
	return c, nil
}

// Start opens the sockets, starts memberlist, the states' delivery
// goroutines and the background joiner.
func (c *Cluster) Start() error {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return errors.New("cluster: start: shut down")
	case c.started || c.starting:
		c.mu.Unlock()
		return errors.New("cluster: already started")
	}
	c.starting = true
	c.mu.Unlock()
	ml, err := c.startMemberlist()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.starting = false
	if err != nil {
		return err
	}
	c.ml = ml
	c.started = true
	c.self = ml.LocalNode().Address()
	c.log.Info("gossip started", "node", c.cfg.Name, "region", c.cfg.Region,
		"bind", net.JoinHostPort(c.mlc.BindAddr, strconv.Itoa(c.mlc.BindPort)),
		"advertise", c.self, "profile", profileName(c.cfg.Profile), "encrypted", c.cfg.Key != nil,
		"seeds", c.cfg.Join, "states", keyList(c.stateList))

	c.wg.Add(1 + len(c.stateList))
	for _, e := range c.stateList {
		go c.deliverLoop(e)
	}
	go c.joinLoop()
	return nil
}

func (c *Cluster) startMemberlist() (*memberlist.Memberlist, error) {
	tr, err := newNetTransport(c.mlc)
	if err != nil {
		return nil, fmt.Errorf("cluster: start gossip on %s: %w", c.cfg.Bind, err)
	}
	c.tr = tr
	ml, err := memberlist.Create(c.mlc)
	if err != nil {
		_ = tr.Shutdown()
		return nil, fmt.Errorf("cluster: start gossip on %s: %w", c.cfg.Bind, err)
	}
	return ml, nil
}

// memberlist returns the running memberlist, nil before Start.
func (c *Cluster) memberlist() *memberlist.Memberlist {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ml
}

func profileName(p string) string {
	if p == "" {
		return ProfileWAN
	}
	return p
}

// LocalAddr is the HOST:PORT peers use to reach this node (with bind port 0,
// the port actually bound).
func (c *Cluster) LocalAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.self
}

// Name is this node's name.
func (c *Cluster) Name() string { return c.cfg.Name }

// Region is this node's region.
func (c *Cluster) Region() string { return c.cfg.Region }

// Leave announces that this node leaves, so peers show it as left rather
// than dead, and waits up to timeout for the announcement to go out. The
// node keeps answering until Shutdown.
func (c *Cluster) Leave(timeout time.Duration) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrShutdown
	}
	if !c.started {
		c.mu.Unlock()
		return errors.New("cluster: leave: not started")
	}
	c.left = true
	c.mu.Unlock()

	// Tell every live peer directly over TCP (ordered before memberlist's
	// dead message), and gossip it for those we cannot reach.
	msg := c.envelope(kindLeave, "leave", nil)
	c.queue.QueueBroadcast(&broadcast{name: c.cfg.Name + "/leave", msg: msg})
	var wg sync.WaitGroup
	for _, n := range c.ml.Members() {
		if n.Name == c.cfg.Name {
			continue
		}
		wg.Add(1)
		go func(n memberlist.Node) {
			defer wg.Done()
			_ = c.ml.SendReliable(&n, msg)
		}(*n)
	}
	waitTimeout(&wg, timeout/2)
	err := c.ml.Leave(timeout / 2)
	c.log.Info("left the cluster", "err", err)
	return err
}

// Shutdown stops gossip at once (peers will see this node dead unless it
// left first) and stops the background goroutines.
func (c *Cluster) Shutdown() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	ml := c.ml
	c.mu.Unlock()
	close(c.done)
	if ml == nil {
		return nil // never started
	}
	err := ml.Shutdown()
	// Join attempts in flight end within the profile's TCP timeout; a
	// state's Merge that does not return is not waited for longer.
	if !waitTimeout(&c.wg, c.mlc.TCPTimeout+time.Second) {
		c.log.Warn("shutdown: background goroutines still running (a state's Merge blocked?)")
	}
	return err
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// SetConfigHash changes the config hash this node advertises (after
// a config reload) and pushes the new metadata to peers.
func (c *Cluster) SetConfigHash(hash string) error {
	c.mu.Lock()
	c.configHash = hash
	clear(c.warnedHash)
	ml := c.ml
	c.mu.Unlock()
	if ml == nil {
		return nil // advertised at Start
	}
	return ml.UpdateNode(c.mlc.TCPTimeout)
}

// envelope wraps a payload with our name and a fresh stamp.
func (c *Cluster) envelope(kind byte, name string, payload []byte) []byte {
	return encodeEnvelope(kind, c.cfg.Name, name, c.nextStamp(), payload)
}

// now is this node's clock.
func (c *Cluster) now() time.Time {
	if c.cfg.Now != nil {
		return c.cfg.Now()
	}
	return time.Now()
}

// nextStamp returns a fresh broadcast stamp: unix ns, above every earlier.
func (c *Cluster) nextStamp() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := uint64(c.now().UnixNano())
	if s <= c.lastStamp {
		s = c.lastStamp + 1
	}
	c.lastStamp = s
	return s
}

// broadcast is a named memberlist broadcast.
type broadcast struct {
	name string
	msg  []byte
}

func (b *broadcast) Name() string    { return b.name }
func (b *broadcast) Message() []byte { return b.msg }
func (b *broadcast) Finished()       {}
func (b *broadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(memberlist.NamedBroadcast)
	return ok && o.Name() == b.name
}

var _ memberlist.NamedBroadcast = (*broadcast)(nil)

// membershipChanged signals Changes, coalescing bursts of events.
func (c *Cluster) membershipChanged() {
	select {
	case c.changes <- struct{}{}:
	default:
	}
}

// Changes returns a channel that receives after members join, leave, fail
// or change their metadata. Events are coalesced: it holds at most one
// pending notification; read Members or NumAlive when it fires.
func (c *Cluster) Changes() <-chan struct{} { return c.changes }
