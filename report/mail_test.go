package report_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/notifier"
	"github.com/vantage-dev/vantage/report"
	"github.com/vantage-dev/vantage/store"
)

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func reportsAt(t *testing.T, hhmm string) config.Reports {
	t.Helper()
	h, m, err := config.ParseClock(hhmm)
	if err != nil {
		t.Fatal(err)
	}
	return config.Reports{To: []string{"boss@example.com"}, At: hhmm, Hour: h, Minute: m, Notifier: "mail"}
}

func TestDueAt(t *testing.T) {
	utc, berlin, seoul, ny := time.UTC, zone(t, "Europe/Berlin"), zone(t, "Asia/Seoul"), zone(t, "America/New_York")
	asu := zone(t, "America/Asuncion")
	for _, tc := range []struct {
		name  string
		at    string
		loc   *time.Location
		now   string
		month string // "" = nothing due
		sent  string // when it was due (RFC 3339, UTC)
	}{
		{"UTC: a second before", "08:00", utc, "2026-12-01T07:59:59Z", "", ""},
		{"UTC: at the time", "08:00", utc, "2026-12-01T08:00:00Z", "2026-11", "2026-12-01T08:00:00Z"},
		{"UTC: restart later that day", "08:00", utc, "2026-12-01T19:30:00Z", "2026-11", "2026-12-01T08:00:00Z"},
		{"UTC: last second of the window", "08:00", utc, "2026-12-02T07:59:59Z", "2026-11", "2026-12-01T08:00:00Z"},
		{"UTC: window over", "08:00", utc, "2026-12-02T08:00:00Z", "", ""},
		{"UTC: mid-month, long past", "08:00", utc, "2026-12-15T08:00:00Z", "", ""},
		{"UTC: end of the month before", "08:00", utc, "2026-11-30T23:59:59Z", "", ""},
		{"year boundary", "08:00", utc, "2027-01-01T08:00:00Z", "2026-12", "2027-01-01T08:00:00Z"},
		{"Berlin (CET): 08:00 is 07:00Z", "08:00", berlin, "2026-12-01T06:59:59Z", "", ""},
		{"Berlin (CET): due", "08:00", berlin, "2026-12-01T07:00:00Z", "2026-11", "2026-12-01T07:00:00Z"},
		{"Berlin (CEST) in summer: 06:00Z", "08:00", berlin, "2026-07-01T06:00:00Z", "2026-06", "2026-07-01T06:00:00Z"},
		// In Seoul (UTC+9) the 1st at 08:00 is still the 30th in UTC.
		{"Seoul: the 1st local is the 30th UTC", "08:00", seoul, "2026-11-30T23:00:00Z", "2026-11", "2026-11-30T23:00:00Z"},
		{"Seoul: a minute before", "08:00", seoul, "2026-11-30T22:59:00Z", "", ""},
		// New York leaves daylight saving time on Sunday 2026-11-01 at
		// 02:00: 08:00 that day is EST (13:00Z), not EDT (12:00Z).
		{"New York, DST ends on the 1st: 12:00Z is 07:00 EST", "08:00", ny, "2026-11-01T12:00:00Z", "", ""},
		{"New York, DST ends on the 1st: due at 13:00Z", "08:00", ny, "2026-11-01T13:00:00Z", "2026-10", "2026-11-01T13:00:00Z"},
		// 01:30 happens twice that night: the first one counts, once.
		{"New York, 01:30 twice: the first", "01:30", ny, "2026-11-01T05:30:00Z", "2026-10", "2026-11-01T05:30:00Z"},
		{"New York, 01:30 twice: the second is the same mail", "01:30", ny, "2026-11-01T06:30:00Z", "2026-10", "2026-11-01T05:30:00Z"},
		{"New York, 01:30 twice: a second before the first", "01:30", ny, "2026-11-01T05:29:59Z", "", ""},
		// Asunción jumped from 00:00 to 01:00 on 2023-10-01: 00:30 never
		// happened that day (time.Date would read it as 23:30 on the 30th),
		// so the mail is due at the jump, 04:00Z, as is the month's end.
		{"Asunción, 00:30 skipped on the 1st: not on the 30th", "00:30", asu, "2023-10-01T03:30:00Z", "", ""},
		{"Asunción, 00:30 skipped on the 1st: at the jump", "00:30", asu, "2023-10-01T04:00:00Z", "2023-09", "2023-10-01T04:00:00Z"},
		{"midnight", "00:00", utc, "2026-12-01T00:00:00Z", "2026-11", "2026-12-01T00:00:00Z"},
		{"23:59 runs into the 2nd", "23:59", utc, "2026-12-02T23:58:59Z", "2026-11", "2026-12-01T23:59:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, ok := report.DueAt(at(tc.now), reportsAt(t, tc.at), tc.loc)
			if tc.month == "" {
				if ok {
					t.Fatalf("due %+v, want nothing", d)
				}
				return
			}
			if !ok {
				t.Fatalf("nothing due, want %s", tc.month)
			}
			if d.Month != tc.month || !d.At.Equal(at(tc.sent)) || d.ID() != "report:"+tc.month {
				t.Errorf("due %s at %s (%s), want %s at %s", d.Month, d.At.UTC().Format(time.RFC3339), d.ID(), tc.month, tc.sent)
			}
			// The period is the whole month in the zone, up to the 1st's
			// first instant.
			if f := d.From.In(tc.loc); f.Day() != 1 || f.Hour() != 0 || f.Minute() != 0 || f.Format("2006-01") != tc.month ||
				d.To.In(tc.loc).Day() != 1 || d.To.In(tc.loc).Month() != d.From.In(tc.loc).Month()%12+1 || !d.To.After(d.From) || d.To.After(d.At) {
				t.Errorf("period %s – %s", d.From, d.To)
			}
		})
	}
	if _, ok := report.DueAt(at("2026-12-01T08:00:00Z"), config.Reports{}, utc); ok {
		t.Error("due without a reports key")
	}
	d, _ := report.DueAt(at("2023-10-01T04:00:00Z"), reportsAt(t, "00:30"), asu)
	if d.From.UTC().Format(time.RFC3339) != "2023-09-01T04:00:00Z" || d.To.UTC().Format(time.RFC3339) != "2023-10-01T04:00:00Z" {
		t.Errorf("September in Asunción: %s – %s", d.From.UTC(), d.To.UTC())
	}
	d, _ = report.DueAt(at("2026-11-01T13:00:00Z"), reportsAt(t, "08:00"), ny)
	if d.From.UTC().Format(time.RFC3339) != "2026-10-01T04:00:00Z" || d.To.UTC().Format(time.RFC3339) != "2026-11-01T04:00:00Z" {
		t.Errorf("October in New York: %s – %s", d.From.UTC(), d.To.UTC())
	}
}

// recOutbox records what is queued.
type recOutbox struct {
	mu   sync.Mutex
	evs  []notifier.Event
	fail error
}

func (o *recOutbox) Enqueue(_ context.Context, e notifier.Event, ns ...string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fail != nil {
		return o.fail
	}
	if len(ns) != 1 || ns[0] != "mail" {
		return errors.New("unexpected notifiers")
	}
	o.evs = append(o.evs, e)
	return nil
}

func (o *recOutbox) queued() []notifier.Event {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]notifier.Event(nil), o.evs...)
}

// mailNode is one node's mailer over its own sent log and claims, on a
// clock the test moves.
type mailNode struct {
	name   string
	now    time.Time
	sender bool
	alive  map[string]bool
	sent   *mesh.SentLog
	claims *mesh.Claims
	outbox *recOutbox
	m      *report.Mailer
	set    report.MailSettings
	makes  int
	fail   error
}

func newMailNode(t *testing.T, name string, st *store.Store, set report.MailSettings, now time.Time) *mailNode {
	t.Helper()
	n := &mailNode{name: name, now: now, sender: true, alive: map[string]bool{}, outbox: &recOutbox{}, set: set}
	clock := func() time.Time { return n.now }
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n.sent = mesh.NewSentLog(name, clock, nil, log)
	n.claims = mesh.NewClaims(name, clock, log)
	cfg := loadConfig(t)
	n.m = report.NewMailer(report.MailerOptions{Now: clock, Logger: log,
		Config: func() report.MailSettings { return n.set },
		Sender: func() (bool, func(string) bool) { return n.sender, func(p string) bool { return n.alive[p] } },
		Make: func(ctx context.Context, p report.Params) (*report.Report, error) {
			n.makes++
			if n.fail != nil {
				return nil, n.fail
			}
			return report.Build(ctx, st, cfg, p)
		},
		Sent: n.sent, Claims: n.claims, Outbox: n.outbox})
	return n
}

func (n *mailNode) tick(t *testing.T, want report.Decision) {
	t.Helper()
	if got := n.m.Tick(context.Background()); got != want {
		t.Fatalf("%s at %s: %q, want %q", n.name, n.now.UTC().Format(time.RFC3339), got, want)
	}
}

// deliver is the outbox's delivery of what n queued: recorded in n's sent
// log.
func (n *mailNode) deliver(t *testing.T) {
	t.Helper()
	for _, e := range n.outbox.queued() {
		if err := n.sent.Record(mesh.Sent{Incident: e.IncidentID, Start: e.StartedAt, Action: e.Key(), Notifier: "mail"}); err != nil {
			t.Fatal(err)
		}
	}
}

// gossip hands from's sent log and claims to to, as push-pull does.
func gossip(t *testing.T, from, to *mailNode) {
	t.Helper()
	b, err := from.sent.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := to.sent.Merge(from.name, b); err != nil {
		t.Fatal(err)
	}
	if b, err = from.claims.MarshalBinary(); err != nil {
		t.Fatal(err)
	}
	if err := to.claims.Merge(from.name, b); err != nil {
		t.Fatal(err)
	}
}

func utcSettings(t *testing.T) report.MailSettings {
	return report.MailSettings{Reports: reportsAt(t, "08:00"), Location: time.UTC, Locale: "en", Title: "Acme"}
}

func TestMailerOnTheFirst(t *testing.T) {
	st := seed(t, false)
	a := newMailNode(t, "a", st, utcSettings(t), at("2026-12-01T07:59:50Z"))
	a.tick(t, report.NotDue)
	a.now = at("2026-12-01T08:00:00Z")
	a.tick(t, report.Queued)
	a.now = a.now.Add(time.Second)
	a.tick(t, report.AlreadyQueued)
	evs := a.outbox.queued()
	if len(evs) != 1 || a.makes != 1 {
		t.Fatalf("queued %d, made %d", len(evs), a.makes)
	}
	e := evs[0]
	if e.IncidentID != "report:2026-11" || e.Kind != notifier.KindReport || e.Action != notifier.ActionTrigger ||
		!e.StartedAt.Equal(at("2026-11-01T00:00:00Z")) {
		t.Errorf("event %+v", e)
	}
	m := e.Mail
	if m.Subject != "Acme uptime report: November 2026" || strings.Join(m.To, ",") != "boss@example.com" {
		t.Errorf("subject %q to %q", m.Subject, m.To)
	}
	// api in November (UTC): incident A 4500 s and the first hour of B.
	for _, want := range []string{"Acme uptime report for November 2026", "Period: 2026-11-01 00:00 to 2026-12-01 00:00 (UTC)",
		"API (Public API)", "  2  2h 15m\n", "The full report is attached"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, m.Text)
		}
	}
	t.Logf("text:\n%s", m.Text)
	if len(m.Attachments) != 2 || m.Attachments[0].Name != "uptime-report-2026-11.html" || m.Attachments[1].Name != "uptime-report-2026-11.csv" {
		t.Fatalf("attachments %+v", m.Attachments)
	}
	if html := string(m.Attachments[0].Data); !strings.HasPrefix(strings.ToLower(html), "<!doctype html>") || !strings.Contains(html, "Acme uptime report") {
		t.Errorf("HTML attachment %.200s", html)
	}
	if csv := string(m.Attachments[1].Data); !strings.Contains(csv, "\ncheck,api,") {
		t.Errorf("CSV attachment %.300s", csv)
	}
	// A day later the window is over; next month's comes on 1 January.
	a.now = at("2026-12-02T08:00:00Z")
	a.tick(t, report.NotDue)
	a.now = at("2027-01-01T08:00:00Z")
	a.tick(t, report.Queued)
	if evs := a.outbox.queued(); len(evs) != 2 || evs[1].IncidentID != "report:2026-12" {
		t.Errorf("January: %d queued", len(evs))
	}
}

func TestMailerRestartAfterTheTime(t *testing.T) {
	st := seed(t, false)
	// Started at 09:30 on the 1st, it finds the mail unsent: it waits
	// MailTakeover for the cluster's sent log, then mails.
	a := newMailNode(t, "a", st, utcSettings(t), at("2026-12-01T09:30:00Z"))
	a.tick(t, report.TakingOver)
	a.now = a.now.Add(report.MailTakeover - time.Millisecond)
	a.tick(t, report.TakingOver)
	a.now = a.now.Add(time.Millisecond)
	a.tick(t, report.Queued)

	// Restarted again after the delivery: a peer's sent log says it went
	// out, so nothing is queued or made.
	a.deliver(t)
	b := newMailNode(t, "a", st, utcSettings(t), at("2026-12-01T10:00:00Z"))
	gossip(t, a, b)
	b.tick(t, report.TakingOver)
	b.now = b.now.Add(report.MailTakeover)
	b.tick(t, report.SentByPeer)
	if len(b.outbox.queued()) != 0 || b.makes != 0 {
		t.Error("mailed again after a restart")
	}

	// A node started on the 2nd after the window, or mid-month, mails
	// nothing: months long past are never mailed.
	c := newMailNode(t, "c", st, utcSettings(t), at("2026-12-02T08:00:01Z"))
	c.tick(t, report.NotDue)
	c.now = c.now.Add(time.Hour)
	c.tick(t, report.NotDue)
	if c.makes != 0 {
		t.Error("made a report")
	}
}

func TestMailerSenderChange(t *testing.T) {
	st := seed(t, false)
	a := newMailNode(t, "a", st, utcSettings(t), at("2026-12-01T07:00:00Z"))
	b := newMailNode(t, "b", st, utcSettings(t), at("2026-12-01T07:00:00Z"))
	b.sender = false
	a.tick(t, report.NotDue)
	b.tick(t, report.NotDue)
	a.now, b.now = at("2026-12-01T08:00:00Z"), at("2026-12-01T08:00:00Z")
	b.tick(t, report.NotSender)
	a.tick(t, report.Queued) // a claims and queues, then dies before delivering
	gossip(t, a, b)
	b.sender, b.alive["a"] = true, true
	b.now = b.now.Add(10 * time.Second)
	b.tick(t, report.TakingOver)
	b.now = b.now.Add(report.MailTakeover)
	b.tick(t, report.ClaimedByPeer) // a is alive and holds a live claim
	// a is gone: its claim no longer counts and b mails.
	b.alive["a"] = false
	b.tick(t, report.Queued)
	if len(b.outbox.queued()) != 1 {
		t.Fatal("b did not queue")
	}
	// b delivered; a comes back as the sender and learns it from b.
	b.deliver(t)
	a2 := newMailNode(t, "a", st, utcSettings(t), b.now.Add(time.Minute))
	gossip(t, b, a2)
	a2.tick(t, report.TakingOver)
	a2.now = a2.now.Add(report.MailTakeover)
	a2.tick(t, report.SentByPeer)
	if len(a2.outbox.queued()) != 0 {
		t.Error("a mailed again")
	}
}

func TestMailerFailureRetriesAndReleases(t *testing.T) {
	st := seed(t, false)
	a := newMailNode(t, "a", st, utcSettings(t), at("2026-12-01T07:59:00Z"))
	a.tick(t, report.NotDue)
	a.now = at("2026-12-01T08:00:00Z")
	a.fail = errors.New("disk full")
	a.tick(t, report.Failed)
	if holder, held := a.claims.Held("report:2026-11", "trigger", a.now, func(string) bool { return true }); held {
		t.Errorf("claim kept by %s after a failure", holder)
	}
	a.fail = nil
	a.now = a.now.Add(30 * time.Second)
	a.tick(t, report.RetryLater)
	a.now = a.now.Add(30 * time.Second)
	a.tick(t, report.Queued)
	a2 := newMailNode(t, "a", st, utcSettings(t), a.now)
	a2.outbox.fail = errors.New("outbox closed")
	a2.now = a2.now.Add(report.MailTakeover)
	a2.tick(t, report.TakingOver) // the first tick marks it the sender
	a2.now = a2.now.Add(report.MailTakeover)
	a2.tick(t, report.Failed)
}

func TestMailerKoreanSeoul(t *testing.T) {
	st := seed(t, false)
	set := report.MailSettings{Reports: reportsAt(t, "09:00"), Location: zone(t, "Asia/Seoul"), Locale: "ko", Title: "에이크미"}
	a := newMailNode(t, "a", st, set, at("2026-11-30T23:59:00Z")) // 12-01 08:59 KST
	a.tick(t, report.NotDue)
	a.now = at("2026-12-01T00:00:00Z") // 09:00 KST
	a.tick(t, report.Queued)
	m := a.outbox.queued()[0].Mail
	if m.Subject != "에이크미 가동률 보고서: 2026년 11월" {
		t.Errorf("subject %q", m.Subject)
	}
	for _, want := range []string{"기간: 2026-11-01 00:00 ~ 2026-12-01 00:00 (Asia/Seoul)", "가동률:", "장애:", "첨부"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, m.Text)
		}
	}
	if !strings.Contains(string(m.Attachments[0].Data), "에이크미 가동률 보고서") {
		t.Error("the HTML report's title")
	}
	if h := string(m.Attachments[0].Data); !strings.Contains(h, `<html lang="ko">`) || !strings.Contains(h, "<h2>요약</h2>") {
		t.Error("the HTML report attached is not in Korean")
	}
}

func TestMailerNotEnabled(t *testing.T) {
	st := seed(t, false)
	a := newMailNode(t, "a", st, report.MailSettings{Location: time.UTC}, at("2026-12-01T08:00:00Z"))
	a.tick(t, report.Disabled)
}
