package statuspage

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// Ad-hoc probes from every region: POST /api/v1/probe (token).

// ProbeRequest is the body of POST /api/v1/probe.
type ProbeRequest struct {
	// Target is a URL (http), HOST:PORT (tcp), a host (icmp) or a name (dns).
	Target string `json:"target"`
	// Type is http, tcp, icmp or dns; "" guesses from Target: a URL is
	// http, HOST:PORT tcp, anything else icmp.
	Type string `json:"type,omitempty"`
	// Timeout is a Go duration (default 5s, at most 30s).
	Timeout string `json:"timeout,omitempty"`
	Record  string `json:"record,omitempty"` // dns: A (default), AAAA, CNAME, MX, TXT, NS, SOA
	Server  string `json:"server,omitempty"` // dns: HOST:PORT; default the system resolver
	IP      string `json:"ip,omitempty"`     // "4", "6" or "any" (default)
}

// ProbeAnswer is the answer to POST /api/v1/probe: one line per region and
// the verdict the quorum rules would give.
type ProbeAnswer struct {
	ID        string        `json:"id"`
	Type      string        `json:"type"`
	Target    string        `json:"target"`
	TimeoutMS int64         `json:"timeout_ms"`
	Started   time.Time     `json:"started"`
	ElapsedMS float64       `json:"elapsed_ms"`
	Regions   []RegionProbe `json:"regions"`
	// Verdict is up, down or unknown: the state the quorum rules give
	// when each region's vote is its one probe (a failure votes down).
	Verdict  string   `json:"verdict"`
	Quorum   int      `json:"quorum"`
	Down     []string `json:"down"`      // regions whose probe failed
	Up       []string `json:"up"`        // regions whose probe passed
	NoAnswer []string `json:"no_answer"` // regions that could not tell (no answer, refused, no node)
}

// RegionProbe is one region's ad-hoc probe.
type RegionProbe struct {
	Region string `json:"region"`
	Node   string `json:"node,omitempty"` // the node asked; "" when the region has no node alive
	// State is up, down or no_answer (refused, not answered in time, or no
	// node alive).
	State       string  `json:"state"`
	LatencyMS   float64 `json:"latency_ms,omitempty"`
	DNSMS       float64 `json:"dns_ms,omitempty"`
	ConnectMS   float64 `json:"connect_ms,omitempty"`
	TLSMS       float64 `json:"tls_ms,omitempty"`
	FirstByteMS float64 `json:"first_byte_ms,omitempty"`
	Code        string  `json:"code,omitempty"`
	Message     string  `json:"message,omitempty"`
	StatusCode  int     `json:"status_code,omitempty"`
	RemoteAddr  string  `json:"remote_addr,omitempty"`
	DNSRcode    string  `json:"dns_rcode,omitempty"`
	// Note says why a region has no result.
	Note string `json:"note,omitempty"`
}

// Errors of an AdhocProber.
var (
	// ErrBadProbe wraps what is wrong with a request (400).
	ErrBadProbe = errors.New("bad probe request")
	// ErrProbeRateLimited: too many requests (429); RetryAfter says when.
	ErrProbeRateLimited = errors.New("too many probe requests")
)

// RateLimitError is ErrProbeRateLimited with the time to wait.
type RateLimitError struct{ RetryAfter time.Duration }

func (e *RateLimitError) Error() string {
	return "too many probe requests: try again in " + e.RetryAfter.Round(time.Second).String()
}

// Unwrap makes errors.Is(err, ErrProbeRateLimited) true.
func (e *RateLimitError) Unwrap() error { return ErrProbeRateLimited }

// AdhocProber runs an ad-hoc probe from every region (the node).
type AdhocProber interface {
	ProbeEverywhere(ctx context.Context, req ProbeRequest) (*ProbeAnswer, error)
}

func (s *Server) registerProbeAPI() {
	s.mux.HandleFunc("POST /api/v1/probe", s.postProbe)
}

func (s *Server) postProbe(w http.ResponseWriter, r *http.Request) {
	if !s.authorizeToken(w, r) {
		return
	}
	p, ok := s.opts.Source.(AdhocProber)
	if !ok {
		writeErr(w, http.StatusNotImplemented, "ad-hoc probes are not available on this server")
		return
	}
	var req ProbeRequest
	if !decode(w, r, &req) {
		return
	}
	ans, err := p.ProbeEverywhere(r.Context(), req)
	var rl *RateLimitError
	switch {
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", strconv.Itoa(int(rl.RetryAfter.Seconds()+0.999)))
		writeErr(w, http.StatusTooManyRequests, err.Error())
		return
	case errors.Is(err, ErrBadProbe):
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	case err != nil:
		writeErr(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, r, ans, s.opts.Logger)
}
