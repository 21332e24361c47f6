package checker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults used when Options leaves a field zero.
const (
	DefaultUserAgent     = "Vantage/1 (+uptime check)"
	DefaultTimeout       = 10 * time.Second       // when ctx carries no deadline
	DefaultFallbackDelay = 300 * time.Millisecond // RFC 8305 connection attempt delay
)

// Resolver resolves host names; *net.Resolver implements it.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// probeError is a failure already classified into one of the Code* values.
type probeError struct {
	code string
	msg  string
}

func (e *probeError) Error() string { return e.msg }

func perr(code, format string, args ...any) *probeError {
	return &probeError{code: code, msg: fmt.Sprintf(format, args...)}
}

// fail fills r with the classified error err.
func (r *Result) fail(err error) {
	var pe *probeError
	if !errors.As(err, &pe) {
		pe = &probeError{code: CodeProtocol, msg: err.Error()}
	}
	r.OK = false
	r.Code = pe.code
	r.Message = pe.msg
}

// withDeadline makes sure ctx has a deadline (DefaultTimeout or
// Options.DefaultTimeout when it has none) and is cancelled when the probe ends.
func (o *Options) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	d := o.DefaultTimeout
	if d <= 0 {
		d = DefaultTimeout
	}
	return context.WithTimeout(ctx, d)
}

// budget returns how long ctx had left at start, for messages.
func budget(ctx context.Context, start time.Time) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	return dl.Sub(start).Round(time.Millisecond)
}

// family normalises a check's ip key: "4", "6" or "" (any).
func family(ip string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(ip)) {
	case "", "any":
		return "", nil
	case "4", "ipv4", "ip4":
		return "4", nil
	case "6", "ipv6", "ip6":
		return "6", nil
	}
	return "", perr(CodeConfig, "invalid ip family %q (want 4, 6 or any)", ip)
}

func familyName(f string) string {
	if f == "6" {
		return "IPv6"
	}
	return "IPv4"
}

func matchFamily(a netip.Addr, f string) bool {
	switch f {
	case "4":
		return a.Is4()
	case "6":
		return a.Is6()
	}
	return true
}

// isSpecialInvalid reports names under the reserved .invalid TLD (RFC 6761
// §6.4): they never resolve, so no query is sent.
func isSpecialInvalid(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "invalid" || strings.HasSuffix(h, ".invalid")
}

// resolve returns the addresses of host usable with the family ipKey, in
// the order they should be tried, and whether DNS was consulted (false for
// literal addresses). For "any", IPv6 and IPv4 addresses are interleaved,
// IPv6 first (RFC 8305).
func (o *Options) resolve(ctx context.Context, host, ipKey string) ([]netip.Addr, bool, error) {
	f, err := family(ipKey)
	if err != nil {
		return nil, false, err
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return nil, false, perr(CodeConfig, "no host to connect to")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		if !matchFamily(a, f) {
			return nil, false, perr(CodeConfig, "%s is not an %s address (ip: %q)", host, familyName(f), ipKey)
		}
		return []netip.Addr{a}, false, nil
	}
	if isSpecialInvalid(host) {
		return nil, true, perr(CodeDNS, "lookup %s: no such host", host)
	}
	r := o.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ips, err := r.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, true, classifyDNS(host, err)
	}
	var v4, v6 []netip.Addr
	for _, ip := range ips {
		a, ok := netip.AddrFromSlice(ip.IP)
		if !ok {
			continue
		}
		a = a.Unmap()
		if a.Is6() && ip.Zone != "" {
			a = a.WithZone(ip.Zone)
		}
		if !matchFamily(a, f) {
			continue
		}
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	if len(v4)+len(v6) == 0 {
		if f == "" {
			return nil, true, perr(CodeDNS, "lookup %s: no addresses", host)
		}
		return nil, true, perr(CodeDNS, "lookup %s: no %s address (ip: %q)", host, familyName(f), ipKey)
	}
	out := make([]netip.Addr, 0, len(v4)+len(v6))
	for i := 0; i < len(v4) || i < len(v6); i++ {
		if i < len(v6) {
			out = append(out, v6[i])
		}
		if i < len(v4) {
			out = append(out, v4[i])
		}
	}
	return out, true, nil
}

func classifyDNS(host string, err error) *probeError {
	var de *net.DNSError
	if errors.As(err, &de) {
		switch {
		case de.IsNotFound:
			return perr(CodeDNS, "lookup %s: no such host", host)
		case de.IsTimeout:
			return perr(CodeDNS, "lookup %s: timed out", host)
		}
		return perr(CodeDNS, "lookup %s: %s", host, de.Err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return perr(CodeDNS, "lookup %s: timed out", host)
	}
	if errors.Is(err, context.Canceled) {
		return perr(CodeDNS, "lookup %s: canceled", host)
	}
	return perr(CodeDNS, "lookup %s: %s", host, shortErr(err))
}

// parsePort accepts a number or a service name from /etc/services.
func parsePort(p string) (uint16, error) {
	if n, err := strconv.ParseUint(p, 10, 16); err == nil {
		return uint16(n), nil
	}
	n, err := net.LookupPort("tcp", p)
	if err != nil || n <= 0 || n > 65535 {
		return 0, perr(CodeConfig, "invalid port %q", p)
	}
	return uint16(n), nil
}

// shortErr is the innermost useful text of err: the errno text for system
// call errors ("connection refused"), else err's own text.
func shortErr(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by peer"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// classifyConnect classifies a failure to establish a TCP connection to addr.
func classifyConnect(addr string, err error) *probeError {
	var pe *probeError
	if errors.As(err, &pe) {
		return pe
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return perr(CodeConnectRefused, "connect %s: connection refused", addr)
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EAFNOSUPPORT),
		errors.Is(err, syscall.ENETDOWN), errors.Is(err, syscall.EHOSTDOWN):
		return perr(CodeUnreachable, "connect %s: %s", addr, shortErr(err))
	case isTimeout(err):
		return perr(CodeConnectTimeout, "connect %s: timed out", addr)
	case errors.Is(err, context.Canceled):
		return perr(CodeConnectTimeout, "connect %s: canceled", addr)
	}
	return perr(CodeConnect, "connect %s: %s", addr, shortErr(err))
}

// classifyTLS classifies a failed TLS handshake with addr (a connection existed).
func classifyTLS(addr string, err error) *probeError {
	// The probe closes its connection when ctx ends: a closed connection
	// during the handshake is the deadline too.
	if isTimeout(err) || errors.Is(err, context.Canceled) || errors.Is(err, net.ErrClosed) {
		return perr(CodeTimeout, "tls handshake with %s: timed out", addr)
	}
	var (
		cve *tls.CertificateVerificationError
		uae x509.UnknownAuthorityError
		he  x509.HostnameError
		cie x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &uae):
		return perr(CodeTLS, "tls %s: certificate signed by unknown authority", addr)
	case errors.As(err, &he):
		return perr(CodeTLS, "tls %s: %s", addr, he.Error())
	case errors.As(err, &cie):
		return perr(CodeTLS, "tls %s: %s", addr, cie.Error())
	case errors.As(err, &cve):
		return perr(CodeTLS, "tls %s: %s", addr, cve.Err)
	}
	return perr(CodeTLS, "tls %s: %s", addr, strings.TrimPrefix(shortErr(err), "tls: "))
}

// dialFunc returns Options.DialContext or a plain net.Dialer without TCP
// keep-alive: a probe's connection carries one exchange within its
// timeout, so keep-alive probes would never be sent, and setting them up
// is four system calls per probe.
func (o *Options) dialFunc() func(ctx context.Context, network, address string) (net.Conn, error) {
	if o.DialContext != nil {
		return o.DialContext
	}
	d := net.Dialer{KeepAlive: -1}
	return d.DialContext
}

type dialResult struct {
	conn net.Conn
	addr string
	err  error
}

// dialAddrs connects to port on one of addrs, tried in order. The next
// attempt starts as soon as the previous one fails or, while it is still
// pending, after the fallback delay (Happy Eyeballs, RFC 8305); the first
// connection established wins and the others are closed. The error
// returned is the first failure, already classified.
func (o *Options) dialAddrs(ctx context.Context, addrs []netip.Addr, port uint16) (net.Conn, error) {
	dial := o.dialFunc()
	if len(addrs) == 0 {
		return nil, perr(CodeDNS, "no address to connect to")
	}
	if len(addrs) == 1 {
		addr := netip.AddrPortFrom(addrs[0], port).String()
		c, err := dial(ctx, "tcp", addr)
		if err != nil {
			return nil, classifyConnect(addr, err)
		}
		return c, nil
	}
	delay := o.FallbackDelay
	if delay == 0 {
		delay = DefaultFallbackDelay
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan dialResult, len(addrs))
	next, pending := 0, 0
	start := func() {
		addr := netip.AddrPortFrom(addrs[next], port).String()
		next++
		pending++
		go func() {
			c, err := dial(ctx, "tcp", addr)
			results <- dialResult{c, addr, err}
		}()
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var firstErr error
	for {
		if pending == 0 {
			if next == len(addrs) {
				return nil, firstErr
			}
			start()
		}
		var fallback <-chan time.Time
		if next < len(addrs) && delay > 0 {
			if timer == nil {
				timer = time.NewTimer(delay)
			} else {
				timer.Reset(delay)
			}
			fallback = timer.C
		}
		select {
		case r := <-results:
			pending--
			if r.err == nil {
				cancel()
				if pending > 0 {
					// Close the losers once their (cancelled) attempts return.
					go func(n int) {
						for ; n > 0; n-- {
							if l := <-results; l.conn != nil {
								l.conn.Close()
							}
						}
					}(pending)
				}
				return r.conn, nil
			}
			if firstErr == nil {
				firstErr = classifyConnect(r.addr, r.err)
			}
			if next < len(addrs) && ctx.Err() == nil {
				start() // a failure moves on at once
			}
		case <-fallback:
			start()
		}
	}
}

// connect resolves hostport (HOST:PORT) for the ip family ipKey and connects,
// recording the DNS and Connect phases in ph. The connection is closed when
// ctx ends, so nothing outlives the probe.
func (o *Options) connect(ctx context.Context, hostport, ipKey string, ph *Phases) (net.Conn, error) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, perr(CodeConfig, "invalid address %q: want HOST:PORT", hostport)
	}
	port, err := parsePort(p)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	addrs, looked, err := o.resolve(ctx, host, ipKey)
	if looked {
		ph.DNS += time.Since(t0)
	}
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	conn, err := o.dialAddrs(ctx, addrs, port)
	ph.Connect += time.Since(t1)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	context.AfterFunc(ctx, func() { conn.Close() })
	return conn, nil
}
