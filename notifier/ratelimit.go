package notifier

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"github.com/vantage-dev/vantage/config"
)

// Rate is how often an outbox may send through one notifier: at most one
// request every Every, shared by every notifier with the same Key (two
// notifiers posting to one Slack webhook share its budget). The zero Rate
// is unlimited.
type Rate struct {
	Key   string
	Every time.Duration
}

// DefaultRateLimit is a provider type's documented limit, which the outbox
// stays under by queueing: PagerDuty 120 events a minute per routing key,
// Slack one message a second per webhook, Discord 30 a minute per webhook,
// Telegram one message a second per chat, Teams 4 a second per webhook.
// Opsgenie, webhooks, email, Twilio and SMS gateways are unlimited
// (Count 0).
func DefaultRateLimit(typ string) config.RateLimit {
	switch typ {
	case config.NotifierPagerDuty:
		return config.RateLimit{Count: 120, Per: time.Minute}
	case config.NotifierSlack, config.NotifierTelegram:
		return config.RateLimit{Count: 1, Per: time.Second}
	case config.NotifierDiscord:
		return config.RateLimit{Count: 30, Per: time.Minute}
	case config.NotifierMSTeams:
		return config.RateLimit{Count: 4, Per: time.Second}
	}
	return config.RateLimit{}
}

// RateOf is the Rate of a notifier: its rate_limit, else its type's
// default, keyed by what the provider limits (routing key, webhook URL,
// bot and chat, API key, SMTP server and sender, Twilio account).
func RateOf(n config.Notifier) Rate {
	lim := DefaultRateLimit(n.Type)
	if n.RateLimit != nil {
		lim = *n.RateLimit
	}
	if lim.Count <= 0 || lim.Per <= 0 {
		return Rate{}
	}
	var scope string
	switch n.Type {
	case config.NotifierPagerDuty:
		scope = n.RoutingKey
	case config.NotifierOpsgenie:
		scope = n.URL + "|" + n.APIKey
	case config.NotifierTelegram:
		scope = n.URL + "|" + n.BotToken + "|" + n.ChatID
	case config.NotifierEmail:
		scope = n.SMTP + "|" + n.From
	case config.NotifierTwilio:
		scope = n.URL + "|" + n.AccountSID
	default:
		scope = n.URL
	}
	h := sha256.Sum256([]byte(n.Type + "|" + scope)) // keys hold secrets: keep only a hash
	return Rate{Key: n.Type + ":" + hex.EncodeToString(h[:8]), Every: lim.Per / time.Duration(lim.Count)}
}

// RateLimitsFrom collects the rates of the configured notifiers, by name,
// for OutboxOptions.RateLimits.
func RateLimitsFrom(ns []config.Notifier) map[string]Rate {
	m := map[string]Rate{}
	for _, n := range ns {
		m[n.Name] = RateOf(n)
	}
	return m
}

// RateLimit reports the provider's Rate (RateOf its notifier).
func (b *base) RateLimit() Rate { return RateOf(b.cfg) }

// RateLimited is implemented by every provider New returns; the outbox
// uses it when OutboxOptions.RateLimits does not name the notifier.
type RateLimited interface {
	RateLimit() Rate
}

// Limiter spaces requests that share a rate key: each Reserve books the
// next free slot, so requests queue and none is dropped. It has no clock of
// its own. Safe for concurrent use.
type Limiter struct {
	mu   sync.Mutex
	next map[string]time.Time
}

// NewLimiter returns a Limiter with no reservations.
func NewLimiter() *Limiter { return &Limiter{next: map[string]time.Time{}} }

// Reserve books the first slot for r at or after now and returns how long
// to wait for it (0: send now). An unlimited Rate never waits.
func (l *Limiter) Reserve(r Rate, now time.Time) time.Duration {
	if r.Key == "" || r.Every <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	at := now
	if n, ok := l.next[r.Key]; ok && n.After(at) {
		at = n
	}
	l.next[r.Key] = at.Add(r.Every)
	return at.Sub(now)
}
