package notifier

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
)

// testCert returns a server certificate for 127.0.0.1 and a pool trusting it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "vantage test smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// smtpMsg is what the test SMTP server received in one transaction.
type smtpMsg struct {
	TLS  bool   // the transaction ran over TLS
	Mech string // the AUTH mechanism that succeeded; "" without AUTH
	User string // the user it authenticated
	From string
	To   []string
	Data []byte
}

// smtpServer is a small SMTP server on 127.0.0.1 written on net/textproto:
// EHLO, STARTTLS, AUTH PLAIN, LOGIN, CRAM-MD5 and XOAUTH2 (checking the
// credentials: user/pass, or user and token for XOAUTH2), MAIL, RCPT, DATA,
// RSET, NOOP, QUIT. mode is "starttls" (AUTH offered only after STARTTLS,
// as real servers do), "implicit" or "none".
type smtpServer struct {
	ln       net.Listener
	conf     *tls.Config
	mode     string
	mechs    []string // AUTH mechanisms offered
	user     string
	pass     string
	token    string
	rcptCode int  // when set, RCPT answers this code
	hang     bool // accept connections and say nothing
	mu       sync.Mutex
	msgs     []smtpMsg
	authFail []string // mechanisms of refused AUTH attempts
	wg       sync.WaitGroup
}

// newSMTPServer starts a server on 127.0.0.1; set changes its settings
// before it starts.
func newSMTPServer(t *testing.T, mode string, set ...func(*smtpServer)) (*smtpServer, *x509.CertPool) {
	t.Helper()
	return newSMTPServerAt(t, "127.0.0.1", mode, set...)
}

func newSMTPServerAt(t *testing.T, ip, mode string, set ...func(*smtpServer)) (*smtpServer, *x509.CertPool) {
	t.Helper()
	cert, pool := testCert(t)
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln, mode: mode, conf: &tls.Config{Certificates: []tls.Certificate{cert}},
		mechs: []string{"PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"}, user: "user", pass: "pw", token: "ya29.token"}
	for _, f := range set {
		f(s)
	}
	if mode == "implicit" {
		s.ln = tls.NewListener(ln, s.conf)
	}
	stop := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				if s.hang {
					select {
					case <-stop:
					case <-time.After(10 * time.Second):
					}
					c.Close()
					return
				}
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { close(stop); s.ln.Close(); s.wg.Wait() })
	return s, pool
}

func (s *smtpServer) addr() string { return s.ln.Addr().String() }

func (s *smtpServer) messages() []smtpMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpMsg(nil), s.msgs...)
}

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	isTLS := s.mode == "implicit"
	tp := textproto.NewConn(c)
	tp.PrintfLine("220 127.0.0.1 ESMTP test")
	var m smtpMsg
	// challenge sends a 334 challenge and reads the base64 answer.
	challenge := func(text string) (string, bool) {
		tp.PrintfLine("334 %s", base64.StdEncoding.EncodeToString([]byte(text)))
		line, err := tp.ReadLine()
		if err != nil {
			return "", false
		}
		b, err := base64.StdEncoding.DecodeString(line)
		return string(b), err == nil
	}
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			lines := []string{"127.0.0.1 hello"}
			if s.mode == "starttls" && !isTLS {
				lines = append(lines, "STARTTLS")
			}
			if (isTLS || s.mode == "none") && len(s.mechs) > 0 {
				lines = append(lines, "AUTH "+strings.Join(s.mechs, " "))
			}
			lines = append(lines, "8BITMIME", "ENHANCEDSTATUSCODES")
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				tp.PrintfLine("250%s%s", sep, l)
			}
		case "STARTTLS":
			tp.PrintfLine("220 go ahead")
			tc := tls.Server(c, s.conf)
			if err := tc.Handshake(); err != nil {
				return
			}
			c, isTLS = tc, true
			tp = textproto.NewConn(tc)
		case "AUTH":
			mech, ir, _ := strings.Cut(arg, " ")
			mech = strings.ToUpper(mech)
			if !slices.Contains(s.mechs, mech) {
				tp.PrintfLine("504 5.5.4 unsupported mechanism")
				continue
			}
			var user string
			ok := false
			switch mech {
			case "PLAIN":
				b, _ := base64.StdEncoding.DecodeString(ir)
				parts := strings.Split(string(b), "\x00")
				ok = len(parts) == 3 && parts[1] == s.user && parts[2] == s.pass
				if len(parts) == 3 {
					user = parts[1]
				}
			case "LOGIN":
				u, ok1 := challenge("Username:")
				p, ok2 := challenge("Password:")
				user, ok = u, ok1 && ok2 && u == s.user && p == s.pass
			case "CRAM-MD5":
				ch := fmt.Sprintf("<%d.%d@127.0.0.1>", time.Now().UnixNano(), len(s.msgs))
				resp, ok1 := challenge(ch)
				u, digest, _ := strings.Cut(resp, " ")
				mac := hmac.New(md5.New, []byte(s.pass))
				mac.Write([]byte(ch))
				user, ok = u, ok1 && u == s.user && digest == hex.EncodeToString(mac.Sum(nil))
			case "XOAUTH2":
				b, _ := base64.StdEncoding.DecodeString(ir)
				fields := strings.Split(string(b), "\x01")
				user = strings.TrimPrefix(fields[0], "user=")
				ok = len(fields) == 4 && user == s.user && fields[1] == "auth=Bearer "+s.token
				if !ok {
					// RFC 7628: an error challenge, answered with an empty line.
					challenge(`{"status":"401","schemes":"bearer"}`)
				}
			}
			if !ok {
				s.mu.Lock()
				s.authFail = append(s.authFail, mech)
				s.mu.Unlock()
				tp.PrintfLine("535 5.7.8 authentication credentials invalid")
				continue
			}
			m.Mech, m.User = mech, user
			tp.PrintfLine("235 2.7.0 authenticated")
		case "MAIL":
			m.From, m.To, m.TLS = strings.Trim(strings.TrimPrefix(arg, "FROM:"), "<>"), nil, isTLS
			if i := strings.Index(m.From, ">"); i >= 0 {
				m.From = m.From[:i]
			}
			tp.PrintfLine("250 2.1.0 ok")
		case "RCPT":
			if s.rcptCode != 0 {
				tp.PrintfLine("%d %d.1.1 no", s.rcptCode, s.rcptCode/100)
				continue
			}
			to := strings.Trim(strings.TrimPrefix(arg, "TO:"), "<>")
			if i := strings.Index(to, ">"); i >= 0 {
				to = to[:i]
			}
			m.To = append(m.To, to)
			tp.PrintfLine("250 2.1.5 ok")
		case "DATA":
			tp.PrintfLine("354 go on")
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			m.Data = data
			s.mu.Lock()
			s.msgs = append(s.msgs, m)
			n := len(s.msgs)
			s.mu.Unlock()
			m = smtpMsg{Mech: m.Mech, User: m.User}
			tp.PrintfLine("250 2.0.0 queued as Q%d", n)
		case "RSET", "NOOP":
			tp.PrintfLine("250 2.0.0 ok")
		case "QUIT":
			tp.PrintfLine("221 2.0.0 bye")
			return
		default:
			tp.PrintfLine("502 5.5.2 unknown command")
		}
	}
}

// parts returns the decoded text and HTML parts of a multipart/alternative message.
func parts(t *testing.T, data []byte) (*mail.Message, string, string) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q (%v)", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	got := map[string]string{}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		// multipart.Reader decodes quoted-printable itself and drops the header.
		b, _ := io.ReadAll(p)
		ct, params, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if !strings.EqualFold(params["charset"], "utf-8") {
			t.Errorf("part %s: charset %q", ct, params["charset"])
		}
		got[ct] = string(b)
	}
	return msg, got["text/plain"], got["text/html"]
}

func emailNotifier(srv *smtpServer, mode string) config.Notifier {
	return config.Notifier{Name: "mail", Type: "email", SMTP: srv.addr(), TLS: mode,
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
			srv, pool := newSMTPServer(t, mode)
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
			msgs := srv.messages()
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
			msg, text, html := parts(t, m.Data)
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
			srv, pool := newSMTPServer(t, tc.mode, func(s *smtpServer) {
				if tc.offered != nil {
					s.mechs = tc.offered
				}
			})
			n := emailNotifier(srv, tc.mode)
			n.Auth, n.Username, n.Password = tc.auth, "user", "pw"
			if tc.auth == "xoauth2" {
				n.Password, n.OAuthToken = "", "ya29.token"
			}
			send(t, mustNewOpts(t, n, Options{RootCAs: pool}), sampleEv)
			if m := srv.messages(); len(m) != 1 || m[0].Mech != tc.mech || m[0].User != "user" || m[0].TLS != (tc.mode != "none") {
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
	srv, pool := newSMTPServer(t, "implicit")
	n := emailNotifier(srv, "implicit")
	n.Auth, n.Username, n.Password = "login", "user", "pw"
	p := mustNewOpts(t, n, Options{RootCAs: pool})
	e := sampleEv
	e.DisplayName = "결제 서비스"
	send(t, p, e)
	send(t, p, resolved(e))
	msgs := srv.messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	trigger, text, html := parts(t, msgs[0].Data)
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
	resolve, _, _ := parts(t, msgs[1].Data)
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
	srv, pool := newSMTPServer(t, "none")
	n := config.Notifier{Name: "mail", Type: "email", SMTP: srv.addr(), TLS: "starttls", From: "a@example.com", To: []string{"b@example.com"}}
	_, err := mustNewOpts(t, n, Options{RootCAs: pool}).Send(context.Background(), sampleEv)
	permanent(t, "no STARTTLS", err)
	// An untrusted certificate is permanent too, with STARTTLS and implicit TLS.
	for _, mode := range []string{"starttls", "implicit"} {
		srv, _ := newSMTPServer(t, mode)
		n.SMTP, n.TLS = srv.addr(), mode
		_, err = mustNewOpts(t, n, Options{}).Send(context.Background(), sampleEv)
		permanent(t, "untrusted cert, "+mode, err)
	}
	// Wrong credentials (535), a mechanism the server does not offer, and
	// PLAIN without TLS to a host that is not localhost: permanent.
	srv, pool = newSMTPServer(t, "starttls")
	n.SMTP, n.TLS, n.Auth, n.Username, n.Password = srv.addr(), "starttls", "plain", "user", "wrong"
	_, err = mustNewOpts(t, n, Options{RootCAs: pool}).Send(context.Background(), sampleEv)
	permanent(t, "wrong password", err)
	var se *SendError
	if !errors.As(err, &se) || se.Status != 535 {
		t.Fatalf("wrong password: %#v", err)
	}
	srv, pool = newSMTPServer(t, "starttls", func(s *smtpServer) { s.mechs = []string{"PLAIN"} })
	n.SMTP, n.Auth, n.Password = srv.addr(), "cram-md5", "pw"
	_, err = mustNewOpts(t, n, Options{RootCAs: pool}).Send(context.Background(), sampleEv)
	permanent(t, "mechanism not offered", err)
	// Without auth and without TLS, PLAIN is not taken.
	none, _ := newSMTPServer(t, "none", func(s *smtpServer) { s.mechs = []string{"PLAIN", "LOGIN"} })
	n2 := emailNotifier(none, "none")
	n2.Username, n2.Password = "user", "pw"
	_, err = mustNewOpts(t, n2, Options{}).Send(context.Background(), sampleEv)
	permanent(t, "only PLAIN or LOGIN without TLS", err)
	if got := len(srv.messages()) + len(none.messages()); got != 0 {
		t.Fatalf("%d messages sent without authenticating", got)
	}
	// 127.0.0.2 is not "localhost" to PLAIN: it refuses to send the
	// password in clear text.
	clear, _ := newSMTPServerAt(t, "127.0.0.2", "none")
	n.SMTP, n.TLS, n.Auth = clear.addr(), "none", "plain"
	_, err = mustNewOpts(t, n, Options{}).Send(context.Background(), sampleEv)
	permanent(t, "PLAIN in clear text", err)
	clear.mu.Lock()
	fails := clear.authFail
	clear.mu.Unlock()
	if len(clear.messages()) != 0 || fails != nil {
		t.Fatal("PLAIN credentials went out in clear text")
	}
	// 4xx replies are retryable, 5xx permanent.
	for code, retry := range map[int]bool{451: true, 550: false} {
		srv, pool := newSMTPServer(t, "none", func(s *smtpServer) { s.rcptCode = code })
		n := config.Notifier{Name: "mail", Type: "email", SMTP: srv.addr(), TLS: "none", From: "a@example.com", To: []string{"b@example.com"}}
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
	srv, _ := newSMTPServer(t, "none", func(s *smtpServer) { s.hang = true })
	n := config.Notifier{Name: "mail", Type: "email", SMTP: srv.addr(), TLS: "none", From: "a@example.com", To: []string{"b@example.com"}}
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
