// Package checker runs one probe of a check: one file per protocol (http.go,
// tcp.go, icmp.go, dns.go) behind the Prober interface. Every Result carries
// the total latency, the phase timings that apply and, on failure, a short
// machine code plus a human message. Push checks are not probed: their
// results are the receipts the node counts.
package checker

import (
	"context"
	"time"

	"github.com/vantage-dev/vantage/config"
)

// Error codes of a failed probe. They are stable: they appear in the API,
// in notifications and in the database.
const (
	CodeDNS            = "dns"             // name resolution failed
	CodeConnectRefused = "connect_refused" // RST / ECONNREFUSED
	CodeConnectTimeout = "connect_timeout" // no answer to SYN before the deadline
	CodeUnreachable    = "unreachable"     // no route, network down
	CodeConnect        = "connect"         // any other connect failure
	CodeTLS            = "tls"             // handshake or verification failed
	CodeCertExpiring   = "cert_expiring"   // a certificate expires within expect.cert_expiry
	CodeHTTPStatus     = "http_status"     // status code not in expect.status
	CodeBodyMismatch   = "body_mismatch"   // body_contains / body_regex / banner not found
	CodeTooSlow        = "too_slow"        // slower than expect.max_latency
	CodeTimeout        = "timeout"         // connected, but no (full) answer before timeout
	CodeICMPLoss       = "icmp_loss"       // more echo replies lost than max_loss allows
	CodeICMPPermission = "icmp_permission" // neither datagram nor raw ICMP sockets allowed
	CodeProtocol       = "protocol"        // malformed answer, too many redirects, ...
	CodeConfig         = "config"          // the check cannot run as written (bad URL, unknown type, wrong ip family for a literal address)
	CodeInternal       = "internal"        // a bug in the prober (a recovered panic); never the target's fault
)

// Phases are the timings of a probe's steps; a phase that did not happen is 0.
type Phases struct {
	DNS       time.Duration
	Connect   time.Duration
	TLS       time.Duration
	FirstByte time.Duration // from request written to first response byte
}

// Result is the outcome of one probe.
type Result struct {
	OK         bool
	Start      time.Time
	Latency    time.Duration // total
	Phases     Phases        // Phases.DNS is the name lookup time (a dns probe's whole latency)
	Code       string        // "" when OK
	Message    string        // human-readable; "" when OK
	StatusCode int           // http only: the final response's status code, when one came
	RemoteAddr string        // the address finally connected to (a dns probe: the server that answered), when known
	CertExpiry time.Time

	// dns only
	DNSRcode   string // the response code of the answer (NOERROR, NXDOMAIN...); "" when none came
	DNSAnswers int    // records of the type asked for in the answer section
}

// Prober runs one probe. It must return by ctx's deadline (the check's
// timeout is applied by the caller through ctx) and never panic.
type Prober interface {
	Probe(ctx context.Context, c *config.Check) Result
}
