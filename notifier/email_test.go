package notifier

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"net/textproto"
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
	Auth string // decoded AUTH PLAIN credentials
	From string
	To   []string
	Data []byte
}

// smtpServer is a minimal SMTP server on 127.0.0.1: EHLO, STARTTLS, AUTH
// PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT. mode is "starttls",
// "implicit" or "none".
type smtpServer struct {
	ln       net.Listener
	conf     *tls.Config
	mode     string
	rcptCode int // when set, RCPT answers this code
	mu       sync.Mutex
	msgs     []smtpMsg
	wg       sync.WaitGroup
}

func newSMTPServer(t *testing.T, mode string) (*smtpServer, *x509.CertPool) {
	t.Helper()
	cert, pool := testCert(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln, mode: mode, conf: &tls.Config{Certificates: []tls.Certificate{cert}}}
	if mode == "implicit" {
		s.ln = tls.NewListener(ln, s.conf)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.serve(c) }()
		}
	}()
	t.Cleanup(func() { s.ln.Close(); s.wg.Wait() })
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
			lines = append(lines, "AUTH PLAIN", "8BITMIME")
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
			if mech != "PLAIN" {
				tp.PrintfLine("504 unsupported")
				continue
			}
			b, _ := base64.StdEncoding.DecodeString(ir)
			m.Auth = string(b)
			tp.PrintfLine("235 authenticated")
		case "MAIL":
			m.From, m.To, m.TLS = strings.Trim(strings.TrimPrefix(arg, "FROM:"), "<>"), nil, isTLS
			if i := strings.Index(m.From, ">"); i >= 0 {
				m.From = m.From[:i]
			}
			tp.PrintfLine("250 ok")
		case "RCPT":
			if s.rcptCode != 0 {
				tp.PrintfLine("%d no", s.rcptCode)
				continue
			}
			m.To = append(m.To, strings.Trim(strings.TrimPrefix(arg, "TO:"), "<>"))
			tp.PrintfLine("250 ok")
		case "DATA":
			tp.PrintfLine("354 go on")
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			m.Data = data
			s.mu.Lock()
			s.msgs = append(s.msgs, m)
			s.mu.Unlock()
			m = smtpMsg{Auth: m.Auth}
			tp.PrintfLine("250 queued")
		case "RSET", "NOOP":
			tp.PrintfLine("250 ok")
		case "QUIT":
			tp.PrintfLine("221 bye")
			return
		default:
			tp.PrintfLine("502 unknown command")
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
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		got[ct] = string(b)
	}
	return msg, got["text/plain"], got["text/html"]
}

func TestEmail(t *testing.T) {
	for _, mode := range []string{"starttls", "implicit", "none"} {
		t.Run(mode, func(t *testing.T) {
			srv, pool := newSMTPServer(t, mode)
			n := config.Notifier{Name: "mail", Type: "email", SMTP: srv.addr(), TLS: mode,
				From: "Vantage <alerts@example.com>", To: []string{"oncall@example.com", "Ops <ops@example.com>"}}
			if mode != "none" {
				n.Username, n.Password = "user", "pw"
			}
			p, err := New(n, Options{RootCAs: pool})
			if err != nil {
				t.Fatal(err)
			}
			r := send(t, p, sampleEv)
			if r.Status != 250 {
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
			if wantAuth := map[bool]string{true: "\x00user\x00pw", false: ""}[mode != "none"]; m.Auth != wantAuth {
				t.Fatalf("auth %q, want %q", m.Auth, wantAuth)
			}
			if m.From != "alerts@example.com" || strings.Join(m.To, ",") != "oncall@example.com,ops@example.com" {
				t.Fatalf("envelope %q -> %q", m.From, m.To)
			}
			msg, text, html := parts(t, m.Data)
			dec := new(mime.WordDecoder)
			subj, _ := dec.DecodeHeader(msg.Header.Get("Subject"))
			if subj != sampleSummary {
				t.Fatalf("Subject %q", subj)
			}
			if msg.Header.Get("From") != `"Vantage" <alerts@example.com>` ||
				msg.Header.Get("To") != `<oncall@example.com>, "Ops" <ops@example.com>` {
				t.Fatalf("From %q To %q", msg.Header.Get("From"), msg.Header.Get("To"))
			}
			if got := strings.ReplaceAll(text, "\r\n", "\n"); got != sampleText {
				t.Fatalf("text part:\n%q\nwant\n%q", got, sampleText)
			}
			for _, want := range []string{"<h2", sampleSummary, "connect_timeout (10000 ms)", `href="https://status.example.com/"`} {
				if !strings.Contains(html, want) {
					t.Fatalf("html part lacks %q:\n%s", want, html)
				}
			}
		})
	}
}

func TestEmailErrors(t *testing.T) {
	// A server without STARTTLS is refused permanently in starttls mode.
	srv, pool := newSMTPServer(t, "none")
	n := config.Notifier{Name: "mail", Type: "email", SMTP: srv.addr(), TLS: "starttls", From: "a@example.com", To: []string{"b@example.com"}}
	p, _ := New(n, Options{RootCAs: pool})
	_, err := p.Send(context.Background(), sampleEv)
	if err == nil || IsRetryable(err) {
		t.Fatalf("no STARTTLS: %v", err)
	}
	// An untrusted certificate is permanent too.
	srv2, _ := newSMTPServer(t, "implicit")
	n.SMTP, n.TLS = srv2.addr(), "implicit"
	p, _ = New(n, Options{})
	if _, err := p.Send(context.Background(), sampleEv); err == nil || IsRetryable(err) {
		t.Fatalf("untrusted cert: %v", err)
	}
	// 4xx replies are retryable, 5xx permanent.
	for code, retry := range map[int]bool{451: true, 550: false} {
		srv3, pool3 := newSMTPServer(t, "none")
		srv3.rcptCode = code
		n.SMTP, n.TLS = srv3.addr(), "none"
		p, _ = New(n, Options{RootCAs: pool3})
		_, err := p.Send(context.Background(), sampleEv)
		var se *SendError
		if !errors.As(err, &se) || se.Status != code || se.Retryable != retry {
			t.Fatalf("RCPT %d: %#v", code, err)
		}
	}
	// Nobody listening: retryable.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	n.SMTP = ln.Addr().String()
	ln.Close()
	p, _ = New(n, Options{})
	if _, err := p.Send(context.Background(), sampleEv); !IsRetryable(err) {
		t.Fatalf("connection refused: %v", err)
	}
}
