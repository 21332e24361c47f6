package notifier

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/notifier/smtptest"
)

// A subscriber's mail goes to the subscriber alone, from the configured
// From, with RFC 8058's List-Unsubscribe and List-Unsubscribe-Post; a
// webhook subscriber gets its JSON, signed with its secret.
func TestSubscriberProvider(t *testing.T) {
	srv, _ := smtptest.Start(t, "none")
	mailer := config.Notifier{Name: "mail", Type: "email", SMTP: srv.Addr(), TLS: "none", From: "Ops <ops@example.com>", To: []string{"oncall@example.com"}}
	p, err := NewSubscriberProvider("subscribers", &mailer, Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := Event{Kind: KindSubscriber, Action: ActionTrigger, IncidentID: "sub:0123456789abcdef:inc1", Subscriber: &SubscriberMessage{
		ID: "0123456789abcdef", Email: "ann@example.com", From: "Example Status <status@example.com>", Subject: "Checkout is down",
		Text: "Checkout is not reachable.", Unsubscribe: "https://status.example.com/unsubscribe?id=0123456789abcdef&sig=abc"}}
	if err := validEvent(e); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.Send(ctx, e); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != "ann@example.com" || msgs[0].From != "status@example.com" {
		t.Fatalf("messages %+v", msgs)
	}
	m, err := mail.ReadMessage(strings.NewReader(string(msgs[0].Data)))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get("List-Unsubscribe"); got != "<https://status.example.com/unsubscribe?id=0123456789abcdef&sig=abc>" {
		t.Errorf("List-Unsubscribe %q", got)
	}
	if got := m.Header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post %q", got)
	}
	if m.Header.Get("Subject") != "Checkout is down" {
		t.Errorf("Subject %q", m.Header.Get("Subject"))
	}

	var got struct {
		body []byte
		sig  string
	}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.body, _ = io.ReadAll(r.Body)
		got.sig = r.Header.Get(SignatureHeader)
	}))
	defer hook.Close()
	body := json.RawMessage(`{"event":"incident.started"}`)
	we := Event{Kind: KindSubscriber, Action: ActionResolve, IncidentID: "sub:fedcba9876543210:inc1",
		Subscriber: &SubscriberMessage{ID: "fedcba9876543210", URL: hook.URL, Secret: "s3cret", Body: body}}
	if err := validEvent(we); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, we); err != nil {
		t.Fatal(err)
	}
	if string(got.body) != string(body) || got.sig != Sign("s3cret", body) {
		t.Errorf("webhook got %s %q", got.body, got.sig)
	}

	for _, bad := range []Event{
		{Kind: KindSubscriber, Action: ActionTrigger, IncidentID: "inc1", Subscriber: e.Subscriber},
		{Kind: KindSubscriber, Action: ActionTrigger, IncidentID: "sub:x:inc1"},
		{Kind: KindSubscriber, Action: ActionRepeat, Seq: 1, IncidentID: "sub:x:inc1", Subscriber: e.Subscriber},
		{Kind: KindSubscriber, Action: ActionTrigger, IncidentID: "sub:x:inc1", Subscriber: &SubscriberMessage{Email: "a@b.example"}},
		{Kind: KindSubscriber, Action: ActionTrigger, IncidentID: "sub:x:inc1", Subscriber: &SubscriberMessage{URL: "http://x.example"}},
	} {
		if validEvent(bad) == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
