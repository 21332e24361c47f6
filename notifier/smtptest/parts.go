package smtptest

import (
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
)

// readMultipart reads data as a mail whose Content-Type is the multipart
// type want and calls part with each part and its body, as multipart.Reader
// gives it (quoted-printable decoded, its header dropped).
func readMultipart(t testing.TB, data []byte, want string, part func(p *multipart.Part, body []byte)) *mail.Message {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != want {
		t.Fatalf("Content-Type %q (%v)", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		part(p, b)
	}
	return msg
}

// Alternative returns a multipart/alternative message's header and its
// decoded text and HTML parts; a part whose charset is not UTF-8 is an
// error of the test.
func Alternative(t testing.TB, data []byte) (msg *mail.Message, text, html string) {
	t.Helper()
	got := map[string]string{}
	msg = readMultipart(t, data, "multipart/alternative", func(p *multipart.Part, b []byte) {
		ct, params, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if !strings.EqualFold(params["charset"], "utf-8") {
			t.Errorf("part %s: charset %q", ct, params["charset"])
		}
		got[ct] = string(b)
	})
	return msg, got["text/plain"], got["text/html"]
}

// Mixed returns a multipart/mixed message's header, its text body and its
// attachments by file name, base64 decoded.
func Mixed(t testing.TB, data []byte) (msg *mail.Message, text string, files map[string]string) {
	t.Helper()
	files = map[string]string{}
	msg = readMultipart(t, data, "multipart/mixed", func(p *multipart.Part, b []byte) {
		if p.Header.Get("Content-Transfer-Encoding") == "base64" {
			dec, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(b)), ""))
			if err != nil {
				t.Fatal(err)
			}
			b = dec
		}
		if name := p.FileName(); name != "" {
			files[name] = string(b)
		} else {
			text = string(b)
		}
	})
	return msg, text, files
}
