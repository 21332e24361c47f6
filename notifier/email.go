package notifier

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/vantage-dev/vantage/config"
)

// email sends a multipart/alternative (text and HTML) message over SMTP with
// STARTTLS (default), implicit TLS or no TLS, and PLAIN auth when a username
// is set (net/smtp refuses PLAIN over an unencrypted connection except to
// localhost).
type email struct {
	base
	host string
	mode string
	tls  *tls.Config
	from *mail.Address
	to   []*mail.Address
}

func newEmail(n config.Notifier, opts Options) (Provider, error) {
	host, _, err := net.SplitHostPort(n.SMTP)
	if err != nil {
		return nil, fmt.Errorf("notifier %q (email): smtp %q: %v", n.Name, n.SMTP, err)
	}
	mode := n.TLS
	if mode == "" {
		mode = "starttls"
	}
	if mode != "starttls" && mode != "implicit" && mode != "none" {
		return nil, fmt.Errorf("notifier %q (email): tls must be starttls, implicit or none, got %q", n.Name, mode)
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
	return &email{base: newBase(n, opts, ""), host: host, mode: mode, tls: tc, from: from, to: to}, nil
}

// smtpError classifies an SMTP failure: 4xx replies and network errors are
// retryable; 5xx replies and TLS certificate problems are permanent.
func smtpError(step string, err error) error {
	if err == nil {
		return nil
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return &SendError{Status: te.Code, Retryable: te.Code >= 400 && te.Code < 500, Body: step + ": " + te.Msg}
	}
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return &SendError{Body: step + ": " + err.Error()}
	}
	return &SendError{Retryable: true, Body: step + ": " + err.Error()}
}

func (m *email) Send(ctx context.Context, e Event) (Receipt, error) {
	msg, err := m.message(e, time.Now())
	if err != nil {
		return Receipt{}, &SendError{Body: err.Error()}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.cfg.SMTP)
	if err != nil {
		if ctx.Err() != nil {
			return Receipt{}, ctx.Err()
		}
		return Receipt{}, smtpError("dial", err)
	}
	defer conn.Close()
	// Abort a hung conversation when ctx ends.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if m.mode == "implicit" {
		tc := tls.Client(conn, m.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return Receipt{}, smtpError("tls", err)
		}
		conn = tc
	}
	r, err := m.converse(conn, msg)
	if err != nil && ctx.Err() != nil {
		return Receipt{}, ctx.Err()
	}
	return r, err
}

func (m *email) converse(conn net.Conn, msg []byte) (Receipt, error) {
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		return Receipt{}, smtpError("greeting", err)
	}
	defer c.Close()
	name, _ := os.Hostname()
	if name == "" {
		name = "localhost"
	}
	if err := c.Hello(name); err != nil {
		return Receipt{}, smtpError("EHLO", err)
	}
	if m.mode == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return Receipt{}, &SendError{Body: "STARTTLS: the server does not offer STARTTLS"}
		}
		if err := c.StartTLS(m.tls); err != nil {
			return Receipt{}, smtpError("STARTTLS", err)
		}
	}
	if m.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.cfg.Username, m.cfg.Password, m.host)); err != nil {
			var te *textproto.Error
			if errors.As(err, &te) {
				return Receipt{}, smtpError("AUTH", err)
			}
			// net/smtp's own refusals (no TLS, no PLAIN) are configuration errors.
			return Receipt{}, &SendError{Body: "AUTH: " + err.Error()}
		}
	}
	if err := c.Mail(m.from.Address); err != nil {
		return Receipt{}, smtpError("MAIL FROM", err)
	}
	for _, t := range m.to {
		if err := c.Rcpt(t.Address); err != nil {
			return Receipt{}, smtpError("RCPT TO "+t.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return Receipt{}, smtpError("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return Receipt{}, smtpError("DATA", err)
	}
	if err := w.Close(); err != nil {
		return Receipt{}, smtpError("DATA", err)
	}
	_ = c.Quit()
	return Receipt{Status: 250, Body: fmt.Sprintf("accepted for %d recipient(s)", len(m.to))}, nil
}

var headerSanitizer = strings.NewReplacer("\r", " ", "\n", " ")

var emailHTML = template.Must(template.New("email").Parse(`<!DOCTYPE html>
<html><body style="font-family:sans-serif">
<h2 style="color:{{.Color}}">{{.Summary}}</h2>
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
{{- if .Link}}
<p><a href="{{.Link}}">Status page</a></p>
{{- end}}
</body></html>
`))

// message renders the RFC 5322 message for e.
func (m *email) message(e Event, now time.Time) ([]byte, error) {
	var b bytes.Buffer
	to := make([]string, len(m.to))
	for i, a := range m.to {
		to[i] = a.String()
	}
	summary := headerSanitizer.Replace(Summary(e))
	id := headerSanitizer.Replace(e.IncidentID)
	if id == "" {
		id = fmt.Sprintf("%d", now.UnixNano())
	}
	mw := multipart.NewWriter(&b)
	hdr := []string{
		"From: " + m.from.String(),
		"To: " + strings.Join(to, ", "),
		"Subject: " + mime.QEncoding.Encode("utf-8", summary),
		"Date: " + now.Format(time.RFC1123Z),
		fmt.Sprintf("Message-ID: <%s.%s@vantage>", strings.ReplaceAll(id, " ", "_"), e.Action),
		"MIME-Version: 1.0",
		"Content-Type: multipart/alternative; boundary=\"" + mw.Boundary() + "\"",
		"X-Vantage-Incident: " + id,
	}
	b.Reset()
	b.WriteString(strings.Join(hdr, "\r\n") + "\r\n\r\n")

	part := func(ctype string, write func(io.Writer) error) error {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {ctype + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return err
		}
		qp := quotedprintable.NewWriter(pw)
		if err := write(qp); err != nil {
			return err
		}
		return qp.Close()
	}
	if err := part("text/plain", func(w io.Writer) error {
		_, err := io.WriteString(w, Text(e))
		return err
	}); err != nil {
		return nil, err
	}
	type kv struct{ Name, Value string }
	data := struct {
		Summary, Color, Link string
		Fields, Regions      []kv
	}{Summary: Summary(e), Link: e.StatusPageURL, Color: fmt.Sprintf("#%06X", eventColor(e))}
	for _, f := range fields(e) {
		data.Fields = append(data.Fields, kv{f.Name, f.Value})
	}
	for _, name := range sortedRegions(e.Regions) {
		data.Regions = append(data.Regions, kv{name, regionDetail(e.Regions[name])})
	}
	if err := part("text/html", func(w io.Writer) error { return emailHTML.Execute(w, data) }); err != nil {
		return nil, err
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
