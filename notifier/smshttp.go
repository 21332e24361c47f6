package notifier

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/vantage-dev/vantage/config"
)

// smsHTTP sends one request to an SMS gateway's HTTP API: method, url,
// headers and body rendered from the notifier's templates over
// config.SMSData (the headline, the recipients, a timestamp; the template
// functions of config.SMSFuncs, such as json and hmacSHA256, build
// signed requests). One request carries every recipient. A 2xx answer is
// delivered unless success_match is set and does not match its body (a
// permanent failure); 429, 5xx and network errors are retryable.
type smsHTTP struct {
	base
	urlT    *template.Template
	bodyT   *template.Template // nil: no body
	headers map[string]*template.Template
}

func newSMSHTTP(n config.Notifier, opts Options) (Provider, error) {
	if n.URL == "" {
		return nil, fmt.Errorf("notifier %q (sms_http): url is required", n.Name)
	}
	p := &smsHTTP{base: newBase(n, opts, ""), headers: map[string]*template.Template{}}
	var err error
	if p.urlT, err = config.ParseSMSTemplate("url", n.URL); err != nil {
		return nil, fmt.Errorf("notifier %q (sms_http): url: %v", n.Name, err)
	}
	if n.Body != "" {
		if p.bodyT, err = config.ParseSMSTemplate("body", n.Body); err != nil {
			return nil, fmt.Errorf("notifier %q (sms_http): body: %v", n.Name, err)
		}
	}
	for k, v := range n.Headers {
		if p.headers[http.CanonicalHeaderKey(k)], err = config.ParseSMSTemplate("headers."+k, v); err != nil {
			return nil, fmt.Errorf("notifier %q (sms_http): headers: %s: %v", n.Name, k, err)
		}
	}
	return p, nil
}

// smsData is what an sms_http notifier's templates see for e, sent at now
// by notifier n.
func smsData(n config.Notifier, e Event, now time.Time) config.SMSData {
	return config.SMSData{
		Message: smsText(e), Text: Text(e), From: n.From, To: n.To,
		Action: string(e.Action), Kind: e.Kind, Check: e.Check, Name: name(e), IncidentID: e.IncidentID,
		Severity: e.Severity, Target: e.Target, StatusPageURL: e.StatusPageURL,
		Time: now.UTC(), Timestamp: strconv.FormatInt(now.UnixMilli(), 10),
	}
}

func render(t *template.Template, data config.SMSData) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

func (p *smsHTTP) Send(ctx context.Context, e Event) (Receipt, error) {
	data := smsData(p.cfg, e, time.Now())
	u, err := render(p.urlT, data)
	if err != nil {
		return Receipt{}, &SendError{Body: "url: " + err.Error()}
	}
	h := http.Header{}
	var body []byte
	if p.bodyT != nil {
		b, err := render(p.bodyT, data)
		if err != nil {
			return Receipt{}, &SendError{Body: "body: " + err.Error()}
		}
		body = []byte(b)
		if p.cfg.ContentType != "" {
			h.Set("Content-Type", p.cfg.ContentType)
		}
	}
	for k, t := range p.headers {
		v, err := render(t, data)
		if err != nil {
			return Receipt{}, &SendError{Body: "headers: " + k + ": " + err.Error()}
		}
		h.Set(k, v)
	}
	method := p.cfg.Method
	if method == "" {
		method = http.MethodPost
	}
	r, raw, err := p.exchange(ctx, method, u, body, h)
	if err != nil {
		return r, err
	}
	if re := p.cfg.SuccessMatch; re != nil && !re.Match(raw) {
		return Receipt{}, &SendError{Status: r.Status, Body: "the answer does not match success_match: " + r.Body}
	}
	return r, nil
}
