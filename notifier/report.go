package notifier

import (
	"bytes"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// KindReport is a mail of its own rather than a notice or a page: the
// monthly SLA report (Event.Mail), delivered only by email notifiers,
// from the notifier's address to the mail's own recipients. Its
// IncidentID is ReportID(month), its action trigger; it is never handed
// to fallbacks (a report is no page).
const KindReport = "report"

// ReportID is the id of the report mail of month (YYYY-MM): the key the
// cluster's sent log and claims know it by, so that it is mailed once.
func ReportID(month string) string { return KindReport + ":" + month }

// Mail is what a report mail holds.
type Mail struct {
	To      []string `json:"to"` // recipients (RFC 5322 addresses), at least one
	Subject string   `json:"subject"`
	Text    string   `json:"text"` // the plain-text body
	// Attachments, in order.
	Attachments []Attachment `json:"attachments,omitempty"`
}

// Attachment is one file attached to a Mail.
type Attachment struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Data        []byte `json:"data"`
}

// validMail checks a report event for Enqueue.
func validMail(e Event) error {
	switch {
	case !strings.HasPrefix(e.IncidentID, KindReport+":"):
		return fmt.Errorf("report mail with id %q: its id must start with %q", e.IncidentID, KindReport+":")
	case e.Action != ActionTrigger:
		return fmt.Errorf("report mail with action %q: only trigger", e.Action)
	case e.Mail == nil || len(e.Mail.To) == 0 || e.Mail.Subject == "":
		return errors.New("report mail without recipients or subject")
	}
	for _, to := range e.Mail.To {
		if _, err := mail.ParseAddress(to); err != nil {
			return fmt.Errorf("report mail to %q: %w", to, err)
		}
	}
	return nil
}

// mailsReports marks the providers that deliver KindReport events.
type reportMailer interface{ mailsReports() }

func (m *email) mailsReports() {}

// reportMessage builds the message of a report mail: from the notifier's
// address to the mail's recipients, the text body and the attachments.
func (m *email) reportMessage(e Event, now time.Time) (*gomail.Msg, error) {
	if e.Mail == nil {
		return nil, errors.New("report mail without content")
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(m.from)
	var to []*mail.Address
	for _, t := range e.Mail.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return nil, fmt.Errorf("to %q: %w", t, err)
		}
		to = append(to, a)
	}
	msg.ToMailAddress(to...)
	msg.Subject(headerSanitizer.Replace(e.Mail.Subject))
	msg.SetDateWithValue(now)
	msg.SetUserAgent(m.opts.UserAgent)
	msg.SetMessageIDWithValue(messageID(e.IncidentID, e.Key()))
	msg.SetGenHeader("X-Vantage-Report", headerSanitizer.Replace(strings.TrimPrefix(e.IncidentID, KindReport+":")))
	msg.SetBodyString(gomail.TypeTextPlain, e.Mail.Text)
	for _, a := range e.Mail.Attachments {
		ct := a.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		if err := msg.AttachReader(a.Name, bytes.NewReader(a.Data), gomail.WithFileContentType(gomail.ContentType(ct))); err != nil {
			return nil, fmt.Errorf("attach %s: %w", a.Name, err)
		}
	}
	return msg, nil
}
