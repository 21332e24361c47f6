package config

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"text/template"
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
	NotifierTwilio    = "twilio"   // SMS or voice calls through Twilio's REST API
	NotifierSMSHTTP   = "sms_http" // any SMS gateway with an HTTP API, by templates
)

var notifierTypes = []string{NotifierPagerDuty, NotifierOpsgenie, NotifierSlack, NotifierDiscord,
	NotifierMSTeams, NotifierTelegram, NotifierWebhook, NotifierEmail, NotifierTwilio, NotifierSMSHTTP}

// DefaultTwilioURL is the twilio notifier's url unless it sets one.
const DefaultTwilioURL = "https://api.twilio.com"

// Email authentication mechanisms (key auth of an email notifier). An
// email notifier without auth uses what the server offers when it has a
// username (the strongest of SCRAM, CRAM-MD5, then PLAIN or LOGIN over
// TLS only), and none without one.
const (
	EmailAuthPlain   = "plain"
	EmailAuthLogin   = "login"
	EmailAuthCRAMMD5 = "cram-md5"
	EmailAuthXOAUTH2 = "xoauth2"
	EmailAuthNone    = "none"
)

var emailAuths = []string{EmailAuthPlain, EmailAuthLogin, EmailAuthCRAMMD5, EmailAuthXOAUTH2, EmailAuthNone}

// ChannelKeys are the keys of email authentication and of the twilio and
// sms_http notifiers. Only the keys of the notifier's Type are set.
type ChannelKeys struct {
	// Auth is the email notifier's SMTP authentication mechanism:
	// plain, login, cram-md5, xoauth2 or none; "" (default): what the
	// server offers when Username is set, else none.
	Auth string
	// OAuthToken is the email notifier's OAuth 2 access token (auth:
	// xoauth2; setting it implies xoauth2).
	OAuthToken string

	AccountSID string // twilio: the account (AC...); with AuthToken, the API's basic auth
	AuthToken  string // twilio
	// Voice makes a twilio notifier call To and read the notification
	// (TwiML <Say>) instead of sending an SMS.
	Voice bool

	// Method is the sms_http request's method: POST (default), PUT,
	// PATCH or GET.
	Method string
	// Body is the sms_http request's body, a text/template over SMSData
	// (default DefaultSMSBody). URL and the values of Headers are
	// templates too.
	Body string
	// ContentType of the sms_http body; default "application/json; charset=utf-8".
	ContentType string
	// SuccessMatch, when set, must match the body of a 2xx answer for the
	// message to count as sent (for gateways that answer 200 to a refused
	// message); a 2xx that does not match is a permanent failure.
	SuccessMatch *regexp.Regexp
}

// DefaultSMSBody is an sms_http notifier's body unless it sets one.
const DefaultSMSBody = `{"from": {{json .From}}, "to": {{json .To}}, "message": {{json .Message}}}`

// DefaultSMSContentType is an sms_http notifier's content_type unless it
// sets one.
const DefaultSMSContentType = "application/json; charset=utf-8"

// SMSData is what an sms_http notifier's templates (url, headers, body)
// see: {{.Message}}, {{json .To}}, ...
type SMSData struct {
	Message       string    // the headline: one line with what on-call needs to know
	Text          string    // the whole notification as plain text, several lines
	From          string    // the notifier's from
	To            []string  // the notifier's to
	Action        string    // trigger, resolve, repeat or test
	Kind          string    // "" (an incident), flapping, coverage or cert
	Check         string    // the check's name
	Name          string    // the check's display name
	IncidentID    string    // the incident's (or notice's) id
	Severity      string    // critical, warning, info
	Target        string    // the check's target
	StatusPageURL string    // the status page
	Time          time.Time // when the request is made
	Timestamp     string    // Time in Unix milliseconds, as signed gateway requests want it
}

// SMSFuncs are the functions of sms_http templates, besides text/template's
// own (urlquery, printf, len, index, ...).
var SMSFuncs = template.FuncMap{
	// json encodes a value as JSON: {{json .Message}} is a quoted string.
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	// join joins strings: {{join .To ","}}.
	"join": func(s []string, sep string) string { return strings.Join(s, sep) },
	// truncate cuts s to n characters (runes), ending in "…" when cut.
	"truncate": func(n int, s string) string {
		r := []rune(s)
		if n <= 0 || len(r) <= n {
			return s
		}
		return string(r[:n-1]) + "…"
	},
	// digits keeps the digits of s: {{digits "+82 10-1234-5678"}} is 821012345678.
	"digits": func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, s)
	},
	// base64 encodes s (standard encoding).
	"base64": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
	// hmacSHA256 is the base64 of the HMAC-SHA256 of msg keyed with key.
	"hmacSHA256": func(key, msg string) string {
		return base64.StdEncoding.EncodeToString(hmacSHA256(key, msg))
	},
	// hmacSHA256Hex is the same in lower-case hex.
	"hmacSHA256Hex": func(key, msg string) string { return hex.EncodeToString(hmacSHA256(key, msg)) },
}

func hmacSHA256(key, msg string) []byte {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// ParseSMSTemplate parses one of an sms_http notifier's templates (name is
// the key: url, body, or headers.NAME) and runs it once on sample data, so
// that a misspelt field fails here rather than when paging.
func ParseSMSTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Funcs(SMSFuncs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	if err := t.Execute(io.Discard, sampleSMSData); err != nil {
		return nil, err
	}
	return t, nil
}

var sampleSMSData = SMSData{
	Message: "Checkout is not reachable from 2 of 3 regions (eu-west, us-east): HTTP 503",
	Text:    "Checkout is not reachable from 2 of 3 regions (eu-west, us-east): HTTP 503\n",
	From:    "+15005550006", To: []string{"+15005550001", "+15005550002"},
	Action: "trigger", Check: "checkout", Name: "Checkout", IncidentID: "0123456789abcdef",
	Severity: "critical", Target: "https://checkout.example.com/health", StatusPageURL: "https://status.example.com/",
	Time: time.Unix(1764496800, 0).UTC(), Timestamp: "1764496800000",
}

// renderSample renders t on the sample data.
func renderSample(t *template.Template) string {
	var b strings.Builder
	_ = t.Execute(&b, sampleSMSData)
	return b.String()
}

// e164RE is an E.164 phone number: + and up to 15 digits.
var e164RE = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

// notifierKeys lists the keys of a notifier and the types they apply to
// (nil: every type).
var notifierKeys = map[string][]string{
	"name": nil, "type": nil, "fallback": nil, "fallback_after": nil, "repeat": nil, "rate_limit": nil,
	"url": {NotifierPagerDuty, NotifierOpsgenie, NotifierSlack, NotifierDiscord, NotifierMSTeams,
		NotifierTelegram, NotifierWebhook, NotifierTwilio, NotifierSMSHTTP},
	"routing_key": {NotifierPagerDuty}, "severity": {NotifierPagerDuty},
	"api_key": {NotifierOpsgenie}, "priority": {NotifierOpsgenie},
	"bot_token": {NotifierTelegram}, "chat_id": {NotifierTelegram},
	"secret": {NotifierWebhook}, "headers": {NotifierWebhook, NotifierSMSHTTP},
	"smtp": {NotifierEmail}, "tls": {NotifierEmail}, "username": {NotifierEmail},
	"password": {NotifierEmail}, "auth": {NotifierEmail}, "oauth_token": {NotifierEmail},
	"from": {NotifierEmail, NotifierTwilio, NotifierSMSHTTP}, "to": {NotifierEmail, NotifierTwilio, NotifierSMSHTTP},
	"account_sid": {NotifierTwilio}, "auth_token": {NotifierTwilio}, "voice": {NotifierTwilio},
	"method": {NotifierSMSHTTP}, "body": {NotifierSMSHTTP}, "content_type": {NotifierSMSHTTP},
	"success_match": {NotifierSMSHTTP},
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
	case typeOK && n.Type == NotifierSMSHTTP:
		// A template: checked with the other sms_http keys.
	case is(NotifierSlack, NotifierDiscord, NotifierMSTeams, NotifierWebhook):
		if u, uf, ok := need("url"); ok {
			if uf != nil {
				if pr := httpURLProblem(u); pr != "" {
					p.errorf(uf.key, "url %s", pr)
				}
			}
			n.URL = u
		}
	case is(NotifierPagerDuty, NotifierOpsgenie, NotifierTelegram, NotifierTwilio):
		switch n.Type {
		case NotifierPagerDuty:
			n.URL = DefaultPagerDutyURL
		case NotifierOpsgenie:
			n.URL = DefaultOpsgenieURL
		case NotifierTelegram:
			n.URL = DefaultTelegramURL
		case NotifierTwilio:
			n.URL = DefaultTwilioURL
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
		// No default: without a severity of its own, a PagerDuty notifier
		// sends the event's (the check's), critical when it has none.
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
		p.emailAuth(m, &n, what)
		if s, ff, ok := need("from"); ok {
			if _, err := mail.ParseAddress(s); err != nil && ff != nil {
				p.errorf(ff.key, "from %q is not an email address", s)
			}
			n.From = s
		}
		toF := m.get("to")
		if tos, listed, ok := p.addresses(toF); ok {
			n.To = append(n.To, tos...)
			if listed == 0 && typeOK {
				p.errorf(toF.key, "to must list at least one address")
			}
		} else if typeOK && !set(toF) {
			p.errorf(keyOr(toF, m.pos()), "email %s needs to: at least one address", what)
		}
	}
	if is(NotifierTwilio) {
		p.twilio(m, &n, what, typeOK, need)
	}
	if is(NotifierSMSHTTP) {
		p.smsHTTP(m, &n, what, typeOK, need)
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
				p.errorf(rf.key, "rate_limit must be COUNT/PERIOD such as 1/s, 120/m, 10/30s or 1/1d, or none, got %q", s)
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

// ParseRateLimit reads COUNT/PERIOD: "1/s", "120/m", "2/h", "5/d",
// "10/30s" or "1/1d" (PERIOD is s, m, h, d, w or a duration as every
// duration of the configuration is read, ParseDuration: 30s, 1d, 2w, 1d12h),
// or "none" (unlimited, Count 0).
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
	case "d":
		per = Day
	case "w":
		per = Week
	default:
		if per, err = ParseDuration(ps); err != nil || per <= 0 {
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
	case Day:
		return fmt.Sprintf("%d/d", r.Count)
	case Week:
		return fmt.Sprintf("%d/w", r.Count)
	}
	return fmt.Sprintf("%d/%s", r.Count, r.Per)
}

// emailAuth reads an email notifier's username, password, auth and
// oauth_token.
func (p *parser) emailAuth(m *mapping, n *Notifier, what string) {
	opt := func(name string, dst *string) *field {
		f := m.get(name)
		if s, ok := p.str(f); ok {
			*dst = s
		}
		return f
	}
	uf := opt("username", &n.Username)
	pf := opt("password", &n.Password)
	tf := opt("oauth_token", &n.OAuthToken)
	af := opt("auth", &n.Auth)
	if n.Auth != "" && !oneOf(n.Auth, emailAuths...) {
		p.errorf(af.key, "auth must be %s, got %q", choiceList(emailAuths...), n.Auth)
		n.Auth = ""
		return
	}
	if n.Auth == "" && n.OAuthToken != "" {
		n.Auth = EmailAuthXOAUTH2
	}
	at := keyOr(af, m.pos())
	if host, _, err := net.SplitHostPort(n.SMTP); err == nil && n.TLS == "none" && !isLoopback(host) &&
		oneOf(n.Auth, EmailAuthPlain, EmailAuthLogin, EmailAuthXOAUTH2) {
		p.errorf(at, "auth: %s would send the credentials in clear text with tls: none; use tls: starttls or implicit", n.Auth)
	}
	switch n.Auth {
	case EmailAuthNone:
		if n.Username != "" || n.Password != "" || n.OAuthToken != "" {
			p.errorf(af.key, "auth: none sends no credentials; remove username, password and oauth_token")
		}
	case EmailAuthXOAUTH2:
		if n.OAuthToken == "" {
			p.errorf(keyOr(tf, at), "auth: xoauth2 needs oauth_token (an OAuth 2 access token)")
		}
		if n.Username == "" {
			p.errorf(keyOr(uf, at), "auth: xoauth2 needs username (the mailbox the token is for)")
		}
		if n.Password != "" {
			p.errorf(pf.key, "password does not apply with auth: xoauth2 (the token is oauth_token)")
		}
	default: // plain, login, cram-md5, or what the server offers
		if n.OAuthToken != "" {
			p.errorf(tf.key, "oauth_token applies only with auth: xoauth2, not %s", n.Auth)
		}
		switch {
		case n.Auth != "" && n.Username == "":
			p.errorf(keyOr(uf, at), "auth: %s needs username and password", n.Auth)
		case n.Username != "" && n.Password == "":
			p.errorf(keyOr(pf, uf.key), "%s has a username but no password", what)
		case n.Username == "" && n.Password != "":
			p.errorf(pf.key, "%s has a password but no username", what)
		}
	}
}

// twilio reads a twilio notifier's keys.
func (p *parser) twilio(m *mapping, n *Notifier, what string, typeOK bool,
	need func(string) (string, *field, bool)) {
	if s, sf, ok := need("account_sid"); ok {
		if sf != nil && (!strings.HasPrefix(s, "AC") || !isAlnum(s)) {
			p.errorf(sf.key, "account_sid must be a Twilio account SID (AC followed by letters and digits)")
		}
		n.AccountSID = s
	}
	n.AuthToken, _, _ = need("auth_token")
	if vf := m.get("voice"); set(vf) {
		n.Voice, _ = p.boolean(vf)
	}
	if s, ff, ok := need("from"); ok {
		switch {
		case ff == nil:
		case e164RE.MatchString(s):
		case strings.HasPrefix(s, "MG") && isAlnum(s) && !n.Voice:
			// a Messaging Service SID
		case n.Voice:
			p.errorf(ff.key, "from must be a phone number in E.164 form such as +15005550006, got %q", s)
		default:
			p.errorf(ff.key, "from must be a phone number in E.164 form such as +15005550006 or a Messaging Service SID (MG...), got %q", s)
		}
		n.From = s
	}
	n.To = p.phoneList(m, n.Type, what, typeOK, true)
}

// addresses reads f, a list of email addresses: those that parse, each
// one that does not reported; listed is the number of entries, ok as
// strings.
func (p *parser) addresses(f *field) (addrs []string, listed int, ok bool) {
	tos, ok := p.strings(f)
	for _, t := range tos {
		if _, err := mail.ParseAddress(t.s); err != nil {
			p.errorf(t.n, "%q is not an email address", t.s)
			continue
		}
		addrs = append(addrs, t.s)
	}
	return addrs, len(tos), ok
}

// phoneList reads the to list of a twilio (E.164 numbers) or sms_http
// (anything the gateway takes) notifier.
func (p *parser) phoneList(m *mapping, typ, what string, typeOK, e164 bool) []string {
	toF := m.get("to")
	tos, ok := p.strings(toF)
	if !ok {
		if typeOK && !set(toF) {
			p.errorf(keyOr(toF, m.pos()), "%s %s needs to: at least one phone number", typ, what)
		}
		return nil
	}
	var out []string
	for _, t := range tos {
		switch {
		case strings.TrimSpace(t.s) == "":
			p.errorf(t.n, "to entries must not be empty")
		case e164 && !e164RE.MatchString(t.s):
			p.errorf(t.n, "%q is not a phone number in E.164 form such as +821012345678", t.s)
		default:
			out = append(out, t.s)
		}
	}
	if len(tos) == 0 && typeOK {
		p.errorf(toF.key, "to must list at least one phone number")
	}
	return out
}

// isLoopback reports whether host names this machine: localhost or a
// loopback address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isAlnum(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// smsHTTP reads an sms_http notifier's keys; url, the header values and
// body are templates over SMSData.
func (p *parser) smsHTTP(m *mapping, n *Notifier, what string, typeOK bool,
	need func(string) (string, *field, bool)) {
	if u, uf, ok := need("url"); ok {
		n.URL = u
		if uf != nil {
			if t, err := ParseSMSTemplate("url", u); err != nil {
				p.errorf(uf.key, "url: %v", err)
			} else if pr := httpURLProblem(renderSample(t)); pr != "" {
				p.errorf(uf.key, "url %s", pr)
			}
		}
	}
	n.Method = "POST"
	if mf := m.get("method"); set(mf) {
		if s, ok := p.str(mf); ok {
			if s = strings.ToUpper(strings.TrimSpace(s)); oneOf(s, "POST", "PUT", "PATCH", "GET") {
				n.Method = s
			} else {
				p.errorf(mf.key, "method must be POST, PUT, PATCH or GET, got %q", s)
			}
		}
	}
	n.Headers = p.headers(m.get("headers"))
	for k, v := range n.Headers {
		if _, err := ParseSMSTemplate("headers."+k, v); err != nil {
			p.errorf(m.get("headers").key, "headers: %s: %v", k, err)
		}
	}
	bf := m.get("body")
	if s, ok := p.str(bf); ok {
		n.Body = s
	} else if typeOK && n.Method != "GET" {
		n.Body = DefaultSMSBody
	}
	if set(bf) {
		switch {
		case n.Method == "GET" && n.Body != "":
			p.errorf(bf.key, "a GET request has no body; put the message in the url")
		default:
			if _, err := ParseSMSTemplate("body", n.Body); err != nil {
				p.errorf(bf.key, "body: %v", err)
			}
		}
	}
	if typeOK && n.Method != "GET" {
		n.ContentType = DefaultSMSContentType
	}
	if cf := m.get("content_type"); set(cf) {
		if s, ok := p.str(cf); ok {
			if _, _, err := mime.ParseMediaType(s); err != nil {
				p.errorf(cf.key, "content_type %q is not a media type such as application/json", s)
			} else {
				n.ContentType = s
			}
		}
	}
	if sf := m.get("success_match"); set(sf) {
		if s, ok := p.str(sf); ok {
			if re, err := regexp.Compile(s); err != nil {
				p.errorf(sf.key, "success_match is not a regular expression: %v", err)
			} else {
				n.SuccessMatch = re
			}
		}
	}
	if ff := m.get("from"); set(ff) {
		n.From, _ = p.str(ff)
	}
	n.To = p.phoneList(m, n.Type, what, typeOK, false)
}
