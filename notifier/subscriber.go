package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/vantage-dev/vantage/config"
)

// KindSubscriber is a message to one of the status page's subscribers: a
// visitor who confirmed an email address, or a webhook an operator
// registered. Its IncidentID starts with SubscriberPrefix and names the
// subscriber and the incident ("sub:SUBSCRIBER:INCIDENT"; a confirmation
// mail "sub:confirm:HASH"), so that each subscriber's messages of one
// incident are one outbox queue, delivered in order, each once. The
// message is composed before it is queued (Event.Subscriber): the
// provider (NewSubscriberProvider) only delivers it.
const KindSubscriber = "subscriber"

// SubscriberPrefix starts the IncidentID of every KindSubscriber event.
const SubscriberPrefix = "sub:"

// SubscriberMessage is one composed message to one subscriber.
type SubscriberMessage struct {
	ID string `json:"id"` // the subscriber's id ("" for a confirmation mail)
	// Email, or URL (with Secret): where it goes.
	Email  string `json:"email,omitempty"`
	URL    string `json:"url,omitempty"`
	Secret string `json:"secret,omitempty"`
	// A mail's From (default the email notifier's), subject, text and
	// HTML bodies, and its one-click unsubscribe URL (RFC 8058), sent as
	// List-Unsubscribe with List-Unsubscribe-Post; "" for a confirmation
	// mail.
	From        string `json:"from,omitempty"`
	Subject     string `json:"subject,omitempty"`
	Text        string `json:"text,omitempty"`
	HTML        string `json:"html,omitempty"`
	Unsubscribe string `json:"unsubscribe,omitempty"`
	// Body is a webhook's JSON document, signed with Secret
	// (X-Vantage-Signature) when it is set.
	Body json.RawMessage `json:"body,omitempty"`
}

// validSubscriberEvent checks what Enqueue takes of a KindSubscriber event.
func validSubscriberEvent(e Event) error {
	m := e.Subscriber
	switch {
	case !strings.HasPrefix(e.IncidentID, SubscriberPrefix):
		return fmt.Errorf("subscriber message with id %q: its id must start with %q", e.IncidentID, SubscriberPrefix)
	case e.Action == ActionTest || e.Action == ActionRepeat:
		return fmt.Errorf("subscriber message with action %q", e.Action)
	case m == nil:
		return errors.New("subscriber event without its message")
	case (m.Email == "") == (m.URL == ""):
		return errors.New("subscriber message: one of email and url")
	case m.Email != "" && m.Subject == "":
		return errors.New("subscriber mail without a subject")
	case m.URL != "" && len(m.Body) == 0:
		return errors.New("subscriber webhook without a body")
	}
	return nil
}

// subscribers delivers KindSubscriber events: mails through an email
// notifier's SMTP settings, webhooks by POST.
type subscribers struct {
	base
	mail *email // nil: no email notifier configured
}

// NewSubscriberProvider returns the provider named name that delivers
// subscriber messages: mails through the SMTP settings of the email
// notifier mailer (its to list unused; nil: mails are refused), webhooks
// with opts' HTTP client.
func NewSubscriberProvider(name string, mailer *config.Notifier, opts Options) (Provider, error) {
	opts.setDefaults()
	p := &subscribers{base: newBase(config.Notifier{Name: name, Type: config.NotifierWebhook}, opts, "")}
	if mailer != nil {
		n := *mailer
		n.Name, n.To = name, []string{"subscribers@localhost"} // the to list is the message's own
		pr, err := newEmail(n, opts)
		if err != nil {
			return nil, fmt.Errorf("subscriptions: %w", err)
		}
		p.mail = pr.(*email)
	}
	return p, nil
}

func (p *subscribers) Send(ctx context.Context, e Event) (Receipt, error) {
	m := e.Subscriber
	if m == nil {
		return Receipt{}, &SendError{Body: "not a subscriber message"}
	}
	if m.URL != "" {
		h := http.Header{}
		if m.Secret != "" {
			h.Set(SignatureHeader, Sign(m.Secret, m.Body))
		}
		return p.postJSON(ctx, m.URL, m.Body, h)
	}
	if p.mail == nil {
		return Receipt{}, &SendError{Body: "no email notifier is configured for subscriptions"}
	}
	msg, err := p.subscriberMail(e, time.Now())
	if err != nil {
		return Receipt{}, &SendError{Body: err.Error()}
	}
	return p.mail.deliver(ctx, msg, 1)
}

// subscriberMail builds the mail of e: to the subscriber alone, with
// List-Unsubscribe and List-Unsubscribe-Post (RFC 8058) when it has an
// unsubscribe link.
func (p *subscribers) subscriberMail(e Event, now time.Time) (*gomail.Msg, error) {
	m := e.Subscriber
	from := p.mail.from
	if m.From != "" {
		a, err := mail.ParseAddress(m.From)
		if err != nil {
			return nil, fmt.Errorf("from %q: %v", m.From, err)
		}
		from = a
	}
	to, err := mail.ParseAddress(m.Email)
	if err != nil {
		return nil, fmt.Errorf("to %q: %v", m.Email, err)
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(from)
	msg.ToMailAddress(to)
	msg.Subject(headerSanitizer.Replace(m.Subject))
	msg.SetDateWithValue(now)
	msg.SetUserAgent(p.opts.UserAgent)
	msg.SetMessageIDWithValue(messageID(e.IncidentID, e.Key()))
	if m.Unsubscribe != "" {
		msg.SetGenHeader("List-Unsubscribe", "<"+headerSanitizer.Replace(m.Unsubscribe)+">")
		msg.SetGenHeader("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	}
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}
