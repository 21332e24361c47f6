package notifier

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/vantage-dev/vantage/config"
)

// twilio sends an SMS (POST {url}/2010-04-01/Accounts/{sid}/Messages.json
// with To, From or MessagingServiceSid, and Body) or, with voice, places a
// call that reads the notification (POST .../Calls.json with To, From and
// Twiml "<Response><Say>…</Say></Response>") to each number of To, with
// HTTP basic auth account_sid:auth_token. Twilio's API has no idempotency
// key, so a retry skips the numbers this process already reached for the
// same notification (a restart forgets them).
type twilio struct {
	base
	mu   sync.Mutex
	done map[string]twilioDone // incident|key|number → outcome
}

type twilioDone struct {
	at     time.Time
	answer string // the delivered answer, or the permanent error
	status int    // the refusal's status
	ok     bool
}

// twilioDoneTTL is how long a number's outcome is remembered.
const twilioDoneTTL = 48 * time.Hour

// twilioMaxBody is the longest SMS body Twilio takes (1600 characters).
const twilioMaxBody = 1600

func newTwilio(n config.Notifier, opts Options) (Provider, error) {
	var missing []string
	for _, k := range []struct{ key, v string }{{"account_sid", n.AccountSID}, {"auth_token", n.AuthToken}, {"from", n.From}} {
		if k.v == "" {
			missing = append(missing, k.key)
		}
	}
	if len(n.To) == 0 {
		missing = append(missing, "to")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("notifier %q (twilio): %s required", n.Name, strings.Join(missing, ", "))
	}
	return &twilio{base: newBase(n, opts, DefaultTwilioURL), done: map[string]twilioDone{}}, nil
}

// smsText is the text of an SMS: the headline, then the status page.
func smsText(e Event) string {
	s := Headline(e)
	if e.StatusPageURL != "" {
		s += "\n" + e.StatusPageURL
	}
	return s
}

// twiML is what a voice call reads: the headline, twice.
func twiML(e Event) string {
	var b strings.Builder
	say := func(s string) {
		b.WriteString("<Say>")
		_ = xml.EscapeText(&b, []byte(s))
		b.WriteString("</Say>")
	}
	h := Headline(e)
	b.WriteString("<Response>")
	say("Vantage alert. " + h)
	b.WriteString(`<Pause length="1"/>`)
	say("Again: " + h)
	b.WriteString("</Response>")
	return b.String()
}

func (t *twilio) Send(ctx context.Context, e Event) (Receipt, error) {
	resource := "Messages.json"
	if t.cfg.Voice {
		resource = "Calls.json"
	}
	u := t.url + "/2010-04-01/Accounts/" + url.PathEscape(t.cfg.AccountSID) + "/" + resource
	h := http.Header{}
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	h.Set("Accept", "application/json")
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(t.cfg.AccountSID+":"+t.cfg.AuthToken)))

	now := time.Now()
	t.mu.Lock()
	for k, d := range t.done {
		if now.Sub(d.at) > twilioDoneTTL {
			delete(t.done, k)
		}
	}
	t.mu.Unlock()

	var (
		sent, refused []string // "NUMBER: answer"
		refusedStatus = -1     // the status of every refusal; 0 when they differ
		retry         *SendError
		last          Receipt
	)
	refuse := func(to, answer string, status int) {
		refused = append(refused, to+": "+answer)
		if refusedStatus != -1 && refusedStatus != status {
			status = 0
		}
		refusedStatus = status
	}
	for _, to := range t.cfg.To {
		key := e.IncidentID + "|" + e.Key() + "|" + to
		t.mu.Lock()
		d, seen := t.done[key]
		t.mu.Unlock()
		if seen {
			if d.ok {
				sent = append(sent, to+": "+d.answer)
			} else {
				refuse(to, d.answer, d.status)
			}
			continue
		}
		form := url.Values{"To": {to}}
		switch {
		case t.cfg.Voice:
			form.Set("From", t.cfg.From)
			form.Set("Twiml", twiML(e))
		case strings.HasPrefix(t.cfg.From, "MG"):
			form.Set("MessagingServiceSid", t.cfg.From)
			form.Set("Body", truncate(smsText(e), twilioMaxBody))
		default:
			form.Set("From", t.cfg.From)
			form.Set("Body", truncate(smsText(e), twilioMaxBody))
		}
		r, err := t.do(ctx, http.MethodPost, u, []byte(form.Encode()), h)
		if ctx.Err() != nil {
			return Receipt{}, ctx.Err()
		}
		var se *SendError
		switch {
		case err == nil:
			last = r
			answer := createdSID(r.Body)
			t.remember(key, twilioDone{at: now, answer: answer, ok: true})
			sent = append(sent, to+": "+answer)
		case errors.As(err, &se) && !se.Retryable:
			t.remember(key, twilioDone{at: now, answer: se.Error(), status: se.Status})
			refuse(to, se.Error(), se.Status)
		default:
			if !errors.As(err, &se) {
				se = &SendError{Retryable: true, Body: err.Error()}
			}
			if retry == nil || se.RetryAfter > retry.RetryAfter {
				retry = &SendError{Status: se.Status, Retryable: true, RetryAfter: se.RetryAfter, Body: to + ": " + se.Body}
			}
		}
	}
	total := len(t.cfg.To)
	switch {
	case retry != nil:
		if len(sent) > 0 {
			retry.Body = fmt.Sprintf("reached %d of %d numbers; %s", len(sent), total, retry.Body)
		}
		return Receipt{}, retry
	case len(sent) == 0:
		return Receipt{}, &SendError{Status: refusedStatus, Body: shorten(strings.Join(refused, "; "))}
	}
	if last.Status == 0 {
		last.Status = http.StatusCreated // every number was reached by an earlier attempt
	}
	body := fmt.Sprintf("reached %d of %d numbers: %s", len(sent), total, strings.Join(sent, "; "))
	if len(refused) > 0 {
		body += "; refused: " + strings.Join(refused, "; ")
	}
	return Receipt{Status: last.Status, Body: shorten(body)}, nil
}

func (t *twilio) remember(key string, d twilioDone) {
	t.mu.Lock()
	t.done[key] = d
	t.mu.Unlock()
}

// createdSID is the sid of a created message or call, else the answer.
func createdSID(body string) string {
	var v struct {
		SID string `json:"sid"`
	}
	if json.Unmarshal([]byte(body), &v) == nil && v.SID != "" {
		return v.SID
	}
	return body
}
