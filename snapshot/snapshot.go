// Package snapshot records what one region saw of a target at the moment
// its vote turned down: the DNS answers and the resolver that gave them,
// the TLS chain served (subjects, issuers, expiry, SHA-256 fingerprints),
// the HTTP status, response headers (secrets redacted) and the first 4 KiB
// of the body, the phase timings, and a TCP traceroute (TTL-limited SYNs,
// at most 20 hops, 3 s). Capture makes one; Compare lists what differs
// between the regions' snapshots of one incident. A snapshot is a few
// kilobytes of JSON, gzipped on the wire and on disk (Encode).
package snapshot

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vantage-dev/vantage/config"
)

// Bounds of a snapshot.
const (
	// BodyLimit is how much of a response body is kept.
	BodyLimit = 4096
	// MaxHops and TraceBudget bound the traceroute.
	MaxHops     = 20
	TraceBudget = 3 * time.Second
	// MaxEncoded bounds an encoded (gzipped) snapshot.
	MaxEncoded = 24 << 10
	// defaultHTTPTimeout bounds the HTTP request (and the check's timeout,
	// if shorter), so that a snapshot of a hanging target is ready within
	// seconds of the down vote.
	defaultHTTPTimeout = 5 * time.Second
	maxHeaders         = 64
	maxHeaderValue     = 512
	maxChain           = 8
	maxText            = 512
)

// Snapshot is one node's record of a target when its vote turned down.
type Snapshot struct {
	ID     string `json:"id"`
	Check  string `json:"check"`
	Node   string `json:"node"`
	Region string `json:"region"`
	// DownSince is when the node's vote turned down; Taken when the
	// capture began.
	DownSince  time.Time `json:"down_since"`
	Taken      time.Time `json:"taken"`
	DurationMS float64   `json:"duration_ms"`
	Type       string    `json:"type"`
	Target     string    `json:"target"` // passwords and secret query values redacted
	// Probe is the failing probe that turned the vote down, as the check
	// saw it.
	Probe   *Probe      `json:"probe,omitempty"`
	DNS     *DNS        `json:"dns,omitempty"`
	Connect *Connect    `json:"connect,omitempty"`
	TLS     *TLS        `json:"tls,omitempty"`
	HTTP    *HTTP       `json:"http,omitempty"`
	Timings Timings     `json:"timings"`
	Trace   *Traceroute `json:"traceroute,omitempty"`
	Notes   []string    `json:"notes,omitempty"`
}

// Probe is the check's failing result.
type Probe struct {
	Code       string  `json:"code,omitempty"`
	Message    string  `json:"message,omitempty"`
	LatencyMS  float64 `json:"latency_ms,omitempty"`
	Timings    Timings `json:"timings"`
	StatusCode int     `json:"status_code,omitempty"`
	RemoteAddr string  `json:"remote_addr,omitempty"`
}

// DNS is the name resolution of the target's host.
type DNS struct {
	Name     string   `json:"name"`
	Resolver string   `json:"resolver"` // HOST:PORT asked, or "system" (the host's resolver library)
	Rcode    string   `json:"rcode,omitempty"`
	Answers  []Record `json:"answers,omitempty"`
	Addrs    []string `json:"addrs,omitempty"` // the addresses the answers give
	RTTMS    float64  `json:"rtt_ms"`
	Error    string   `json:"error,omitempty"`
}

// Record is one answer record.
type Record struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	TTL   uint32 `json:"ttl"`
	Value string `json:"value"`
}

// Connect is the TCP connection made.
type Connect struct {
	Addr  string  `json:"addr"` // HOST:PORT dialled
	OK    bool    `json:"ok"`
	MS    float64 `json:"ms"`
	Error string  `json:"error,omitempty"`
}

// TLS is the handshake and the chain served.
type TLS struct {
	ServerName  string `json:"server_name"`
	Version     string `json:"version,omitempty"`
	Cipher      string `json:"cipher,omitempty"`
	ALPN        string `json:"alpn,omitempty"`
	Chain       []Cert `json:"chain"`
	Verified    bool   `json:"verified"`
	VerifyError string `json:"verify_error,omitempty"`
	Error       string `json:"error,omitempty"` // the handshake failed
}

// Cert is one certificate of the chain, leaf first.
type Cert struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	SHA256    string    `json:"sha256"` // of the DER, lower-case hex
	Serial    string    `json:"serial"`
	DNSNames  []string  `json:"dns_names,omitempty"`
}

// HTTP is the response.
type HTTP struct {
	Method     string              `json:"method"`
	URL        string              `json:"url"` // the final URL (redacted as Target)
	Redirects  []string            `json:"redirects,omitempty"`
	Status     int                 `json:"status,omitempty"`
	Proto      string              `json:"proto,omitempty"`
	Headers    map[string][]string `json:"headers,omitempty"` // secrets redacted
	Body       string              `json:"body,omitempty"`    // the first BodyLimit bytes, as text
	BodyBytes  int                 `json:"body_bytes"`        // bytes kept
	Truncated  bool                `json:"truncated,omitempty"`
	BodySHA256 string              `json:"body_sha256,omitempty"` // of the bytes kept
	Error      string              `json:"error,omitempty"`
}

// Timings are phase durations in milliseconds; 0 when the phase did not
// happen.
type Timings struct {
	DNSMS       float64 `json:"dns_ms,omitempty"`
	ConnectMS   float64 `json:"connect_ms,omitempty"`
	TLSMS       float64 `json:"tls_ms,omitempty"`
	FirstByteMS float64 `json:"first_byte_ms,omitempty"`
	TotalMS     float64 `json:"total_ms,omitempty"`
}

// Traceroute is the path toward the target.
type Traceroute struct {
	Method  string `json:"method"` // tcp-syn
	Dest    string `json:"dest"`   // IP:PORT
	Hops    []Hop  `json:"hops,omitempty"`
	Reached bool   `json:"reached"`
	Note    string `json:"note,omitempty"` // why it was skipped or cut short
}

// Options tune Capture.
type Options struct {
	// Resolvers are the name servers asked (HOST:PORT); default the
	// system's (/etc/resolv.conf), then the host's resolver library.
	Resolvers []string
	// RootCAs verify the served chain; nil: the system's roots.
	RootCAs *x509.CertPool
	// HTTPTimeout bounds the HTTP request (default 5 s, and never more
	// than the check's timeout).
	HTTPTimeout time.Duration
	// NoTrace skips the traceroute.
	NoTrace bool
	// TraceBudget bounds the traceroute (default 3 s).
	TraceBudget time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Capture records c's target now. It never fails: what could not be
// recorded says why.
func Capture(ctx context.Context, c *config.Check, o Options) *Snapshot {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPTimeout <= 0 {
		o.HTTPTimeout = defaultHTTPTimeout
	}
	if c.Timeout > 0 && c.Timeout < o.HTTPTimeout {
		o.HTTPTimeout = c.Timeout
	}
	if o.TraceBudget <= 0 {
		o.TraceBudget = TraceBudget
	}
	start := o.Now()
	s := &Snapshot{Check: c.Name, Taken: start.UTC(), Type: c.Type, Target: RedactURL(c.TargetString())}

	host, port, err := targetHostPort(c)
	if err != nil {
		s.Notes = append(s.Notes, err.Error())
		s.DurationMS = ms(o.Now().Sub(start))
		return s
	}
	// Name resolution, as the region's resolver answers now.
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		addrs = []netip.Addr{ip.Unmap()}
		s.Notes = append(s.Notes, "the target is an address: no name resolution")
	} else {
		s.DNS, addrs = resolve(ctx, host, c.IP, o.Resolvers)
		s.Timings.DNSMS = s.DNS.RTTMS
	}
	if c.Type == config.TypeDNS {
		s.DNS = queryCheck(ctx, c, o.Resolvers)
	}

	var wg sync.WaitGroup
	if !o.NoTrace {
		dest, ok := traceDest(c, addrs, port)
		if !ok {
			s.Trace = &Traceroute{Method: traceMethod, Note: "no address to trace toward"}
		} else {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.Trace = trace(ctx, dest, o.TraceBudget)
			}()
		}
	}
	switch c.Type {
	case config.TypeHTTP:
		captureHTTP(ctx, s, c, host, addrs, o)
	case config.TypeTCP:
		captureConnect(ctx, s, c, addrs, port, o)
	}
	wg.Wait()
	s.DurationMS = ms(o.Now().Sub(start))
	return s
}

// targetHostPort returns the host the check reaches and its port.
func targetHostPort(c *config.Check) (string, string, error) {
	switch c.Type {
	case config.TypeHTTP:
		u, err := url.Parse(c.URL)
		if err != nil || u.Hostname() == "" {
			return "", "", fmt.Errorf("the check's URL cannot be parsed")
		}
		port := u.Port()
		if port == "" {
			port = "80"
			if u.Scheme == "https" {
				port = "443"
			}
		}
		return u.Hostname(), port, nil
	case config.TypeTCP:
		h, p, err := net.SplitHostPort(c.Target)
		if err != nil {
			return "", "", fmt.Errorf("the check's target is not HOST:PORT")
		}
		return h, p, nil
	case config.TypeICMP:
		return c.Target, "", nil
	case config.TypeDNS:
		if c.Server != "" {
			h, p, err := net.SplitHostPort(c.Server)
			if err == nil {
				return h, p, nil
			}
		}
		return strings.TrimSuffix(c.Target, "."), "", nil
	}
	return "", "", fmt.Errorf("no snapshot for %s checks", c.Type)
}

// traceDest is where the traceroute goes: the first address of the
// family the check uses, at the check's port (80 for icmp, 53 for a dns
// check's server).
func traceDest(c *config.Check, addrs []netip.Addr, port string) (netip.AddrPort, bool) {
	p, _ := strconv.Atoi(port)
	if p == 0 {
		p = 80
		if c.Type == config.TypeDNS {
			p = 53
		}
	}
	for _, a := range addrs {
		if (c.IP == "4" && !a.Is4()) || (c.IP == "6" && a.Is4()) {
			continue
		}
		return netip.AddrPortFrom(a, uint16(p)), true
	}
	return netip.AddrPort{}, false
}

func trace(ctx context.Context, dest netip.AddrPort, budget time.Duration) *Traceroute {
	t := &Traceroute{Method: traceMethod, Dest: dest.String()}
	if dest.Addr().IsLoopback() {
		t.Note = "the target is on this host: nothing to trace"
		return t
	}
	hops, err := traceTCP(ctx, dest, MaxHops, budget)
	if err != nil {
		t.Note = "traceroute skipped: " + err.Error()
		return t
	}
	t.Hops = hops
	if n := len(hops); n > 0 && hops[n-1].Reached {
		t.Reached = true
	} else {
		t.Note = fmt.Sprintf("the target did not answer within %d hops and %s", MaxHops, budget)
	}
	return t
}

// Secrets.

// secretWords mark header and query parameter names whose values are
// redacted.
var secretWords = []string{"auth", "token", "secret", "password", "passwd", "session", "cookie", "api-key", "apikey",
	"api_key", "credential", "signature", "private"}

// Redacted replaces a secret value.
const Redacted = "[redacted]"

// IsSecretName reports whether a header or parameter name may carry a
// secret.
func IsSecretName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// RedactURL hides a URL's password and the values of query parameters
// whose names look secret. Anything else is returned as is.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return s
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "redacted")
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		changed := false
		for k := range q {
			if IsSecretName(k) {
				q[k] = []string{"redacted"}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// Encoding.

// Encode returns s as gzipped JSON, at most MaxEncoded bytes: a snapshot
// that would be larger loses its body first, then its headers.
func Encode(s *Snapshot) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		raw, err := json.Marshal(s)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(raw)
		zw.Close()
		if buf.Len() <= MaxEncoded {
			return buf.Bytes(), nil
		}
		if s.HTTP == nil || attempt > 1 {
			return nil, fmt.Errorf("snapshot: %d bytes encoded, more than %d", buf.Len(), MaxEncoded)
		}
		cp := *s
		h := *s.HTTP
		if attempt == 0 {
			h.Body, h.Truncated = "", true
			cp.Notes = append(append([]string(nil), s.Notes...), "body dropped: the snapshot was too large")
		} else {
			h.Headers = nil
			cp.Notes = append(cp.Notes, "headers dropped: the snapshot was too large")
		}
		cp.HTTP = &h
		s = &cp
	}
}

// Decode reads what Encode wrote.
func Decode(b []byte) (*Snapshot, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	var s Snapshot
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return &s, nil
}

// MakeID is the id of a node's snapshot of check when its vote turned down
// at downSince: the same wherever it is computed.
func MakeID(check, node string, downSince time.Time) string {
	h := sha256.Sum256([]byte(check + "\x00" + node + "\x00" + strconv.FormatInt(downSince.UnixMilli(), 10)))
	return hex.EncodeToString(h[:12])
}

func clipText(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8Start(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

func errText(err error) string {
	if err == nil {
		return ""
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return clipText("timeout: "+err.Error(), maxText)
	}
	return clipText(err.Error(), maxText)
}
