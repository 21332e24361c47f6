package checker

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"github.com/vantage-dev/vantage/config"
)

// Options configure the probers. The zero value is ready to use: system
// resolver, net.Dialer, system root CAs, no logging.
type Options struct {
	// Logger receives debug lines about probes and errors about recovered
	// panics. Nil discards.
	Logger *slog.Logger

	// Resolver resolves host names; nil uses net.DefaultResolver. Tests and
	// split-horizon setups inject their own. Names under .invalid (RFC 6761)
	// are refused without asking it.
	Resolver Resolver

	// DialContext opens TCP connections; address is always a literal
	// IP:PORT (resolution and the ip family are handled before). Nil uses a
	// plain net.Dialer. Used by tests and to bind a source address.
	DialContext func(ctx context.Context, network, address string) (net.Conn, error)

	// RootCAs are the CAs trusted for https checks; nil uses the system pool.
	// Set it for targets behind a private CA (and in tests).
	RootCAs *x509.CertPool

	// UserAgent of http probes unless the check sets a User-Agent header;
	// default DefaultUserAgent.
	UserAgent string

	// FallbackDelay is how long a connection attempt to one address may stay
	// pending before the next address is tried in parallel (Happy Eyeballs);
	// 0 means DefaultFallbackDelay, negative means strictly sequential.
	FallbackDelay time.Duration

	// DefaultTimeout bounds a probe whose ctx has no deadline; 0 means
	// DefaultTimeout (10s).
	DefaultTimeout time.Duration

	// ICMPListen opens an ICMP socket (network is "udp4", "udp6", "ip4:icmp"
	// or "ip6:ipv6-icmp"); nil uses golang.org/x/net/icmp.ListenPacket.
	// Tests inject failures here.
	ICMPListen func(network, address string) (net.PacketConn, error)

	// ICMPInterval spaces the echo requests of one probe; 0 means 100ms. It is
	// shortened when the probe's deadline would not leave time for replies.
	ICMPInterval time.Duration

	// DNSServers are the name servers (IP:PORT) asked by dns checks that
	// name no server; nil reads them from ResolvConf. Tests and hosts whose
	// resolv.conf points at a local stub set them.
	DNSServers []string

	// ResolvConf is the file the system's name servers are read from;
	// "" means DefaultResolvConf (/etc/resolv.conf).
	ResolvConf string
}

// withLogger returns opts with a non-nil Logger, so probes need not build one.
func withLogger(opts Options) Options {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return opts
}

func (o *Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Checker runs any check, dispatching on its type. It holds no per-probe
// state: Probe may be called from any number of goroutines.
type Checker struct {
	HTTP *HTTPProber
	TCP  *TCPProber
	ICMP *ICMPProber
	DNS  *DNSProber
}

var _ Prober = (*Checker)(nil)

// New returns a Checker whose probers share opts.
func New(opts Options) *Checker {
	return &Checker{
		HTTP: NewHTTPProber(opts),
		TCP:  NewTCPProber(opts),
		ICMP: NewICMPProber(opts),
		DNS:  NewDNSProber(opts),
	}
}

// Probe runs one probe of c with the prober of c.Type.
func (k *Checker) Probe(ctx context.Context, c *config.Check) Result {
	if c == nil {
		return configResult("nil check")
	}
	switch c.Type {
	case config.TypeHTTP:
		if k.HTTP != nil {
			return k.HTTP.Probe(ctx, c)
		}
	case config.TypeTCP:
		if k.TCP != nil {
			return k.TCP.Probe(ctx, c)
		}
	case config.TypeICMP:
		if k.ICMP != nil {
			return k.ICMP.Probe(ctx, c)
		}
	case config.TypeDNS:
		if k.DNS != nil {
			return k.DNS.Probe(ctx, c)
		}
	case config.TypePush:
		// A push check's results are the receipts the node counts; it is
		// never scheduled, so this is a caller's mistake.
		return configResult(fmt.Sprintf("push check %q is not probed: the job reports to /api/v1/push/%s", c.Name, c.Name))
	default:
		return configResult(fmt.Sprintf("unknown check type %q", c.Type))
	}
	return configResult(fmt.Sprintf("no %s prober configured", c.Type))
}

func configResult(msg string) Result {
	return Result{Start: time.Now(), Code: CodeConfig, Message: msg}
}

// guard turns a panic in a prober into a CodeInternal result.
func guard(log *slog.Logger, c *config.Check, r *Result) {
	if v := recover(); v != nil {
		name := ""
		if c != nil {
			name = c.Name
		}
		log.Error("checker: panic in probe", "check", name, "panic", v, "stack", string(debug.Stack()))
		*r = Result{Start: r.Start, Latency: time.Since(r.Start), Code: CodeInternal, Message: fmt.Sprintf("internal error: %v", v)}
		if r.Start.IsZero() {
			r.Start = time.Now()
		}
	}
}

// finish sets the total latency and applies expect.max_latency to an
// otherwise successful result.
func finish(r *Result, c *config.Check, lat time.Duration) {
	r.Latency = lat
	if r.Code != "" {
		r.OK = false
		return
	}
	if c.Expect.MaxLatency > 0 && lat > c.Expect.MaxLatency {
		r.OK = false
		r.Code = CodeTooSlow
		r.Message = fmt.Sprintf("took %s, more than max_latency %s", roundDur(lat), c.Expect.MaxLatency)
		return
	}
	r.OK = true
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d
}
