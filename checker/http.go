package checker

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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

// HTTPProber probes http and https URLs. Every request uses a fresh
// connection (http1.go), so DNS, connect and TLS are measured each time;
// HTTP/1.1 only; proxy environment variables are ignored (the target is
// measured directly).
type HTTPProber struct {
	opts Options
}

var _ Prober = (*HTTPProber)(nil)

// NewHTTPProber returns an http prober using opts.
func NewHTTPProber(opts Options) *HTTPProber { return &HTTPProber{opts: withLogger(opts)} }

// httpState is what one probe observed over all the hops of a redirect
// chain.
type httpState struct {
	start  time.Time
	ph     Phases
	remote string // the latest hop's peer
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
	first, err := p.newRequest(ctx, c)
	if err != nil {
		return err
	}
	st := &httpState{start: r.Start}
	defer func() { r.Phases, r.RemoteAddr = st.ph, st.remote }()
	var (
		resp    *http.Response
		h       *hop
		lastTLS *tls.ConnectionState // the latest https hop's
	)
	via := []*http.Request{first}
	for {
		resp, h, err = p.roundTrip(ctx, c, st, via[len(via)-1])
		if err != nil {
			return err
		}
		if h.tls != nil {
			lastTLS = h.tls
		}
		next, err := nextRequest(c, via, resp)
		if next == nil && err == nil {
			break // resp is the final answer
		}
		h.close()
		if err != nil {
			return err
		}
		via = append(via, next)
	}
	defer h.close()
	r.StatusCode = resp.StatusCode

	// The certificate is reported whatever the rest of the probe shows (an
	// https URL that redirected to http: the https hop's).
	if lastTLS != nil {
		recordCert(r, c, lastTLS)
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
		addr := st.remote
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
