package statuspage

import "time"

// Status is a node's view of the cluster: the body of GET /api/v1/status.
// Field names and meanings follow the contract; fields beyond it are
// additions.
type Status struct {
	GeneratedAt time.Time     `json:"generated_at"`
	Node        NodeInfo      `json:"node"`
	Cluster     ClusterInfo   `json:"cluster"`
	Checks      []CheckStatus `json:"checks"`
}

// NodeInfo names the node that answers.
type NodeInfo struct {
	Name    string `json:"name"`
	Region  string `json:"region"`
	Version string `json:"version,omitempty"`
	// Degraded is true while the node cannot write its data directory
	// (disk full, read-only): it keeps probing and voting but does not
	// page; DegradedReason says why.
	Degraded       bool   `json:"degraded"`
	DegradedReason string `json:"degraded_reason,omitempty"`
}

// ClusterInfo is the membership and voting view.
type ClusterInfo struct {
	Members []Member              `json:"members"`
	Quorum  int                   `json:"quorum"`
	Regions map[string]RegionInfo `json:"regions"`
}

// Member is one node as seen in gossip: state alive, suspect, dead or left.
type Member struct {
	Name       string `json:"name"`
	Region     string `json:"region"`
	State      string `json:"state"`
	Addr       string `json:"addr,omitempty"`
	Version    string `json:"version,omitempty"`
	ConfigHash string `json:"config_hash,omitempty"`
	// ConfigMismatch is true when the member's checks config differs from
	// this node's.
	ConfigMismatch bool `json:"config_mismatch,omitempty"`
	// ClockOffsetMS is the member's clock's estimated offset from this
	// node's, in milliseconds (positive: ahead), from its gossip's stamps.
	ClockOffsetMS *float64 `json:"clock_offset_ms,omitempty"`
}

// RegionInfo tells whether a region may vote, and why not.
type RegionInfo struct {
	Eligible bool   `json:"eligible"`
	Reason   string `json:"reason,omitempty"`
}

// CheckStatus is one check's cluster-wide state and per-region votes.
type CheckStatus struct {
	Name       string                 `json:"name"`
	State      string                 `json:"state"`
	Since      time.Time              `json:"since"`
	IncidentID string                 `json:"incident_id"`
	Regions    map[string]*RegionVote `json:"regions"`
	// SuppressedBy lists the checks this one depends on (depends_on) that
	// are down: its incident is shown but pages nobody; ParentIncidentID
	// is the first one's incident.
	SuppressedBy     []string `json:"suppressed_by,omitempty"`
	ParentIncidentID string   `json:"parent_incident_id,omitempty"`
	Type             string   `json:"type,omitempty"`
	Target           string   `json:"target,omitempty"`
	Group            string   `json:"group,omitempty"`
	// CertExpiry is when the earliest certificate that matters of the
	// check's TLS target expires (probe_ssl_earliest_cert_expiry), as this
	// node's latest probe was served; nil when not known (no TLS, or the
	// probe got no certificate). Public: a date, not the target.
	CertExpiry *time.Time `json:"cert_expiry,omitempty"`
}

// RegionVote is one region's current vote on a check and its latest result.
type RegionVote struct {
	Vote      string    `json:"vote"`
	LatencyMS float64   `json:"latency_ms"`
	CheckedAt time.Time `json:"checked_at"`
	Error     string    `json:"error"`
	Message   string    `json:"message,omitempty"`
	Phases    *Phases   `json:"phases,omitempty"`
}

// Phases are a result's phase timings in milliseconds.
type Phases struct {
	DNSMS       float64 `json:"dns_ms"`
	ConnectMS   float64 `json:"connect_ms"`
	TLSMS       float64 `json:"tls_ms"`
	FirstByteMS float64 `json:"first_byte_ms"`
}
