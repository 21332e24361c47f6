package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// dnsKeys reads record and server of a dns check (target is read with the
// other types' targets).
func (p *parser) dnsKeys(m *mapping, ck *Check, typeOK bool) {
	if typeOK {
		ck.Record = DefaultRecord
	}
	if rf := m.get("record"); set(rf) {
		if s, ok := p.str(rf); ok {
			if r := strings.ToUpper(strings.TrimSpace(s)); oneOf(r, DNSRecords...) {
				ck.Record = r
			} else {
				p.errorf(rf.key, "record must be %s, got %q", choiceList(DNSRecords...), s)
			}
		}
	}
	if sf := m.get("server"); set(sf) {
		if s, ok := p.str(sf); ok {
			if hp, pr := dnsServer(s); pr != "" {
				p.errorf(sf.key, "server %s", pr)
			} else {
				ck.Server = hp
			}
		}
	}
}

// dnsServer normalises a dns check's server: HOST:PORT, or a host or IP
// address alone, which means port 53.
func dnsServer(s string) (string, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", "must not be empty (leave it out for the system resolver)"
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, 53).String(), ""
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		if validHost(s) {
			return net.JoinHostPort(s, "53"), ""
		}
		return "", "must be HOST:PORT or an IP address"
	}
	if pr := hostPortProblem(s, false); pr != "" {
		return "", pr
	}
	return s, ""
}

// dnsTargetProblem checks a dns check's target: a domain name.
func dnsTargetProblem(s string) string {
	if _, err := netip.ParseAddr(s); err == nil {
		return "must be a domain name, not an IP address"
	}
	if s == "." {
		return ""
	}
	if !validHost(s) {
		return fmt.Sprintf("has an invalid name %q", s)
	}
	return ""
}

// pushKeys reads token, period and grace of a push check.
func (p *parser) pushKeys(m *mapping, ck *Check, typeOK bool, what string) {
	if typeOK {
		if t, tf, ok := p.required(m, "token", fmt.Sprintf("push %s needs a token (at least %d characters)", what, MinPushTokenLen)); ok {
			switch {
			case len(t) < MinPushTokenLen:
				p.errorf(tf.key, "token must be at least %d characters, got %d", MinPushTokenLen, len(t))
			case strings.IndexFunc(t, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
				p.errorf(tf.key, "token must not contain spaces or control characters")
			default:
				ck.Token = t
			}
		}
	} else if t, ok := p.str(m.get("token")); ok {
		ck.Token = t
	}
	pf := m.get("period")
	periodOK := false
	if d, ok := p.duration(pf); ok {
		if d < MinInterval {
			p.errorf(pf.key, "period must be at least %s, got %s", MinInterval, d)
		} else {
			ck.Period, periodOK = d, true
		}
	} else if typeOK && !set(pf) {
		p.errorf(keyOr(pf, m.pos()), "push %s needs a period (how often the job runs, such as 5m or 1d)", what)
	}
	if periodOK {
		ck.Grace = DefaultGrace(ck.Period)
	}
	if gf := m.get("grace"); set(gf) {
		if d, ok := p.duration(gf); ok {
			if d < MinGrace {
				p.errorf(gf.key, "grace must be at least %s, got %s", MinGrace, d)
			} else {
				ck.Grace = d
			}
		}
	}
}

// downIntervalInfo is the down_interval under defaults.
type downIntervalInfo struct {
	d   time.Duration // 0: not written (or invalid)
	key *yaml.Node
}

// downInterval reads a check's down_interval, or takes the one under
// defaults, or the default min(interval, 10s). It must be at least 1s and
// at most the check's interval; a defaults value too long for a check is
// reported at the defaults key, like a timeout.
func (p *parser) downInterval(m *mapping, ck *Check, d *defaultsInfo, intervalOK bool, what string) {
	ck.DownInterval = DefaultDownInterval(ck.Interval)
	if kf := m.get("down_interval"); set(kf) {
		v, ok := p.atLeastSecond(kf)
		switch {
		case !ok:
		case intervalOK && v > ck.Interval:
			p.errorf(kf.key, "down_interval %s must not be longer than interval %s", v, ck.Interval)
		default:
			ck.DownInterval = v
		}
		return
	}
	if d.downInterval.d == 0 {
		return
	}
	if intervalOK && d.downInterval.d > ck.Interval {
		p.errorf(d.downInterval.key, "down_interval %s must not be longer than interval %s of %s", d.downInterval.d, ck.Interval, what)
		return
	}
	ck.DownInterval = d.downInterval.d
}

// atLeastSecond reads a duration of at least 1s (down_interval).
func (p *parser) atLeastSecond(f *field) (time.Duration, bool) {
	v, ok := p.duration(f)
	if ok && v < MinInterval {
		p.errorf(f.key, "%s must be at least %s, got %s", f.name, MinInterval, v)
		return v, false
	}
	return v, ok
}

// dnsAnswerProblem checks one entry of a dns check's expect.answers
// against the record type asked for.
func dnsAnswerProblem(record, s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "must not be empty"
	}
	switch record {
	case RecordA, RecordAAAA:
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return fmt.Sprintf("must be an IP address for an %s record", record)
		}
		if record == RecordA && !a.Is4() {
			return "must be an IPv4 address for an A record"
		}
		if record == RecordAAAA && (!a.Is6() || a.Is4In6()) {
			return "must be an IPv6 address for an AAAA record"
		}
	case RecordMX:
		f := strings.Fields(s)
		host := f[0]
		if len(f) == 2 {
			if n, err := strconv.ParseUint(f[0], 10, 16); err != nil || n > 65535 {
				return "must be HOST or \"PREFERENCE HOST\" for an MX record"
			}
			host = f[1]
		} else if len(f) != 1 {
			return "must be HOST or \"PREFERENCE HOST\" for an MX record"
		}
		if host != "." && !validHost(host) {
			return fmt.Sprintf("has an invalid host %q", host)
		}
	case RecordCNAME, RecordNS:
		if s != "." && !validHost(s) {
			return fmt.Sprintf("must be a domain name for a %s record", record)
		}
	}
	return ""
}
