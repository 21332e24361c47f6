package config

import (
	"fmt"
	"strings"
	"time"
)

// DefaultReportsAt is the time of day, in statuspage.timezone, the monthly
// report is mailed at when reports.at is not set.
const DefaultReportsAt = "08:00"

// Reports is the monthly mail of the SLA report (key `reports:`): on the
// 1st of each month at At in statuspage.timezone, the designated sender
// mails the previous month's report to To through the email notifier
// Notifier (its SMTP server, credentials and from address; not its to).
// The zero value (no `reports:` key) mails nothing.
type Reports struct {
	To []string // the recipients, at least one
	// At is the time of day as written (HH:MM, default 08:00); Hour and
	// Minute are its parts.
	At           string
	Hour, Minute int
	// Notifier names the email notifier the mail is sent through.
	Notifier string
}

// Enabled reports whether a monthly report is mailed.
func (r Reports) Enabled() bool { return len(r.To) > 0 && r.Notifier != "" }

// SendAt is the time the report of the month before the one that starts
// on month's 1st is mailed: that day at Hour:Minute in loc, as maintenance
// windows read their times (LocalTime).
func (r Reports) SendAt(year int, month time.Month, loc *time.Location) time.Time {
	return LocalTime(year, month, 1, r.Hour, r.Minute, loc)
}

// LocalTime is the instant the clocks of loc first read the given day and
// time: for a time a daylight saving change passes twice, the first; for
// a time it skips, the instant of the change (so 02:30 on the night the
// clock jumps from 02:00 to 03:00 is 03:00).
func LocalTime(year int, month time.Month, day, hour, minute int, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	return realStart(time.Date(year, month, day, hour, minute, 0, 0, time.UTC), loc)
}

// ParseClock parses a time of day written HH:MM (00:00 to 23:59).
func ParseClock(s string) (hour, minute int, err error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil || len(strings.TrimSpace(s)) != 5 {
		return 0, 0, fmt.Errorf("%q is not a time of day written HH:MM, such as 08:00", s)
	}
	return t.Hour(), t.Minute(), nil
}

// reports reads the `reports:` key. The notifier must be an email notifier
// of the config (read before).
func (p *parser) reports(f *field, c *Config) {
	r := &c.Reports
	r.At = DefaultReportsAt
	r.Hour, r.Minute, _ = ParseClock(DefaultReportsAt)
	if !set(f) {
		return
	}
	m, ok := p.mapOf(valOf(f), "reports")
	if !ok {
		return
	}
	toF := m.get("to")
	if tos, listed, ok := p.addresses(toF); ok {
		r.To = append(r.To, tos...)
		if listed == 0 {
			p.errorf(toF.key, "reports.to must list at least one address")
		}
	} else if !set(toF) {
		p.errorf(keyOr(toF, m.pos()), "reports needs to: the addresses the monthly report is mailed to")
	}
	if af := m.get("at"); set(af) {
		if s, ok := p.str(af); ok {
			if h, mi, err := ParseClock(s); err != nil {
				p.errorf(af.val, "at must be a time of day written HH:MM (00:00 to 23:59), such as 08:00, got %q", s)
			} else {
				r.At, r.Hour, r.Minute = strings.TrimSpace(s), h, mi
			}
		}
	}
	nf := m.get("notifier")
	if s, ok := p.str(nf); ok {
		s = strings.TrimSpace(s)
		switch n := c.NotifierByName(s); {
		case s == "":
			p.errorf(nf.key, "reports.notifier must name an email notifier")
		case n == nil:
			p.errorf(nf.val, "unknown notifier %q", s)
		case n.Type != NotifierEmail:
			p.errorf(nf.val, "notifier %q is a %s notifier; the report is mailed through an email notifier", s, n.Type)
		default:
			r.Notifier = s
		}
	} else if !set(nf) {
		p.errorf(keyOr(nf, m.pos()), "reports needs notifier: the email notifier (its SMTP server and from address) the report is mailed through")
	}
	m.unknown()
	if !r.Enabled() {
		r.To, r.Notifier = nil, ""
	}
}
