package mesh

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// The status page's subscribers: visitors who confirmed an email address
// and webhooks registered by operators. They are replicated as runtime
// maintenance windows are (maintenance.go): the node that takes one
// stores it and Adds it here (gossiped at once); push-pull carries the
// whole table to a node that was away or joins later; versions learned
// from peers go to OnChange to be stored, off the gossip path.
//
// A subscriber changes by versions: 1 when it subscribes, a greater one
// marked Deleted (a tombstone, without the subscriber's fields) when it
// unsubscribes or is removed, a greater one again when it subscribes
// anew. An email subscriber's id is derived from its address
// (SubscriberID), so the same address confirmed on two nodes is one
// subscriber. Of two versions of one id the greater wins (version, then a
// tombstone, then the later Updated, then the greater author, then the
// greater encoding). Tombstones expire after TombstoneTTL.
//
// The subscribers' deliveries have their own sent log and claims (keys
// subsent and subclaims), so that a large fan-out neither crowds out nor
// is mistaken for the on-call notifications' records.

// Keys of the subscriber tables.
const (
	KeySubscribers = "subscribers"
	KeySubSent     = "subsent"
	KeySubClaims   = "subclaims"
)

// Bounds of the subscriber tables.
const (
	// MaxSubscribers bounds the live subscribers (a subscription past it
	// is refused with ErrSubscribersFull); push-pull carries them all, at
	// about 200 bytes each.
	MaxSubscribers = 1000
	// maxSubTombstones bounds the removals remembered.
	maxSubTombstones = 1000
	// MaxSubscriberEmail bounds an address (RFC 5321's path limit).
	MaxSubscriberEmail = 254
	// MaxSubscriberURL bounds a webhook's URL.
	MaxSubscriberURL = 2048
	// MaxSubscriberSecret bounds a webhook's signing secret.
	MaxSubscriberSecret = 256
	// SubSentMax and SubSentTTL bound the subscribers' sent log: one
	// record per subscriber and event.
	SubSentMax = 20_000
	SubSentTTL = 3 * 24 * time.Hour
)

// ErrSubscribersFull is Add's error past MaxSubscribers.
var ErrSubscribersFull = errors.New("too many subscribers")

// Subscriber is one version of a subscriber, on the wire.
type Subscriber struct {
	ID      string `json:"id"` // 8 to 64 lowercase hex digits
	Version uint64 `json:"version"`
	Deleted bool   `json:"deleted,omitempty"`

	Email  string `json:"email,omitempty"`  // a visitor's confirmed address
	URL    string `json:"url,omitempty"`    // an operator's webhook
	Secret string `json:"secret,omitempty"` // signs a webhook's bodies

	Author  string    `json:"author,omitempty"` // the node that made this version
	Created time.Time `json:"created"`          // when it subscribed (confirmed)
	Updated time.Time `json:"updated"`          // when this version was made
	// Sent is the sender's clock when it sent the version.
	Sent time.Time `json:"sent,omitzero"`
}

var subscriberID = regexp.MustCompile(`^[0-9a-f]{8,64}$`)

// SubscriberID is the id of the subscriber of an email address: the same
// on every node for the same address, whatever its case.
func SubscriberID(email string) string {
	h := sha256.Sum256([]byte("vantage subscriber\x00" + strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(h[:12])
}

// ValidSubscriberEmail checks a visitor's address: one plain address
// (no name, no angle brackets) of at most MaxSubscriberEmail bytes.
func ValidSubscriberEmail(s string) error {
	if s == "" || len(s) > MaxSubscriberEmail || !utf8.ValidString(s) {
		return fmt.Errorf("an email address of 1 to %d bytes", MaxSubscriberEmail)
	}
	for _, r := range s {
		if r < 0x21 || r == 0x7f {
			return errors.New("an email address without spaces or control characters")
		}
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return fmt.Errorf("%q is not an email address", s)
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || at == len(s)-1 || !strings.Contains(s[at+1:], ".") {
		return fmt.Errorf("%q is not an email address with a domain", s)
	}
	return nil
}

// ValidSubscriberURL checks a webhook's URL: http or https, with a host,
// at most MaxSubscriberURL bytes, without user information.
func ValidSubscriberURL(s string) error {
	if s == "" || len(s) > MaxSubscriberURL || !utf8.ValidString(s) {
		return fmt.Errorf("a webhook URL of 1 to %d bytes", MaxSubscriberURL)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("webhook URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("the webhook URL must be http:// or https://")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("the webhook URL has no host")
	case u.User != nil:
		return errors.New("the webhook URL must not carry user information")
	case strings.ContainsAny(s, " \t\r\n"):
		return errors.New("the webhook URL must not contain spaces")
	}
	return nil
}

// Validate checks a version of a subscriber.
func (s Subscriber) Validate() error {
	if err := s.head().validate("subscriber", subscriberID); err != nil {
		return err
	}
	if s.Deleted {
		if s.Email != "" || s.URL != "" || s.Secret != "" {
			return fmt.Errorf("subscriber %s: a removal carries the subscriber's fields", s.ID)
		}
		return nil
	}
	switch {
	case s.Email != "" && s.URL != "", s.Email == "" && s.URL == "":
		return fmt.Errorf("subscriber %s: one of email and url", s.ID)
	case s.Email != "":
		if err := ValidSubscriberEmail(s.Email); err != nil {
			return fmt.Errorf("subscriber %s: %w", s.ID, err)
		}
		if s.Secret != "" {
			return fmt.Errorf("subscriber %s: an email subscriber has no secret", s.ID)
		}
		if s.ID != SubscriberID(s.Email) {
			return fmt.Errorf("subscriber %s: id is not its address's", s.ID)
		}
	default:
		if err := ValidSubscriberURL(s.URL); err != nil {
			return fmt.Errorf("subscriber %s: %w", s.ID, err)
		}
		if len(s.Secret) > MaxSubscriberSecret || !utf8.ValidString(s.Secret) {
			return fmt.Errorf("subscriber %s: secret of %d bytes, at most %d", s.ID, len(s.Secret), MaxSubscriberSecret)
		}
	}
	return nil
}

func (s Subscriber) expired(now time.Time) bool {
	return s.Deleted && now.Sub(s.Updated) > TombstoneTTL
}

func (s Subscriber) head() versionHead {
	return versionHead{ID: s.ID, Version: s.Version, Deleted: s.Deleted, Author: s.Author, Created: s.Created, Updated: s.Updated, Sent: s.Sent}
}

func (s Subscriber) withSent(at time.Time) Subscriber {
	s.Sent = at
	return s
}

func (Subscriber) tombstone(id string, version uint64, author string, created, updated time.Time) Subscriber {
	return Subscriber{ID: id, Version: version, Deleted: true, Author: author, Created: created, Updated: updated}
}

// Subscribers is the table of the page's subscribers, a versioned table
// (versions.go): SetOnChange is told the versions learned from peers (to
// store them); Seed adds versions read from the store; Entries and Len
// count tombstones too; Full reports whether it holds MaxSubscribers live
// subscribers.
type Subscribers struct {
	versions[Subscriber]
}

// NewSubscribers returns an empty table.
func NewSubscribers(now func() time.Time, log *slog.Logger) *Subscribers {
	return &Subscribers{versions: newVersions(versionsSpec[Subscriber]{
		name: "subscriber", one: "subscriber", many: "subscribers",
		from: "subscribers", tooMany: "subscribers from %s: %d in one message",
		maxLive: MaxSubscribers, maxTomb: maxSubTombstones,
		dropped: func(log *slog.Logger, s Subscriber) {
			log.Warn("subscriber table full: a subscriber added elsewhere is dropped", "id", s.ID)
		},
	}, now, log)}
}

// Get returns the version held of id.
func (t *Subscribers) Get(id string) (Subscriber, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.entries[id]
	return s, ok
}

// Add makes s (its ID, Email or URL and Secret set by the caller) a live
// subscriber, as a version greater than any the table holds, and gossips
// it. It returns the version made, and whether the subscriber was live
// already (then nothing changes).
func (t *Subscribers) Add(s Subscriber, author string) (Subscriber, bool, error) {
	now := t.now().UTC().Truncate(time.Millisecond)
	s.Deleted, s.Author, s.Created, s.Updated, s.Sent = false, author, now, now, time.Time{}
	t.mu.Lock()
	cur, ok := t.entries[s.ID]
	if ok && !cur.Deleted {
		t.mu.Unlock()
		return cur, true, nil
	}
	s.Version = 1
	if ok {
		s.Version = cur.Version + 1
		if s.Updated.Before(cur.Updated) {
			s.Created, s.Updated = cur.Updated, cur.Updated
		}
	}
	if err := s.Validate(); err != nil {
		t.mu.Unlock()
		return Subscriber{}, false, fmt.Errorf("mesh: add subscriber: %w", err)
	}
	if t.liveLocked() >= MaxSubscribers {
		t.mu.Unlock()
		return Subscriber{}, false, ErrSubscribersFull
	}
	t.putLocked(s)
	b := t.b
	t.mu.Unlock()
	t.gossip(b, s)
	return s, false, nil
}

// Remove replaces the live subscriber id by a tombstone made by author
// and gossips it; ok is false when there is no such live subscriber.
func (t *Subscribers) Remove(id, author string) (tomb, was Subscriber, ok bool) {
	return t.remove(id, author)
}

// Live returns the live subscribers, by subscription time.
func (t *Subscribers) Live() []Subscriber { return t.live() }

// Expire drops the tombstones older than TombstoneTTL.
func (t *Subscribers) Expire(now time.Time) { t.expire(now) }
