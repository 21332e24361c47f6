package snapshot

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vantage-dev/vantage/config"
)

// dnsServer answers A queries on loopback from answers (name -> address),
// with a CNAME first for names in cnames; other names get NXDOMAIN.
func dnsServer(t *testing.T, answers map[string]string, cnames map[string]string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		name := strings.TrimSuffix(q.Name, ".")
		target := name
		if c, ok := cnames[name]; ok {
			m.Answer = append(m.Answer, &dns.CNAME{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 300}, Target: dns.Fqdn(c)})
			target = c
		}
		addr, ok := answers[target]
		switch {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: dns.Fqdn(target), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(addr)})
		}
		w.WriteMsg(m)
	})
	srv := &dns.Server{PacketConn: pc, Handler: mux}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// chain makes a root, an intermediate and a leaf for names and 127.0.0.1.
func chain(t *testing.T, names ...string) (tls.Certificate, *x509.CertPool, []*x509.Certificate) {
	t.Helper()
	mk := func(tmpl, parent *x509.Certificate, pub, signer any) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	key := func() *ecdsa.PrivateKey {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return k
	}
	now := time.Now()
	rk, ik, lk := key(), key(), key()
	rt := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root", Organization: []string{"Vantage Tests"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	root := mk(rt, rt, &rk.PublicKey, rk)
	it := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test Intermediate"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	inter := mk(it, root, &ik.PublicKey, rk)
	lt := &x509.Certificate{SerialNumber: big.NewInt(0xbeef), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(12 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	leaf := mk(lt, inter, &lk.PublicKey, ik)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return tls.Certificate{Certificate: [][]byte{leaf.Raw, inter.Raw}, PrivateKey: lk}, pool, []*x509.Certificate{leaf, inter}
}

func fp(c *x509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	return hex.EncodeToString(s[:])
}

// A failing https endpoint behind a name our own DNS server resolves: the
// snapshot has the answers and the resolver, the chain served, the
// response with its secrets redacted, the first 4 KiB of the body and the
// timings.
func TestCaptureHTTPSWithDNSAndChain(t *testing.T) {
	cert, roots, certs := chain(t, "api.example.test")
	body := strings.Repeat("<h1>502 Bad Gateway</h1>", 500) // 12 KB
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, "no auth", 401)
			return
		}
		w.Header().Set("Server", "edge-7")
		w.Header().Set("Set-Cookie", "session=abc123")
		w.Header().Set("X-Api-Token", "tok-999")
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		w.Write([]byte(body))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	resolver := dnsServer(t, map[string]string{"edge.example.test": "127.0.0.1"}, map[string]string{"api.example.test": "edge.example.test"})
	c := &config.Check{Name: "api", Type: "http", URL: "https://api.example.test:" + port + "/health?token=hunter2&x=1",
		Method: "GET", Headers: map[string]string{"Authorization": "Bearer s3cret"}, FollowRedirects: true, Timeout: 5 * time.Second}

	s := Capture(context.Background(), c, Options{Resolvers: []string{resolver}, RootCAs: roots, NoTrace: true})

	if s.DNS == nil || s.DNS.Resolver != resolver || s.DNS.Rcode != "NOERROR" || len(s.DNS.Addrs) != 1 || s.DNS.Addrs[0] != "127.0.0.1" {
		t.Fatalf("dns: %+v", s.DNS)
	}
	if len(s.DNS.Answers) != 2 || s.DNS.Answers[0].Type != "CNAME" || s.DNS.Answers[0].Value != "edge.example.test" ||
		s.DNS.Answers[1].Type != "A" || s.DNS.Answers[1].TTL != 60 {
		t.Fatalf("dns answers: %+v", s.DNS.Answers)
	}
	if strings.Contains(s.Target, "hunter2") || !strings.Contains(s.Target, "token=redacted") {
		t.Fatalf("target not redacted: %s", s.Target)
	}
	if s.TLS == nil || len(s.TLS.Chain) != 2 || !s.TLS.Verified || s.TLS.ServerName != "api.example.test" || s.TLS.Version == "" {
		t.Fatalf("tls: %+v", s.TLS)
	}
	for i, want := range certs {
		got := s.TLS.Chain[i]
		if got.SHA256 != fp(want) || got.Subject != want.Subject.String() || got.Issuer != want.Issuer.String() ||
			!got.NotAfter.Equal(want.NotAfter.UTC().Truncate(time.Second)) {
			t.Fatalf("chain[%d]: %+v, want %s issued by %s", i, got, want.Subject, want.Issuer)
		}
	}
	if s.TLS.Chain[0].Serial != "beef" || s.TLS.Chain[0].DNSNames[0] != "api.example.test" || s.TLS.Chain[1].Issuer != "CN=Test Root,O=Vantage Tests" {
		t.Fatalf("leaf: %+v", s.TLS.Chain)
	}
	h := s.HTTP
	if h == nil || h.Status != 502 || h.Headers["Server"][0] != "edge-7" || h.Headers["Set-Cookie"][0] != Redacted ||
		h.Headers["X-Api-Token"][0] != Redacted || h.Headers["Content-Type"][0] != "text/html" {
		t.Fatalf("http: %+v", h)
	}
	if h.BodyBytes != BodyLimit || !h.Truncated || h.Body != body[:BodyLimit] {
		t.Fatalf("body: %d bytes, truncated %v", h.BodyBytes, h.Truncated)
	}
	sum := sha256.Sum256([]byte(body[:BodyLimit]))
	if h.BodySHA256 != hex.EncodeToString(sum[:]) {
		t.Fatal("body hash")
	}
	if s.Connect == nil || !s.Connect.OK || s.Connect.Addr != "127.0.0.1:"+port {
		t.Fatalf("connect: %+v", s.Connect)
	}
	if s.Timings.ConnectMS <= 0 || s.Timings.TLSMS <= 0 || s.Timings.FirstByteMS <= 0 || s.Timings.TotalMS <= 0 || s.Timings.DNSMS <= 0 {
		t.Fatalf("timings: %+v", s.Timings)
	}

	// Without the roots: the same chain, not verified, and why.
	s2 := Capture(context.Background(), c, Options{Resolvers: []string{resolver}, NoTrace: true})
	if s2.TLS.Verified || !strings.Contains(s2.TLS.VerifyError, "unknown authority") || s2.TLS.Chain[0].SHA256 != fp(certs[0]) {
		t.Fatalf("unverified chain: %+v", s2.TLS)
	}

	// Small once encoded, and read back whole.
	b, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("snapshot: %d bytes encoded (gzip JSON)", len(b))
	if len(b) > 8<<10 {
		t.Fatalf("snapshot of %d bytes", len(b))
	}
	back, err := Decode(b)
	if err != nil || back.HTTP.Body != s.HTTP.Body || back.TLS.Chain[1].SHA256 != s.TLS.Chain[1].SHA256 {
		t.Fatalf("decode: %v", err)
	}
}

// A name the resolver does not know: NXDOMAIN recorded, no connection.
func TestCaptureNXDomain(t *testing.T) {
	resolver := dnsServer(t, map[string]string{}, nil)
	c := &config.Check{Name: "gone", Type: "tcp", Target: "gone.example.test:443", Timeout: 2 * time.Second}
	s := Capture(context.Background(), c, Options{Resolvers: []string{resolver}})
	if s.DNS.Rcode != "NXDOMAIN" || len(s.DNS.Addrs) != 0 || s.Connect == nil || s.Connect.OK {
		t.Fatalf("%+v %+v", s.DNS, s.Connect)
	}
	if s.Trace == nil || s.Trace.Note == "" {
		t.Fatalf("trace %+v", s.Trace)
	}
}

// Two resolvers that disagree, as two regions would see them: Compare says
// which region resolved what.
func TestCompareRegions(t *testing.T) {
	good := dnsServer(t, map[string]string{"api.example.test": "127.0.0.1"}, nil)
	bad := dnsServer(t, map[string]string{"api.example.test": "127.0.0.2"}, nil)
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	t.Cleanup(ok.Close)
	_, port, _ := net.SplitHostPort(ok.Listener.Addr().String())
	c := &config.Check{Name: "api", Type: "http", URL: "http://api.example.test:" + port + "/", Method: "GET", Timeout: 2 * time.Second}
	var snaps []*Snapshot
	for _, r := range []struct{ region, resolver string }{{"ap-south", bad}, {"eu-west", good}, {"us-east", good}} {
		s := Capture(context.Background(), c, Options{Resolvers: []string{r.resolver}, NoTrace: true})
		s.Region, s.Node = r.region, r.region+"-1"
		snaps = append(snaps, s)
	}
	diffs := Compare(snaps)
	byField := map[string]Difference{}
	for _, d := range diffs {
		byField[d.Field] = d
	}
	want := "ap-south resolved api.example.test to 127.0.0.2; eu-west and us-east to 127.0.0.1"
	if d := byField["dns.addrs"]; d.Summary != want {
		t.Fatalf("dns.addrs: %q\nall: %+v", d.Summary, diffs)
	}
	if _, ok := byField["dns.resolver"]; !ok {
		t.Fatal("the resolvers differ")
	}
	if d, ok := byField["http.status"]; !ok || !strings.HasPrefix(d.Summary, "ap-south got no response") {
		t.Fatalf("http.status: %+v", d)
	}
	if d := Compare(snaps[1:]); len(d) != 0 {
		t.Fatalf("two regions that agree differ: %+v", d)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pw@h.example/p?api_key=1&q=2": "https://user:redacted@h.example/p?api_key=redacted&q=2",
		"https://h.example/p?q=2":                   "https://h.example/p?q=2",
		"db.example:5432":                           "db.example:5432",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
