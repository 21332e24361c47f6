package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// checkTypes are the values of a check's type key.
var checkTypes = []string{TypeHTTP, TypeTCP, TypeICMP, TypeDNS, TypePush}

// probed are the check types that are probed (all but push).
var probed = []string{TypeHTTP, TypeTCP, TypeICMP, TypeDNS}

// checkKeys lists the keys of a check and the check types they apply to
// (nil: every type).
var checkKeys = map[string][]string{
	"name": nil, "type": nil,
	"group": nil, "display_name": nil, "description": nil, "notify": nil, "labels": nil, "severity": nil,
	"flap_threshold": nil, "flap_window": nil, "unknown_after": nil,
	"depends_on": nil, "depends_wait": nil,

	"ip": probed, "expect": probed,
	"interval": probed, "timeout": probed, "fail_after": probed, "recover_after": probed, "down_interval": probed,

	"url": {TypeHTTP}, "method": {TypeHTTP}, "headers": {TypeHTTP}, "body": {TypeHTTP},
	"body_limit": {TypeHTTP}, "follow_redirects": {TypeHTTP}, "insecure_skip_verify": {TypeHTTP},

	"target": {TypeTCP, TypeICMP, TypeDNS},
	"send":   {TypeTCP},
	"count":  {TypeICMP}, "max_loss": {TypeICMP},
	"record": {TypeDNS}, "server": {TypeDNS},
	"token": {TypePush}, "period": {TypePush}, "grace": {TypePush},
}

// expectKeys lists the keys of expect and the check types they apply to.
var expectKeys = map[string][]string{
	"status":            {TypeHTTP},
	"body_contains":     {TypeHTTP, TypeTCP},
	"body_regex":        {TypeHTTP},
	"body_not_contains": {TypeHTTP},
	"body_not_regex":    {TypeHTTP},
	"json":              {TypeHTTP},
	"headers":           {TypeHTTP},
	"max_latency":       nil,
	"cert_expiry":       {TypeHTTP},
	"banner":            {TypeTCP},
	"rcode":             {TypeDNS},
	"answers":           {TypeDNS},
}

// Defaults of the second wave's check keys.
const (
	// MaxDefaultDownInterval caps the default down_interval:
	// min(interval, 10s).
	MaxDefaultDownInterval = 10 * time.Second
	DefaultDependsWait     = 10 * time.Second
	// MinGrace is the shortest grace of a push check, and the least its
	// default (period/10) can be.
	MinGrace = 5 * time.Second
	// MinPushTokenLen is the shortest token a push check may have.
	MinPushTokenLen = 16
	DefaultRecord   = RecordA
	DefaultRcode    = "NOERROR"
)

// DNSRecords are the record types a dns check may ask for.
var DNSRecords = []string{RecordA, RecordAAAA, RecordCNAME, RecordMX, RecordTXT, RecordNS, RecordSOA}

// DNSRcodes are the response codes expect.rcode may name (RFC 1035, 2136).
var DNSRcodes = []string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
	"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"}

// DefaultDownInterval is a check's down_interval when none is written:
// min(interval, 10s).
func DefaultDownInterval(interval time.Duration) time.Duration {
	return min(interval, MaxDefaultDownInterval)
}

// DefaultGrace is a push check's grace when none is written: period/10,
// at least 5s.
func DefaultGrace(period time.Duration) time.Duration { return max(period/10, MinGrace) }

// applies reports whether a key listed with types applies to type t.
func applies(types []string, t string) bool { return types == nil || oneOf(t, types...) }

// dropInapplicable reports (and marks used) every key of m that is known
// but does not apply to check type t.
func (p *parser) dropInapplicable(m *mapping, keys map[string][]string, t, where string) {
	for _, f := range m.fields {
		types, known := keys[f.name]
		if known && !applies(types, t) {
			f.used = true
			delete(m.by, f.name)
			p.errorf(f.key, "key %q%s does not apply to %s checks (it is for %s checks)", f.name, where, t, choiceList(types...))
		}
	}
}

// checks reads the checks list. It returns the position of every check name.
func (p *parser) checks(f *field, c *Config, d *defaultsInfo, notifiers map[string]*yaml.Node) map[string]*yaml.Node {
	names := map[string]*yaml.Node{}
	items, _ := p.items(f)
	var deps []dependsRef
	for _, it := range items {
		if ck, dep, ok := p.check(it, d, notifiers, names); ok {
			c.Checks = append(c.Checks, ck)
			if dep != nil {
				deps = append(deps, *dep)
			}
		}
	}
	p.dependencies(c, deps, names)
	return names
}

func (p *parser) check(it *yaml.Node, d *defaultsInfo, notifiers, names map[string]*yaml.Node) (Check, *dependsRef, bool) {
	m, ok := p.mapOf(it, "check")
	if !ok {
		return Check{}, nil, false
	}
	if m.node == nil {
		p.errorf(it, "check must be a mapping with at least name and type, got an empty value")
		return Check{}, nil, false
	}
	ck := Check{Line: m.node.Line, Column: m.node.Column}

	// name
	nf := m.get("name")
	nameOK := false
	if s, ok := p.str(nf); ok {
		switch {
		case s == "":
			p.errorf(nf.key, "check name must not be empty")
		case !nameRE.MatchString(s):
			p.errorf(nf.key, "check name %q may only contain a-z, 0-9, '.', '_' and '-'", s)
		case names[s] != nil:
			p.errorf(nf.key, "duplicate check name %q (first at line %d)", s, names[s].Line)
		default:
			names[s] = nf.key
			nameOK = true
		}
		ck.Name = s
	} else if !set(nf) {
		p.errorf(keyOr(nf, m.pos()), "check needs a name")
	}
	what := "check"
	if ck.Name != "" {
		what = fmt.Sprintf("check %q", ck.Name)
	}

	// type
	tf := m.get("type")
	typeOK := false
	if s, ok := p.str(tf); ok {
		if oneOf(s, checkTypes...) {
			ck.Type, typeOK = s, true
		} else {
			p.errorf(tf.key, "check type must be %s, got %q", choiceList(checkTypes...), s)
		}
	} else if !set(tf) {
		p.errorf(keyOr(tf, m.pos()), "%s needs a type: %s", what, choiceList(checkTypes...))
	}
	if typeOK {
		p.dropInapplicable(m, checkKeys, ck.Type, "")
	}
	is := func(t string) bool { return !typeOK || ck.Type == t }

	// http
	if is(TypeHTTP) {
		if typeOK {
			if u, uf, ok := p.required(m, "url", "http "+what+" needs a url"); ok {
				if pr := httpURLProblem(u); pr != "" {
					p.errorf(uf.key, "url %s", pr)
				}
				ck.URL = u
			}
		} else if u, ok := p.str(m.get("url")); ok {
			ck.URL = u
		}
		ck.Method = defaultHTTPMethod
		if mf := m.get("method"); set(mf) {
			if s, ok := p.str(mf); ok {
				if s = strings.ToUpper(strings.TrimSpace(s)); isToken(s) {
					ck.Method = s
				} else {
					p.errorf(mf.key, "method %q is not a valid HTTP method", s)
				}
			}
		}
		ck.Headers = p.headers(m.get("headers"))
		if s, ok := p.str(m.get("body")); ok {
			ck.Body = s
		}
		ck.BodyLimit = DefaultBodyLimit
		if bf := m.get("body_limit"); set(bf) {
			if v, ok := p.integer(bf); ok {
				if v <= 0 {
					p.errorf(bf.key, "body_limit must be a positive number of bytes, got %d", v)
				} else {
					ck.BodyLimit = int64(v)
				}
			}
		}
		ck.FollowRedirects = defaultFollowRedirect
		if b, ok := p.boolean(m.get("follow_redirects")); ok {
			ck.FollowRedirects = b
		}
		if b, ok := p.boolean(m.get("insecure_skip_verify")); ok {
			ck.InsecureTLS = b
		}
	}

	// tcp, icmp and dns
	if is(TypeTCP) || is(TypeICMP) || is(TypeDNS) {
		if typeOK {
			form := "HOST:PORT"
			switch ck.Type {
			case TypeICMP:
				form = "HOST"
			case TypeDNS:
				form = "a domain name"
			}
			if t, tf, ok := p.required(m, "target", fmt.Sprintf("%s %s needs a target (%s)", ck.Type, what, form)); ok {
				if pr := targetProblem(ck.Type, t); pr != "" {
					p.errorf(tf.key, "target %s", pr)
				}
				ck.Target = t
			}
		} else if t, ok := p.str(m.get("target")); ok {
			ck.Target = t
		}
	}
	if is(TypeTCP) {
		if s, ok := p.str(m.get("send")); ok {
			ck.Send = s
		}
	}
	if is(TypeDNS) {
		p.dnsKeys(m, &ck, typeOK)
	}
	if is(TypePush) {
		p.pushKeys(m, &ck, typeOK, what)
	}
	if is(TypeICMP) {
		if typeOK {
			ck.Count, ck.MaxLoss = DefaultICMPCount, DefaultMaxLoss
		}
		if cf := m.get("count"); set(cf) {
			if v, ok := p.integer(cf); ok {
				if v < 1 || v > maxICMPCount {
					p.errorf(cf.key, "count must be between 1 and %d, got %d", maxICMPCount, v)
				} else {
					ck.Count = v
				}
			}
		}
		if lf := m.get("max_loss"); set(lf) {
			if v, ok := p.number(lf); ok {
				if !(v >= 0 && v <= 100) {
					p.errorf(lf.key, "max_loss must be a percentage between 0 and 100, got %v", v)
				} else {
					ck.MaxLoss = v
				}
			}
		}
	}

	// common keys
	ck.IP = defaultIPFamily
	if ipf := m.get("ip"); set(ipf) {
		if s, ok := p.str(ipf); ok {
			if oneOf(s, "4", "6", "any") {
				ck.IP = s
			} else {
				p.errorf(ipf.key, "ip must be 4, 6 or any, got %q", s)
			}
		}
	}

	// interval and timeout, merged with the defaults
	ck.Interval, ck.Timeout = d.interval, d.timeout
	intervalOK, timeoutOK := d.intervalOK, d.timeoutOK
	intervalKey, timeoutKey := d.intervalKey, d.timeoutKey
	own := false
	if kf := m.get("interval"); set(kf) {
		own = true
		intervalKey = kf.key
		ck.Interval, intervalOK = p.interval(kf)
	}
	if kf := m.get("timeout"); set(kf) {
		own = true
		timeoutKey = kf.key
		ck.Timeout, timeoutOK = p.timeout(kf)
	}
	if timeoutKey == nil && intervalOK {
		ck.Timeout = ImplicitTimeout(ck.Interval)
	}
	if own && intervalOK && timeoutOK && ck.Timeout >= ck.Interval {
		switch {
		case timeoutKey == nil:
			p.errorf(intervalKey, "interval %s must be longer than the timeout %s (the default): set a shorter timeout", ck.Interval, ck.Timeout)
		case timeoutKey == d.timeoutKey:
			p.errorf(timeoutKey, "timeout %s must be less than interval %s of %s", ck.Timeout, ck.Interval, what)
		default:
			p.errorf(timeoutKey, "timeout %s must be less than interval %s", ck.Timeout, ck.Interval)
		}
	}
	ck.FailAfter, ck.RecoverAfter = d.failAfter, d.recoverAfter
	if v, ok := p.atLeastOne(m.get("fail_after")); ok {
		ck.FailAfter = v
	}
	if v, ok := p.atLeastOne(m.get("recover_after")); ok {
		ck.RecoverAfter = v
	}
	ck.FlapThreshold, ck.FlapWindow, ck.UnknownAfter = d.flapThreshold, d.flapWindow, d.unknownAfter
	p.alerting(m, &ck.FlapThreshold, &ck.FlapWindow, &ck.UnknownAfter)
	p.downInterval(m, &ck, d, intervalOK, what)

	// depends_on and depends_wait
	var dep *dependsRef
	if df := m.get("depends_on"); set(df) {
		if entries, ok := p.strings(df); ok {
			if nameOK {
				dep = &dependsRef{check: ck.Name, key: df.key, entries: entries}
			}
			if len(entries) == 0 {
				p.errorf(df.key, "depends_on must list at least one check")
			}
		}
	}
	ck.DependsWait = DefaultDependsWait
	if d, ok := p.nonNegative(m.get("depends_wait")); ok {
		ck.DependsWait = d
	}

	// expect
	if ef := m.get("expect"); set(ef) {
		p.expect(ef, &ck, typeOK, timeoutOK)
	}
	if ck.Expect.Status == nil && ck.Type == TypeHTTP {
		ck.Expect.Status = []StatusRange{{200, 299}}
	}
	if ck.Expect.Rcode == "" && ck.Type == TypeDNS {
		ck.Expect.Rcode = DefaultRcode
	}

	// status page and routing
	if s, ok := p.str(m.get("group")); ok {
		ck.Group = s
	}
	ck.DisplayName = ck.Name
	if s, ok := p.str(m.get("display_name")); ok && s != "" {
		ck.DisplayName = s
	}
	if s, ok := p.str(m.get("description")); ok {
		ck.Description = s
	}
	if names, _, ok := p.notifierList(m.get("notify"), notifiers); ok {
		ck.Notify = names
	}
	if lm, _, ok := p.strMap(m.get("labels")); ok {
		ck.Labels = lm
	}
	ck.Severity = defaultSeverity
	if sf := m.get("severity"); set(sf) {
		if s, ok := p.str(sf); ok {
			if oneOf(s, "critical", "warning", "info") {
				ck.Severity = s
			} else {
				p.errorf(sf.key, "severity must be critical, warning or info, got %q", s)
			}
		}
	}
	m.unknown()
	return ck, dep, true
}

// required reads a string key that must be present and not empty; msg is
// the problem reported when it is missing.
func (p *parser) required(m *mapping, name, msg string) (string, *field, bool) {
	f := m.get(name)
	s, ok := p.str(f)
	switch {
	case ok && strings.TrimSpace(s) != "":
		return s, f, true
	case ok:
		p.errorf(f.key, "%s must not be empty", name)
	case !set(f):
		p.errorf(keyOr(f, m.pos()), "%s", msg)
	}
	return s, f, false
}

// targetProblem checks a tcp (HOST:PORT), icmp (HOST) or dns (a name) target.
func targetProblem(typ, s string) string {
	switch typ {
	case TypeTCP:
		return hostPortProblem(s, false)
	case TypeDNS:
		return dnsTargetProblem(s)
	}
	if validHost(s) {
		return ""
	}
	if strings.Contains(s, ":") {
		return "must be a host or IP address without a port"
	}
	return fmt.Sprintf("has an invalid host %q", s)
}

// headers reads an http check's or webhook's headers.
func (p *parser) headers(f *field) map[string]string {
	hm, keys, ok := p.strMap(f)
	if !ok {
		return nil
	}
	for _, k := range keys {
		if !isToken(k.s) {
			p.errorf(k.n, "header name %q is not valid", k.s)
			delete(hm, k.s)
		} else if v := hm[k.s]; strings.ContainsAny(v, "\r\n\x00") {
			p.errorf(k.n, "header %q must not contain line breaks", k.s)
			delete(hm, k.s)
		}
	}
	return hm
}

func (p *parser) expect(f *field, ck *Check, typeOK, timeoutOK bool) {
	m, ok := p.mapOf(f.val, "expect")
	if !ok {
		return
	}
	if typeOK {
		p.dropInapplicable(m, expectKeys, ck.Type, " in expect")
	}
	e := &ck.Expect
	if sf := m.get("status"); set(sf) {
		if items, ok := p.items(sf); ok {
			for _, it := range items {
				if r, ok := p.statusRange(it); ok {
					e.Status = append(e.Status, r)
				}
			}
			if len(items) == 0 {
				p.errorf(sf.key, "status must list at least one code or range")
			}
		}
	}
	if s, ok := p.str(m.get("body_contains")); ok {
		e.BodyContains = s
	}
	e.BodyRegex, _ = p.regex(m.get("body_regex"), "body_regex")
	if s, ok := p.str(m.get("body_not_contains")); ok {
		e.BodyNotContains = s
	}
	e.BodyNotRegex, _ = p.regex(m.get("body_not_regex"), "body_not_regex")
	if jf := m.get("json"); set(jf) {
		e.JSON = p.jsonAssertions(jf)
	}
	if hf := m.get("headers"); set(hf) {
		e.Headers = p.headerAssertions(hf)
	}
	if rf := m.get("rcode"); set(rf) {
		if s, ok := p.str(rf); ok {
			if rc := strings.ToUpper(strings.TrimSpace(s)); oneOf(rc, DNSRcodes...) {
				e.Rcode = rc
			} else {
				p.errorf(rf.key, "rcode must be %s, got %q", choiceList(DNSRcodes...), s)
			}
		}
	}
	if af := m.get("answers"); set(af) {
		if as, ok := p.strings(af); ok {
			for _, a := range as {
				if pr := dnsAnswerProblem(ck.Record, a.s); pr != "" {
					p.errorf(a.n, "answer %q %s", a.s, pr)
					continue
				}
				e.Answers = append(e.Answers, strings.TrimSpace(a.s))
			}
		}
	}
	if lf := m.get("max_latency"); set(lf) {
		if d, ok := p.nonNegative(lf); ok {
			if d > 0 && timeoutOK && d >= ck.Timeout {
				p.errorf(lf.key, "max_latency %s must be less than the timeout %s", d, ck.Timeout)
			} else {
				e.MaxLatency = d
			}
		}
	}
	if d, ok := p.nonNegative(m.get("cert_expiry")); ok {
		e.CertExpiry = d
	}
	if s, ok := p.str(m.get("banner")); ok {
		e.Banner = s
	}
	m.unknown()
}

// statusRange reads one entry of expect.status: a code (200), a range
// ("200-299") or a class ("2xx").
func (p *parser) statusRange(it *yaml.Node) (StatusRange, bool) {
	r := resolve(it)
	if isNull(r) || r.Kind != yaml.ScalarNode {
		p.errorf(it, "each status must be a code such as 200 or a range such as \"200-299\", got %s", describe(r))
		return StatusRange{}, false
	}
	s, _, ok := p.expand(it, r.Value)
	if !ok {
		return StatusRange{}, false
	}
	s = strings.TrimSpace(s)
	bad := func() (StatusRange, bool) {
		p.errorf(it, "status %q must be a code from 100 to 599 or a range such as \"200-299\"", s)
		return StatusRange{}, false
	}
	code := func(s string) (int, bool) {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		return n, err == nil && n >= 100 && n <= 599 && !strings.HasPrefix(strings.TrimSpace(s), "+")
	}
	var sr StatusRange
	switch lo, hi, isRange := strings.Cut(s, "-"); {
	case isRange:
		a, okA := code(lo)
		b, okB := code(hi)
		if !okA || !okB {
			return bad()
		}
		if a > b {
			p.errorf(it, "status range %q is backwards", s)
			return StatusRange{}, false
		}
		sr = StatusRange{a, b}
	case len(s) == 3 && (s[1:] == "xx" || s[1:] == "XX") && s[0] >= '1' && s[0] <= '5':
		base := int(s[0]-'0') * 100
		sr = StatusRange{base, base + 99}
	default:
		c, ok := code(s)
		if !ok {
			return bad()
		}
		sr = StatusRange{c, c}
	}
	return sr, true
}
