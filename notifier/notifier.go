// Package notifier delivers incident notifications to on-call channels.
//
// A Provider sends one Event to one channel (PagerDuty, Opsgenie, Slack,
// Discord, Microsoft Teams, Telegram, a signed webhook, email, SMS or a
// voice call through Twilio, or any SMS gateway's HTTP API). New builds a
// Provider from a config.Notifier. The Outbox makes delivery durable: every
// notification is written to SQLite before it is sent, retried on transient
// failures with capped exponential backoff, resumed after a restart, and
// handed to fallback notifiers when the primary does not deliver in time or
// keeps failing. It consults the cluster's sent log (Log) and a Gate before
// each attempt, and exports its metrics to a prometheus.Registerer.
package notifier

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vantage-dev/vantage/config"
)

// Action is what a notification announces.
type Action string

// Actions.
const (
	ActionTrigger Action = "trigger" // an incident opened: the check is down
	ActionResolve Action = "resolve" // the incident closed: the check is up again
	ActionTest    Action = "test"    // `vantage notify test`
	// ActionRepeat is a reminder that an incident is still open; Event.Seq
	// numbers the reminders of one incident and notifier from 1.
	ActionRepeat Action = "repeat"
	// ActionUpdate re-announces a grouped page (KindGroup) whose checks
	// grew: Event.Seq is the number of checks it lists (Event.Members), so
	// each size of a group is announced once.
	ActionUpdate Action = "update"
)

// Event kinds. An incident event (the empty kind) announces a check going
// down (trigger), staying down (repeat) and coming back (resolve). The
// other kinds are notices, sent at warning severity and never as a down
// page; their IncidentID starts with the kind and a dash (CoverageID,
// FlappingID) or colon (CertID), so they never share an outbox entry, a
// PagerDuty dedup_key or an Opsgenie alias with an incident.
const (
	KindIncident = ""
	// KindFlapping: the check changes state too often. Trigger: one notice
	// when it starts ("notifications paused until it is stable"); resolve:
	// it has been stable for the flap window.
	KindFlapping = "flapping"
	// KindCoverage: too few regions can see the check to tell its state
	// (it has been unknown for unknown_after). Trigger: coverage lost;
	// resolve: coverage back.
	KindCoverage = "coverage"
	// KindCert: a certificate the check's target serves expires within
	// the check's expect.cert_expiry. Trigger: one warning per
	// certificate (Event.Cert; IncidentID CertID(check, serial));
	// resolve: a newer certificate is served (Event.Renewed).
	KindCert = "cert"
	// KindGroup: one page for the outages of several checks of one group
	// (a route's group_by and group_wait). Trigger: the checks down so
	// far (Event.Members); update: more checks joined; repeat: a reminder;
	// resolve: the last of them is up. IncidentID is GroupID(...), Check
	// is empty and Group names the group. Not a notice: it pages at the
	// checks' severity.
	KindGroup = "group"
)

// NoticeSeverity is the severity of notices: flapping, coverage and
// certificate warnings.
const NoticeSeverity = "warning"

// CoverageID is the id of the coverage alert of check, unknown since since.
func CoverageID(check string, since time.Time) string {
	return KindCoverage + "-" + shortHash(check, since)
}

// FlappingID is the id of the flapping notice of check, flapping since
// since.
func FlappingID(check string, since time.Time) string {
	return KindFlapping + "-" + shortHash(check, since)
}

func shortHash(check string, t time.Time) string {
	h := sha256.Sum256([]byte(check + "|" + t.UTC().Format(time.RFC3339Nano)))
	return hex.EncodeToString(h[:8])
}

// RegionVote is one region's view of the check when the event was raised.
type RegionVote struct {
	Vote      string  `json:"vote"`       // up, down or abstain
	Error     string  `json:"error"`      // classified error code of the latest failure ("" when up)
	LatencyMS float64 `json:"latency_ms"` // latency of the latest probe
}

// Event is one notification about one incident.
type Event struct {
	Action        Action                `json:"action"`
	IncidentID    string                `json:"incident_id"`
	Check         string                `json:"check"`
	Target        string                `json:"target"` // config.Check.TargetString()
	StartedAt     time.Time             `json:"started_at"`
	ResolvedAt    *time.Time            `json:"resolved_at,omitempty"`
	Regions       map[string]RegionVote `json:"regions,omitempty"`
	Severity      string                `json:"severity,omitempty"` // the check's severity: critical, warning, info
	StatusPageURL string                `json:"status_page_url,omitempty"`
	Group         string                `json:"group,omitempty"`
	// DisplayName is the check's display name (config.Check.DisplayName),
	// which messages use instead of Check when set.
	DisplayName string `json:"display_name,omitempty"`
	// Test marks the notifications of `vantage notify test`: its trigger
	// (ActionTest) and the resolve that follows it.
	Test bool `json:"test,omitempty"`

	// Kind is KindIncident (""), KindFlapping, KindCoverage or KindCert.
	Kind string `json:"kind,omitempty"`
	// Seq numbers the reminders (ActionRepeat) of one incident, from 1.
	Seq int `json:"seq,omitempty"`
	// At is when a reminder or notice was raised.
	At time.Time `json:"at,omitzero"`
	// Changes and Window describe a flapping check: Changes state changes
	// within Window.
	Changes int           `json:"changes,omitempty"`
	Window  time.Duration `json:"window,omitempty"`
	// RegionsSeeing of RegionsTotal regions can see the check (coverage).
	RegionsSeeing int `json:"regions_seeing,omitempty"`
	RegionsTotal  int `json:"regions_total,omitempty"`
	// Cert is the certificate a certificate warning (KindCert) is about;
	// Renewed, in its resolve, the newer certificate now served (nil when
	// unknown).
	Cert    *CertInfo `json:"cert,omitempty"`
	Renewed *CertInfo `json:"renewed,omitempty"`
	// Members lists the checks of a grouped page (KindGroup) in the order
	// their outages began; nil for every other event.
	Members []GroupMember `json:"members,omitempty"`
	// SnapshotsURL is the signed link to the incident's failure snapshots.
	SnapshotsURL string `json:"snapshots_url,omitempty"`
	// Mail is a report mail's content (KindReport, report.go).
	Mail *Mail `json:"mail,omitempty"`
	// Subscriber is the message to one of the status page's subscribers
	// (KindSubscriber; subscriber.go).
	Subscriber *SubscriberMessage `json:"subscriber,omitempty"`
	// Maintenance is the window of a maintenance notice (KindMaintenance,
	// maintenance.go).
	Maintenance *MaintenanceInfo `json:"maintenance,omitempty"`
}

// IsNotice reports whether e is a notice (flapping, coverage, an expiring
// certificate, a maintenance window) rather than about an incident.
func (e Event) IsNotice() bool {
	return e.Kind == KindFlapping || e.Kind == KindCoverage || e.Kind == KindCert || e.Kind == KindMaintenance
}

// Key names the notification among those of its incident and notifier:
// the action, and for a reminder its number ("repeat#3"), for a grouped
// page's update the number of checks it lists ("update#5"). The outbox
// delivers each key once.
func (e Event) Key() string { return actionKey(e.Action, e.Seq) }

func actionKey(a Action, seq int) string {
	if a == ActionRepeat || a == ActionUpdate {
		return fmt.Sprintf("%s#%d", a, seq)
	}
	return string(a)
}

// Receipt is a provider's answer to an accepted notification.
type Receipt struct {
	Status int    // HTTP status, or the SMTP reply code
	Body   string // the start of the response body
}

func (r Receipt) String() string {
	if r.Body == "" {
		return strconv.Itoa(r.Status)
	}
	return fmt.Sprintf("%d %s", r.Status, r.Body)
}

// Provider delivers events to one configured channel.
type Provider interface {
	// Name is the notifier's name from the config.
	Name() string
	// Send delivers e once. A failure is a *SendError when the provider
	// answered or could not be reached; SendError.Retryable tells whether
	// sending again may succeed.
	Send(ctx context.Context, e Event) (Receipt, error)
}

// SendError is a failed delivery.
type SendError struct {
	Status     int           // HTTP status or SMTP reply code; 0 for network errors
	Retryable  bool          // 429, 5xx, SMTP 4xx and network errors
	RetryAfter time.Duration // from a Retry-After header; 0 when absent
	Body       string        // the start of the response body, or the network error
}

func (e *SendError) Error() string {
	kind := "permanent"
	if e.Retryable {
		kind = "retryable"
	}
	if e.Status == 0 {
		return fmt.Sprintf("%s error: %s", kind, e.Body)
	}
	if e.Body == "" {
		return fmt.Sprintf("%s error: status %d", kind, e.Status)
	}
	return fmt.Sprintf("%s error: status %d: %s", kind, e.Status, e.Body)
}

// IsRetryable reports whether err may succeed when sent again: a retryable
// *SendError, or any error that is not a *SendError (an unclassified
// failure is assumed transient).
func IsRetryable(err error) bool {
	var se *SendError
	if errors.As(err, &se) {
		return se.Retryable
	}
	return err != nil
}

// Options are shared by every provider.
type Options struct {
	// HTTPClient sends HTTP notifications; default: a client with a 10 s timeout.
	HTTPClient *http.Client
	// Logger; default slog.Default().
	Logger *slog.Logger
	// RootCAs verifies SMTP servers' certificates; nil: the system pool.
	RootCAs *x509.CertPool
	// TLSConfig, when set, is used (cloned, ServerName filled in) for SMTP TLS
	// instead of one built from RootCAs.
	TLSConfig *tls.Config
	// UserAgent sent with HTTP requests; default "vantage".
	UserAgent string
}

func (o *Options) setDefaults() {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.UserAgent == "" {
		o.UserAgent = "vantage"
	}
}

// Default provider URLs, used when a notifier's URL is empty.
const (
	DefaultPagerDutyURL = "https://events.pagerduty.com/v2/enqueue"
	DefaultOpsgenieURL  = "https://api.opsgenie.com"
	DefaultTelegramURL  = "https://api.telegram.org"
	DefaultTwilioURL    = config.DefaultTwilioURL
)

// New builds the provider of one notifier.
func New(n config.Notifier, opts Options) (Provider, error) {
	opts.setDefaults()
	need := func(key, v string) error {
		if v == "" {
			return fmt.Errorf("notifier %q (%s): %s is required", n.Name, n.Type, key)
		}
		return nil
	}
	switch n.Type {
	case config.NotifierPagerDuty:
		if err := need("routing_key", n.RoutingKey); err != nil {
			return nil, err
		}
		return &pagerDuty{base: newBase(n, opts, DefaultPagerDutyURL)}, nil
	case config.NotifierOpsgenie:
		if err := need("api_key", n.APIKey); err != nil {
			return nil, err
		}
		return &opsgenie{base: newBase(n, opts, DefaultOpsgenieURL)}, nil
	case config.NotifierSlack:
		if err := need("url", n.URL); err != nil {
			return nil, err
		}
		return &slack{base: newBase(n, opts, "")}, nil
	case config.NotifierDiscord:
		if err := need("url", n.URL); err != nil {
			return nil, err
		}
		return &discord{base: newBase(n, opts, "")}, nil
	case config.NotifierMSTeams:
		if err := need("url", n.URL); err != nil {
			return nil, err
		}
		return &msTeams{base: newBase(n, opts, "")}, nil
	case config.NotifierTelegram:
		if err := errors.Join(need("bot_token", n.BotToken), need("chat_id", n.ChatID)); err != nil {
			return nil, err
		}
		return &telegram{base: newBase(n, opts, DefaultTelegramURL)}, nil
	case config.NotifierWebhook:
		if err := need("url", n.URL); err != nil {
			return nil, err
		}
		return &webhook{base: newBase(n, opts, "")}, nil
	case config.NotifierEmail:
		if err := errors.Join(need("smtp", n.SMTP), need("from", n.From)); err != nil {
			return nil, err
		}
		if len(n.To) == 0 {
			return nil, fmt.Errorf("notifier %q (email): to must list at least one address", n.Name)
		}
		return newEmail(n, opts)
	case config.NotifierTwilio:
		return newTwilio(n, opts)
	case config.NotifierSMSHTTP:
		return newSMSHTTP(n, opts)
	}
	return nil, fmt.Errorf("notifier %q: unknown type %q", n.Name, n.Type)
}

// NewAll builds the providers of every notifier, in config order.
func NewAll(ns []config.Notifier, opts Options) ([]Provider, error) {
	ps := make([]Provider, 0, len(ns))
	var errs []error
	for _, n := range ns {
		p, err := New(n, opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ps = append(ps, p)
	}
	return ps, errors.Join(errs...)
}

// base holds what every provider shares.
type base struct {
	cfg  config.Notifier
	opts Options
	url  string
}

func newBase(n config.Notifier, opts Options, defURL string) base {
	u := n.URL
	if u == "" {
		u = defURL
	}
	return base{cfg: n, opts: opts, url: strings.TrimRight(u, "/")}
}

func (b *base) Name() string { return b.cfg.Name }

// maxBody is how much of a response body a Receipt or SendError keeps.
const maxBody = 512

// postJSON POSTs the JSON body to url and classifies the answer as do
// does.
func (b *base) postJSON(ctx context.Context, url string, body []byte, header http.Header) (Receipt, error) {
	h := http.Header{"Content-Type": {"application/json"}}
	for k, vs := range header {
		h[k] = vs
	}
	return b.do(ctx, http.MethodPost, url, body, h)
}

// do sends one request and classifies the answer: 2xx is a Receipt, 429
// and 5xx and network errors are retryable, other statuses permanent.
// header is set on the request as it is (canonical keys).
func (b *base) do(ctx context.Context, method, url string, body []byte, header http.Header) (Receipt, error) {
	r, _, err := b.exchange(ctx, method, url, body, header)
	return r, err
}

// exchange is do that also returns the answer's body (its first 64 KiB).
func (b *base) exchange(ctx context.Context, method, url string, body []byte, header http.Header) (Receipt, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return Receipt{}, nil, &SendError{Body: redactURL(err.Error(), url)}
	}
	req.Header.Set("User-Agent", b.opts.UserAgent)
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := b.opts.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return Receipt{}, nil, ctx.Err()
		}
		return Receipt{}, nil, &SendError{Retryable: true, Body: redactURL(err.Error(), url)}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	text := shorten(string(raw))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return Receipt{Status: resp.StatusCode, Body: text}, raw, nil
	}
	se := &SendError{Status: resp.StatusCode, Body: text}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		se.Retryable = true
		se.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return Receipt{}, raw, se
}

// redactURL removes url (which may hold a token, as webhook and Telegram URLs
// do) from a network error message.
func redactURL(msg, url string) string {
	if url == "" {
		return msg
	}
	return strings.ReplaceAll(msg, url, "[url]")
}

// shorten trims s and cuts it to maxBody bytes on a rune boundary.
func shorten(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= maxBody {
		return s
	}
	cut := maxBody
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
