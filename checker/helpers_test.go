package checker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
)

// All tests talk to servers on loopback only. Host names are resolved by
// mapResolver or by a fake DNS server on loopback, never by the system's
// configured name server.

// runProbe probes c with a fresh ctx of the given timeout and reports the
// wall time the probe took.
func runProbe(t testing.TB, p Prober, c *config.Check, timeout time.Duration) (Result, time.Duration) {
	t.Helper()
	t0 := time.Now() // before the deadline is set: a lower bound on time taken
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r := p.Probe(ctx, c)
	return r, time.Since(t0)
}

func wantOK(t testing.TB, r Result) {
	t.Helper()
	if !r.OK || r.Code != "" || r.Message != "" {
		t.Fatalf("want OK, got OK=%v code=%q message=%q", r.OK, r.Code, r.Message)
	}
}

func wantCode(t testing.TB, r Result, code string, msgParts ...string) {
	t.Helper()
	if r.OK || r.Code != code {
		t.Fatalf("want code %q, got OK=%v code=%q message=%q", code, r.OK, r.Code, r.Message)
	}
	for _, p := range msgParts {
		if !strings.Contains(r.Message, p) {
			t.Errorf("message %q does not contain %q", r.Message, p)
		}
	}
	if r.Message == "" {
		t.Errorf("code %q without a message", r.Code)
	}
}

// mapResolver resolves names from a map; unknown names are "not found".
type mapResolver map[string][]string

func (m mapResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ips, ok := m[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []net.IPAddr
	for _, s := range ips {
		out = append(out, net.IPAddr{IP: net.ParseIP(s)})
	}
	return out, nil
}

// freePort returns a loopback address nobody listens on (listen, then close).
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// freeUDP returns a loopback UDP address nobody listens on: a query sent
// there is refused at once (ICMP port unreachable).
func freeUDP(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

func hasIPv6Loopback() bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// hungListener accepts connections and never answers nor closes them until
// the test ends.
type hungListener struct {
	ln       net.Listener
	mu       sync.Mutex
	conns    []net.Conn
	accepted int
	done     chan struct{}
}

func newHungListener(t testing.TB, network, addr string) *hungListener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	h := &hungListener{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.accepted++
			h.mu.Unlock()
		}
	}()
	t.Cleanup(h.Close)
	return h
}

func (h *hungListener) Addr() string { return h.ln.Addr().String() }

// Accepted is the number of connections accepted so far.
func (h *hungListener) Accepted() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.accepted
}

func (h *hungListener) Close() {
	h.ln.Close()
	<-h.done
	h.mu.Lock()
	for _, c := range h.conns {
		c.Close()
	}
	h.conns = nil
	h.mu.Unlock()
}

// serve runs handle for every connection accepted on a loopback listener.
func serve(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// testPKI is a private CA that issues server certificates.
type testPKI struct {
	ca   *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Vantage Test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testPKI{ca: ca, key: key, pool: pool}
}

var serial struct {
	sync.Mutex
	n int64
}

// leaf issues a certificate for 127.0.0.1, ::1 and localhost valid until notAfter.
func (p *testPKI) leaf(t testing.TB, cn string, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial.Lock()
	serial.n++
	sn := serial.n + 100
	serial.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(sn),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }

func newTLSServer(t testing.TB, cert tls.Certificate, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = quietLog()
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func newServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = quietLog()
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// fakeDNS is a DNS server on loopback UDP that answers every query with
// NXDOMAIN, or never answers when silent.
func fakeDNS(t testing.TB, silent bool) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if silent || n < 12 {
				continue
			}
			q := buf[:n]
			// Question: QNAME labels, then QTYPE and QCLASS.
			i := 12
			for i < len(q) && q[i] != 0 {
				i += int(q[i]) + 1
			}
			end := i + 1 + 4
			if end > len(q) {
				continue
			}
			resp := make([]byte, 12, end)
			copy(resp, q[:2]) // ID
			// QR, opcode 0, RD copied, RA, RCODE 3 (NXDOMAIN).
			binary.BigEndian.PutUint16(resp[2:], 0x8000|uint16(q[2]&0x01)<<8|0x0080|3)
			binary.BigEndian.PutUint16(resp[4:], 1) // QDCOUNT
			resp = append(resp, q[12:end]...)
			pc.WriteTo(resp, from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	addr := pc.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", addr)
		},
	}
}

// checkNoLeak waits until the number of goroutines is back to at most base
// (plus slack), and fails with a dump if it does not settle.
func checkNoLeak(t testing.TB, base, slack int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base+slack {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines did not settle: %d now, %d before\n%s", n, base, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func goroutines() int { return runtime.NumGoroutine() }
