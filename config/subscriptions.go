package config

import (
	"net/mail"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Subscriptions configures visitors' and operators' subscriptions to the
// status page's incidents (key statuspage.subscriptions): visitors leave
// an email address on the page, operators register webhooks through the
// token API, and the designated sender tells every subscriber of every
// incident's start, operators' updates and resolution.
type Subscriptions struct {
	// Enabled turns subscriptions on (key enabled).
	Enabled bool
	// Email names an email notifier whose SMTP settings (smtp, tls, auth,
	// username, password) deliver the mails (key email); its to list is
	// not used. Empty: no visitor form, webhook subscribers only.
	Email string
	// From is the mails' From address (key from); default the email
	// notifier's from.
	From string
	// URL is the public base URL the mails' links point to (key url);
	// default statuspage.url. Required with Email.
	URL string
	// Secret signs the confirmation and unsubscribe links (key secret, at
	// least 16 characters; use ${VAR}); every node must have the same.
	// Empty: derived from the gossip key, else from the API token.
	Secret string
	// ConfirmWithin is how long a confirmation link stays valid (key
	// confirm_within); default 48h.
	ConfirmWithin time.Duration
}

// Defaults and bounds of statuspage.subscriptions.
const (
	DefaultConfirmWithin = 48 * time.Hour
	maxConfirmWithin     = 30 * 24 * time.Hour
	minSubscribeSecret   = 16
)

// subscriptions reads statuspage.subscriptions.
func (p *parser) subscriptions(f *field, sp *StatusPage, notifiers []Notifier) {
	s := &sp.Subscriptions
	if !set(f) {
		return
	}
	s.ConfirmWithin = DefaultConfirmWithin
	m, ok := p.mapOf(valOf(f), "subscriptions")
	if !ok {
		return
	}
	if ef := m.get("enabled"); set(ef) {
		if v, ok := p.boolean(ef); ok {
			s.Enabled = v
		}
	}
	if ef := m.get("email"); set(ef) {
		if v, ok := p.str(ef); ok {
			s.Email = strings.TrimSpace(v)
			p.subscriptionsNotifier(ef.val, s, notifiers)
		}
	}
	if ff := m.get("from"); set(ff) {
		if v, ok := p.str(ff); ok {
			if _, err := mail.ParseAddress(v); err != nil {
				p.errorf(ff.val, "from %q is not an email address: %v", v, err)
			} else {
				s.From = v
			}
		}
	}
	urlPos := f.key
	if uf := m.get("url"); set(uf) {
		urlPos = uf.val
		if v, ok := p.str(uf); ok && v != "" {
			if pr := httpURLProblem(v); pr != "" {
				p.errorf(uf.val, "url %s", pr)
			} else {
				s.URL = strings.TrimRight(v, "/")
			}
		}
	}
	if sf := m.get("secret"); set(sf) {
		if v, ok := p.str(sf); ok {
			if len(v) < minSubscribeSecret {
				p.errorf(sf.val, "secret must be at least %d characters, got %d", minSubscribeSecret, len(v))
			} else {
				s.Secret = v
			}
		}
	}
	if cf := m.get("confirm_within"); set(cf) {
		if d, ok := p.duration(cf); ok {
			if d < time.Minute || d > maxConfirmWithin {
				p.errorf(cf.val, "confirm_within must be between 1m and 30d, got %s", d)
			} else {
				s.ConfirmWithin = d
			}
		}
	}
	m.unknown()
	if s.URL == "" {
		s.URL = strings.TrimRight(sp.URL, "/")
	}
	if s.Enabled && s.Email != "" && s.URL == "" {
		p.errorf(urlPos, "subscriptions by email need the page's public URL for their links: set statuspage.url or statuspage.subscriptions.url")
	}
}

// subscriptionsNotifier checks that statuspage.subscriptions.email names
// an email notifier.
func (p *parser) subscriptionsNotifier(at *yaml.Node, s *Subscriptions, notifiers []Notifier) {
	if s.Email == "" {
		return
	}
	var n *Notifier
	for i := range notifiers {
		if notifiers[i].Name == s.Email {
			n = &notifiers[i]
		}
	}
	switch {
	case n == nil:
		p.errorf(at, "email names unknown notifier %q: it must name an email notifier", s.Email)
		s.Email = ""
	case n.Type != NotifierEmail:
		p.errorf(at, "email names notifier %q of type %s: it must name an email notifier", s.Email, n.Type)
		s.Email = ""
	}
}
