// Package config loads and validates Vantage's YAML configuration.
//
// Load parses a file strictly: unknown keys, wrong types, duplicate check
// names, impossible values and unset ${VAR} references are all reported at
// once, each as FILE:LINE:COL: message (see Errors).
//
// # Errors
//
// Load and Parse return an Errors value, unwrapped, listing every problem
// sorted by line and column; its Error method gives one line per problem,
// FILE:LINE:COL: message, FILE exactly as given. A problem is located at the
// offending key, except:
//   - a value of the wrong type (a string where a list is wanted, "two" for
//     an integer, "30" for a duration, a bad RFC 3339 time) and a ${NAME}
//     problem are located at the value;
//   - a problem with one entry of a list (an unknown notifier in notify, a
//     bad status code) is located at that entry;
//   - a missing required key is located at the start of the check, notifier
//     or window that lacks it (at the key itself if it is there but empty);
//   - a duplicate check or notifier name is located at the second `name` key;
//   - timeout >= interval is located at the timeout key in effect: the
//     check's own timeout key if it has one, else the timeout key under
//     defaults. When neither sets timeout (the built-in 10s applies), it is
//     located at the interval key in effect instead;
//   - a YAML syntax error is one problem at the line the YAML library names,
//     column 1.
//
// A file that cannot be read gives a plain error ("load config: ...").
//
// # Environment variables
//
// ${NAME} anywhere in a scalar value (not in a key) is replaced by the
// environment variable NAME, which must match [A-Za-z_][A-Za-z0-9_]*. An unset
// variable is an error; a variable set to the empty string gives "". $${
// stands for a literal ${; any other $ is literal. Substitution happens before
// the value is interpreted, so `interval: ${INTERVAL}` and `quorum: ${Q}`
// work: a substituted value is typed as if written unquoted.
//
// # YAML
//
// A file holds one YAML document (empty or comment-only files are valid and
// have no checks). An empty value (`key:` or `key: ~`, but not `key: ""`) is
// the same as leaving the key out. Anchors, aliases and merge keys
// (<<: *anchor) may be used; keys written in a mapping win over merged ones.
// Top-level keys starting with "x-" are ignored, as a place to define
// anchors.
package config

import (
	"net"
	"net/url"
	"regexp"
	"time"

	"github.com/robfig/cron/v3"
)

// Config is a whole, validated configuration file.
type Config struct {
	// Path is the file name as given to Load.
	Path        string
	Node        Node
	Cluster     Cluster
	Defaults    Defaults
	Checks      []Check
	Notifiers   []Notifier
	StatusPage  StatusPage
	Maintenance []Maintenance
	Store       Store
	// Routes add notifiers to checks by severity, group and labels (key
	// `routes:`), in order; see Route.
	Routes []Route
	// Coverage says who hears about lost monitoring coverage (key
	// `coverage:`).
	Coverage Coverage
	// Reports is the monthly mail of the SLA report (key `reports:`).
	Reports Reports
}

// Node holds the settings of `vantage run` that may also be given as flags
// (key `node:`). A flag wins over the file.
type Node struct {
	Name           string   // --node; default: host name
	Region         string   // --region; default: "local"
	Gossip         string   // --gossip; default: 0.0.0.0:7946
	Advertise      string   // --advertise; default: the bind address
	Join           []string // --join
	HTTP           string   // --http; default: :8080
	Data           string   // --data; default: ./data
	GossipKeyFile  string   // --gossip-key-file
	InsecureGossip bool     // --insecure-gossip
	LogFormat      string   // --log-format: text (default) or json
	LogLevel       string   // --log-level: debug, info (default), warn, error
}

// Cluster describes the regions that vote (key `cluster:`).
type Cluster struct {
	Regions  []string // the quorum denominator; empty: single region
	Quorum   int      // regions that must agree; default: majority of Regions (1 when empty)
	Gossip   string   // memberlist profile: wan (default), lan, local
	Canaries []string // tcp://HOST:PORT or http(s):// URLs
}

// Defaults apply to every check that does not set the key itself.
type Defaults struct {
	Interval     time.Duration // default 30s, at least 1s
	Timeout      time.Duration // default 10s, less than Interval
	FailAfter    int           // default 2
	RecoverAfter int           // default 2
	// FlapThreshold is how many incident state changes (an incident
	// opening or closing) within FlapWindow make a check flapping: more
	// than this many. Default 5; 0 turns flap dampening off.
	FlapThreshold int
	FlapWindow    time.Duration // default 10m
	// UnknownAfter is how long a check may stay unknown before a coverage
	// alert goes out. Default 10m; 0 turns coverage alerts off.
	UnknownAfter time.Duration
	// DownInterval is the probe interval while a check is down (key
	// down_interval): as written, else min(Interval, 10s). A check that
	// sets its own interval but no down_interval, here or in the check,
	// takes min(its interval, 10s). See Check.DownInterval.
	DownInterval time.Duration
}

// Check types.
const (
	TypeHTTP = "http"
	TypeTCP  = "tcp"
	TypeICMP = "icmp"
	TypeDNS  = "dns"
	// TypePush is a heartbeat: the job pushes to the node, which counts
	// receipts; a push check is never probed.
	TypePush = "push"
)

// DNS record types a dns check may ask for (key record).
const (
	RecordA     = "A"
	RecordAAAA  = "AAAA"
	RecordCNAME = "CNAME"
	RecordMX    = "MX"
	RecordTXT   = "TXT"
	RecordNS    = "NS"
	RecordSOA   = "SOA"
)

// Check is one probe definition with defaults already merged in.
type Check struct {
	Name   string // unique, [a-z0-9-_.]
	Type   string // http | tcp | icmp | dns | push
	URL    string // http
	Target string // tcp: HOST:PORT; icmp: HOST; dns: the name queried

	Method          string            // http; default GET
	Headers         map[string]string // http
	Body            string            // http request body
	BodyLimit       int64             // http: bytes of body read for matching; default 1 MiB
	FollowRedirects bool              // http; default true (at most 10)
	InsecureTLS     bool              // http: skip certificate verification (key insecure_skip_verify)

	Send string // tcp: bytes written after connecting

	Count   int     // icmp: echo requests per probe; default 3
	MaxLoss float64 // icmp: loss percentage above which the probe fails; default 50

	IP string // "4", "6" or "any" (default)

	// dns
	Record string // A (default), AAAA, CNAME, MX, TXT, NS or SOA
	Server string // HOST:PORT of the name server asked; "": the system resolver

	// push (key token, period, grace): the job calls POST
	// /api/v1/push/{name} with this token at least every Period; the check
	// is down once no node has had a receipt for Period + Grace.
	Token  string        // at least 16 characters
	Period time.Duration // the job's schedule; at least 1s
	Grace  time.Duration // default max(Period/10, 5s); at least 5s

	Expect Expect

	Interval     time.Duration
	Timeout      time.Duration
	FailAfter    int
	RecoverAfter int
	// DownInterval is the probe interval while the check is down (key
	// down_interval, also under defaults): default min(Interval, 10s); at
	// least 1s and at most Interval.
	DownInterval time.Duration

	// DependsOn lists checks this one depends on (key depends_on): while
	// one of them is down, this check's incident pages nobody. Every name
	// is a defined check, listed once; the graph has no cycles.
	DependsOn []string
	// DependsWait is how long a trigger waits for a listed check to go
	// down, and how long after they recover a still-down check waits
	// before paging (key depends_wait, default 10s).
	DependsWait time.Duration

	Group       string            // status page group
	DisplayName string            // status page name; default Name
	Description string            // status page description
	Notify      []string          // notifier names
	Labels      map[string]string // free-form, for routing
	Severity    string            // critical (default), warning, info

	FlapThreshold int           // from defaults unless set; see Defaults
	FlapWindow    time.Duration // from defaults unless set
	UnknownAfter  time.Duration // from defaults unless set

	// Line and Column locate the check's entry in the file.
	Line, Column int
}

// Expect lists what a successful probe must show.
type Expect struct {
	Status       []StatusRange  // http; default 200-299
	BodyContains string         // http body (or tcp reply) must contain this
	BodyRegex    *regexp.Regexp // http body must match; nil when unset
	MaxLatency   time.Duration  // slower counts as failure; 0 = no limit
	// CertExpiry: an https certificate closer than this to expiry is
	// reported (checker.Result.CertExpiring) and warned about; it does not
	// fail the probe. 0 = off.
	CertExpiry time.Duration
	Banner     string // tcp: what the server sends (first, or in reply to Send) must contain this

	BodyNotContains string            // http body must not contain this (key body_not_contains)
	BodyNotRegex    *regexp.Regexp    // http body must not match (key body_not_regex); nil when unset
	JSON            []JSONAssertion   // http: assertions on the JSON body (key json), in order
	Headers         []HeaderAssertion // http: response headers that must match (key headers), by name

	Rcode   string   // dns: the response code wanted, upper case; default NOERROR
	Answers []string // dns: each must be among the answers (see the dns check's docs)
}

// JSON assertion operators (key op of an expect.json entry).
const (
	OpEq       = "=="
	OpNe       = "!="
	OpLt       = "<"
	OpLe       = "<="
	OpGt       = ">"
	OpGe       = ">="
	OpExists   = "exists"
	OpContains = "contains"
)

// JSONAssertion is one entry of expect.json: the value at Path compared
// with Value by Op.
type JSONAssertion struct {
	// Path is as written: $ is the whole document, .key or ['key'] a
	// member, [N] an array element ($.data.items[0].name); the leading $.
	// may be left out (data.items[0].name).
	Path string
	// Keys is Path split into members and indices (indices as decimal
	// strings); empty for $.
	Keys []string
	Op   string
	// Value is a string, a float64 or a bool. For ==, != and contains it is
	// compared with the JSON value of the same type; <, <=, > and >= need a
	// number; for exists it is true (must exist, the default) or false
	// (must not).
	Value any
}

// String renders the assertion as failure messages show it:
// $.status == "ok".
func (a JSONAssertion) String() string {
	if a.Op == OpExists {
		if b, _ := a.Value.(bool); !b {
			return a.Path + " does not exist"
		}
		return a.Path + " exists"
	}
	return a.Path + " " + a.Op + " " + FormatJSONValue(a.Value)
}

// HeaderAssertion is one entry of expect.headers: a response header that
// must be present with a value matching Regex (any of its values, when it
// is repeated).
type HeaderAssertion struct {
	Name  string // canonical form (Content-Type)
	Regex *regexp.Regexp
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Min, Max int }

// Contains reports whether code lies in the range.
func (r StatusRange) Contains(code int) bool { return code >= r.Min && code <= r.Max }

// TargetString is what a notification names as the check's target: the URL of
// an http check, HOST:PORT of a tcp check, the host of an icmp check, the
// name of a dns check (with " @SERVER" when it asks a given server), and
// the push path of a push check.
func (c *Check) TargetString() string {
	switch c.Type {
	case TypeHTTP:
		// A password in the URL (sent as basic auth) is not shown: the
		// target goes into pages and the operators' status.
		if u, err := url.Parse(c.URL); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				return u.Redacted()
			}
		}
		return c.URL
	case TypeDNS:
		if c.Server != "" {
			return c.Target + " @" + c.Server
		}
	case TypePush:
		return "/api/v1/push/" + c.Name
	}
	return c.Target
}

// Host returns the host name the check contacts.
func (c *Check) Host() string {
	switch c.Type {
	case TypeHTTP:
		if u, err := url.Parse(c.URL); err == nil {
			return u.Hostname()
		}
	case TypeTCP:
		if h, _, err := net.SplitHostPort(c.Target); err == nil {
			return h
		}
	case TypeDNS:
		if h, _, err := net.SplitHostPort(c.Server); err == nil {
			return h
		}
	case TypePush:
		return ""
	}
	return c.Target
}

// Notifier is one notification channel. Only the keys of its Type are set.
type Notifier struct {
	Name          string
	Type          string // pagerduty, opsgenie, slack, discord, msteams, telegram, webhook, email, twilio, sms_http
	Fallback      []string
	FallbackAfter time.Duration

	URL        string            // all HTTP-based providers
	RoutingKey string            // pagerduty
	Severity   string            // pagerduty; "" (default): the event's (the check's) severity
	APIKey     string            // opsgenie
	Priority   string            // opsgenie
	BotToken   string            // telegram
	ChatID     string            // telegram
	Secret     string            // webhook
	Headers    map[string]string // webhook, sms_http
	SMTP       string            // email HOST:PORT
	TLS        string            // email: starttls (default), implicit, none
	Username   string            // email
	Password   string            // email
	From       string            // email; twilio, sms_http: the sender number
	To         []string          // email; twilio, sms_http: phone numbers

	// ChannelKeys holds the keys of email authentication and of the
	// twilio and sms_http notifiers (see config/notifiers.go).
	ChannelKeys

	// Repeat is the reminder interval while an incident stays open, used
	// when the route that chose this notifier sets none; 0: no reminders.
	Repeat time.Duration
	// RateLimit overrides the provider's default rate limit (key
	// rate_limit); nil: the provider's default.
	RateLimit *RateLimit

	Line, Column int
}

// RateLimit is at most Count requests per Per. Count 0 means unlimited
// (`rate_limit: none`).
type RateLimit struct {
	Count int
	Per   time.Duration
}

// Route adds notifiers to the checks it matches (key `routes:`). Routes are
// tried in order; the first that matches wins unless it sets Continue. A
// route without a match is the default route: it must be last, and it
// applies to a check that names no notifiers itself and matches no route.
type Route struct {
	Match  RouteMatch
	Notify []string
	// Repeat is the reminder interval for these notifiers while an
	// incident stays open; it wins over the notifier's own repeat when
	// RepeatSet (repeat: 0 turns reminders off for this route).
	Repeat    time.Duration
	RepeatSet bool
	Continue  bool // keep trying later routes after a match
	// GroupBy lists what outages are grouped by (key group_by): only
	// "group" (the check's group) for now. Outages of checks with the same
	// value that open within GroupWait of the first reach on-call as one
	// page. Empty: no grouping.
	GroupBy []string
	// GroupWait is how long a group's page waits for more outages (key
	// group_wait); default 0: grouping off.
	GroupWait time.Duration
	// NotifyMaintenance (key notify_maintenance) sends this route's
	// notifiers a notice when a maintenance window covering a check the
	// route matches starts, and one when it ends.
	NotifyMaintenance bool

	Line, Column int
}

// RouteMatch is what a check must have for a route to apply: every key
// given must match. The zero value (no match) marks the default route.
type RouteMatch struct {
	Severity string            // the check's severity
	Group    string            // the check's group, exactly
	Labels   map[string]string // every label, with exactly this value
}

// IsDefault reports whether m matches nothing in particular: the default
// route.
func (m RouteMatch) IsDefault() bool {
	return m.Severity == "" && m.Group == "" && len(m.Labels) == 0
}

// Matches reports whether check c has everything m asks for. The default
// route's match matches every check.
func (m RouteMatch) Matches(c *Check) bool {
	if m.Severity != "" && c.Severity != m.Severity {
		return false
	}
	if m.Group != "" && c.Group != m.Group {
		return false
	}
	for k, v := range m.Labels {
		if got, ok := c.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Coverage configures the alerts sent when a check has been unknown (too
// few regions can see it) for longer than its UnknownAfter (key
// `coverage:`).
type Coverage struct {
	// Notify lists the notifiers that get coverage alerts, at warning
	// severity. Empty: coverage alerts are only logged.
	Notify []string
}

// StatusPage configures the public page.
type StatusPage struct {
	Title       string // default "Status"
	Description string
	URL         string // public base URL, used in notification links
	// APIToken is the bearer token that write endpoints (incident updates)
	// require; empty disables them. VANTAGE_API_TOKEN overrides it.
	APIToken string
	// Timezone is the IANA zone the page shows times in (key timezone);
	// default "UTC". See Location.
	Timezone string
	// Locale is the page's language (key locale): "en" (default) or "ko".
	Locale string
	// Branding is the page's logo, header links and stylesheet (keys
	// logo, links and custom_css); nil when none is set.
	Branding *Branding
	// Subscriptions configures visitors' and webhook subscriptions to
	// incidents (key subscriptions; subscriptions.go).
	Subscriptions Subscriptions
}

// Branding is what a status page shows of its operator's own.
type Branding struct {
	// Logo is the logo file (key logo) as resolved: relative to the
	// config file's directory. It is read when the config is loaded:
	// LogoData holds its bytes and LogoType its media type.
	Logo     string
	LogoData []byte
	LogoType string
	// Links are shown in the page's header (key links: name and url).
	Links []StatusPageLink
	// CustomCSS is a stylesheet served after the page's own (key
	// custom_css).
	CustomCSS string
}

// StatusPageLink is a link in the status page's header.
type StatusPageLink struct {
	Name string
	URL  string
}

// Status page locales.
const (
	LocaleEN = "en"
	LocaleKO = "ko"
)

// Location is the page's time zone; UTC when Timezone is empty or unknown.
func (s StatusPage) Location() *time.Location {
	if loc, err := LoadLocation(s.Timezone); err == nil {
		return loc
	}
	return time.UTC
}

// Maintenance is a window during which the listed checks are shown as in
// maintenance and never paged: either one window, [Start, End), or a
// recurring one: every time the cron expression Every fires (in Timezone),
// for Duration. Use Contains, Occurrence and Next rather than the fields.
type Maintenance struct {
	Title  string
	Checks []string
	Start  time.Time // one window: inclusive
	End    time.Time // one window: exclusive

	// Every is a 5-field cron expression (minute hour day-of-month month
	// day-of-week, or @daily, @weekly, @monthly, @yearly, @hourly) read in
	// Timezone; empty for a one-off window.
	Every string
	// Duration is how long each occurrence lasts (elapsed time).
	Duration time.Duration
	// Timezone is the IANA zone Every is read in; "" means UTC.
	Timezone string

	// sched is Every parsed (read in UTC wall-clock time; see
	// maintenance.go); nil when Every is empty or for a Maintenance built
	// by hand, which is then parsed on use.
	sched *cron.SpecSchedule
}

// Store configures history retention (key `store:`). Zero means keep forever.
type Store struct {
	RetainRaw    time.Duration // retention.raw; default 7 days (168h)
	RetainMinute time.Duration // retention.minute; default 30 days (720h)
	RetainDaily  time.Duration // retention.daily; default 0 (forever)
}
