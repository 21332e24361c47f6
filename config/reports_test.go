package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const reportNotifiers = `
notifiers:
  - {name: mail, type: email, smtp: "smtp.example.com:587", from: "Vantage <status@example.com>", to: [oncall@example.com]}
  - {name: chat, type: slack, url: "https://hooks.example.com/x"}
`

func TestReportsParse(t *testing.T) {
	c := mustParse(t, "r.yaml", y(`
statuspage:
  timezone: Europe/Berlin
reports:
  to: [boss@example.com, "Ops <ops@example.com>"]
  at: "07:30"
  notifier: mail
`+reportNotifiers), env(nil))
	want := Reports{To: []string{"boss@example.com", "Ops <ops@example.com>"}, At: "07:30", Hour: 7, Minute: 30, Notifier: "mail"}
	if !reflect.DeepEqual(c.Reports, want) {
		t.Errorf("Reports = %+v, want %+v", c.Reports, want)
	}
	if !c.Reports.Enabled() {
		t.Error("not enabled")
	}
	loc := c.StatusPage.Location()
	if got := c.Reports.SendAt(2026, time.December, loc); got.Format(time.RFC3339) != "2026-12-01T07:30:00+01:00" {
		t.Errorf("SendAt = %s", got.Format(time.RFC3339))
	}

	// at defaults to 08:00; without the key nothing is mailed.
	c = mustParse(t, "r.yaml", y(`
reports:
  to: [boss@example.com]
  notifier: mail
`+reportNotifiers), env(nil))
	if r := c.Reports; r.At != "08:00" || r.Hour != 8 || r.Minute != 0 || !r.Enabled() {
		t.Errorf("default at: %+v", r)
	}
	c = mustParse(t, "r.yaml", y(reportNotifiers), env(nil))
	if c.Reports.Enabled() || c.Reports.At != "08:00" {
		t.Errorf("no reports key: %+v", c.Reports)
	}
}

func TestReportsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"bad values", `
reports:
  to: [boss@example.com, not an address]
  at: "25:00"
  notifier: chat
`, []string{
			`r.yaml:2:26: "not an address" is not an email address`,
			`r.yaml:3:7: at must be a time of day written HH:MM (00:00 to 23:59), such as 08:00, got "25:00"`,
			`r.yaml:4:13: notifier "chat" is a slack notifier; the report is mailed through an email notifier`,
		}},
		{"missing keys", `
reports:
  at: 8am
`, []string{
			`r.yaml:2:3: reports needs to: the addresses the monthly report is mailed to`,
			`r.yaml:2:3: reports needs notifier: the email notifier (its SMTP server and from address) the report is mailed through`,
			`r.yaml:2:7: at must be a time of day written HH:MM (00:00 to 23:59), such as 08:00, got "8am"`,
		}},
		{"unknown notifier, empty to, unknown key", `
reports:
  to: []
  notifier: nobody
  format: pdf
`, []string{
			`r.yaml:2:3: reports.to must list at least one address`,
			`r.yaml:3:13: unknown notifier "nobody"`,
			`r.yaml:4:3: unknown key "format" in reports`,
		}},
		{"not a mapping", `
reports: [boss@example.com]
`, []string{`r.yaml:1:10: reports must be a mapping, got a list`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("r.yaml", y(tc.doc+reportNotifiers), env(nil))
			if err == nil {
				t.Fatal("no error")
			}
			got := strings.Split(err.Error(), "\n")
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestParseClock(t *testing.T) {
	for s, want := range map[string][2]int{"00:00": {0, 0}, "08:00": {8, 0}, "23:59": {23, 59}, " 07:05 ": {7, 5}} {
		h, m, err := ParseClock(s)
		if err != nil || h != want[0] || m != want[1] {
			t.Errorf("ParseClock(%q) = %d, %d, %v", s, h, m, err)
		}
	}
	for _, s := range []string{"24:00", "8:00", "08:60", "0800", "08:00:00", ""} {
		if _, _, err := ParseClock(s); err == nil {
			t.Errorf("ParseClock(%q): no error", s)
		}
	}
}
