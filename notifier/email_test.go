package notifier

import (
	"context"
	"errors"
	"mime"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/notifier/smtptest"
)

func emailNotifier(srv *smtptest.Server, mode string) config.Notifier {
	return config.Notifier{Name: "mail", Type: "email", SMTP: srv.Addr(), TLS: mode,
		From: "Vantage <alerts@example.com>", To: []string{"oncall@example.com", "Ops <ops@example.com>"}}
}

func subject(t *testing.T, msg *mail.Message) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestEmail: one message per TLS mode, authenticated with what the
// server offers (over TLS) or not at all; the envelope, headers and both
// parts as sent.
func TestEmail(t *testing.T) {
	for _, mode := range []string{"starttls", "implicit", "none"} {
		t.Run(mode, func(t *testing.T) {
			srv, pool := smtptest.Start(t, mode)
			n := emailNotifier(srv, mode)
			if mode != "none" {
				n.Username, n.Password = "user", "pw"
			}
			p, err := New(n, Options{RootCAs: pool})
			if err != nil {
				t.Fatal(err)
			}
			r := send(t, p, sampleEv)
			if r.Status != 250 || r.Body != "2.0.0 queued as Q1" {
				t.Fatalf("receipt %+v", r)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 {
				t.Fatalf("%d messages", len(msgs))
			}
			m := msgs[0]
			if m.TLS != (mode != "none") {
				t.Fatalf("TLS = %v", m.TLS)
			}
			// Offered PLAIN, LOGIN, CRAM-MD5 and XOAUTH2, discovery takes CRAM-MD5.
			if want := map[bool]string{true: "CRAM-MD5", false: ""}[mode != "none"]; m.Mech != want {
				t.Fatalf("auth %q as %q, want %q", m.Mech, m.User, want)
			}
			if m.From != "alerts@example.com" || strings.Join(m.To, ",") != "oncall@example.com,ops@example.com" {
				t.Fatalf("envelope %q -> %q", m.From, m.To)
			}
			msg, text, html := smtptest.Alternative(t, m.Data)
			if s := subject(t, msg); s != sampleSummary {
				t.Fatalf("Subject %q", s)
			}
			from, _ := mail.ParseAddress(msg.Header.Get("From"))
			to, _ := mail.ParseAddressList(msg.Header.Get("To"))
			if from == nil || from.String() != `"Vantage" <alerts@example.com>` || len(to) != 2 ||
				to[0].Address != "oncall@example.com" || to[1].String() != `"Ops" <ops@example.com>` {
				t.Fatalf("From %q To %q", msg.Header.Get("From"), msg.Header.Get("To"))
			}
			for h, want := range map[string]string{
				"Message-Id": "<inc-1.trigger@vantage>", "X-Vantage-Incident": "inc-1", "Mime-Version": "1.0",
				"User-Agent": "vantage", "In-Reply-To": "",
			} {
				if got := msg.Header.Get(h); got != want {
					t.Errorf("%s: %q, want %q", h, got, want)
				}
			}
			if d, err := msg.Header.Date(); err != nil || time.Since(d) > time.Minute {
				t.Errorf("Date %q (%v)", msg.Header.Get("Date"), err)
			}
			if got := strings.ReplaceAll(text, "\r\n", "\n"); got != sampleText {
				t.Fatalf("text part:\n%q\nwant\n%q", got, sampleText)
			}
			for _, want := range []string{"<h2", sampleSummary, "connection timed out (10000 ms)", `href="https://status.example.com/"`} {
				if !strings.Contains(html, want) {
					t.Fatalf("html part lacks %q:\n%s", want, html)
				}
			}
		})
	}
}

// TestEmailAuthMechanisms: each mechanism the auth key names, against a
// server offering them all over STARTTLS; the server checks the
// credentials.
func TestEmailAuthMechanisms(t *testing.T) {
	for _, tc := range []struct {
		mode, auth, mech string
		offered          []string
	}{
		{"starttls", "plain", "PLAIN", nil},
		{"starttls", "login", "LOGIN", nil},
		{"starttls", "cram-md5", "CRAM-MD5", nil},
		{"starttls", "xoauth2", "XOAUTH2", nil},
		{"implicit", "plain", "PLAIN", nil},
		{"implicit", "xoauth2", "XOAUTH2", nil},
		{"none", "cram-md5", "CRAM-MD5", nil},
		{"none", "plain", "PLAIN", nil}, // allowed in clear text to localhost only
		// Without auth: the strongest the server offers.
		{"starttls", "", "PLAIN", []string{"LOGIN", "PLAIN"}},
		{"starttls", "", "LOGIN", []string{"LOGIN"}},
		{"implicit", "", "PLAIN", []string{"LOGIN", "PLAIN"}},
		{"none", "", "CRAM-MD5", []string{"PLAIN", "CRAM-MD5"}},
	} {
		t.Run(tc.mode+"/"+tc.auth+"/"+tc.mech, func(t *testing.T) {
			srv, pool := smtptest.Start(t, tc.mode, func(s *smtptest.Server) {
				if tc.offered != nil {
					s.Mechs = tc.offered
				}
			})
			n := emailNotifier(srv, tc.mode)
			n.Auth, n.Username, n.Password = tc.auth, "user", "pw"
			if tc.auth == "xoauth2" {
				n.Password, n.OAuthToken = "", "ya29.token"
			}
			send(t, mustNewOpts(t, n, Options{RootCAs: pool}), sampleEv)
			if m := srv.Messages(); len(m) != 1 || m[0].Mech != tc.mech || m[0].User != "user" || m[0].TLS != (tc.mode != "none") {
				t.Fatalf("messages %+v", m)
			}
		})
	}
}

func mustNewOpts(t *testing.T, n config.Notifier, opts Options) Provider {
	t.Helper()
	p, err := New(n, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEmailKoreanAndThreading: a Korean display name in the subject
// (RFC 2047 encoded), the body in UTF-8; the resolve refers to the
// trigger's Message-ID.
func TestEmailKoreanAndThreading(t *testing.T) {
	srv, pool := smtptest.Start(t, "implicit")
	n := emailNotifier(srv, "implicit")
	n.Auth, n.Username, n.Password = "login", "user", "pw"
	p := mustNewOpts(t, n, Options{RootCAs: pool})
	e := sampleEv
	e.DisplayName = "결제 서비스"
	send(t, p, e)
	send(t, p, resolved(e))
	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	trigger, text, html := smtptest.Alternative(t, msgs[0].Data)
	want := "결제 서비스 is not reachable from 2 of 3 regions (eu-west, us-east): connection timed out"
	if raw := trigger.Header.Get("Subject"); !strings.HasPrefix(raw, "=?") || strings.ContainsAny(raw, "결제") {
		t.Errorf("raw Subject %q is not RFC 2047 encoded", raw)
	}
	if s := subject(t, trigger); s != want {
		t.Errorf("Subject %q, want %q", s, want)
	}
	if text = strings.ReplaceAll(text, "\r\n", "\n"); !strings.HasPrefix(text, want+"\nCheck: api\n") || !strings.Contains(html, "결제 서비스") {
		t.Errorf("parts:\n%s\n%s", text, html)
	}
	resolve, _, _ := smtptest.Alternative(t, msgs[1].Data)
	if s := subject(t, resolve); s != "결제 서비스 is up again after 12m3s" {
		t.Errorf("resolve Subject %q", s)
	}
	if id := resolve.Header.Get("Message-Id"); id != "<inc-1.resolve@vantage>" ||
		resolve.Header.Get("In-Reply-To") != "<inc-1.trigger@vantage>" || resolve.Header.Get("References") != "<inc-1.trigger@vantage>" {
		t.Errorf("threading: %v", resolve.Header)
	}
}

func TestEmailErrors(t *testing.T) {
	permanent := func(t *testing.T, what string, err error) {
		t.Helper()
		if err == nil || IsRetryable(err) {
			t.Fatalf("%s: %v, want a permanent error", what, err)
		}
	}
	// A server without STARTTLS is refused permanently in starttls mode.
	srv, pool := smtptest.Start(t, "none")
	n := config.Notifier{Name: "mail", Type: "email", SMTP: srv.Addr(), TLS: "starttls", From: "a@example.com", To: []string{"b@example.com"}}
	_, err := mustNewOpts(t, n, Options{RootCAs: pool}).Send(context.Background(), sampleEv)
	permanent(t, "no STARTTLS", err)
	// An untrusted certificate is permanent too, with STARTTLS and implicit TLS.
	for _, mode := range []string{"starttls", "implicit"} {
		srv, _ := smtptest.Start(t, mode)
		n.SMTP, n.TLS = srv.Addr(), mode
		_, err = mustNewOpts(t, n, Options{}).Send(context.Background(), sampleEv)
		permanent(t, "untrusted cert, "+mode, err)
	}
	// Wrong credentials (535), a mechanism the server does not offer, and
	// PLAIN without TLS to a host that is not localhost: permanent.
	srv, pool = smtptest.Start(t, "starttls")
	n.SMTP, n.TLS, n.Auth, n.Username, n.Password = srv.Addr(), "starttls", "plain", "user", "wrong"
	_, err = mustNewOpts(t, n, Options{RootCAs: pool}).Send(context.Background(), sampleEv)
	permanent(t, "wrong password", err)
	var se *SendError
	if !errors.As(err, &se) || se.Status != 535 {
		t.Fatalf("wrong password: %#v", err)
	}
	srv, pool = smtptest.Start(t, "starttls", func(s *smtptest.Server) { s.Mechs = []string{"PLAIN"} })
	n.SMTP, n.Auth, n.Password = srv.Addr(), "cram-md5", "pw"
	_, err = mustNewOpts(t, n, Options{RootCAs: pool}).Send(context.Background(), sampleEv)
	permanent(t, "mechanism not offered", err)
	// Without auth and without TLS, PLAIN is not taken.
	none, _ := smtptest.Start(t, "none", func(s *smtptest.Server) { s.Mechs = []string{"PLAIN", "LOGIN"} })
	n2 := emailNotifier(none, "none")
	n2.Username, n2.Password = "user", "pw"
	_, err = mustNewOpts(t, n2, Options{}).Send(context.Background(), sampleEv)
	permanent(t, "only PLAIN or LOGIN without TLS", err)
	if got := len(srv.Messages()) + len(none.Messages()); got != 0 {
		t.Fatalf("%d messages sent without authenticating", got)
	}
	// 127.0.0.2 is not "localhost" to PLAIN: it refuses to send the
	// password in clear text.
	clear, _ := smtptest.StartAt(t, "127.0.0.2", "none")
	n.SMTP, n.TLS, n.Auth = clear.Addr(), "none", "plain"
	_, err = mustNewOpts(t, n, Options{}).Send(context.Background(), sampleEv)
	permanent(t, "PLAIN in clear text", err)
	if len(clear.Messages()) != 0 || clear.AuthFailures() != nil {
		t.Fatal("PLAIN credentials went out in clear text")
	}
	// 4xx replies are retryable, 5xx permanent.
	for code, retry := range map[int]bool{451: true, 550: false} {
		srv, pool := smtptest.Start(t, "none", func(s *smtptest.Server) { s.RcptCode = code })
		n := config.Notifier{Name: "mail", Type: "email", SMTP: srv.Addr(), TLS: "none", From: "a@example.com", To: []string{"b@example.com"}}
		_, err := mustNewOpts(t, n, Options{RootCAs: pool}).Send(context.Background(), sampleEv)
		var se *SendError
		if !errors.As(err, &se) || se.Status != code || se.Retryable != retry {
			t.Fatalf("RCPT %d: %#v", code, err)
		}
	}
	// Nobody listening: retryable.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	n = config.Notifier{Name: "mail", Type: "email", SMTP: ln.Addr().String(), TLS: "none", From: "a@example.com", To: []string{"b@example.com"}}
	ln.Close()
	if _, err := mustNewOpts(t, n, Options{}).Send(context.Background(), sampleEv); !IsRetryable(err) {
		t.Fatalf("connection refused: %v", err)
	}
}

// TestEmailContext: a server that never answers does not hold Send past
// its context.
func TestEmailContext(t *testing.T) {
	srv, _ := smtptest.Start(t, "none", func(s *smtptest.Server) { s.Hang = true })
	n := config.Notifier{Name: "mail", Type: "email", SMTP: srv.Addr(), TLS: "none", From: "a@example.com", To: []string{"b@example.com"}}
	p := mustNewOpts(t, n, Options{})
	// Cancelled: Send returns at once.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	if _, err := p.Send(ctx, sampleEv); !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
		t.Fatalf("Send returned %v after %v", err, time.Since(start))
	}
	// A deadline bounds the conversation: a retryable failure or the
	// context's error, in time.
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := p.Send(ctx, sampleEv); !IsRetryable(err) || time.Since(start) > 2*time.Second {
		t.Fatalf("Send returned %v after %v", err, time.Since(start))
	}
}
