package config

import (
	"testing"
	"time"
)

func TestSubscriptions(t *testing.T) {
	c := mustParse(t, "s.yaml", y(`
checks:
  - {name: api, type: tcp, target: 127.0.0.1:1}
notifiers:
  - {name: mail, type: email, smtp: "127.0.0.1:25", tls: none, from: "ops@example.com", to: [oncall@example.com]}
statuspage:
  url: https://status.example.com/
  subscriptions:
    enabled: true
    email: mail
    from: "Example Status <status@example.com>"
    secret: ${SUB_SECRET}
`), env(map[string]string{"SUB_SECRET": "0123456789abcdef0123"}))
	s := c.StatusPage.Subscriptions
	if !s.Enabled || s.Email != "mail" || s.From != "Example Status <status@example.com>" || s.URL != "https://status.example.com" ||
		s.Secret != "0123456789abcdef0123" || s.ConfirmWithin != DefaultConfirmWithin {
		t.Fatalf("subscriptions = %+v", s)
	}
	c = mustParse(t, "s.yaml", y(`
statuspage:
  subscriptions: {enabled: true, confirm_within: 2h, url: "https://s.example.com"}
`), env(nil))
	if s := c.StatusPage.Subscriptions; !s.Enabled || s.Email != "" || s.ConfirmWithin != 2*time.Hour || s.URL != "https://s.example.com" {
		t.Fatalf("webhook-only subscriptions = %+v", s)
	}
}

func TestSubscriptionsErrors(t *testing.T) {
	_, err := Parse("s.yaml", y(`
notifiers:
  - {name: hook, type: webhook, url: "http://127.0.0.1:9/x"}
statuspage:
  subscriptions:
    enabled: yes please
    email: hook
    from: nobody
    url: ftp://x.example.com
    secret: short
    confirm_within: 10s
    extra: 1
  x: 2
`), env(nil))
	checkErrors(t, err, []string{
		`s.yaml:5:14: enabled must be true or false, got "yes please"`,
		`s.yaml:6:12: email names notifier "hook" of type webhook: it must name an email notifier`,
		`s.yaml:7:11: from "nobody" is not an email address: mail: missing '@' or angle-addr`,
		`s.yaml:8:10: url must be an http:// or https:// URL`,
		`s.yaml:9:13: secret must be at least 16 characters, got 5`,
		`s.yaml:10:21: confirm_within must be between 1m and 30d, got 10s`,
		`s.yaml:11:5: unknown key "extra" in subscriptions`,
		`s.yaml:12:3: unknown key "x" in statuspage`,
	})
	_, err = Parse("s.yaml", y(`
statuspage:
  subscriptions:
    enabled: true
    email: nomail
`), env(nil))
	checkErrors(t, err, []string{
		`s.yaml:4:12: email names unknown notifier "nomail": it must name an email notifier`,
	})
	_, err = Parse("s.yaml", y(`
notifiers:
  - {name: mail, type: email, smtp: "127.0.0.1:25", tls: none, from: "ops@example.com", to: [oncall@example.com]}
statuspage:
  subscriptions:
    enabled: true
    email: mail
`), env(nil))
	checkErrors(t, err, []string{
		`s.yaml:4:3: subscriptions by email need the page's public URL for their links: set statuspage.url or statuspage.subscriptions.url`,
	})
}
