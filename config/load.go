package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Default values filled in by Parse.
const (
	DefaultInterval      = 30 * time.Second
	DefaultTimeout       = 10 * time.Second
	DefaultFailAfter     = 2
	DefaultRecoverAfter  = 2
	DefaultBodyLimit     = 1 << 20 // bytes
	DefaultICMPCount     = 3
	DefaultMaxLoss       = 50 // percent
	DefaultFallbackAfter = time.Minute
	DefaultPagerDutyURL  = "https://events.pagerduty.com/v2/enqueue"
	DefaultOpsgenieURL   = "https://api.opsgenie.com"
	DefaultTelegramURL   = "https://api.telegram.org"
	DefaultStatusTitle   = "Status"
	DefaultRetainRaw     = 168 * time.Hour
	DefaultRetainMinute  = 720 * time.Hour
	DefaultFlapThreshold = 5
	DefaultFlapWindow    = 10 * time.Minute
	DefaultUnknownAfter  = 10 * time.Minute
	// MinRepeat is the shortest reminder interval a route or notifier may
	// set.
	MinRepeat = time.Second
)

// MinInterval is the shortest interval a check may have.
const MinInterval = time.Second

const (
	defaultSeverity       = "critical"
	defaultPDSeverity     = "critical"
	defaultEmailTLS       = "starttls"
	defaultClusterGossip  = "wan"
	defaultIPFamily       = "any"
	defaultHTTPMethod     = "GET"
	defaultFollowRedirect = true
	maxICMPCount          = 100
)

// Load reads and parses the configuration file at path. ${NAME} references
// are resolved with os.LookupEnv. A file that cannot be read gives a plain
// error; problems in the file give Errors.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse parses and validates a configuration. path is only used in error
// messages and Config.Path. getenv resolves ${NAME} references; nil means
// os.LookupEnv. On problems the error is an Errors listing all of them,
// sorted by position, and the Config is nil.
func Parse(path string, data []byte, getenv func(string) (string, bool)) (*Config, error) {
	if getenv == nil {
		getenv = os.LookupEnv
	}
	p := &parser{file: path, getenv: getenv, budget: 50_000 + 4*len(data)}
	root, yerr := p.decode(data)
	if yerr != nil {
		return nil, Errors{yerr}
	}
	cfg := p.walk(root)
	if len(p.errs) > 0 {
		return nil, p.errs.sorted()
	}
	return cfg, nil
}

var yamlLineRE = regexp.MustCompile(`^line (\d+): `)

// decode reads the single YAML document in data. It returns nil for an
// empty file. A second non-empty document is an error.
func (p *parser) decode(data []byte) (root *yaml.Node, yerr *Error) {
	defer func() {
		if r := recover(); r != nil {
			root, yerr = nil, &Error{File: p.file, Line: 1, Column: 1, Msg: fmt.Sprintf("invalid YAML: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return root, nil
		}
		if err != nil {
			return nil, p.yamlError(err)
		}
		if i == 0 {
			root = &doc
			continue
		}
		if !isNull(&doc) {
			line, col := doc.Line, doc.Column
			if line < 1 {
				line, col = 1, 1
			}
			return nil, &Error{File: p.file, Line: line, Column: max(col, 1),
				Msg: "the file holds more than one YAML document; put everything in one"}
		}
	}
}

// yamlParserProblems are the problems the YAML library's parser (as
// opposed to its scanner) reports. For these it prints a 0-based line
// number (and none for the first line), so one is added.
var yamlParserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// yamlError turns a syntax error from the YAML library into an Error. The
// library gives a line (that of the problem or of the start of the
// enclosing block) and no column.
func (p *parser) yamlError(err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil && n > 0 {
			line = n
		}
		msg = msg[len(m[0]):]
	}
	if yamlParserProblems[msg] {
		line++
	}
	return &Error{File: p.file, Line: max(line, 1), Column: 1, Msg: "invalid YAML: " + msg}
}

// walk is config, stopped early (with the problem reported) when aliases
// expand the document too much.
func (p *parser) walk(root *yaml.Node) (c *Config) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(tooLarge); !ok {
				panic(r)
			}
			c = nil
		}
	}()
	return p.config(root)
}

// config walks the root mapping.
func (p *parser) config(root *yaml.Node) *Config {
	c := &Config{Path: p.file}
	m, _ := p.mapOf(root, "the configuration")
	p.cluster(m.get("cluster"), &c.Cluster)
	p.node(m.get("node"), &c.Node, &c.Cluster)
	d := p.defaults(m.get("defaults"), &c.Defaults)
	notifierNames := p.notifiers(m.get("notifiers"), c)
	checkNames := p.checks(m.get("checks"), c, d, notifierNames)
	p.routes(m.get("routes"), c, notifierNames)
	p.coverage(m.get("coverage"), &c.Coverage, notifierNames)
	p.statusPage(m.get("statuspage"), &c.StatusPage, c.Notifiers)
	p.maintenance(m.get("maintenance"), c, checkNames)
	p.store(m.get("store"), &c.Store)
	p.reports(m.get("reports"), c) // reports.go
	for _, f := range m.fields {
		if strings.HasPrefix(f.name, "x-") {
			f.used = true // extension keys: a place for YAML anchors
		}
	}
	m.unknown()
	return c
}

func (p *parser) cluster(f *field, c *Cluster) {
	c.Gossip = defaultClusterGossip
	m, _ := p.mapOf(valOf(f), "cluster")
	if rs, ok := p.strings(m.get("regions")); ok {
		seen := map[string]bool{}
		for _, r := range rs {
			switch {
			case strings.TrimSpace(r.s) == "":
				p.errorf(r.n, "region names must not be empty")
			case seen[r.s]:
				p.errorf(r.n, "region %q is listed twice", r.s)
			default:
				seen[r.s] = true
				c.Regions = append(c.Regions, r.s)
			}
		}
	}
	c.Quorum = len(c.Regions)/2 + 1
	if qf := m.get("quorum"); set(qf) {
		if q, ok := p.integer(qf); ok {
			switch {
			case q < 1:
				p.errorf(qf.key, "quorum must be at least 1, got %d", q)
			case len(c.Regions) > 0 && q > len(c.Regions):
				p.errorf(qf.key, "quorum %d is more than the number of regions in cluster.regions (%d)", q, len(c.Regions))
			default:
				c.Quorum = q
			}
		}
	}
	if gf := m.get("gossip"); set(gf) {
		if g, ok := p.str(gf); ok {
			if oneOf(g, "wan", "lan", "local") {
				c.Gossip = g
			} else {
				p.errorf(gf.key, "gossip must be wan, lan or local, got %q", g)
			}
		}
	}
	if cs, ok := p.strings(m.get("canaries")); ok {
		for _, cn := range cs {
			if pr := canaryProblem(cn.s); pr != "" {
				p.errorf(cn.n, "canary %q %s", cn.s, pr)
				continue
			}
			c.Canaries = append(c.Canaries, cn.s)
		}
	}
	m.unknown()
}

func (p *parser) node(f *field, n *Node, c *Cluster) {
	m, _ := p.mapOf(valOf(f), "node")
	strField := func(name string, dst *string) *field {
		kf := m.get(name)
		if s, ok := p.str(kf); ok {
			*dst = s
		}
		return kf
	}
	strField("name", &n.Name)
	if rf := strField("region", &n.Region); n.Region != "" && len(c.Regions) > 0 && !oneOf(n.Region, c.Regions...) {
		p.errorf(rf.key, "region %q is not one of cluster.regions (%s)", n.Region, strings.Join(c.Regions, ", "))
	}
	addr := func(name string, dst *string, bind bool) {
		if kf := strField(name, dst); *dst != "" {
			if pr := hostPortProblem(*dst, bind); pr != "" {
				p.errorf(kf.key, "%s %s", name, pr)
			}
		}
	}
	addr("gossip", &n.Gossip, true)
	addr("advertise", &n.Advertise, false)
	addr("http", &n.HTTP, true)
	strField("data", &n.Data)
	strField("gossip_key_file", &n.GossipKeyFile)
	if b, ok := p.boolean(m.get("insecure_gossip")); ok {
		n.InsecureGossip = b
	}
	if lf := strField("log_format", &n.LogFormat); n.LogFormat != "" && !oneOf(n.LogFormat, "text", "json") {
		p.errorf(lf.key, "log_format must be text or json, got %q", n.LogFormat)
	}
	if lf := strField("log_level", &n.LogLevel); n.LogLevel != "" && !oneOf(n.LogLevel, "debug", "info", "warn", "error") {
		p.errorf(lf.key, "log_level must be debug, info, warn or error, got %q", n.LogLevel)
	}
	if jf := m.get("join"); set(jf) {
		var joins []strItem
		if r := resolve(jf.val); r.Kind == yaml.ScalarNode {
			// A single string: comma-separated addresses, like --join.
			if s, ok := p.str(jf); ok {
				for _, part := range strings.Split(s, ",") {
					if part = strings.TrimSpace(part); part != "" {
						joins = append(joins, strItem{part, jf.val})
					}
				}
			}
		} else {
			joins, _ = p.strings(jf)
		}
		for _, j := range joins {
			if pr := hostPortProblem(j.s, false); pr != "" {
				p.errorf(j.n, "join address %q %s", j.s, pr)
				continue
			}
			n.Join = append(n.Join, j.s)
		}
	}
	m.unknown()
}

// defaultsInfo remembers where the defaults were set, for error positions.
type defaultsInfo struct {
	interval, timeout       time.Duration
	intervalKey, timeoutKey *yaml.Node // nil when not written
	intervalOK, timeoutOK   bool       // false when invalid (already reported)
	failAfter, recoverAfter int
	flapThreshold           int
	flapWindow              time.Duration
	unknownAfter            time.Duration
	downInterval            downIntervalInfo
}

func (p *parser) defaults(f *field, d *Defaults) *defaultsInfo {
	info := &defaultsInfo{interval: DefaultInterval, timeout: DefaultTimeout, intervalOK: true, timeoutOK: true,
		failAfter: DefaultFailAfter, recoverAfter: DefaultRecoverAfter, flapThreshold: DefaultFlapThreshold,
		flapWindow: DefaultFlapWindow, unknownAfter: DefaultUnknownAfter}
	m, _ := p.mapOf(valOf(f), "defaults")
	if kf := m.get("interval"); set(kf) {
		info.intervalKey = kf.key
		info.interval, info.intervalOK = p.interval(kf)
	}
	if kf := m.get("timeout"); set(kf) {
		info.timeoutKey = kf.key
		info.timeout, info.timeoutOK = p.timeout(kf)
	}
	if info.timeoutKey == nil && info.intervalOK {
		info.timeout = ImplicitTimeout(info.interval)
	}
	if info.intervalOK && info.timeoutOK && info.timeout >= info.interval {
		if info.timeoutKey != nil {
			p.errorf(info.timeoutKey, "timeout %s must be less than interval %s", info.timeout, info.interval)
		} else {
			p.errorf(info.intervalKey, "interval %s must be longer than the timeout %s (the default): set a shorter timeout", info.interval, info.timeout)
		}
	}
	if v, ok := p.atLeastOne(m.get("fail_after")); ok {
		info.failAfter = v
	}
	if v, ok := p.atLeastOne(m.get("recover_after")); ok {
		info.recoverAfter = v
	}
	p.alerting(m, &info.flapThreshold, &info.flapWindow, &info.unknownAfter)
	if kf := m.get("down_interval"); set(kf) {
		if v, ok := p.atLeastSecond(kf); ok {
			if info.intervalOK && v > info.interval {
				p.errorf(kf.key, "down_interval %s must not be longer than interval %s", v, info.interval)
			} else {
				info.downInterval = downIntervalInfo{d: v, key: kf.key}
			}
		}
	}
	m.unknown()
	*d = Defaults{Interval: info.interval, Timeout: info.timeout, FailAfter: info.failAfter, RecoverAfter: info.recoverAfter,
		FlapThreshold: info.flapThreshold, FlapWindow: info.flapWindow, UnknownAfter: info.unknownAfter,
		DownInterval: cmp.Or(info.downInterval.d, DefaultDownInterval(info.interval))}
	return info
}

// alerting reads flap_threshold, flap_window and unknown_after (under
// defaults or in a check) into the given values when they are set.
func (p *parser) alerting(m *mapping, threshold *int, window, unknownAfter *time.Duration) {
	if tf := m.get("flap_threshold"); set(tf) {
		if v, ok := p.integer(tf); ok {
			if v < 0 {
				p.errorf(tf.key, "flap_threshold must not be negative, got %d (0 turns flap dampening off)", v)
			} else {
				*threshold = v
			}
		}
	}
	if wf := m.get("flap_window"); set(wf) {
		if d, ok := p.duration(wf); ok {
			if d <= 0 {
				p.errorf(wf.key, "flap_window must be positive, got %s", d)
			} else {
				*window = d
			}
		}
	}
	if d, ok := p.nonNegative(m.get("unknown_after")); ok {
		*unknownAfter = d
	}
}

// interval reads an interval: a duration of at least 1s.
func (p *parser) interval(f *field) (time.Duration, bool) {
	d, ok := p.duration(f)
	if ok && d < MinInterval {
		p.errorf(f.key, "interval must be at least %s, got %s", MinInterval, d)
		return d, false
	}
	return d, ok
}

// ImplicitTimeout is the timeout of a check when no timeout key is written
// anywhere: DefaultTimeout, or three quarters of a shorter interval, so that
// setting only an interval always gives a valid check.
func ImplicitTimeout(interval time.Duration) time.Duration {
	return min(DefaultTimeout, interval*3/4)
}

// timeout reads a timeout: a positive duration.
func (p *parser) timeout(f *field) (time.Duration, bool) {
	d, ok := p.duration(f)
	if ok && d <= 0 {
		p.errorf(f.key, "timeout must be positive, got %s", d)
		return d, false
	}
	return d, ok
}

// atLeastOne reads an integer ≥ 1 (fail_after, recover_after).
func (p *parser) atLeastOne(f *field) (int, bool) {
	v, ok := p.integer(f)
	if ok && v < 1 {
		p.errorf(f.key, "%s must be at least 1, got %d", f.name, v)
		return v, false
	}
	return v, ok
}

// nonNegative reads a duration ≥ 0.
func (p *parser) nonNegative(f *field) (time.Duration, bool) {
	d, ok := p.duration(f)
	if ok && d < 0 {
		p.errorf(f.key, "%s must not be negative, got %s", f.name, d)
		return d, false
	}
	return d, ok
}

func (p *parser) statusPage(f *field, s *StatusPage, notifiers []Notifier) {
	s.Title = DefaultStatusTitle
	m, _ := p.mapOf(valOf(f), "statuspage")
	if t, ok := p.str(m.get("title")); ok && t != "" {
		s.Title = t
	}
	if d, ok := p.str(m.get("description")); ok {
		s.Description = d
	}
	if uf := m.get("url"); set(uf) {
		if u, ok := p.str(uf); ok && u != "" {
			if pr := httpURLProblem(u); pr != "" {
				p.errorf(uf.key, "url %s", pr)
			} else {
				s.URL = u
			}
		}
	}
	if tf := m.get("api_token"); set(tf) {
		if t, ok := p.str(tf); ok {
			if len(t) < minAPITokenLen {
				p.errorf(tf.key, "api_token must be at least %d characters, got %d", minAPITokenLen, len(t))
			} else {
				s.APIToken = t
			}
		}
	}
	s.Timezone, s.Locale = "UTC", LocaleEN
	if zf := m.get("timezone"); set(zf) {
		if z, ok := p.str(zf); ok {
			z = strings.TrimSpace(z)
			if _, err := LoadLocation(z); err != nil || z == "" {
				p.errorf(zf.key, "timezone %q is not an IANA time zone name such as Europe/Berlin", z)
			} else {
				s.Timezone = z
			}
		}
	}
	if lf := m.get("locale"); set(lf) {
		if l, ok := p.str(lf); ok {
			if oneOf(l, locales...) {
				s.Locale = l
			} else {
				p.errorf(lf.key, "locale must be %s, got %q", choiceList(locales...), l)
			}
		}
	}
	p.branding(m, s)
	p.subscriptions(m.get("subscriptions"), s, notifiers) // subscriptions.go
	m.unknown()
}

// locales are the languages the status page speaks.
var locales = []string{LocaleEN, LocaleKO}

// minAPITokenLen keeps a guessable write token out of the config.
const minAPITokenLen = 16

func (p *parser) maintenance(f *field, c *Config, checkNames map[string]*yaml.Node) {
	items, _ := p.items(f)
	for _, it := range items {
		m, ok := p.mapOf(it, "maintenance window")
		if !ok {
			continue
		}
		if m.node == nil {
			p.errorf(it, "maintenance window must be a mapping with checks, start and end (or every and duration), got an empty value")
			continue
		}
		var w Maintenance
		bad := false
		if t, ok := p.str(m.get("title")); ok {
			w.Title = t
		}
		cf := m.get("checks")
		if names, ok := p.strings(cf); ok {
			for _, n := range names {
				if _, known := checkNames[n.s]; !known {
					p.errorf(n.n, "unknown check %q", n.s)
					bad = true
					continue
				}
				w.Checks = append(w.Checks, n.s)
			}
		}
		if len(w.Checks) == 0 && !bad {
			p.errorf(keyOr(cf, m.pos()), "maintenance window needs checks: at least one check name")
		}
		if ef := m.get("every"); set(ef) {
			p.recurring(m, ef, &w)
		} else {
			p.oneOff(m, &w)
		}
		m.unknown()
		c.Maintenance = append(c.Maintenance, w)
	}
}

// oneOff reads start and end of a one-off maintenance window.
func (p *parser) oneOff(m *mapping, w *Maintenance) {
	for _, k := range []string{"duration", "timezone"} {
		if kf := m.get(k); set(kf) {
			p.errorf(kf.key, "%s applies to a recurring window (with every); a one-off window has start and end", k)
		}
	}
	when := func(name string) (time.Time, *yaml.Node, bool) {
		kf := m.get(name)
		s, ok := p.str(kf)
		if !ok {
			if !set(kf) {
				p.errorf(keyOr(kf, m.pos()), "maintenance window needs %s (an RFC 3339 time such as 2026-12-01T02:00:00Z), or every and duration", name)
			}
			return time.Time{}, nil, false
		}
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
		if err != nil {
			p.errorf(kf.val, "%s must be an RFC 3339 time such as 2026-12-01T02:00:00Z, got %q", name, s)
			return t, nil, false
		}
		return t, kf.key, true
	}
	var startOK, endOK bool
	var endKey *yaml.Node
	w.Start, _, startOK = when("start")
	w.End, endKey, endOK = when("end")
	if startOK && endOK && !w.End.After(w.Start) {
		p.errorf(endKey, "end %s must be after start %s", w.End.Format(time.RFC3339), w.Start.Format(time.RFC3339))
	}
}

// recurring reads every, duration and timezone of a recurring maintenance
// window.
func (p *parser) recurring(m *mapping, ef *field, w *Maintenance) {
	for _, k := range []string{"start", "end"} {
		if kf := m.get(k); set(kf) {
			p.errorf(kf.key, "%s does not go with every: a recurring window has every and duration, a one-off window start and end", k)
		}
	}
	if s, ok := p.str(ef); ok {
		if sched, err := ParseEvery(s); err != nil {
			p.errorf(ef.key, "every %q %s (want 5 cron fields: minute hour day-of-month month day-of-week, such as \"0 2 * * 0\")", s, cronProblem(err))
		} else {
			w.Every, w.sched = strings.TrimSpace(s), sched
		}
	}
	df := m.get("duration")
	if d, ok := p.duration(df); ok {
		if d <= 0 {
			p.errorf(df.key, "duration must be positive, got %s", d)
		} else {
			w.Duration = d
		}
	} else if !set(df) {
		p.errorf(keyOr(df, m.pos()), "a recurring maintenance window needs duration (how long each occurrence lasts, such as 2h)")
	}
	if tf := m.get("timezone"); set(tf) {
		if s, ok := p.str(tf); ok {
			if _, err := LoadLocation(strings.TrimSpace(s)); err != nil {
				p.errorf(tf.key, "timezone %q is not an IANA time zone name such as Europe/Berlin", s)
			} else {
				w.Timezone = strings.TrimSpace(s)
			}
		}
	}
}

// cronProblem words a cron parse error for "every %q ...".
func cronProblem(err error) string {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "is "), strings.HasPrefix(msg, "must "), strings.HasPrefix(msg, "never "):
		return msg
	}
	return "is not valid: " + msg
}

func (p *parser) store(f *field, s *Store) {
	s.RetainRaw, s.RetainMinute, s.RetainDaily = DefaultRetainRaw, DefaultRetainMinute, 0
	m, _ := p.mapOf(valOf(f), "store")
	rm, _ := p.mapOf(valOf(m.get("retention")), "store.retention")
	for _, r := range []struct {
		name string
		dst  *time.Duration
	}{{"raw", &s.RetainRaw}, {"minute", &s.RetainMinute}, {"daily", &s.RetainDaily}} {
		if d, ok := p.nonNegative(rm.get(r.name)); ok {
			*r.dst = d
		}
	}
	rm.unknown()
	m.unknown()
}

// valOf is f's value, or nil when f is absent.
func valOf(f *field) *yaml.Node {
	if f == nil {
		return nil
	}
	return f.val
}

// keyOr is f's key, or def when f is absent.
func keyOr(f *field, def *yaml.Node) *yaml.Node {
	if f == nil {
		return def
	}
	return f.key
}
