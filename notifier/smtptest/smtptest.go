// Package smtptest is a small SMTP server on loopback for tests: the one
// the email notifier's tests use, importable by other packages' tests
// (a real server speaking SMTP over TCP, not a mock of net/smtp).
package smtptest

import (
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
	"fmt"
	"math/big"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Cert returns a self-signed certificate for 127.0.0.1 (CN "vantage test
// smtp"), the one a server serves, and a pool trusting it.
func Cert(t testing.TB) (tls.Certificate, *x509.CertPool) {
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

// Msg is what the server received in one transaction.
type Msg struct {
	TLS  bool   // the transaction ran over TLS
	Mech string // the AUTH mechanism that succeeded; "" without AUTH
	User string // the user it authenticated
	From string
	To   []string
	Data []byte
}

// Server is a small SMTP server on loopback written on net/textproto:
// EHLO, STARTTLS, AUTH PLAIN, LOGIN, CRAM-MD5 and XOAUTH2 (checking the
// credentials: user/pass, or user and token for XOAUTH2), MAIL, RCPT, DATA,
// RSET, NOOP, QUIT. Mode is "starttls" (AUTH offered only after STARTTLS,
// as real servers do), "implicit" or "none".
type Server struct {
	Mode  string
	Mechs []string // AUTH mechanisms offered
	User  string
	Pass  string
	Token string
	// RcptCode, when set, is RCPT's answer.
	RcptCode int
	// Hang accepts connections and says nothing.
	Hang bool

	ln       net.Listener
	conf     *tls.Config
	mu       sync.Mutex
	msgs     []Msg
	authFail []string // mechanisms of refused AUTH attempts
	wg       sync.WaitGroup
}

// Start starts a server on 127.0.0.1 in mode; set changes its settings
// before it starts. It returns the pool that trusts its certificate. The
// server stops when the test ends.
func Start(t testing.TB, mode string, set ...func(*Server)) (*Server, *x509.CertPool) {
	t.Helper()
	return StartAt(t, "127.0.0.1", mode, set...)
}

// StartAt is Start on the loopback address ip.
func StartAt(t testing.TB, ip, mode string, set ...func(*Server)) (*Server, *x509.CertPool) {
	t.Helper()
	cert, pool := Cert(t)
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{ln: ln, Mode: mode, conf: &tls.Config{Certificates: []tls.Certificate{cert}},
		Mechs: []string{"PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"}, User: "user", Pass: "pw", Token: "ya29.token"}
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
				if s.Hang {
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

// Addr is the server's HOST:PORT.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Messages are the messages received so far.
func (s *Server) Messages() []Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Msg(nil), s.msgs...)
}

func (s *Server) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	isTLS := s.Mode == "implicit"
	tp := textproto.NewConn(c)
	tp.PrintfLine("220 127.0.0.1 ESMTP test")
	var m Msg
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
			if s.Mode == "starttls" && !isTLS {
				lines = append(lines, "STARTTLS")
			}
			if (isTLS || s.Mode == "none") && len(s.Mechs) > 0 {
				lines = append(lines, "AUTH "+strings.Join(s.Mechs, " "))
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
			if !slices.Contains(s.Mechs, mech) {
				tp.PrintfLine("504 5.5.4 unsupported mechanism")
				continue
			}
			var user string
			ok := false
			switch mech {
			case "PLAIN":
				b, _ := base64.StdEncoding.DecodeString(ir)
				parts := strings.Split(string(b), "\x00")
				ok = len(parts) == 3 && parts[1] == s.User && parts[2] == s.Pass
				if len(parts) == 3 {
					user = parts[1]
				}
			case "LOGIN":
				u, ok1 := challenge("Username:")
				p, ok2 := challenge("Password:")
				user, ok = u, ok1 && ok2 && u == s.User && p == s.Pass
			case "CRAM-MD5":
				ch := fmt.Sprintf("<%d.%d@127.0.0.1>", time.Now().UnixNano(), len(s.msgs))
				resp, ok1 := challenge(ch)
				u, digest, _ := strings.Cut(resp, " ")
				mac := hmac.New(md5.New, []byte(s.Pass))
				mac.Write([]byte(ch))
				user, ok = u, ok1 && u == s.User && digest == hex.EncodeToString(mac.Sum(nil))
			case "XOAUTH2":
				b, _ := base64.StdEncoding.DecodeString(ir)
				fields := strings.Split(string(b), "\x01")
				user = strings.TrimPrefix(fields[0], "user=")
				ok = len(fields) == 4 && user == s.User && fields[1] == "auth=Bearer "+s.Token
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
			if s.RcptCode != 0 {
				tp.PrintfLine("%d %d.1.1 no", s.RcptCode, s.RcptCode/100)
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
			m = Msg{Mech: m.Mech, User: m.User}
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

// AuthFailures are the mechanisms of the refused AUTH attempts so far.
func (s *Server) AuthFailures() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.authFail...)
}
