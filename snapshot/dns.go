package snapshot

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/vantage-dev/vantage/config"
)

// dnsTimeout bounds one query.
const dnsTimeout = 2 * time.Second

// systemResolvers are the name servers of /etc/resolv.conf.
func systemResolvers() []string {
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(s, cc.Port))
	}
	return out
}

// resolve asks the first resolver that answers for host's A and AAAA
// records (as the check's ip family allows) and returns what it said and
// the addresses. Without an answer, or without an address in it, the
// host's resolver library is asked (it also reads the hosts file).
func resolve(ctx context.Context, host, family string, resolvers []string) (*DNS, []netip.Addr) {
	d := &DNS{Name: host}
	if len(resolvers) == 0 {
		resolvers = systemResolvers()
	}
	var types []uint16
	if family != "6" {
		types = append(types, dns.TypeA)
	}
	if family != "4" {
		types = append(types, dns.TypeAAAA)
	}
	start := time.Now()
	var addrs []netip.Addr
	for _, server := range resolvers {
		resps := make([]*dns.Msg, len(types))
		errs := make([]error, len(types))
		done := make(chan struct{}, len(types))
		for i, t := range types {
			go func() {
				resps[i], errs[i] = exchange(ctx, server, host, t)
				done <- struct{}{}
			}()
		}
		for range types {
			<-done
		}
		var answered bool
		d.Answers, addrs = nil, nil
		for i, r := range resps {
			if r == nil {
				if d.Error == "" {
					d.Error = errText(errs[i])
				}
				continue
			}
			if !answered {
				d.Rcode = dns.RcodeToString[r.Rcode]
			} else if rc := dns.RcodeToString[r.Rcode]; rc != d.Rcode && r.Rcode != dns.RcodeSuccess {
				d.Rcode += "/" + rc
			}
			answered = true
			for _, rr := range r.Answer {
				rec := record(rr)
				if !slices.Contains(d.Answers, rec) {
					d.Answers = append(d.Answers, rec)
				}
				if a, ok := rrAddr(rr); ok && !slices.Contains(addrs, a) {
					addrs = append(addrs, a)
				}
			}
		}
		if answered {
			d.Resolver, d.Error = server, ""
			break
		}
	}
	if len(addrs) == 0 {
		network := "ip"
		switch family {
		case "4":
			network = "ip4"
		case "6":
			network = "ip6"
		}
		lctx, cancel := context.WithTimeout(ctx, dnsTimeout)
		ips, err := net.DefaultResolver.LookupNetIP(lctx, network, host)
		cancel()
		if err == nil && len(ips) > 0 {
			for _, ip := range ips {
				addrs = append(addrs, ip.Unmap())
			}
			if d.Resolver == "" {
				d.Resolver = "system"
			} else {
				d.Resolver += " (addresses from the system resolver: hosts file or search domains)"
			}
			d.Error = ""
		} else if d.Error == "" && d.Resolver == "" {
			d.Resolver, d.Error = "system", errText(err)
		}
	}
	d.RTTMS = ms(time.Since(start))
	for _, a := range addrs {
		d.Addrs = append(d.Addrs, a.String())
	}
	return d, addrs
}

// queryCheck is a dns check's own query: its record type, of its server
// (or the system's).
func queryCheck(ctx context.Context, c *config.Check, resolvers []string) *DNS {
	name := strings.TrimSuffix(c.Target, ".")
	d := &DNS{Name: name}
	servers := resolvers
	if c.Server != "" {
		servers = []string{c.Server}
	} else if len(servers) == 0 {
		servers = systemResolvers()
	}
	t, ok := dns.StringToType[strings.ToUpper(c.Record)]
	if !ok {
		t = dns.TypeA
	}
	start := time.Now()
	for _, server := range servers {
		r, err := exchange(ctx, server, name, t)
		if err != nil {
			d.Error = errText(err)
			continue
		}
		d.Resolver, d.Error, d.Rcode = server, "", dns.RcodeToString[r.Rcode]
		for _, rr := range r.Answer {
			d.Answers = append(d.Answers, record(rr))
			if a, ok := rrAddr(rr); ok {
				d.Addrs = append(d.Addrs, a.String())
			}
		}
		break
	}
	if d.Resolver == "" && len(servers) > 0 {
		d.Resolver = servers[0]
	}
	d.RTTMS = ms(time.Since(start))
	return d
}

func exchange(ctx context.Context, server, name string, t uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), t)
	m.RecursionDesired = true
	ctx, cancel := context.WithTimeout(ctx, dnsTimeout)
	defer cancel()
	cl := &dns.Client{Timeout: dnsTimeout}
	r, _, err := cl.ExchangeContext(ctx, m, server)
	if err == nil && r.Truncated {
		cl.Net = "tcp"
		r, _, err = cl.ExchangeContext(ctx, m, server)
	}
	return r, err
}

func record(rr dns.RR) Record {
	h := rr.Header()
	rec := Record{Name: strings.TrimSuffix(h.Name, "."), Type: dns.TypeToString[h.Rrtype], TTL: h.Ttl}
	switch v := rr.(type) {
	case *dns.A:
		rec.Value = v.A.String()
	case *dns.AAAA:
		rec.Value = v.AAAA.String()
	case *dns.CNAME:
		rec.Value = strings.TrimSuffix(v.Target, ".")
	default:
		s := rr.String()
		if i := strings.Index(s, dns.TypeToString[h.Rrtype]+"\t"); i >= 0 {
			s = s[i+len(dns.TypeToString[h.Rrtype])+1:]
		}
		rec.Value = clipText(s, 256)
	}
	return rec
}

func rrAddr(rr dns.RR) (netip.Addr, bool) {
	switch v := rr.(type) {
	case *dns.A:
		a, ok := netip.AddrFromSlice(v.A)
		return a.Unmap(), ok
	case *dns.AAAA:
		return netip.AddrFromSlice(v.AAAA)
	}
	return netip.Addr{}, false
}
