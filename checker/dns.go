package checker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/vantage-dev/vantage/config"
)

// Error codes of a failed dns probe.
const (
	CodeDNSNXDomain = "dns_nxdomain"  // the name does not exist (and NXDOMAIN was not expected)
	CodeDNSServFail = "dns_servfail"  // the server failed to answer (SERVFAIL)
	CodeDNSRefused  = "dns_refused"   // the server refused the query (REFUSED)
	CodeDNSRcode    = "dns_rcode"     // any other response code than expect.rcode
	CodeDNSTimeout  = "dns_timeout"   // no answer from any name server before the deadline
	CodeDNSNoAnswer = "dns_no_answer" // NOERROR, but no record of the type asked for
	CodeDNSAnswer   = "dns_answer"    // a value of expect.answers is not among the answers
)

// DefaultResolvConf is where the system's name servers are read from when
// a dns check names no server.
const DefaultResolvConf = "/etc/resolv.conf"

// dnsUDPSize is the EDNS0 buffer size advertised: the DNS flag day 2020
// value, which avoids IP fragmentation; larger answers come truncated and
// are asked again over TCP.
const dnsUDPSize = 1232

// DNSProber asks a name server for one record type of a name: over UDP,
// again over TCP when the answer is truncated. With several servers (the
// system's, or several addresses of a server's name) each is tried in turn,
// with an equal share of the time left, until one answers. The whole
// lookup is the probe's latency and its DNS phase.
type DNSProber struct {
	opts Options
}

var _ Prober = (*DNSProber)(nil)

// NewDNSProber returns a dns prober using opts.
func NewDNSProber(opts Options) *DNSProber { return &DNSProber{opts: withLogger(opts)} }

// Probe runs one dns probe of c. It never panics and returns by ctx's
// deadline.
func (p *DNSProber) Probe(ctx context.Context, c *config.Check) (r Result) {
	r.Start = time.Now()
	defer guard(p.opts.logger(), c, &r)
	if c == nil {
		return configResult("nil check")
	}
	ctx, cancel := p.opts.withDeadline(ctx)
	defer cancel()
	if err := p.probe(ctx, c, &r); err != nil {
		r.fail(err)
	}
	lat := time.Since(r.Start)
	r.Phases = Phases{DNS: lat}
	finish(&r, c, lat)
	p.opts.logger().Debug("checker: dns probe", "check", c.Name, "ok", r.OK, "code", r.Code,
		"msg", r.Message, "rcode", r.DNSRcode, "answers", r.DNSAnswers, "latency", r.Latency)
	return r
}

func (p *DNSProber) probe(ctx context.Context, c *config.Check, r *Result) error {
	record := strings.ToUpper(strings.TrimSpace(c.Record))
	if record == "" {
		record = config.RecordA
	}
	qtype, ok := dns.StringToType[record]
	if !ok || !dnsRecordAllowed(record) {
		return perr(CodeConfig, "unsupported record type %q", c.Record)
	}
	name := strings.TrimSpace(c.Target)
	if name == "" {
		return perr(CodeConfig, "no name to look up")
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return perr(CodeConfig, "invalid name %q", name)
	}
	qname := dns.Fqdn(name)
	wantRcode := strings.ToUpper(strings.TrimSpace(c.Expect.Rcode))
	if wantRcode == "" {
		wantRcode = config.DefaultRcode
	}
	if _, ok := dns.StringToRcode[wantRcode]; !ok {
		return perr(CodeConfig, "unknown rcode %q in expect.rcode", c.Expect.Rcode)
	}
	servers, err := p.servers(ctx, c)
	if err != nil {
		return err
	}

	q := new(dns.Msg)
	q.SetQuestion(qname, qtype)
	q.RecursionDesired = true
	q.SetEdns0(dnsUDPSize, false)
	what := qname + " " + record

	var resp *dns.Msg
	var firstErr error
	for i, srv := range servers {
		actx, acancel := ctx, context.CancelFunc(func() {})
		if left := len(servers) - i; left > 1 {
			if dl, ok := ctx.Deadline(); ok {
				actx, acancel = context.WithDeadline(ctx, time.Now().Add(time.Until(dl)/time.Duration(left)))
			}
		}
		resp, err = p.exchange(actx, q, srv)
		acancel()
		if err == nil {
			r.RemoteAddr = srv
			break
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if resp == nil {
		if len(servers) > 1 && firstErr != nil {
			if pe := (*probeError)(nil); errors.As(firstErr, &pe) {
				return perr(pe.code, "%s (and %d more name servers)", pe.msg, len(servers)-1)
			}
		}
		return firstErr
	}

	got := dns.RcodeToString[resp.Rcode]
	if got == "" {
		got = "RCODE" + strconv.Itoa(resp.Rcode)
	}
	r.DNSRcode = got
	var answers []dns.RR
	for _, rr := range resp.Answer {
		if rr.Header().Rrtype == qtype && rr.Header().Class == dns.ClassINET {
			answers = append(answers, rr)
		}
	}
	r.DNSAnswers = len(answers)
	if got != wantRcode {
		code := CodeDNSRcode
		switch resp.Rcode {
		case dns.RcodeNameError:
			code = CodeDNSNXDomain
		case dns.RcodeServerFailure:
			code = CodeDNSServFail
		case dns.RcodeRefused:
			code = CodeDNSRefused
		}
		if wantRcode == config.DefaultRcode {
			return perr(code, "%s answered %s for %s", r.RemoteAddr, got, what)
		}
		return perr(code, "%s answered %s for %s, want %s", r.RemoteAddr, got, what, wantRcode)
	}
	if wantRcode != config.DefaultRcode {
		return nil // the rcode wanted (NXDOMAIN for a name that must not exist): answers do not matter
	}
	if len(answers) == 0 {
		return perr(CodeDNSNoAnswer, "%s answered no %s record for %s", r.RemoteAddr, record, qname)
	}
	for _, want := range c.Expect.Answers {
		if !anyAnswerMatches(want, answers) {
			return perr(CodeDNSAnswer, "answer %s not among the %s records of %s: %s",
				strconv.Quote(want), record, qname, answerList(answers))
		}
	}
	return nil
}

// dnsRecordAllowed reports the record types a dns check may ask for.
func dnsRecordAllowed(record string) bool {
	for _, r := range config.DNSRecords {
		if r == record {
			return true
		}
	}
	return false
}

// servers returns the name servers to ask, as IP:PORT: the check's server
// (all of its addresses when it is a name) or the system's.
func (p *DNSProber) servers(ctx context.Context, c *config.Check) ([]string, error) {
	if c.Server == "" {
		if len(p.opts.DNSServers) > 0 {
			return p.opts.DNSServers, nil
		}
		path := p.opts.ResolvConf
		if path == "" {
			path = DefaultResolvConf
		}
		s, err := systemServers(path)
		if err != nil {
			return nil, perr(CodeConfig, "no name server to ask: %v", err)
		}
		return s, nil
	}
	host, port, err := net.SplitHostPort(c.Server)
	if err != nil {
		return nil, perr(CodeConfig, "invalid server %q: want HOST:PORT", c.Server)
	}
	pn, err := parsePort(port)
	if err != nil {
		return nil, err
	}
	addrs, _, err := p.opts.resolve(ctx, host, c.IP)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = netip.AddrPortFrom(a, pn).String()
	}
	return out, nil
}

// systemServers reads the name servers of a resolv.conf file.
func systemServers(path string) ([]string, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, err
	}
	if len(cc.Servers) == 0 {
		return nil, fmt.Errorf("%s lists no nameserver", path)
	}
	port := cc.Port
	if port == "" {
		port = "53"
	}
	out := make([]string, 0, len(cc.Servers))
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(s, port))
	}
	return out, nil
}

// exchange asks server over UDP and, when the answer is truncated, again
// over TCP.
func (p *DNSProber) exchange(ctx context.Context, q *dns.Msg, server string) (*dns.Msg, error) {
	resp, err := p.exchangeOver(ctx, "udp", q, server)
	if err != nil {
		return nil, err
	}
	if resp.Truncated {
		return p.exchangeOver(ctx, "tcp", q, server)
	}
	return resp, nil
}

func (p *DNSProber) exchangeOver(ctx context.Context, network string, q *dns.Msg, server string) (*dns.Msg, error) {
	start := time.Now()
	var conn net.Conn
	var err error
	if network == "tcp" {
		conn, err = p.opts.dialFunc()(ctx, "tcp", server)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "udp", server)
	}
	if err != nil {
		return nil, classifyDNSTransport(ctx, start, network, server, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	cl := &dns.Client{Net: network, UDPSize: dnsUDPSize}
	if dl, ok := ctx.Deadline(); ok {
		cl.Timeout = max(time.Until(dl), time.Millisecond)
	}
	resp, _, err := cl.ExchangeWithConnContext(ctx, q, &dns.Conn{Conn: conn})
	if err != nil {
		return nil, classifyDNSTransport(ctx, start, network, server, err)
	}
	return resp, nil
}

// classifyDNSTransport classifies a failure to get an answer from server.
func classifyDNSTransport(ctx context.Context, start time.Time, network, server string, err error) error {
	via := ""
	if network == "tcp" {
		via = " over tcp"
	}
	switch {
	case isTimeout(err), ctx.Err() != nil, errors.Is(err, net.ErrClosed):
		return perr(CodeDNSTimeout, "no answer from %s%s within %s", server, via, budget(ctx, start))
	case errors.Is(err, syscall.ECONNREFUSED):
		return perr(CodeConnectRefused, "query %s%s: connection refused", server, via)
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EAFNOSUPPORT),
		errors.Is(err, syscall.ENETDOWN), errors.Is(err, syscall.EHOSTDOWN):
		return perr(CodeUnreachable, "query %s%s: %s", server, via, shortErr(err))
	}
	return perr(CodeProtocol, "query %s%s: %s", server, via, shortErr(err))
}

// anyAnswerMatches reports whether the expected value want is one of the
// answers:
//   - A, AAAA: the same address (2001:db8::1 matches 2001:DB8:0::1);
//   - CNAME, NS: the same name, ignoring case and the final dot;
//   - MX: "PREFERENCE HOST" or HOST alone;
//   - TXT: the record's strings joined;
//   - SOA: the primary name server alone, or the whole record
//     (MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM).
func anyAnswerMatches(want string, answers []dns.RR) bool {
	want = strings.TrimSpace(want)
	for _, rr := range answers {
		if answerMatches(want, rr) {
			return true
		}
	}
	return false
}

func sameName(a, b string) bool { return strings.EqualFold(dns.Fqdn(a), dns.Fqdn(b)) }

func answerMatches(want string, rr dns.RR) bool {
	switch v := rr.(type) {
	case *dns.A:
		a, err := netip.ParseAddr(want)
		b, ok := netip.AddrFromSlice(v.A)
		return err == nil && ok && a.Unmap() == b.Unmap()
	case *dns.AAAA:
		a, err := netip.ParseAddr(want)
		b, ok := netip.AddrFromSlice(v.AAAA)
		return err == nil && ok && a == b
	case *dns.CNAME:
		return sameName(want, v.Target)
	case *dns.NS:
		return sameName(want, v.Ns)
	case *dns.MX:
		f := strings.Fields(want)
		switch len(f) {
		case 1:
			return sameName(f[0], v.Mx)
		case 2:
			return f[0] == strconv.Itoa(int(v.Preference)) && sameName(f[1], v.Mx)
		}
	case *dns.TXT:
		return want == strings.Join(v.Txt, "")
	case *dns.SOA:
		f := strings.Fields(want)
		if len(f) == 1 {
			return sameName(f[0], v.Ns)
		}
		nums := []uint32{v.Serial, v.Refresh, v.Retry, v.Expire, v.Minttl}
		if len(f) != 7 || !sameName(f[0], v.Ns) || !sameName(f[1], v.Mbox) {
			return false
		}
		for i, n := range nums {
			if f[2+i] != strconv.FormatUint(uint64(n), 10) {
				return false
			}
		}
		return true
	}
	return false
}

// answerList renders answers for a message: their values, at most 5.
func answerList(answers []dns.RR) string {
	const most = 5
	parts := make([]string, 0, min(len(answers), most))
	for i, rr := range answers {
		if i == most {
			parts = append(parts, fmt.Sprintf("and %d more", len(answers)-most))
			break
		}
		parts = append(parts, answerValue(rr))
	}
	return strings.Join(parts, ", ")
}

// answerValue is an answer's data as expect.answers would write it.
func answerValue(rr dns.RR) string {
	switch v := rr.(type) {
	case *dns.A:
		return v.A.String()
	case *dns.AAAA:
		return v.AAAA.String()
	case *dns.TXT:
		return strconv.Quote(strings.Join(v.Txt, ""))
	}
	h := rr.Header().String()
	return strings.TrimSpace(strings.TrimPrefix(rr.String(), h))
}
