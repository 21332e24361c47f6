package checker

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vantage-dev/vantage/config"
)

const (
	// DefaultBodyLimit is how much of a response body is read when the check
	// sets no body_limit.
	DefaultBodyLimit = 1 << 20
	// MaxRedirects is how many redirects a probe follows before failing with
	// CodeProtocol.
	MaxRedirects = 10
)

var errTooManyRedirects = errors.New("too many redirects")

// HTTPProber probes http and https URLs. Every probe uses a fresh
// connection (its own http.Transport, keep-alives off), so DNS, connect and
// TLS are measured each time; HTTP/1.1 only; proxy environment variables are
// ignored (the target is measured directly).
type HTTPProber struct {
	opts Options
}

var _ Prober = (*HTTPProber)(nil)

// NewHTTPProber returns an http prober using opts.
func NewHTTPProber(opts Options) *HTTPProber { return &HTTPProber{opts: withLogger(opts)} }

// httpState collects what the transport's callbacks observe during one probe
// (all hops of a redirect chain). Callbacks may run on transport goroutines.
type httpState struct {
	mu        sync.Mutex
	ph        Phases
	addr      string // HOST:PORT of the current hop
	connected bool   // the current hop has a TCP connection
	remote    string
	dialErr   error
	dialDone  chan struct{} // closed when the current hop's dial returns
	tlsStart  time.Time
	inTLS     bool
	tlsErr    error
	tlsState  *tls.ConnectionState
	wrote     time.Time
}

// Probe runs one http probe of c. It never panics and returns by ctx's
// deadline.
func (p *HTTPProber) Probe(ctx context.Context, c *config.Check) (r Result) {
	r.Start = time.Now()
	defer guard(p.opts.logger(), c, &r)
	if c == nil {
		return configResult("nil check")
	}
	ctx, cancel := p.opts.withDeadline(ctx)
	defer cancel()
	err := p.probe(ctx, c, &r)
	if err != nil {
		r.fail(err)
	}
	finish(&r, c, time.Since(r.Start))
	p.opts.logger().Debug("checker: http probe", "check", c.Name, "ok", r.OK, "code", r.Code,
		"msg", r.Message, "status", r.StatusCode, "latency", r.Latency)
	return r
}

func (p *HTTPProber) probe(ctx context.Context, c *config.Check, r *Result) error {
	u, err := url.Parse(c.URL)
	if err != nil {
		return perr(CodeConfig, "invalid url %q: %v", c.URL, errors.Unwrap(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return perr(CodeConfig, "invalid url %q: scheme must be http or https", c.URL)
	}
	if u.Host == "" {
		return perr(CodeConfig, "invalid url %q: no host", c.URL)
	}
	method := c.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if c.Body != "" {
		body = strings.NewReader(c.Body)
	}
	st := &httpState{}
	trace := &httptrace.ClientTrace{
		TLSHandshakeStart: func() {
			st.mu.Lock()
			st.tlsStart, st.inTLS = time.Now(), true
			st.mu.Unlock()
		},
		TLSHandshakeDone: func(cs tls.ConnectionState, err error) {
			st.mu.Lock()
			defer st.mu.Unlock()
			st.inTLS = false
			if !st.tlsStart.IsZero() {
				st.ph.TLS += time.Since(st.tlsStart)
			}
			if err != nil {
				st.tlsErr = err
				return
			}
			st.tlsErr = nil
			st.tlsState = &cs
		},
		WroteRequest: func(httptrace.WroteRequestInfo) {
			st.mu.Lock()
			st.wrote = time.Now()
			st.mu.Unlock()
		},
		GotFirstResponseByte: func() {
			st.mu.Lock()
			if !st.wrote.IsZero() {
				st.ph.FirstByte += time.Since(st.wrote)
				st.wrote = time.Time{}
			}
			st.mu.Unlock()
		},
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), method, c.URL, body)
	if err != nil {
		return perr(CodeConfig, "invalid request: %v", err)
	}
	for k, v := range c.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if req.Header.Get("User-Agent") == "" {
		ua := p.opts.UserAgent
		if ua == "" {
			ua = DefaultUserAgent
		}
		req.Header.Set("User-Agent", ua)
	}

	tr := &http.Transport{
		Proxy: nil,
		// The transport detaches dials from the request's context; dial with
		// the probe's own ctx so nothing outlives the probe.
		DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
			done := make(chan struct{})
			st.mu.Lock()
			st.addr, st.connected, st.dialErr, st.tlsErr = addr, false, nil, nil
			st.dialDone = done
			st.mu.Unlock()
			var ph Phases
			conn, err := p.opts.connect(ctx, addr, c.IP, &ph)
			st.mu.Lock()
			defer st.mu.Unlock()
			defer close(done)
			st.ph.DNS += ph.DNS
			st.ph.Connect += ph.Connect
			if err != nil {
				st.dialErr = err
				return nil, err
			}
			st.connected = true
			st.remote = conn.RemoteAddr().String()
			return conn, nil
		},
		TLSClientConfig: &tls.Config{
			RootCAs:            p.opts.RootCAs,
			InsecureSkipVerify: c.InsecureTLS, //nolint:gosec // the check asked for it
		},
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 1 << 20,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !c.FollowRedirects {
				return http.ErrUseLastResponse
			}
			if len(via) > MaxRedirects {
				return errTooManyRedirects
			}
			return nil
		},
	}

	resp, err := client.Do(req)
	st.mu.Lock()
	r.RemoteAddr = st.remote
	st.mu.Unlock()
	defer func() {
		st.mu.Lock()
		r.Phases = st.ph
		st.mu.Unlock()
	}()
	if err != nil {
		return classifyHTTP(ctx, st, u, err, budget(ctx, r.Start))
	}
	defer resp.Body.Close()
	r.StatusCode = resp.StatusCode

	// The certificate is reported whatever the rest of the probe shows.
	cs := resp.TLS
	if cs == nil { // an https URL that redirected to http: report the https hop
		st.mu.Lock()
		cs = st.tlsState
		st.mu.Unlock()
	}
	if cs != nil {
		recordCert(r, c, cs)
	}

	if !statusOK(c.Expect.Status, resp.StatusCode) {
		return perr(CodeHTTPStatus, "status %d, want %s", resp.StatusCode, statusString(c.Expect.Status))
	}
	if err := checkHeaders(resp.Header, c.Expect.Headers); err != nil {
		return err
	}

	limit := c.BodyLimit
	if limit <= 0 {
		limit = DefaultBodyLimit
	}
	buf, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		st.mu.Lock()
		addr := st.remote
		st.mu.Unlock()
		if isTimeout(err) || ctx.Err() != nil {
			return perr(CodeTimeout, "reading body from %s: timed out after %s", addr, budget(ctx, r.Start))
		}
		return perr(CodeProtocol, "reading body from %s: %s", addr, shortErr(err))
	}
	if s := c.Expect.BodyContains; s != "" && !bytes.Contains(buf, []byte(s)) {
		return perr(CodeBodyMismatch, "body does not contain %s%s", quoteShort(s), limitNote(buf, limit))
	}
	if re := c.Expect.BodyRegex; re != nil && !re.Match(buf) {
		return perr(CodeBodyMismatch, "body does not match /%s/%s", re.String(), limitNote(buf, limit))
	}
	if err := checkBodyNot(buf, &c.Expect, limit); err != nil {
		return err
	}
	return checkJSON(buf, c.Expect.JSON, limit)
}

// recordCert fills r's certificate fields from a TLS connection: the
// earliest expiry that matters, and the served leaf's expiry, serial and
// subject. A leaf within expect.cert_expiry of expiry (measured from the
// probe's start) sets CertExpiring; that never fails the probe: the
// warning is the node's to send.
func recordCert(r *Result, c *config.Check, cs *tls.ConnectionState) {
	exp, _ := certExpiry(cs, c.InsecureTLS)
	r.CertExpiry = exp
	if len(cs.PeerCertificates) == 0 || cs.PeerCertificates[0] == nil {
		return
	}
	leaf := cs.PeerCertificates[0]
	r.CertNotAfter = leaf.NotAfter
	if leaf.SerialNumber != nil {
		r.CertSerial = leaf.SerialNumber.Text(16)
	}
	r.CertSubject = leaf.Subject.CommonName
	if r.CertSubject == "" {
		r.CertSubject = leaf.Subject.String()
	}
	r.CertExpiring = c.Expect.CertExpiry > 0 && leaf.NotAfter.Sub(r.Start) < c.Expect.CertExpiry
}

// classifyHTTP classifies an error of http.Client.Do.
func classifyHTTP(ctx context.Context, st *httpState, u *url.URL, err error, limit time.Duration) error {
	if errors.Is(err, errTooManyRedirects) {
		var ue *url.Error
		last := ""
		if errors.As(err, &ue) {
			last = ue.URL
		}
		return perr(CodeProtocol, "more than %d redirects (last to %s)", MaxRedirects, last)
	}
	// The transport returns at the deadline without waiting for a dial in
	// progress; that dial uses the same (now expired) ctx and returns at
	// once: wait for it, so a slow DNS lookup is reported as such.
	st.mu.Lock()
	dialDone := st.dialDone
	st.mu.Unlock()
	if dialDone != nil {
		t := time.NewTimer(500 * time.Millisecond)
		select {
		case <-dialDone:
		case <-t.C:
		}
		t.Stop()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	addr := st.remote
	if addr == "" {
		addr = st.addr
	}
	if addr == "" {
		addr = u.Host
	}
	if st.dialErr != nil {
		return st.dialErr
	}
	if st.tlsErr != nil {
		return classifyTLS(addr, st.tlsErr)
	}
	timedOut := ctx.Err() != nil || isTimeout(err)
	if !st.connected {
		if timedOut {
			return perr(CodeConnectTimeout, "connect %s: timed out", addr)
		}
		return perr(CodeConnect, "connect %s: %s", addr, shortErr(unwrapURL(err)))
	}
	if timedOut {
		if st.inTLS {
			return perr(CodeTimeout, "tls handshake with %s: timed out", addr)
		}
		if limit > 0 {
			return perr(CodeTimeout, "no response from %s within %s", addr, limit)
		}
		return perr(CodeTimeout, "no response from %s before the deadline", addr)
	}
	return perr(CodeProtocol, "http %s: %s", addr, shortErr(unwrapURL(err)))
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// certExpiry returns the earliest NotAfter that matters and its certificate:
// for a verified connection, the chain that lives longest (any verified chain
// suffices) and in it the certificate that expires first; with verification
// off, the earliest of the certificates the server sent.
func certExpiry(cs *tls.ConnectionState, insecure bool) (time.Time, *x509.Certificate) {
	earliest := func(certs []*x509.Certificate) *x509.Certificate {
		var first *x509.Certificate
		for _, c := range certs {
			if c != nil && (first == nil || c.NotAfter.Before(first.NotAfter)) {
				first = c
			}
		}
		return first
	}
	var best *x509.Certificate
	if !insecure {
		for _, chain := range cs.VerifiedChains {
			if m := earliest(chain); m != nil && (best == nil || m.NotAfter.After(best.NotAfter)) {
				best = m
			}
		}
	}
	if best == nil {
		best = earliest(cs.PeerCertificates)
	}
	if best == nil {
		return time.Time{}, nil
	}
	return best.NotAfter, best
}

func statusOK(ranges []config.StatusRange, code int) bool {
	if len(ranges) == 0 {
		return code >= 200 && code <= 299
	}
	for _, r := range ranges {
		if r.Contains(code) {
			return true
		}
	}
	return false
}

func statusString(ranges []config.StatusRange) string {
	if len(ranges) == 0 {
		return "200-299"
	}
	parts := make([]string, 0, len(ranges))
	for _, r := range ranges {
		if r.Min == r.Max {
			parts = append(parts, strconv.Itoa(r.Min))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", r.Min, r.Max))
		}
	}
	return strings.Join(parts, ",")
}

func quoteShort(s string) string {
	const limit = 64
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "..."
	}
	return strconv.Quote(s)
}

func limitNote(buf []byte, limit int64) string {
	if int64(len(buf)) >= limit {
		return fmt.Sprintf(" (first %d bytes read, body_limit)", limit)
	}
	return ""
}
