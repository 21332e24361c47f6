package checker

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vantage-dev/vantage/config"
)

// testZone answers like a small authoritative server for the .test names
// the dns tests ask about. It counts the queries it gets over TCP.
type testZone struct {
	tcpQueries atomic.Int32
}

func rr(t testing.TB, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (z *testZone) handler(t testing.TB) dns.HandlerFunc {
	records := map[string][]dns.RR{}
	for _, s := range []string{
		"ok.test. 60 IN A 192.0.2.1",
		"ok.test. 60 IN A 192.0.2.2",
		"ok.test. 60 IN AAAA 2001:db8::1",
		"ok.test. 60 IN MX 10 mx1.ok.test.",
		"ok.test. 60 IN MX 20 mx2.ok.test.",
		`ok.test. 60 IN TXT "v=spf1 " "-all"`,
		"ok.test. 60 IN NS ns1.ok.test.",
		"ok.test. 60 IN SOA ns1.ok.test. hostmaster.ok.test. 2026113001 7200 3600 1209600 300",
		"www.ok.test. 60 IN CNAME ok.test.",
		"slowish.test. 60 IN A 192.0.2.3",
	} {
		r := rr(t, s)
		k := r.Header().Name + "/" + dns.TypeToString[r.Header().Rrtype]
		records[k] = append(records[k], r)
	}
	for i := range 100 {
		r := rr(t, "big.test. 60 IN A 198.51.100."+strconv.Itoa(i+1))
		records["big.test./A"] = append(records["big.test./A"], r)
	}
	return func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		name, qtype := strings.ToLower(q.Question[0].Name), q.Question[0].Qtype
		tcp := w.RemoteAddr().Network() == "tcp"
		if tcp {
			z.tcpQueries.Add(1)
		}
		switch name {
		case "missing.test.":
			m.Rcode = dns.RcodeNameError
		case "broken.test.":
			m.Rcode = dns.RcodeServerFailure
		case "refused.test.":
			m.Rcode = dns.RcodeRefused
		case "notimp.test.":
			m.Rcode = dns.RcodeNotImplemented
		case "empty.test.":
		case "big.test.":
			if !tcp {
				m.Truncated = true // too big for UDP: ask again over TCP
				break
			}
			m.Answer = records["big.test./A"]
		case "slowish.test.":
			time.Sleep(200 * time.Millisecond)
			m.Answer = records[name+"/"+dns.TypeToString[qtype]]
		default:
			m.Answer = records[name+"/"+dns.TypeToString[qtype]]
			if len(m.Answer) == 0 && len(records[name+"/CNAME"]) > 0 {
				m.Answer = records[name+"/CNAME"]
			}
		}
		w.WriteMsg(m)
	}
}

// startDNS runs a DNS server for h on one loopback port, over UDP and TCP,
// and returns its address.
func startDNS(t testing.TB, h dns.Handler) string {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	for i := 0; ; i++ {
		var err error
		ln, err = net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		pc, err = net.ListenPacket("udp4", ln.Addr().String())
		if err == nil {
			break
		}
		ln.Close()
		if i == 20 {
			t.Fatal(err)
		}
	}
	for _, srv := range []*dns.Server{{Listener: ln, Handler: h}, {PacketConn: pc, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.ActivateAndServe()
		}()
		<-started
		t.Cleanup(func() {
			srv.Shutdown()
			<-done
		})
	}
	return ln.Addr().String()
}

// silentUDP is a UDP socket on loopback that reads queries and never
// answers.
func silentUDP(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String()
}

func dnsCheck(name, record, server string) *config.Check {
	return &config.Check{Name: "d", Type: config.TypeDNS, Target: name, Record: record, Server: server,
		Expect: config.Expect{Rcode: "NOERROR"}}
}

func TestDNSOK(t *testing.T) {
	z := &testZone{}
	addr := startDNS(t, z.handler(t))
	p := NewDNSProber(Options{})
	c := dnsCheck("ok.test", "", addr)
	c.Expect.Answers = []string{"192.0.2.2"}
	r, _ := runProbe(t, p, c, 5*time.Second)
	wantOK(t, r)
	if r.DNSRcode != "NOERROR" || r.DNSAnswers != 2 || r.RemoteAddr != addr {
		t.Errorf("rcode %q answers %d remote %q", r.DNSRcode, r.DNSAnswers, r.RemoteAddr)
	}
	if r.Phases.DNS <= 0 || r.Phases.DNS != r.Latency || r.Phases.Connect != 0 || r.Phases.TLS != 0 || r.Phases.FirstByte != 0 {
		t.Errorf("phases %+v, latency %v: want the lookup as the total", r.Phases, r.Latency)
	}
	if z.tcpQueries.Load() != 0 {
		t.Errorf("%d queries over TCP, want UDP only", z.tcpQueries.Load())
	}
	// Through the Checker, as the node runs it; the zero Expect.Rcode is NOERROR.
	c.Expect.Rcode = ""
	r, _ = runProbe(t, New(Options{}), c, 5*time.Second)
	wantOK(t, r)
}

func TestDNSRecordTypes(t *testing.T) {
	addr := startDNS(t, (&testZone{}).handler(t))
	p := NewDNSProber(Options{})
	for _, tc := range []struct {
		name, record string
		answers      []string
		ok           bool
	}{
		{"ok.test.", "A", []string{"192.0.2.1", "192.0.2.2"}, true},
		{"OK.TEST", "A", nil, true},
		{"ok.test", "AAAA", []string{"2001:DB8:0::1"}, true},
		{"ok.test", "AAAA", []string{"2001:db8::2"}, false},
		{"ok.test", "MX", []string{"10 mx1.ok.test", "mx2.ok.test."}, true},
		{"ok.test", "MX", []string{"20 mx1.ok.test"}, false},
		{"ok.test", "TXT", []string{"v=spf1 -all"}, true},
		{"ok.test", "TXT", []string{"v=spf1"}, false},
		{"ok.test", "NS", []string{"NS1.ok.test"}, true},
		{"ok.test", "SOA", []string{"ns1.ok.test"}, true},
		{"ok.test", "SOA", []string{"ns1.ok.test. hostmaster.ok.test. 2026113001 7200 3600 1209600 300"}, true},
		{"ok.test", "SOA", []string{"ns1.ok.test. hostmaster.ok.test. 2026113002 7200 3600 1209600 300"}, false},
		{"www.ok.test", "CNAME", []string{"ok.test"}, true},
		{"www.ok.test", "CNAME", []string{"other.test"}, false},
	} {
		c := dnsCheck(tc.name, tc.record, addr)
		c.Expect.Answers = tc.answers
		r, _ := runProbe(t, p, c, 5*time.Second)
		if tc.ok {
			if !r.OK {
				t.Errorf("%s %s %q: %s %s", tc.name, tc.record, tc.answers, r.Code, r.Message)
			}
			continue
		}
		if r.OK || r.Code != CodeDNSAnswer {
			t.Errorf("%s %s %q: OK=%v code %q, want %s", tc.name, tc.record, tc.answers, r.OK, r.Code, CodeDNSAnswer)
		}
	}
}

func TestDNSWrongAnswer(t *testing.T) {
	addr := startDNS(t, (&testZone{}).handler(t))
	c := dnsCheck("ok.test", "A", addr)
	c.Expect.Answers = []string{"192.0.2.1", "192.0.2.9"}
	r, _ := runProbe(t, NewDNSProber(Options{}), c, 5*time.Second)
	wantCode(t, r, CodeDNSAnswer, `answer "192.0.2.9" not among the A records of ok.test.`, "192.0.2.1, 192.0.2.2")
	if r.DNSRcode != "NOERROR" || r.DNSAnswers != 2 {
		t.Errorf("rcode %q answers %d", r.DNSRcode, r.DNSAnswers)
	}
	c = dnsCheck("ok.test", "TXT", addr)
	c.Expect.Answers = []string{"nope"}
	r, _ = runProbe(t, NewDNSProber(Options{}), c, 5*time.Second)
	wantCode(t, r, CodeDNSAnswer, `"v=spf1 -all"`)
}

func TestDNSRcodes(t *testing.T) {
	addr := startDNS(t, (&testZone{}).handler(t))
	p := NewDNSProber(Options{})
	for _, tc := range []struct {
		name, want, code, rcode string
		msg                     []string
	}{
		{"missing.test", "", CodeDNSNXDomain, "NXDOMAIN", []string{"answered NXDOMAIN for missing.test. A"}},
		{"broken.test", "", CodeDNSServFail, "SERVFAIL", []string{"answered SERVFAIL"}},
		{"refused.test", "", CodeDNSRefused, "REFUSED", []string{"answered REFUSED"}},
		{"notimp.test", "", CodeDNSRcode, "NOTIMP", []string{"answered NOTIMP"}},
		{"empty.test", "", CodeDNSNoAnswer, "NOERROR", []string{"answered no A record for empty.test."}},
		// A name that must not exist.
		{"missing.test", "NXDOMAIN", "", "NXDOMAIN", nil},
		{"ok.test", "NXDOMAIN", CodeDNSRcode, "NOERROR", []string{"answered NOERROR for ok.test. A, want NXDOMAIN"}},
		{"broken.test", "NXDOMAIN", CodeDNSServFail, "SERVFAIL", []string{"want NXDOMAIN"}},
		{"broken.test", "SERVFAIL", "", "SERVFAIL", nil},
	} {
		c := dnsCheck(tc.name, "A", addr)
		if tc.want != "" {
			c.Expect.Rcode = tc.want
		}
		r, _ := runProbe(t, p, c, 5*time.Second)
		if tc.code == "" {
			wantOK(t, r)
		} else {
			wantCode(t, r, tc.code, tc.msg...)
		}
		if r.DNSRcode != tc.rcode {
			t.Errorf("%s: DNSRcode %q, want %q", tc.name, r.DNSRcode, tc.rcode)
		}
	}
}

func TestDNSTimeout(t *testing.T) {
	addr := silentUDP(t)
	base := goroutines()
	r, took := runProbe(t, NewDNSProber(Options{}), dnsCheck("ok.test", "A", addr), 300*time.Millisecond)
	wantCode(t, r, CodeDNSTimeout, "no answer from "+addr)
	if took < 250*time.Millisecond || took > 2*time.Second {
		t.Errorf("took %v for a 300ms timeout", took)
	}
	if r.DNSRcode != "" || r.Phases.DNS != r.Latency {
		t.Errorf("rcode %q phases %+v", r.DNSRcode, r.Phases)
	}
	checkNoLeak(t, base, 2)
}

func TestDNSTruncatedFallsBackToTCP(t *testing.T) {
	z := &testZone{}
	addr := startDNS(t, z.handler(t))
	c := dnsCheck("big.test", "A", addr)
	c.Expect.Answers = []string{"198.51.100.100"}
	r, _ := runProbe(t, NewDNSProber(Options{}), c, 5*time.Second)
	wantOK(t, r)
	if r.DNSAnswers != 100 || z.tcpQueries.Load() != 1 {
		t.Errorf("answers %d, tcp queries %d; want 100 and 1", r.DNSAnswers, z.tcpQueries.Load())
	}
}

func TestDNSTruncatedAndNoTCP(t *testing.T) {
	// A server that truncates over UDP and has no TCP listener.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Truncated = true
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan struct{})
	go func() { defer close(done); srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { srv.Shutdown(); <-done })
	addr := pc.LocalAddr().String()
	r, _ := runProbe(t, NewDNSProber(Options{}), dnsCheck("big.test", "A", addr), 2*time.Second)
	wantCode(t, r, CodeConnectRefused, "over tcp", "connection refused")
}

func TestDNSConnectionRefused(t *testing.T) {
	// Nothing listens on this UDP port: loopback answers ICMP port
	// unreachable at once.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	r, took := runProbe(t, NewDNSProber(Options{}), dnsCheck("ok.test", "A", addr), 3*time.Second)
	wantCode(t, r, CodeConnectRefused, addr)
	if took > time.Second {
		t.Errorf("took %v", took)
	}
}

func TestDNSSystemServers(t *testing.T) {
	good := startDNS(t, (&testZone{}).handler(t))
	silent := silentUDP(t)

	// The system's servers in order: the first never answers, the second
	// gets its share of the time left.
	p := NewDNSProber(Options{DNSServers: []string{silent, good}})
	r, took := runProbe(t, p, dnsCheck("ok.test", "A", ""), 2*time.Second)
	wantOK(t, r)
	if r.RemoteAddr != good {
		t.Errorf("RemoteAddr %q, want %q", r.RemoteAddr, good)
	}
	if took < 900*time.Millisecond || took > 1900*time.Millisecond {
		t.Errorf("took %v: want about half the 2s timeout spent on the silent server", took)
	}
	// None answers: the first failure, naming the others.
	p = NewDNSProber(Options{DNSServers: []string{silent, silent}})
	r, _ = runProbe(t, p, dnsCheck("ok.test", "A", ""), 400*time.Millisecond)
	wantCode(t, r, CodeDNSTimeout, "and 1 more name servers")

	// resolv.conf.
	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(conf, []byte("# test\nsearch example.test\nnameserver 127.0.0.53\nnameserver ::1\noptions ndots:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := systemServers(conf)
	if want := []string{"127.0.0.53:53", "[::1]:53"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("systemServers = %q, %v; want %q", got, err, want)
	}
	empty := filepath.Join(dir, "empty.conf")
	os.WriteFile(empty, []byte("search example.test\n"), 0o600)
	r, _ = runProbe(t, NewDNSProber(Options{ResolvConf: empty}), dnsCheck("ok.test", "A", ""), time.Second)
	wantCode(t, r, CodeConfig, "lists no nameserver")
	r, _ = runProbe(t, NewDNSProber(Options{ResolvConf: filepath.Join(dir, "missing")}), dnsCheck("ok.test", "A", ""), time.Second)
	wantCode(t, r, CodeConfig, "no name server")
}

func TestDNSServerByName(t *testing.T) {
	addr := startDNS(t, (&testZone{}).handler(t))
	_, port, _ := net.SplitHostPort(addr)
	p := NewDNSProber(Options{Resolver: mapResolver{"ns.example.test": {"127.0.0.1"}}})
	r, _ := runProbe(t, p, dnsCheck("ok.test", "A", "ns.example.test:"+port), 5*time.Second)
	wantOK(t, r)
	if r.RemoteAddr != addr {
		t.Errorf("RemoteAddr %q", r.RemoteAddr)
	}
	r, _ = runProbe(t, p, dnsCheck("ok.test", "A", "nowhere.example.test:"+port), 5*time.Second)
	wantCode(t, r, CodeDNS, "nowhere.example.test")
}

func TestDNSTooSlow(t *testing.T) {
	addr := startDNS(t, (&testZone{}).handler(t))
	c := dnsCheck("slowish.test", "A", addr)
	c.Expect.MaxLatency = 50 * time.Millisecond
	r, _ := runProbe(t, NewDNSProber(Options{}), c, 5*time.Second)
	wantCode(t, r, CodeTooSlow, "max_latency 50ms")
}

func TestDNSBadInput(t *testing.T) {
	p := NewDNSProber(Options{DNSServers: []string{"127.0.0.1:1"}})
	for _, c := range []*config.Check{
		dnsCheck("", "A", ""),
		dnsCheck("ok.test", "PTR", ""),
		dnsCheck("bad..name", "A", ""),
		dnsCheck("ok.test", "A", "no-port"),
		{Name: "d", Type: config.TypeDNS, Target: "ok.test", Expect: config.Expect{Rcode: "WHATEVER"}},
	} {
		r, _ := runProbe(t, p, c, time.Second)
		wantCode(t, r, CodeConfig)
	}
	r := p.Probe(context.Background(), nil)
	wantCode(t, r, CodeConfig)
}

func TestPushIsNotProbed(t *testing.T) {
	c := &config.Check{Name: "backup", Type: config.TypePush, Token: "0123456789abcdef", Period: time.Hour}
	r, _ := runProbe(t, New(Options{}), c, time.Second)
	wantCode(t, r, CodeConfig, "not probed", "/api/v1/push/backup")
	if r.Start.IsZero() {
		t.Error("Start not set")
	}
}
