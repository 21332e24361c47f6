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
	CodeCertExpiring   = "cert_expiring"   // no longer returned (see Result.CertExpiring); kept for stored results
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

// Error codes of a failed http assertion (expect.body_not_contains,
// body_not_regex, json and headers). The message names the assertion and
// what was found instead: `$.status == "ok": got "degraded"`.
const (
	CodeAssertBodyNotContains = "assert_body_not_contains"
	CodeAssertBodyNotRegex    = "assert_body_not_regex"
	CodeAssertJSON            = "assert_json"
	CodeAssertHeader          = "assert_header"
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
	// CertExpiry is the earliest NotAfter of the certificates that matter
	// (of the verified chain that lives longest; with verification off, of
	// those the server sent).
	CertExpiry time.Time

	// The leaf certificate an https server served (the last https hop of
	// a redirect chain), whatever the probe's outcome once TLS succeeded;
	// zero without TLS.
	CertNotAfter time.Time
	CertSerial   string // lower-case hex, no separators
	CertSubject  string // the subject's common name, else the whole subject
	// CertExpiring is true when CertNotAfter is within expect.cert_expiry
	// of the probe's start (or past). It does not fail the probe.
	CertExpiring bool

	// dns only
	DNSRcode   string // the response code of the answer (NOERROR, NXDOMAIN...); "" when none came
	DNSAnswers int    // records of the type asked for in the answer section
}

// Prober runs one probe. It must return by ctx's deadline (the check's
// timeout is applied by the caller through ctx) and never panic.
type Prober interface {
	Probe(ctx context.Context, c *config.Check) Result
}
