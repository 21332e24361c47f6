package notifier

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/notifier/smtptest"
)

func reportEvent() Event {
	return Event{Action: ActionTrigger, Kind: KindReport, IncidentID: ReportID("2026-11"),
		StartedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		Mail: &Mail{To: []string{"boss@example.com", "Ops <ops@example.com>"}, Subject: "Acme uptime report: November 2026",
			Text: "Uptime 99.5 %\n", Attachments: []Attachment{
				{Name: "report-2026-11.html", ContentType: "text/html; charset=utf-8", Data: []byte("<!DOCTYPE html><p>report</p>")},
				{Name: "report-2026-11.csv", ContentType: "text/csv; charset=utf-8", Data: []byte("name,uptime\napi,0.995\n")},
			}}}
}

func TestReportMailDelivered(t *testing.T) {
	srv, _ := smtptest.Start(t, "none")
	p := mustNew(t, config.Notifier{Name: "mail", Type: "email", SMTP: srv.Addr(), TLS: "none",
		From: "Vantage <status@example.com>", To: []string{"oncall@example.com"}})
	chat := mustNew(t, config.Notifier{Name: "chat", Type: "webhook", URL: "http://127.0.0.1:1/"})
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), []Provider{p, chat},
		OutboxOptions{Fallbacks: map[string]Fallback{"mail": {To: []string{"chat"}, After: time.Millisecond}}})
	ctx := context.Background()
	ev := reportEvent()
	if err := o.Enqueue(ctx, ev, "chat"); err == nil || !strings.Contains(err.Error(), "only email notifiers") {
		t.Errorf("a report through a webhook: %v", err)
	}
	bad := ev
	bad.IncidentID = "2026-11"
	if err := o.Enqueue(ctx, bad, "mail"); err == nil {
		t.Error("a report id without the prefix was taken")
	}
	if err := o.Enqueue(ctx, ev, "mail"); err != nil {
		t.Fatal(err)
	}
	if err := o.Enqueue(ctx, ev, "mail"); err != nil { // once per node
		t.Fatal(err)
	}
	waitFor(t, "the report delivered", func() bool {
		es, err := o.Entries(ctx, ev.IncidentID)
		return err == nil && len(es) == 1 && es[0].State == StateDelivered
	})
	// Handed to no fallback, though the notifier has one due after 1 ms.
	es, _ := o.Entries(ctx, ev.IncidentID)
	if len(es) != 1 {
		t.Errorf("entries %+v", es)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.From != "status@example.com" || strings.Join(m.To, ",") != "boss@example.com,ops@example.com" {
		t.Errorf("envelope from %q to %q: the report goes to its own recipients", m.From, m.To)
	}
	msg, text, files := smtptest.Mixed(t, m.Data)
	if s := subject(t, msg); s != ev.Mail.Subject {
		t.Errorf("Subject %q", s)
	}
	if id := msg.Header.Get("Message-Id"); id != "<report_2026-11.trigger@vantage>" {
		t.Errorf("Message-ID %q", id)
	}
	if strings.TrimSpace(text) != "Uptime 99.5 %" {
		t.Errorf("text %q", text)
	}
	if files["report-2026-11.html"] != "<!DOCTYPE html><p>report</p>" || files["report-2026-11.csv"] != "name,uptime\napi,0.995\n" {
		t.Errorf("attachments %q", files)
	}
}
