package report

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/notifier"
)

// The monthly report mail.
//
// On the 1st of each month at reports.at in statuspage.timezone the
// designated sender mails the previous month's report to reports.to
// through the outbox, once for the cluster, as the pager sends a page: the
// mail is known as notifier.ReportID(month) ("report:2026-11") with the
// action trigger, so the cluster's sent log shows it once delivered and a
// claim keeps two senders from queueing it together. A node that becomes
// the sender (a restart, a takeover) waits MailTakeover for the sent log
// and claims first; a node that starts after the time on the 1st and finds
// the mail unsent sends it, until MailWindow after the time. Months long
// past are never mailed.

const (
	// MailWindow is how long after the time on the 1st the previous
	// month's report is still mailed when it has not been.
	MailWindow = 24 * time.Hour
	// MailTakeover is how long a node that has just become the sender
	// waits for the cluster's sent log and claims before mailing.
	MailTakeover = 5 * time.Second
	// mailRetry is the wait after a report could not be made or queued.
	mailRetry = time.Minute
	// mailTimeout bounds making and queueing one report.
	mailTimeout = 2 * time.Minute
)

// Due is a monthly report mail due now.
type Due struct {
	Month    string    // the month reported, YYYY-MM
	From, To time.Time // the month in the page's zone: [From, To)
	At       time.Time // when it was due: the 1st at reports.at
}

// ID is the mail's id in the outbox, the sent log and the claims.
func (d Due) ID() string { return notifier.ReportID(d.Month) }

// DueAt returns the report mail due at now under r in loc: the previous
// month's, from the 1st of this month at r's time for MailWindow. Times
// are read on the zone's clock of that day (config.LocalTime): a time a
// daylight saving change skips is the instant of the change, one it
// passes twice the first.
func DueAt(now time.Time, r config.Reports, loc *time.Location) (Due, bool) {
	if !r.Enabled() {
		return Due{}, false
	}
	if loc == nil {
		loc = time.UTC
	}
	local := now.In(loc)
	y, m := local.Year(), local.Month()
	at := r.SendAt(y, m, loc)
	if now.Before(at) || !now.Before(at.Add(MailWindow)) {
		return Due{}, false
	}
	py, pm := y, m-1
	if pm < time.January {
		py, pm = y-1, time.December
	}
	from := config.LocalTime(py, pm, 1, 0, 0, loc)
	return Due{Month: fmt.Sprintf("%04d-%02d", py, int(pm)), From: from, To: config.LocalTime(y, m, 1, 0, 0, loc), At: at}, true
}

// MailSettings are what the mailer reads from the running config.
type MailSettings struct {
	Reports  config.Reports
	Location *time.Location // statuspage.timezone
	Locale   string         // statuspage.locale: en or ko
	Title    string         // the page's title
}

// MailSettingsOf takes the settings from a config.
func MailSettingsOf(cfg *config.Config) MailSettings {
	title := cfg.StatusPage.Title
	if title == "" {
		title = config.DefaultStatusTitle
	}
	return MailSettings{Reports: cfg.Reports, Location: cfg.StatusPage.Location(), Locale: cfg.StatusPage.Locale, Title: title}
}

// SentLog is the cluster's record of deliveries (*mesh.SentLog).
type SentLog interface {
	Unsent(incident, action string, names []string) []string
}

// Claims are the cluster's claims on deliveries in flight (*mesh.Claims).
// The pager renews this node's claims while their deliveries are pending
// and drops them once the sent log shows them delivered.
type Claims interface {
	Held(incident, action string, now time.Time, alive func(node string) bool) (string, bool)
	Claim(incident, action string, notifiers []string) error
	Release(incident, action string) error
}

// Outbox queues the mail durably (*notifier.Outbox).
type Outbox interface {
	Enqueue(ctx context.Context, e notifier.Event, notifiers ...string) error
}

// MailerOptions configure a Mailer.
type MailerOptions struct {
	Now    func() time.Time
	Config func() MailSettings
	// Sender reports whether this node is the designated sender now
	// (it sees a majority and is not degraded), and which nodes are
	// alive.
	Sender func() (isSender bool, alive func(node string) bool)
	// Make computes the report of p (from the replicated history).
	Make   func(ctx context.Context, p Params) (*Report, error)
	Sent   SentLog
	Claims Claims
	Outbox Outbox
	Logger *slog.Logger
}

// Decision is what one Tick did.
type Decision string

// Decisions.
const (
	Disabled      Decision = "disabled"        // no reports key
	NotDue        Decision = "not due"         // not within MailWindow of the time on the 1st
	NotSender     Decision = "not the sender"  // another node mails
	TakingOver    Decision = "taking over"     // became the sender less than MailTakeover ago
	AlreadyQueued Decision = "already queued"  // this node queued it
	SentByPeer    Decision = "sent"            // the sent log shows it delivered
	ClaimedByPeer Decision = "claimed by peer" // an alive peer is delivering it
	RetryLater    Decision = "retry later"     // making or queueing it failed lately
	Queued        Decision = "queued"          // queued now
	Failed        Decision = "failed"          // making or queueing it failed now
)

// Mailer mails the monthly report. Tick decides and acts once; Run ticks
// every second.
type Mailer struct {
	o   MailerOptions
	log *slog.Logger

	mu          sync.Mutex
	wasSender   bool
	senderSince time.Time
	queued      map[string]bool      // ids queued by this node
	failedAt    map[string]time.Time // ids whose last try failed
	ticks       atomic.Uint64
}

// NewMailer returns a mailer.
func NewMailer(o MailerOptions) *Mailer {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Mailer{o: o, log: o.Logger, queued: map[string]bool{}, failedAt: map[string]time.Time{}}
}

// Ticks counts the ticks done, for tests to wait on.
func (m *Mailer) Ticks() uint64 { return m.ticks.Load() }

// Run ticks every second until ctx ends.
func (m *Mailer) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		m.Tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick runs the mailer once: when a report mail is due and this node is
// the sender (for at least MailTakeover), and neither the sent log nor an
// alive peer's claim says it is taken care of, it claims the mail, makes
// the report and queues the mail in the outbox.
func (m *Mailer) Tick(ctx context.Context) Decision {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.ticks.Add(1)
	now := m.o.Now()
	isSender, alive := m.o.Sender()
	if isSender && !m.wasSender {
		m.senderSince = now
	}
	m.wasSender = isSender
	set := m.o.Config()
	due, ok := DueAt(now, set.Reports, set.Location)
	if !ok {
		if !set.Reports.Enabled() {
			return Disabled
		}
		return NotDue
	}
	if !isSender {
		return NotSender
	}
	if now.Sub(m.senderSince) < MailTakeover {
		return TakingOver
	}
	id, key := due.ID(), string(notifier.ActionTrigger)
	if m.queued[id] {
		return AlreadyQueued
	}
	if at, ok := m.failedAt[id]; ok && now.Sub(at) < mailRetry {
		return RetryLater
	}
	log := m.log.With("report", due.Month, "notifier", set.Reports.Notifier)
	ns := m.o.Sent.Unsent(id, key, []string{set.Reports.Notifier})
	if len(ns) == 0 {
		m.queued[id] = true
		return SentByPeer
	}
	if holder, held := m.o.Claims.Held(id, key, now, alive); held {
		log.Debug("report mail claimed by a peer; not sending", "holder", holder)
		return ClaimedByPeer
	}
	if err := m.o.Claims.Claim(id, key, ns); err != nil {
		log.Warn("gossip report mail claim", "err", err)
	}
	ev, err := m.event(ctx, due, set, now)
	if err == nil {
		ectx, cancel := context.WithTimeout(ctx, mailTimeout)
		err = m.o.Outbox.Enqueue(ectx, ev, ns...)
		cancel()
	}
	if err != nil {
		log.Error("mail the monthly report; will retry", "err", err)
		m.failedAt[id] = now
		if err := m.o.Claims.Release(id, key); err != nil {
			log.Warn("release report mail claim", "err", err)
		}
		return Failed
	}
	delete(m.failedAt, id)
	m.queued[id] = true
	for k := range m.queued { // the ids of months past
		if k != id {
			delete(m.queued, k)
		}
	}
	log.Info("monthly report queued for mailing", "to", set.Reports.To)
	return Queued
}

// event makes the report of due's month and the mail that carries it.
func (m *Mailer) event(ctx context.Context, due Due, set MailSettings, now time.Time) (notifier.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, mailTimeout)
	defer cancel()
	r, err := m.o.Make(ctx, Params{From: due.From, To: due.To, Now: now, Location: set.Location,
		Title: ReportTitle(set.Title, set.Locale)})
	if err != nil {
		return notifier.Event{}, fmt.Errorf("make the report of %s: %w", due.Month, err)
	}
	mail, err := NewMail(r, due, set)
	if err != nil {
		return notifier.Event{}, err
	}
	return notifier.Event{Action: notifier.ActionTrigger, Kind: notifier.KindReport, IncidentID: due.ID(),
		StartedAt: due.From.UTC(), At: now.UTC(), Mail: mail}, nil
}

// NewMail is the mail of report r of due's month: a text summary in the
// page's locale, with the HTML and CSV reports attached.
func NewMail(r *Report, due Due, set MailSettings) (*notifier.Mail, error) {
	var html, csv bytes.Buffer
	if err := RenderIn(&html, r, FormatHTML, set.Locale); err != nil {
		return nil, fmt.Errorf("render the report of %s: %w", due.Month, err)
	}
	if err := Render(&csv, r, FormatCSV); err != nil {
		return nil, fmt.Errorf("render the report of %s: %w", due.Month, err)
	}
	w := wordsFor(set.Locale)
	return &notifier.Mail{
		To:      append([]string(nil), set.Reports.To...),
		Subject: fmt.Sprintf(w.subject, set.Title, w.month(due.From)),
		Text:    Summary(r, due, set),
		Attachments: []notifier.Attachment{
			{Name: "uptime-report-" + due.Month + ".html", ContentType: ContentType(FormatHTML), Data: html.Bytes()},
			{Name: "uptime-report-" + due.Month + ".csv", ContentType: ContentType(FormatCSV), Data: csv.Bytes()},
		},
	}, nil
}

// ReportTitle is the title of a mailed report in locale.
func ReportTitle(title, locale string) string {
	return fmt.Sprintf(wordsFor(locale).title, title)
}

// words are a mail's texts in one language.
type words struct {
	subject, title, heading, period, overall, withUnknown, incidents, checks, attached, noChecks string
	month                                                                                        func(time.Time) string
}

var wordsEN = words{
	subject:     "%s uptime report: %s",
	title:       "%s uptime report",
	heading:     "%s uptime report for %s",
	period:      "Period: %s to %s (%s)",
	overall:     "Uptime: %s (maintenance and unknown time left out)",
	withUnknown: "Uptime with unknown time counted as not up: %s",
	incidents:   "Incidents: %d, downtime %s, longest %s, mean time to recover %s",
	checks:      "Checks (uptime, incidents, downtime):",
	attached:    "The full report is attached: HTML (bars and latency charts) and CSV.",
	noChecks:    "No checks.",
	month:       func(t time.Time) string { return t.Format("January 2006") },
}

var wordsKO = words{
	subject:     "%s 가동률 보고서: %s",
	title:       "%s 가동률 보고서",
	heading:     "%s %s 가동률 보고서",
	period:      "기간: %s ~ %s (%s)",
	overall:     "가동률: %s (점검 시간과 알 수 없는 시간 제외)",
	withUnknown: "알 수 없는 시간을 중단으로 계산한 가동률: %s",
	incidents:   "장애: %d건, 다운타임 %s, 최장 %s, 평균 복구 시간 %s",
	checks:      "점검 항목 (가동률, 장애, 다운타임):",
	attached:    "전체 보고서를 첨부했습니다: HTML(막대와 지연 시간 차트)과 CSV.",
	noChecks:    "점검 항목이 없습니다.",
	month:       func(t time.Time) string { return fmt.Sprintf("%d년 %d월", t.Year(), int(t.Month())) },
}

func wordsFor(locale string) words {
	if locale == config.LocaleKO {
		return wordsKO
	}
	return wordsEN
}

// Summary is the text body of a report mail: the period, the total
// figures and one line per check.
func Summary(r *Report, due Due, set MailSettings) string {
	w := wordsFor(set.Locale)
	loc := set.Location
	if loc == nil {
		loc = time.UTC
	}
	var b strings.Builder
	fmt.Fprintf(&b, w.heading+"\n\n", set.Title, w.month(due.From))
	fmt.Fprintf(&b, w.period+"\n", r.From.In(loc).Format("2006-01-02 15:04"), r.Until.In(loc).Format("2006-01-02 15:04"), loc)
	t := r.Total
	fmt.Fprintf(&b, w.overall+"\n", Percent(t.Uptime))
	fmt.Fprintf(&b, w.withUnknown+"\n", Percent(t.UptimeWithUnknown))
	fmt.Fprintf(&b, w.incidents+"\n\n", t.Incidents, Duration(t.DowntimeS), Duration(t.LongestDowntimeS), optDuration(t.MTTRS))
	if len(r.Checks) == 0 {
		b.WriteString(w.noChecks + "\n")
	} else {
		b.WriteString(w.checks + "\n")
		width := 0
		names := make([]string, len(r.Checks))
		for i, c := range r.Checks {
			names[i] = c.Name
			if c.DisplayName != "" && c.DisplayName != c.Name {
				names[i] = c.DisplayName
			}
			if c.Group != "" {
				names[i] += " (" + c.Group + ")"
			}
			width = max(width, len([]rune(names[i])))
		}
		for i, c := range r.Checks {
			pad := strings.Repeat(" ", width-len([]rune(names[i])))
			fmt.Fprintf(&b, "  %s%s  %8s  %3d  %s\n", names[i], pad, Percent(c.Uptime), c.Incidents, Duration(c.DowntimeS))
		}
	}
	b.WriteString("\n" + w.attached + "\n")
	return b.String()
}
