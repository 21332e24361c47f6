package notifier

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	gomail "github.com/wneessen/go-mail"
	gosmtp "github.com/wneessen/go-mail/smtp"

	"github.com/vantage-dev/vantage/config"
)

// email sends a multipart/alternative (text and HTML) message over SMTP
// with go-mail: STARTTLS (default, required), implicit TLS or no TLS, and
// the notifier's authentication: PLAIN, LOGIN, CRAM-MD5, XOAUTH2, none, or
// by default, when a username is set, the first the server offers of
// go-mail's discovery order (SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5, then
// PLAIN and LOGIN over TLS only). PLAIN and LOGIN are refused over an
// unencrypted connection except to localhost.
type email struct {
	base
	host string
	port int
	mode string
	auth gomail.SMTPAuthType
	tls  *tls.Config
	from *mail.Address
	to   []*mail.Address
}

// emailAuths maps the auth key to go-mail's mechanisms.
var emailAuths = map[string]gomail.SMTPAuthType{
	config.EmailAuthPlain:   gomail.SMTPAuthPlain,
	config.EmailAuthLogin:   gomail.SMTPAuthLogin,
	config.EmailAuthCRAMMD5: gomail.SMTPAuthCramMD5,
	config.EmailAuthXOAUTH2: gomail.SMTPAuthXOAUTH2,
	config.EmailAuthNone:    gomail.SMTPAuthNoAuth,
}

func newEmail(n config.Notifier, opts Options) (Provider, error) {
	host, portStr, err := net.SplitHostPort(n.SMTP)
	if err != nil {
		return nil, fmt.Errorf("notifier %q (email): smtp %q: %v", n.Name, n.SMTP, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("notifier %q (email): smtp %q: bad port", n.Name, n.SMTP)
	}
	mode := n.TLS
	if mode == "" {
		mode = "starttls"
	}
	if mode != "starttls" && mode != "implicit" && mode != "none" {
		return nil, fmt.Errorf("notifier %q (email): tls must be starttls, implicit or none, got %q", n.Name, mode)
	}
	auth := gomail.SMTPAuthNoAuth
	switch {
	case n.Auth != "":
		a, ok := emailAuths[n.Auth]
		if !ok {
			return nil, fmt.Errorf("notifier %q (email): unknown auth %q", n.Name, n.Auth)
		}
		auth = a
	case n.OAuthToken != "":
		auth = gomail.SMTPAuthXOAUTH2
	case n.Username != "":
		auth = gomail.SMTPAuthAutoDiscover
	}
	from, err := mail.ParseAddress(n.From)
	if err != nil {
		return nil, fmt.Errorf("notifier %q (email): from %q: %v", n.Name, n.From, err)
	}
	var to []*mail.Address
	for _, t := range n.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return nil, fmt.Errorf("notifier %q (email): to %q: %v", n.Name, t, err)
		}
		to = append(to, a)
	}
	var tc *tls.Config
	if opts.TLSConfig != nil {
		tc = opts.TLSConfig.Clone()
	} else {
		tc = &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12}
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	return &email{base: newBase(n, opts, ""), host: host, port: port, mode: mode, auth: auth, tls: tc, from: from, to: to}, nil
}

// Authentication preferences when the notifier names no mechanism, as
// go-mail's discovery has them: PLAIN and LOGIN only over TLS.
var (
	authPrefsTLS = []gomail.SMTPAuthType{gomail.SMTPAuthSCRAMSHA256PLUS, gomail.SMTPAuthSCRAMSHA256,
		gomail.SMTPAuthSCRAMSHA1PLUS, gomail.SMTPAuthSCRAMSHA1, gomail.SMTPAuthCramMD5, gomail.SMTPAuthPlain, gomail.SMTPAuthLogin}
	authPrefsClear = []gomail.SMTPAuthType{gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1, gomail.SMTPAuthCramMD5}
)

// client is a go-mail client for one delivery, dialling through dial.
func (m *email) client(timeout time.Duration, dial gomail.DialContextFunc) (*gomail.Client, error) {
	helo, _ := os.Hostname()
	if helo == "" {
		helo = "localhost"
	}
	opts := []gomail.Option{
		gomail.WithPort(m.port), gomail.WithTimeout(timeout), gomail.WithTLSConfig(m.tls),
		gomail.WithHELO(helo), gomail.WithDialContextFunc(dial),
	}
	// Implicit TLS is the dialler's: go-mail only ever sees a TLS
	// connection.
	if m.mode == "starttls" {
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	} else {
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	switch m.auth {
	case gomail.SMTPAuthNoAuth:
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthNoAuth))
	case gomail.SMTPAuthAutoDiscover:
		prefs := authPrefsTLS
		if m.mode == "none" {
			prefs = authPrefsClear
		}
		opts = append(opts, gomail.WithOpportunisticSMTPAuth(prefs...),
			gomail.WithUsername(m.cfg.Username), gomail.WithPassword(m.cfg.Password))
	case gomail.SMTPAuthXOAUTH2:
		opts = append(opts, gomail.WithSMTPAuth(m.auth),
			gomail.WithUsername(m.cfg.Username), gomail.WithPassword(m.cfg.OAuthToken))
	default:
		opts = append(opts, gomail.WithSMTPAuth(m.auth),
			gomail.WithUsername(m.cfg.Username), gomail.WithPassword(m.cfg.Password))
	}
	return gomail.NewClient(m.host, opts...)
}

// smtpDialer dials the server for one delivery, doing the TLS handshake
// itself in implicit mode, and keeps the connection so that it can be
// closed whatever go-mail left open.
type smtpDialer struct {
	tls      *tls.Config // nil: no implicit TLS
	mu       sync.Mutex
	conns    []net.Conn
	isClosed bool
}

func (d *smtpDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.conns = append(d.conns, c)
	closed := d.isClosed
	d.mu.Unlock()
	if closed {
		c.Close()
		return nil, net.ErrClosed
	}
	if d.tls == nil {
		return c, nil
	}
	tc := tls.Client(c, d.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

func (d *smtpDialer) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.isClosed = true
	for _, c := range d.conns {
		c.Close()
	}
}

// Send delivers one message within ctx: when ctx ends first, the
// connection is closed under go-mail's feet. The conversation's deadline
// is ctx's, at most 30 s.
func (m *email) Send(ctx context.Context, e Event) (Receipt, error) {
	msg, err := m.message(e, time.Now())
	if err != nil {
		return Receipt{}, &SendError{Body: err.Error()}
	}
	return m.deliver(ctx, msg, len(m.to))
}

// deliver sends one message (to recipients addresses) within ctx, as Send
// does.
func (m *email) deliver(ctx context.Context, msg *gomail.Msg, recipients int) (Receipt, error) {
	timeout := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d < timeout {
			timeout = max(d, time.Millisecond)
		}
	}
	d := &smtpDialer{}
	if m.mode == "implicit" {
		d.tls = m.tls
	}
	defer d.close()
	c, err := m.client(timeout, d.dial)
	if err != nil {
		return Receipt{}, &SendError{Body: err.Error()}
	}
	done := make(chan error, 1)
	go func() { done <- c.DialAndSendWithContext(ctx, msg) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		d.close()
		<-done
		return Receipt{}, ctx.Err()
	}
	if err != nil {
		if ctx.Err() != nil {
			return Receipt{}, ctx.Err()
		}
		return Receipt{}, smtpError(err)
	}
	// The answer to the end of DATA is 250; go-mail keeps its text.
	text := msg.ServerResponse()
	if text == "" {
		text = fmt.Sprintf("accepted for %d recipient(s)", recipients)
	}
	return Receipt{Status: 250, Body: shorten(text)}, nil
}

// smtpError classifies an SMTP failure: 4xx replies and network errors are
// retryable; 5xx replies, certificate problems and configuration problems
// (no STARTTLS offered, the mechanism not offered, PLAIN or LOGIN refused
// without TLS) are permanent. Anything else is taken as transient.
func smtpError(err error) error {
	msg := err.Error()
	var te *textproto.Error
	if errors.As(err, &te) {
		return &SendError{Status: te.Code, Retryable: te.Code >= 400 && te.Code < 500, Body: msg}
	}
	var se *gomail.SendError
	if errors.As(err, &se) {
		code := se.ErrorCode()
		switch {
		case code >= 400 && code < 500:
			return &SendError{Status: code, Retryable: true, Body: msg}
		case code >= 500:
			return &SendError{Status: code, Body: msg}
		case se.Reason == gomail.ErrGetSender || se.Reason == gomail.ErrGetRcpts || se.Reason == gomail.ErrNoUnencoded:
			return &SendError{Body: msg}
		}
		return &SendError{Retryable: true, Body: msg}
	}
	var (
		cv  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		ne  net.Error
		alt tls.AlertError
	)
	switch {
	case errors.As(err, &cv), errors.As(err, &ua), errors.As(err, &he), errors.As(err, &ci), errors.As(err, &alt):
		return &SendError{Body: msg}
	case errors.Is(err, gosmtp.ErrUnencrypted), errors.Is(err, gosmtp.ErrWrongHostname),
		errors.Is(err, gomail.ErrNoSupportedAuthDiscovered), errors.Is(err, gomail.ErrPlainAuthNotSupported),
		errors.Is(err, gomail.ErrLoginAuthNotSupported), errors.Is(err, gomail.ErrCramMD5AuthNotSupported),
		errors.Is(err, gomail.ErrXOauth2AuthNotSupported),
		strings.Contains(msg, "does not support STARTTLS"), strings.Contains(msg, "does not support SMTP AUTH"):
		return &SendError{Body: msg}
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE):
		return &SendError{Retryable: true, Body: msg}
	}
	return &SendError{Retryable: true, Body: msg}
}

var emailHTML = template.Must(template.New("email").Parse(`<!DOCTYPE html>
<html><body style="font-family:sans-serif">
<h2 style="color:{{.Color}}">{{.Headline}}</h2>
<table cellpadding="4">
{{- range .Fields}}
<tr><th align="left">{{.Name}}</th><td>{{.Value}}</td></tr>
{{- end}}
</table>
{{- if .Regions}}
<h3>Regions</h3>
<table cellpadding="4">
{{- range .Regions}}
<tr><th align="left">{{.Name}}</th><td>{{.Value}}</td></tr>
{{- end}}
</table>
{{- end}}
{{- if .Checks}}
<h3>Checks</h3>
<ul>
{{- range .Checks}}
<li>{{.}}</li>
{{- end}}
</ul>
{{- end}}
{{- if .Link}}
<p><a href="{{.Link}}">Status page</a></p>
{{- end}}
</body></html>
`))

// messageID is the Message-ID (without brackets) of e's notification with
// key: the same on every attempt and node, so that a server or client
// that sees it twice can tell; a resolve or reminder refers to its
// trigger's.
func messageID(incident, key string) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r) {
				return r
			}
			return '_'
		}, s)
	}
	return clean(incident) + "." + clean(key) + "@vantage"
}

// message builds the message for e.
func (m *email) message(e Event, now time.Time) (*gomail.Msg, error) {
	if e.Kind == KindReport {
		return m.reportMessage(e, now) // report.go
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(m.from)
	msg.ToMailAddress(m.to...)
	msg.Subject(headerSanitizer.Replace(Headline(e)))
	msg.SetDateWithValue(now)
	msg.SetUserAgent(m.opts.UserAgent)
	id := e.IncidentID
	if id == "" {
		id = strconv.FormatInt(now.UnixNano(), 10)
	}
	msg.SetMessageIDWithValue(messageID(id, e.Key()))
	if e.Action == ActionResolve || e.Action == ActionRepeat || e.Action == ActionUpdate {
		first := "<" + messageID(id, string(ActionTrigger)) + ">"
		if e.Test {
			first = "<" + messageID(id, string(ActionTest)) + ">"
		}
		msg.SetGenHeader(gomail.HeaderInReplyTo, first)
		msg.SetGenHeader(gomail.HeaderReferences, first)
	}
	msg.SetGenHeader("X-Vantage-Incident", headerSanitizer.Replace(id))
	msg.SetBodyString(gomail.TypeTextPlain, Text(e))

	type kv struct{ Name, Value string }
	data := struct {
		Headline, Color, Link string
		Fields, Regions       []kv
		Checks                []string // a grouped page's
	}{Headline: Headline(e), Link: e.StatusPageURL, Color: fmt.Sprintf("#%06X", eventColor(e)), Checks: memberLines(e)}
	for _, f := range fields(e) {
		data.Fields = append(data.Fields, kv{f.Name, f.Value})
	}
	for _, name := range sortedRegions(e.Regions) {
		data.Regions = append(data.Regions, kv{name, regionDetail(e.Regions[name])})
	}
	var html strings.Builder
	if err := emailHTML.Execute(&html, data); err != nil {
		return nil, err
	}
	msg.AddAlternativeString(gomail.TypeTextHTML, html.String())
	return msg, nil
}

var headerSanitizer = strings.NewReplacer("\r", " ", "\n", " ")
