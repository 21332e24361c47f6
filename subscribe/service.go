package subscribe

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/notifier"
	"github.com/vantage-dev/vantage/store"
)

// Errors of the Service.
var (
	// ErrNoMail: no email notifier is configured for subscriptions.
	ErrNoMail = errors.New("subscriptions by email are not enabled")
	// ErrInvalid wraps the reason an address or a webhook is refused.
	ErrInvalid = errors.New("invalid subscriber")
)

// Settings are what messages say and where their links point; read at
// every message, so a reload takes effect.
type Settings struct {
	Site          string         // the page's title
	BaseURL       string         // the public base URL of the links, without a trailing slash
	From          string         // the mails' From; "" the email notifier's
	Locale        string         // en or ko
	Location      *time.Location // the page's time zone
	ConfirmWithin time.Duration
}

// Store keeps subscribers (the node's store).
type Store interface {
	PutSubscribers(ctx context.Context, subs ...store.Subscriber) ([]string, error)
}

// ServiceOptions configure a Service.
type ServiceOptions struct {
	Self     string
	Now      func() time.Time
	Signer   Signer
	Settings func() Settings
	Table    *mesh.Subscribers
	Store    Store
	Outbox   Outbox // the subscriptions outbox, for confirmation mails
	Provider string // its subscriber provider
	Mail     bool   // an email notifier delivers subscribers' mail
	Logger   *slog.Logger
	// OnStoreError is told a version could not be stored (the node stores
	// the table again later).
	OnStoreError func()
}

// Per-address throttle of confirmation mails.
const (
	confirmEvery     = 10 * time.Minute
	maxConfirmMemory = 10_000
)

// Service takes subscriptions and composes messages.
type Service struct {
	o   ServiceOptions
	log *slog.Logger

	mu   sync.Mutex
	last map[string]time.Time // subscriber id -> its last confirmation mail
}

// NewService returns a Service.
func NewService(o ServiceOptions) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.OnStoreError == nil {
		o.OnStoreError = func() {}
	}
	return &Service{o: o, log: o.Logger, last: map[string]time.Time{}}
}

// MailEnabled reports whether visitors can subscribe by email.
func (s *Service) MailEnabled() bool { return s.o.Mail && len(s.o.Signer.Key) > 0 }

// Request asks for a confirmation mail to email. It answers the same
// whether the address is subscribed already or not (nil), so the page
// reveals nothing: a subscribed address, or one mailed less than
// confirmEvery ago, gets no mail.
func (s *Service) Request(ctx context.Context, email string) error {
	if !s.MailEnabled() {
		return ErrNoMail
	}
	email = strings.TrimSpace(email)
	if err := mesh.ValidSubscriberEmail(email); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	id := mesh.SubscriberID(email)
	if cur, ok := s.o.Table.Get(id); ok && !cur.Deleted {
		s.log.Info("subscription asked for an address already subscribed; no mail", "subscriber", id)
		return nil
	}
	now := s.o.Now()
	s.mu.Lock()
	if at, ok := s.last[id]; ok && now.Sub(at) < confirmEvery {
		s.mu.Unlock()
		s.log.Info("confirmation mail asked again too soon; not sent", "subscriber", id)
		return nil
	}
	if len(s.last) >= maxConfirmMemory {
		for k, at := range s.last {
			if now.Sub(at) >= confirmEvery {
				delete(s.last, k)
			}
		}
		if len(s.last) >= maxConfirmMemory {
			s.mu.Unlock()
			return errors.New("too many confirmation mails pending: try again later")
		}
	}
	s.last[id] = now
	s.mu.Unlock()

	st := s.o.Settings()
	exp := now.Add(st.ConfirmWithin).Truncate(time.Second)
	link := st.BaseURL + "/subscribe/confirm?" + s.o.Signer.ConfirmQuery(email, exp).Encode()
	l := lang(st.Locale)
	hours := int(st.ConfirmWithin.Round(time.Hour) / time.Hour)
	within := l.t("%d hours", hours)
	if st.ConfirmWithin < time.Hour {
		within = l.t("%d minutes", int(st.ConfirmWithin/time.Minute))
	}
	msg := &notifier.SubscriberMessage{Email: email, From: st.From,
		Subject: l.t("Confirm your subscription to %s", st.Site),
		Text: l.t("Someone, probably you, asked to be told of %s's incidents by mail at this address.", st.Site) + "\n" +
			l.t("To confirm, open this link within %s:", within) + "\n\n" + link + "\n\n" +
			l.t("If you did not ask, ignore this mail: nothing happens.") + "\n"}
	h := sha256.Sum256([]byte(email + "\x00" + strconv.FormatInt(exp.Unix(), 10)))
	ev := notifier.Event{Kind: notifier.KindSubscriber, Action: notifier.ActionTrigger, StartedAt: now.UTC(),
		IncidentID: notifier.SubscriberPrefix + "confirm:" + hex.EncodeToString(h[:12]), Subscriber: msg}
	if err := s.o.Outbox.Enqueue(ctx, ev, s.o.Provider); err != nil {
		s.mu.Lock()
		delete(s.last, id)
		s.mu.Unlock()
		return fmt.Errorf("queue confirmation mail: %w", err)
	}
	s.log.Info("confirmation mail queued", "subscriber", id)
	return nil
}

// Confirm takes a confirmation link's query: the address is subscribed
// (again), stored and shared. It returns the subscriber.
func (s *Service) Confirm(ctx context.Context, q url.Values) (mesh.Subscriber, error) {
	email, err := s.o.Signer.Confirm(q, s.o.Now())
	if err != nil {
		return mesh.Subscriber{}, err
	}
	if err := mesh.ValidSubscriberEmail(email); err != nil {
		return mesh.Subscriber{}, ErrBadLink
	}
	return s.add(ctx, mesh.Subscriber{ID: mesh.SubscriberID(email), Email: email})
}

// AddEmail subscribes an address an operator gives (no confirmation).
func (s *Service) AddEmail(ctx context.Context, email string) (mesh.Subscriber, error) {
	if err := mesh.ValidSubscriberEmail(email); err != nil {
		return mesh.Subscriber{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return s.add(ctx, mesh.Subscriber{ID: mesh.SubscriberID(email), Email: email})
}

// AddWebhook registers an operator's webhook; a secret is made when none
// is given.
func (s *Service) AddWebhook(ctx context.Context, u, secret string) (mesh.Subscriber, error) {
	if err := mesh.ValidSubscriberURL(u); err != nil {
		return mesh.Subscriber{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(secret) > mesh.MaxSubscriberSecret {
		return mesh.Subscriber{}, fmt.Errorf("%w: secret of %d bytes, at most %d", ErrInvalid, len(secret), mesh.MaxSubscriberSecret)
	}
	if secret == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		secret = hex.EncodeToString(b[:])
	}
	return s.add(ctx, mesh.Subscriber{ID: store.NewID(), URL: u, Secret: secret})
}

func (s *Service) add(ctx context.Context, sub mesh.Subscriber) (mesh.Subscriber, error) {
	v, had, err := s.o.Table.Add(sub, s.o.Self)
	if err != nil {
		if errors.Is(err, mesh.ErrSubscribersFull) {
			return mesh.Subscriber{}, fmt.Errorf("%w: at most %d subscribers", store.ErrConflict, mesh.MaxSubscribers)
		}
		return mesh.Subscriber{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if had {
		return v, nil
	}
	s.put(ctx, v)
	s.log.Info("subscriber added", "subscriber", v.ID, "webhook", v.URL != "")
	return v, nil
}

func (s *Service) put(ctx context.Context, v mesh.Subscriber) {
	if _, err := s.o.Store.PutSubscribers(ctx, StoreSubscriber(v)); err != nil {
		s.log.Error("store subscriber; stored again later", "subscriber", v.ID, "err", err)
		s.o.OnStoreError()
	}
}

// Unsubscribe takes an unsubscribe link's query. An unknown or removed
// subscriber is no error.
func (s *Service) Unsubscribe(ctx context.Context, q url.Values) error {
	id, err := s.o.Signer.Unsubscribe(q)
	if err != nil {
		return err
	}
	_, err = s.Remove(ctx, id)
	return err
}

// Remove removes subscriber id; false when there is no such subscriber.
func (s *Service) Remove(ctx context.Context, id string) (bool, error) {
	tomb, _, ok := s.o.Table.Remove(id, s.o.Self)
	if !ok {
		return false, nil
	}
	s.put(ctx, tomb)
	s.log.Info("subscriber removed", "subscriber", id)
	return true, nil
}

// List returns the live subscribers.
func (s *Service) List() []mesh.Subscriber { return s.o.Table.Live() }

// UnsubscribeURL is subscriber id's one-click unsubscribe link.
func (s *Service) UnsubscribeURL(id string) string {
	return s.o.Settings().BaseURL + "/unsubscribe?" + s.o.Signer.UnsubscribeQuery(id).Encode()
}

// StoreSubscriber is a subscriber as the store keeps it.
func StoreSubscriber(v mesh.Subscriber) store.Subscriber {
	return store.Subscriber{ID: v.ID, Version: v.Version, Deleted: v.Deleted, Email: v.Email, URL: v.URL, Secret: v.Secret,
		Author: v.Author, CreatedAt: v.Created, UpdatedAt: v.Updated}
}

// MeshSubscriber is a stored subscriber on the wire.
func MeshSubscriber(v store.Subscriber) mesh.Subscriber {
	return mesh.Subscriber{ID: v.ID, Version: v.Version, Deleted: v.Deleted, Email: v.Email, URL: v.URL, Secret: v.Secret,
		Author: v.Author, Created: v.CreatedAt.UTC(), Updated: v.UpdatedAt.UTC()}
}

// WebhookBody is the JSON document a webhook subscriber receives.
type WebhookBody struct {
	Event      string    `json:"event"` // incident.started, incident.updated, incident.resolved
	IncidentID string    `json:"incident_id"`
	Check      string    `json:"check,omitempty"` // an automatic incident's check
	Title      string    `json:"title"`
	Status     string    `json:"status,omitempty"` // an update's status
	Body       string    `json:"body,omitempty"`
	At         time.Time `json:"at"`
	URL        string    `json:"url,omitempty"` // the incident's page
}

// Webhook events.
const (
	EventStarted  = "incident.started"
	EventUpdated  = "incident.updated"
	EventResolved = "incident.resolved"
)

// Compose builds e's message to sub (a Composer).
func (s *Service) Compose(e Event, sub mesh.Subscriber) (*notifier.SubscriberMessage, error) {
	st := s.o.Settings()
	link := ""
	if st.BaseURL != "" {
		link = st.BaseURL + "/incidents/" + url.PathEscape(e.Incident)
	}
	if sub.URL != "" {
		wb := WebhookBody{Event: EventStarted, IncidentID: e.Incident, Check: e.Check, Title: e.Title, Status: e.Status,
			Body: e.Body, At: e.At.UTC(), URL: link}
		switch e.Action {
		case notifier.ActionUpdate:
			wb.Event = EventUpdated
		case notifier.ActionResolve:
			wb.Event = EventResolved
		}
		b, err := json.Marshal(wb)
		if err != nil {
			return nil, err
		}
		return &notifier.SubscriberMessage{ID: sub.ID, URL: sub.URL, Secret: sub.Secret, Body: b}, nil
	}
	if st.BaseURL == "" {
		return nil, errors.New("no public base URL for the unsubscribe link")
	}
	l := lang(st.Locale)
	loc := st.Location
	if loc == nil {
		loc = time.UTC
	}
	var head, when string
	stamp := e.At.In(loc).Format("2006-01-02 15:04 MST")
	switch e.Action {
	case notifier.ActionTrigger:
		head, when = l.t("Incident: %s", e.Title), l.t("Started: %s", stamp)
	case notifier.ActionUpdate:
		head, when = l.t("Update: %s (%s)", e.Title, l.t(e.Status)), l.t("Posted: %s", stamp)
	default:
		head, when = l.t("Resolved: %s", e.Title), l.t("Resolved at: %s", stamp)
	}
	var b strings.Builder
	b.WriteString(head + "\n\n")
	if e.Body != "" {
		b.WriteString(e.Body + "\n\n")
	}
	b.WriteString(when + "\n")
	if link != "" {
		b.WriteString(l.t("Details: %s", link) + "\n")
	}
	unsub := s.UnsubscribeURL(sub.ID)
	b.WriteString("\n-- \n" + l.t("You get this mail because you subscribed to %s's incidents.", st.Site) + "\n" +
		l.t("Unsubscribe: %s", unsub) + "\n")
	return &notifier.SubscriberMessage{ID: sub.ID, Email: sub.Email, From: st.From, Subject: "[" + st.Site + "] " + head,
		Text: b.String(), Unsubscribe: unsub}, nil
}
