package mesh

import (
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"
)

// Ad-hoc probes ("is it down for everyone?"): a node asks, per region, one
// named node to probe a target once, now (ProbeRequest), and every node
// that probes gossips its result (ProbeResult), which the asking node
// collects. Like Asks, the table holds no state: push-pull shares nothing,
// and a lost message is a region shown as not answering.

// Ad-hoc probe bounds.
const (
	MaxProbeTarget  = 2048
	MaxProbeTimeout = 30 * time.Second
	MinProbeTimeout = 100 * time.Millisecond
	maxProbeRegions = 64
	maxProbeMessage = 512
	maxProbeAddr    = 256
)

// ProbeRequest asks the named nodes (one per region) to probe a target once.
type ProbeRequest struct {
	ID        string            `json:"id"`   // random, hex
	From      string            `json:"from"` // the asking node
	At        time.Time         `json:"at"`
	Type      string            `json:"type"`   // http, tcp, icmp or dns
	Target    string            `json:"target"` // the URL for http
	Record    string            `json:"record,omitempty"`
	Server    string            `json:"server,omitempty"`
	IP        string            `json:"ip,omitempty"`
	TimeoutMS int64             `json:"timeout_ms"`
	Nodes     map[string]string `json:"nodes"` // region -> the node asked to probe
}

// Timeout is the request's probe timeout.
func (r ProbeRequest) Timeout() time.Duration { return time.Duration(r.TimeoutMS) * time.Millisecond }

var probeID = regexp.MustCompile(`^[0-9a-f]{8,64}$`)

func (r ProbeRequest) valid() error {
	switch {
	case !probeID.MatchString(r.ID):
		return fmt.Errorf("probe request: bad id %q", r.ID)
	case !validNode(r.From):
		return fmt.Errorf("probe request: bad node %q", r.From)
	case !validTime(r.At):
		return fmt.Errorf("probe request: time out of range")
	case r.Type != "http" && r.Type != "tcp" && r.Type != "icmp" && r.Type != "dns":
		return fmt.Errorf("probe request: type %q", r.Type)
	case r.Target == "" || len(r.Target) > MaxProbeTarget || len(r.Record) > 16 || len(r.Server) > MaxProbeTarget || len(r.IP) > 8:
		return fmt.Errorf("probe request: bad target")
	case r.Timeout() < MinProbeTimeout || r.Timeout() > MaxProbeTimeout:
		return fmt.Errorf("probe request: timeout %dms", r.TimeoutMS)
	case len(r.Nodes) == 0 || len(r.Nodes) > maxProbeRegions:
		return fmt.Errorf("probe request: %d regions", len(r.Nodes))
	}
	for reg, n := range r.Nodes {
		if len(reg) > MaxRegionLen || !validNode(n) {
			return fmt.Errorf("probe request: bad region %q or node %q", reg, n)
		}
	}
	return nil
}

// ProbeResult is one node's result of an ad-hoc probe.
type ProbeResult struct {
	ID          string    `json:"id"`
	Node        string    `json:"node"`
	Region      string    `json:"region"`
	At          time.Time `json:"at"` // when the probe started
	OK          bool      `json:"ok"`
	LatencyMS   float64   `json:"latency_ms"`
	DNSMS       float64   `json:"dns_ms,omitempty"`
	ConnectMS   float64   `json:"connect_ms,omitempty"`
	TLSMS       float64   `json:"tls_ms,omitempty"`
	FirstByteMS float64   `json:"first_byte_ms,omitempty"`
	Code        string    `json:"code,omitempty"`
	Message     string    `json:"message,omitempty"`
	StatusCode  int       `json:"status_code,omitempty"`
	RemoteAddr  string    `json:"remote_addr,omitempty"`
	DNSRcode    string    `json:"dns_rcode,omitempty"`
	// Refused says why the node did not probe (rate limit, busy); the
	// rest is then empty.
	Refused string `json:"refused,omitempty"`
}

func (r ProbeResult) valid() error {
	switch {
	case !probeID.MatchString(r.ID):
		return fmt.Errorf("probe result: bad id %q", r.ID)
	case !validNode(r.Node) || len(r.Region) > MaxRegionLen:
		return fmt.Errorf("probe result: bad node %q or region", r.Node)
	case !validOptTime(r.At):
		return fmt.Errorf("probe result: time out of range")
	case !validMS(r.LatencyMS) || !validMS(r.DNSMS) || !validMS(r.ConnectMS) || !validMS(r.TLSMS) || !validMS(r.FirstByteMS):
		return fmt.Errorf("probe result: bad timings")
	case len(r.Code) > maxCodeLen || len(r.Message) > maxProbeMessage || len(r.RemoteAddr) > maxProbeAddr ||
		len(r.DNSRcode) > 32 || len(r.Refused) > maxReasonLen || r.StatusCode < 0 || r.StatusCode > 999:
		return fmt.Errorf("probe result: field too long")
	}
	return nil
}

// probeMsg is one gossiped message: a request or a result.
type probeMsg struct {
	Req *ProbeRequest `json:"req,omitempty"`
	Res *ProbeResult  `json:"res,omitempty"`
}

// Probes is the ad-hoc probe channel.
type Probes struct {
	self      string
	onRequest func(ProbeRequest)
	log       *slog.Logger

	mu      sync.Mutex
	b       Broadcaster
	waiters map[string]chan ProbeResult
}

// NewProbes returns the channel; onRequest (may be nil; it must not block)
// gets the requests that name this node, its own included.
func NewProbes(self string, onRequest func(ProbeRequest), log *slog.Logger) *Probes {
	if onRequest == nil {
		onRequest = func(ProbeRequest) {}
	}
	if log == nil {
		log = slog.Default()
	}
	return &Probes{self: self, onRequest: onRequest, log: log, b: nopBroadcaster{}, waiters: map[string]chan ProbeResult{}}
}

// SetOnRequest replaces the request handler (before the node starts).
func (t *Probes) SetOnRequest(f func(ProbeRequest)) {
	t.mu.Lock()
	t.onRequest = f
	t.mu.Unlock()
}

func (t *Probes) setBroadcaster(b Broadcaster) {
	t.mu.Lock()
	t.b = b
	t.mu.Unlock()
}

// Wait registers for the results of request id; call it before Request.
// The channel holds up to capacity results; stop unregisters.
func (t *Probes) Wait(id string, capacity int) (results <-chan ProbeResult, stop func()) {
	ch := make(chan ProbeResult, capacity)
	t.mu.Lock()
	t.waiters[id] = ch
	t.mu.Unlock()
	return ch, func() {
		t.mu.Lock()
		if t.waiters[id] == ch {
			delete(t.waiters, id)
		}
		t.mu.Unlock()
	}
}

// Request gossips req, and hands it to this node's handler if it names it.
func (t *Probes) Request(req ProbeRequest) error {
	req.From = t.self
	if err := req.valid(); err != nil {
		return fmt.Errorf("mesh: %w", err)
	}
	msg, err := encodeEntries([]probeMsg{{Req: &req}})
	if err != nil {
		return err
	}
	t.mu.Lock()
	b, on := t.b, t.onRequest
	t.mu.Unlock()
	if names(req.Nodes, t.self) {
		on(req)
	}
	return b.Broadcast(broadcastName("probe", "req", req.ID), msg)
}

func names(nodes map[string]string, node string) bool {
	for _, n := range nodes {
		if n == node {
			return true
		}
	}
	return false
}

// Publish gossips this node's result, and delivers it to a local waiter.
func (t *Probes) Publish(res ProbeResult) error {
	res.Node = t.self
	if len(res.Message) > maxProbeMessage {
		res.Message = res.Message[:maxProbeMessage]
	}
	if err := res.valid(); err != nil {
		return fmt.Errorf("mesh: %w", err)
	}
	t.deliver(res)
	msg, err := encodeEntries([]probeMsg{{Res: &res}})
	if err != nil {
		return err
	}
	t.mu.Lock()
	b := t.b
	t.mu.Unlock()
	return b.Broadcast(broadcastName("probe", "res", res.ID, res.Node), msg)
}

func (t *Probes) deliver(res ProbeResult) {
	t.mu.Lock()
	ch := t.waiters[res.ID]
	t.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- res:
	default:
	}
}

// MarshalBinary implements cluster.State: requests and results are not
// state.
func (t *Probes) MarshalBinary() ([]byte, error) { return nil, nil }

// Merge implements cluster.State: a peer's request or result. A request
// must come from the node it names as asker, a result from its node.
func (t *Probes) Merge(from string, b []byte) error {
	msgs, err := decodeEntries[probeMsg](b)
	if err != nil {
		return fmt.Errorf("mesh: probes from %s: %w", from, err)
	}
	var bad invalid
	for _, m := range msgs {
		switch {
		case m.Req != nil:
			if err := m.Req.valid(); err != nil {
				bad.add(err)
				continue
			}
			if m.Req.From != from {
				bad.add(fmt.Errorf("probe request of %s relayed as %s", m.Req.From, from))
				continue
			}
			if from == t.self || !names(m.Req.Nodes, t.self) {
				continue
			}
			t.mu.Lock()
			on := t.onRequest
			t.mu.Unlock()
			on(*m.Req)
		case m.Res != nil:
			if err := m.Res.valid(); err != nil {
				bad.add(err)
				continue
			}
			if m.Res.Node != from {
				bad.add(fmt.Errorf("probe result of %s relayed as %s", m.Res.Node, from))
				continue
			}
			if from != t.self {
				t.deliver(*m.Res)
			}
		}
	}
	return bad.err("probe messages", from)
}

// KeyProbes is the key the ad-hoc probe channel registers under.
const KeyProbes = "probes"

// Ops bundles the tables of the operator features: ad-hoc probes from
// every region (probes.go) and failure snapshots (snapshots.go).
type Ops struct {
	Probes    *Probes
	Snapshots *Snapshots
}

// NewOps returns the operator tables of one node.
func NewOps(o Options) *Ops {
	return &Ops{Probes: NewProbes(o.Self, nil, o.Logger), Snapshots: NewSnapshots(o.Self, o.Now, o.Logger)}
}
