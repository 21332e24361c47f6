package config

import (
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Notifier types.
const (
	NotifierPagerDuty = "pagerduty"
	NotifierOpsgenie  = "opsgenie"
	NotifierSlack     = "slack"
	NotifierDiscord   = "discord"
	NotifierMSTeams   = "msteams"
	NotifierTelegram  = "telegram"
	NotifierWebhook   = "webhook"
	NotifierEmail     = "email"
)

var notifierTypes = []string{NotifierPagerDuty, NotifierOpsgenie, NotifierSlack, NotifierDiscord,
	NotifierMSTeams, NotifierTelegram, NotifierWebhook, NotifierEmail}

// notifierKeys lists the keys of a notifier and the types they apply to
// (nil: every type).
var notifierKeys = map[string][]string{
	"name": nil, "type": nil, "fallback": nil, "fallback_after": nil, "repeat": nil, "rate_limit": nil,
	"url": {NotifierPagerDuty, NotifierOpsgenie, NotifierSlack, NotifierDiscord, NotifierMSTeams,
		NotifierTelegram, NotifierWebhook},
	"routing_key": {NotifierPagerDuty}, "severity": {NotifierPagerDuty},
	"api_key": {NotifierOpsgenie}, "priority": {NotifierOpsgenie},
	"bot_token": {NotifierTelegram}, "chat_id": {NotifierTelegram},
	"secret": {NotifierWebhook}, "headers": {NotifierWebhook},
	"smtp": {NotifierEmail}, "tls": {NotifierEmail}, "username": {NotifierEmail},
	"password": {NotifierEmail}, "from": {NotifierEmail}, "to": {NotifierEmail},
}

// fallbackRef is one entry of a notifier's fallback list.
type fallbackRef struct {
	from, to string
	n        *yaml.Node
}

// notifiers reads the notifiers list and returns the position of every
// notifier name.
func (p *parser) notifiers(f *field, c *Config) map[string]*yaml.Node {
	names := map[string]*yaml.Node{}
	items, _ := p.items(f)
	var refs []fallbackRef
	for _, it := range items {
		n, r, ok := p.notifier(it, names)
		if ok {
			c.Notifiers = append(c.Notifiers, n)
			refs = append(refs, r...)
		}
	}
	// Every fallback must name another, existing notifier...
	graph := map[string][]fallbackRef{}
	for _, r := range refs {
		switch {
		case r.to == r.from:
			p.errorf(r.n, "notifier %q cannot fall back to itself", r.from)
		case names[r.to] == nil:
			p.errorf(r.n, "unknown notifier %q in fallback", r.to)
		default:
			graph[r.from] = append(graph[r.from], r)
		}
	}
	// ...and fallbacks must not loop.
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(name string)
	visit = func(name string) {
		state[name] = visiting
		path = append(path, name)
		for _, r := range graph[name] {
			switch state[r.to] {
			case visiting:
				start := 0
				for i, n := range path {
					if n == r.to {
						start = i
					}
				}
				cycle := append(append([]string{}, path[start:]...), r.to)
				p.errorf(r.n, "fallback cycle: %s", strings.Join(cycle, " -> "))
			case unvisited:
				visit(r.to)
			}
		}
		path = path[:len(path)-1]
		state[name] = done
	}
	for _, n := range c.Notifiers {
		if state[n.Name] == unvisited {
			visit(n.Name)
		}
	}
	return names
}

func (p *parser) notifier(it *yaml.Node, names map[string]*yaml.Node) (Notifier, []fallbackRef, bool) {
	m, ok := p.mapOf(it, "notifier")
	if !ok {
		return Notifier{}, nil, false
	}
	if m.node == nil {
		p.errorf(it, "notifier must be a mapping with at least name and type, got an empty value")
		return Notifier{}, nil, false
	}
	n := Notifier{Line: m.node.Line, Column: m.node.Column}
	nameOK := false
	nf := m.get("name")
	if s, ok := p.str(nf); ok {
		switch {
		case s == "":
			p.errorf(nf.key, "notifier name must not be empty")
		case !nameRE.MatchString(s):
			p.errorf(nf.key, "notifier name %q may only contain a-z, 0-9, '.', '_' and '-'", s)
		case names[s] != nil:
			p.errorf(nf.key, "duplicate notifier name %q (first at line %d)", s, names[s].Line)
		default:
			names[s] = nf.key
			nameOK = true
		}
		n.Name = s
	} else if !set(nf) {
		p.errorf(keyOr(nf, m.pos()), "notifier needs a name")
	}
	what := "notifier"
	if n.Name != "" {
		what = fmt.Sprintf("notifier %q", n.Name)
	}

	tf := m.get("type")
	typeOK := false
	if s, ok := p.str(tf); ok {
		if oneOf(s, notifierTypes...) {
			n.Type, typeOK = s, true
		} else {
			p.errorf(tf.key, "notifier type must be %s, got %q", choiceList(notifierTypes...), s)
		}
	} else if !set(tf) {
		p.errorf(keyOr(tf, m.pos()), "%s needs a type: %s", what, choiceList(notifierTypes...))
	}
	if typeOK {
		for _, f := range m.fields {
			types, known := notifierKeys[f.name]
			if known && !applies(types, n.Type) {
				f.used = true
				delete(m.by, f.name)
				p.errorf(f.key, "key %q does not apply to %s notifiers", f.name, n.Type)
			}
		}
	}
	is := func(types ...string) bool { return !typeOK || oneOf(n.Type, types...) }
	need := func(name string) (string, *field, bool) {
		if !typeOK {
			s, ok := p.str(m.get(name))
			return s, nil, ok
		}
		return p.required(m, name, fmt.Sprintf("%s %s needs %s", n.Type, what, name))
	}
	opt := func(name string, dst *string) *field {
		f := m.get(name)
		if s, ok := p.str(f); ok {
			*dst = s
		}
		return f
	}

	// url
	switch {
	case is(NotifierSlack, NotifierDiscord, NotifierMSTeams, NotifierWebhook):
		if u, uf, ok := need("url"); ok {
			if uf != nil {
				if pr := httpURLProblem(u); pr != "" {
					p.errorf(uf.key, "url %s", pr)
				}
			}
			n.URL = u
		}
	case is(NotifierPagerDuty, NotifierOpsgenie, NotifierTelegram):
		switch n.Type {
		case NotifierPagerDuty:
			n.URL = DefaultPagerDutyURL
		case NotifierOpsgenie:
			n.URL = DefaultOpsgenieURL
		case NotifierTelegram:
			n.URL = DefaultTelegramURL
		}
		if uf := m.get("url"); set(uf) {
			if u, ok := p.str(uf); ok {
				if pr := httpURLProblem(u); pr != "" {
					p.errorf(uf.key, "url %s", pr)
				} else {
					n.URL = u
				}
			}
		}
	}

	if is(NotifierPagerDuty) {
		n.RoutingKey, _, _ = need("routing_key")
		if typeOK {
			n.Severity = defaultPDSeverity
		}
		if sf := m.get("severity"); set(sf) {
			if s, ok := p.str(sf); ok {
				if oneOf(s, "critical", "error", "warning", "info") {
					n.Severity = s
				} else {
					p.errorf(sf.key, "severity must be critical, error, warning or info, got %q", s)
				}
			}
		}
	}
	if is(NotifierOpsgenie) {
		n.APIKey, _, _ = need("api_key")
		if pf := opt("priority", &n.Priority); n.Priority != "" && !oneOf(n.Priority, "P1", "P2", "P3", "P4", "P5") {
			p.errorf(pf.key, "priority must be P1, P2, P3, P4 or P5, got %q", n.Priority)
			n.Priority = ""
		}
	}
	if is(NotifierTelegram) {
		n.BotToken, _, _ = need("bot_token")
		n.ChatID, _, _ = need("chat_id")
	}
	if is(NotifierWebhook) {
		opt("secret", &n.Secret)
		n.Headers = p.headers(m.get("headers"))
	}
	if is(NotifierEmail) {
		if s, sf, ok := need("smtp"); ok {
			if sf != nil {
				if pr := hostPortProblem(s, false); pr != "" {
					p.errorf(sf.key, "smtp %s", pr)
				}
			}
			n.SMTP = s
		}
		if typeOK {
			n.TLS = defaultEmailTLS
		}
		if tf := m.get("tls"); set(tf) {
			if s, ok := p.str(tf); ok {
				if oneOf(s, "starttls", "implicit", "none") {
					n.TLS = s
				} else {
					p.errorf(tf.key, "tls must be starttls, implicit or none, got %q", s)
				}
			}
		}
		opt("username", &n.Username)
		opt("password", &n.Password)
		if s, ff, ok := need("from"); ok {
			if _, err := mail.ParseAddress(s); err != nil && ff != nil {
				p.errorf(ff.key, "from %q is not an email address", s)
			}
			n.From = s
		}
		toF := m.get("to")
		if tos, ok := p.strings(toF); ok {
			for _, t := range tos {
				if _, err := mail.ParseAddress(t.s); err != nil {
					p.errorf(t.n, "%q is not an email address", t.s)
					continue
				}
				n.To = append(n.To, t.s)
			}
			if len(tos) == 0 && typeOK {
				p.errorf(toF.key, "to must list at least one address")
			}
		} else if typeOK && !set(toF) {
			p.errorf(keyOr(toF, m.pos()), "email %s needs to: at least one address", what)
		}
	}

	// fallback
	var refs []fallbackRef
	ff := m.get("fallback")
	if fs, ok := p.strings(ff); ok {
		seen := map[string]bool{}
		for _, f := range fs {
			switch {
			case f.s == "":
				p.errorf(f.n, "fallback entries must be notifier names, got an empty value")
			case seen[f.s]:
				p.errorf(f.n, "notifier %q is listed twice in fallback", f.s)
			default:
				seen[f.s] = true
				n.Fallback = append(n.Fallback, f.s)
				if nameOK {
					refs = append(refs, fallbackRef{from: n.Name, to: f.s, n: f.n})
				}
			}
		}
	}
	if len(n.Fallback) > 0 {
		n.FallbackAfter = DefaultFallbackAfter
	}
	if af := m.get("fallback_after"); set(af) {
		if d, ok := p.duration(af); ok {
			if d <= 0 {
				p.errorf(af.key, "fallback_after must be positive, got %s", d)
			} else {
				n.FallbackAfter = d
			}
		}
	}
	n.Repeat, _ = p.repeat(m.get("repeat"))
	if rf := m.get("rate_limit"); set(rf) {
		if s, ok := p.str(rf); ok {
			if rl, ok := ParseRateLimit(s); ok {
				n.RateLimit = &rl
			} else {
				p.errorf(rf.key, "rate_limit must be COUNT/PERIOD such as 1/s, 120/m or 10/30s, or none, got %q", s)
			}
		}
	}
	m.unknown()
	return n, refs, true
}

// repeat reads a reminder interval: 0 (off) or at least MinRepeat.
func (p *parser) repeat(f *field) (time.Duration, bool) {
	d, ok := p.duration(f)
	if ok && d != 0 && d < MinRepeat {
		p.errorf(f.key, "repeat must be 0 (no reminders) or at least %s, got %s", MinRepeat, d)
		return 0, false
	}
	return d, ok
}

// ParseRateLimit reads COUNT/PERIOD: "1/s", "120/m", "2/h" or "10/30s"
// (PERIOD is s, m, h or a Go duration), or "none" (unlimited, Count 0).
func ParseRateLimit(s string) (RateLimit, bool) {
	s = strings.TrimSpace(s)
	if s == "none" || s == "0" {
		return RateLimit{}, true
	}
	cs, ps, ok := strings.Cut(s, "/")
	if !ok {
		return RateLimit{}, false
	}
	count, err := strconv.Atoi(strings.TrimSpace(cs))
	if err != nil || count < 1 || strings.HasPrefix(strings.TrimSpace(cs), "+") {
		return RateLimit{}, false
	}
	var per time.Duration
	switch ps = strings.TrimSpace(ps); ps {
	case "s":
		per = time.Second
	case "m":
		per = time.Minute
	case "h":
		per = time.Hour
	default:
		if per, err = time.ParseDuration(ps); err != nil || per <= 0 {
			return RateLimit{}, false
		}
	}
	return RateLimit{Count: count, Per: per}, true
}

// String renders the limit as Parse reads it.
func (r RateLimit) String() string {
	if r.Count == 0 {
		return "none"
	}
	switch r.Per {
	case time.Second:
		return fmt.Sprintf("%d/s", r.Count)
	case time.Minute:
		return fmt.Sprintf("%d/m", r.Count)
	case time.Hour:
		return fmt.Sprintf("%d/h", r.Count)
	}
	return fmt.Sprintf("%d/%s", r.Count, r.Per)
}
