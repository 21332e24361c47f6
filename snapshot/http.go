package snapshot

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vantage-dev/vantage/config"
)

// dialPinned dials host's addresses as resolved for the snapshot, in
// order, so that the connection goes where the recorded answers point;
// other hosts (redirects) are dialled as usual.
func dialPinned(host string, addrs []netip.Addr, family string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	var pinned []netip.Addr
	for _, a := range addrs {
		if (family == "4" && !a.Is4()) || (family == "6" && a.Is4()) {
			continue
		}
		pinned = append(pinned, a)
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		h, p, err := net.SplitHostPort(addr)
		if err != nil || !strings.EqualFold(h, host) || len(pinned) == 0 {
			return d.DialContext(ctx, network, addr)
		}
		var first error
		for _, a := range pinned {
			conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(a.String(), p))
			if err == nil {
				return conn, nil
			}
			if first == nil {
				first = err
			}
			if ctx.Err() != nil {
				break
			}
		}
		return nil, first
	}
}

// captureHTTP makes the check's request once and records the connection,
// the TLS handshake and chain, the response and the phase timings.
func captureHTTP(ctx context.Context, s *Snapshot, c *config.Check, host string, addrs []netip.Addr, o Options) {
	ctx, cancel := context.WithTimeout(ctx, o.HTTPTimeout)
	defer cancel()
	h := &HTTP{Method: c.Method, URL: RedactURL(c.URL)}
	if h.Method == "" {
		h.Method = http.MethodGet
	}
	s.HTTP = h

	var (
		mu                  sync.Mutex
		connStart, connDone time.Time
		tlsStart, tlsDone   time.Time
		wrote, firstByte    time.Time
		tlsState            *tls.ConnectionState
		tlsErr              error
		connAddr            string
		connErr             error
	)
	trace := &httptrace.ClientTrace{
		ConnectStart: func(_, addr string) {
			mu.Lock()
			connStart, connAddr = time.Now(), addr
			mu.Unlock()
		},
		ConnectDone: func(_, addr string, err error) {
			mu.Lock()
			connDone, connAddr, connErr = time.Now(), addr, err
			mu.Unlock()
		},
		TLSHandshakeStart: func() {
			mu.Lock()
			tlsStart = time.Now()
			mu.Unlock()
		},
		TLSHandshakeDone: func(st tls.ConnectionState, err error) {
			mu.Lock()
			tlsDone, tlsErr = time.Now(), err
			cp := st
			tlsState = &cp
			mu.Unlock()
		},
		WroteRequest: func(httptrace.WroteRequestInfo) {
			mu.Lock()
			wrote = time.Now()
			mu.Unlock()
		},
		GotFirstResponseByte: func() {
			mu.Lock()
			firstByte = time.Now()
			mu.Unlock()
		},
	}
	tr := &http.Transport{
		DialContext:         dialPinned(host, addrs, c.IP),
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // recorded, then verified below
		DisableKeepAlives:   true,
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: o.HTTPTimeout,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		h.Redirects = append(h.Redirects, RedactURL(req.URL.String()))
		if !c.FollowRedirects {
			return http.ErrUseLastResponse
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}}
	var body io.Reader
	if c.Body != "" {
		body = strings.NewReader(c.Body)
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), h.Method, c.URL, body)
	if err != nil {
		h.Error = errText(err)
		return
	}
	for k, v := range c.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "vantage-snapshot")
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		h.Error = errText(err)
	} else {
		h.Status, h.Proto, h.URL = resp.StatusCode, resp.Proto, RedactURL(resp.Request.URL.String())
		h.Headers = redactHeaders(resp.Header)
		buf := make([]byte, BodyLimit+1)
		n, rerr := io.ReadFull(resp.Body, buf)
		resp.Body.Close()
		if n > BodyLimit {
			n, h.Truncated = BodyLimit, true
		}
		if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
			h.Error = "reading the body: " + errText(rerr)
		}
		h.BodyBytes = n
		h.Body = strings.ToValidUTF8(string(buf[:n]), "\uFFFD")
		if n > 0 {
			sum := sha256.Sum256(buf[:n])
			h.BodySHA256 = hex.EncodeToString(sum[:])
		}
		if resp.TLS != nil {
			st := *resp.TLS
			mu.Lock()
			tlsState, tlsErr = &st, nil
			mu.Unlock()
		}
	}
	end := time.Now()

	mu.Lock()
	defer mu.Unlock()
	if !connStart.IsZero() {
		cn := &Connect{Addr: connAddr, OK: connErr == nil, Error: errText(connErr)}
		if !connDone.IsZero() {
			cn.MS = ms(connDone.Sub(connStart))
			s.Timings.ConnectMS = cn.MS
		}
		s.Connect = cn
	}
	if !tlsStart.IsZero() {
		serverName := host
		if req.Host != "" {
			if hh, _, err := net.SplitHostPort(req.Host); err == nil {
				serverName = hh
			} else {
				serverName = req.Host
			}
		}
		s.TLS = tlsInfo(tlsState, tlsErr, serverName, o.RootCAs, end)
		if !tlsDone.IsZero() {
			s.Timings.TLSMS = ms(tlsDone.Sub(tlsStart))
		}
		if c.InsecureTLS {
			s.Notes = append(s.Notes, "the check does not verify certificates (insecure_skip_verify); verified here for the record")
		}
	}
	if !wrote.IsZero() && !firstByte.IsZero() {
		s.Timings.FirstByteMS = ms(firstByte.Sub(wrote))
	}
	s.Timings.TotalMS = ms(end.Sub(start)) + s.Timings.DNSMS
}

// tlsInfo records a handshake: versions, the chain served (leaf first)
// and whether it verifies for serverName.
func tlsInfo(st *tls.ConnectionState, herr error, serverName string, roots *x509.CertPool, now time.Time) *TLS {
	t := &TLS{ServerName: serverName, Chain: []Cert{}}
	if herr != nil {
		t.Error = errText(herr)
	}
	if st == nil {
		return t
	}
	if st.Version != 0 {
		t.Version = tls.VersionName(st.Version)
		t.Cipher = tls.CipherSuiteName(st.CipherSuite)
	}
	t.ALPN = st.NegotiatedProtocol
	for i, cert := range st.PeerCertificates {
		if i == maxChain {
			break
		}
		sum := sha256.Sum256(cert.Raw)
		ce := Cert{Subject: clipText(cert.Subject.String(), 256), Issuer: clipText(cert.Issuer.String(), 256),
			NotBefore: cert.NotBefore.UTC(), NotAfter: cert.NotAfter.UTC(), SHA256: hex.EncodeToString(sum[:]),
			Serial: fmt.Sprintf("%x", cert.SerialNumber)}
		for j, n := range cert.DNSNames {
			if j == 16 {
				break
			}
			ce.DNSNames = append(ce.DNSNames, clipText(n, 128))
		}
		t.Chain = append(t.Chain, ce)
	}
	if len(st.PeerCertificates) == 0 {
		return t
	}
	inter := x509.NewCertPool()
	for _, cert := range st.PeerCertificates[1:] {
		inter.AddCert(cert)
	}
	_, err := st.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: serverName, Roots: roots, Intermediates: inter, CurrentTime: now})
	t.Verified, t.VerifyError = err == nil, errText(err)
	return t
}

// captureConnect records a tcp check's connection.
func captureConnect(ctx context.Context, s *Snapshot, c *config.Check, addrs []netip.Addr, port string, o Options) {
	ctx, cancel := context.WithTimeout(ctx, o.HTTPTimeout)
	defer cancel()
	host, _, _ := net.SplitHostPort(c.Target)
	dial := dialPinned(host, addrs, c.IP)
	start := time.Now()
	conn, err := dial(ctx, "tcp", net.JoinHostPort(host, port))
	cn := &Connect{Addr: net.JoinHostPort(host, port), OK: err == nil, MS: ms(time.Since(start)), Error: errText(err)}
	if conn != nil {
		cn.Addr = conn.RemoteAddr().String()
		conn.Close()
	}
	s.Connect = cn
	s.Timings.ConnectMS = cn.MS
	s.Timings.TotalMS = cn.MS + s.Timings.DNSMS
}

// redactHeaders copies response headers, values of secret-looking ones
// replaced, at most maxHeaders names and maxHeaderValue bytes a value.
func redactHeaders(hd http.Header) map[string][]string {
	names := make([]string, 0, len(hd))
	for k := range hd {
		names = append(names, k)
	}
	slices.Sort(names)
	out := map[string][]string{}
	for i, k := range names {
		if i == maxHeaders {
			break
		}
		for _, v := range hd[k] {
			if IsSecretName(k) {
				v = Redacted
			}
			out[k] = append(out[k], clipText(v, maxHeaderValue))
		}
	}
	return out
}
