package notifier

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
)

const (
	twilioSID   = "AC0123456789abcdef0123456789abcdef"
	twilioToken = "tw-token"
)

// twilioServer answers Twilio's Messages and Calls resources: 201 with a
// sid, or what answer says for a number.
func twilioServer(t *testing.T, answer func(to string, n int) int) *recorder {
	var mu sync.Mutex
	seen := map[string]int{}
	return newHandlerRecorder(t, func(r request, w http.ResponseWriter) {
		form, _ := url.ParseQuery(string(r.Body))
		to := form.Get("To")
		mu.Lock()
		k := seen[to]
		seen[to]++
		mu.Unlock()
		status := http.StatusCreated
		if answer != nil {
			status = answer(to, k)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if status == http.StatusCreated {
			prefix := "SM"
			if strings.HasSuffix(r.Path, "/Calls.json") {
				prefix = "CA"
			}
			json.NewEncoder(w).Encode(map[string]any{"sid": prefix + strings.TrimPrefix(to, "+"), "status": "queued"})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"code": 21211, "message": "The 'To' number is not valid.", "status": status})
	})
}

func twilioNotifier(url string, voice bool, to ...string) config.Notifier {
	return config.Notifier{Name: "phone", Type: "twilio", URL: url, From: "+15005550006", To: to,
		ChannelKeys: config.ChannelKeys{AccountSID: twilioSID, AuthToken: twilioToken, Voice: voice}}
}

func form(t *testing.T, r request) url.Values {
	t.Helper()
	v, err := url.ParseQuery(string(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestTwilioSMS(t *testing.T) {
	srv := twilioServer(t, nil)
	p := mustNew(t, twilioNotifier(srv.URL, false, "+821012345678", "+15005550001"))
	r := send(t, p, sampleEv)
	if r.Status != 201 || r.Body != "reached 2 of 2 numbers: +821012345678: SM821012345678; +15005550001: SM15005550001" {
		t.Fatalf("receipt %+v", r)
	}
	reqs := srv.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(twilioSID+":"+twilioToken))
	for i, to := range []string{"+821012345678", "+15005550001"} {
		checkReq(t, reqs[i], "POST", "/2010-04-01/Accounts/"+twilioSID+"/Messages.json", "", map[string]string{
			"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
		f := form(t, reqs[i])
		want := url.Values{"To": {to}, "From": {"+15005550006"}, "Body": {sampleSummary + "\nhttps://status.example.com/"}}
		if f.Encode() != want.Encode() {
			t.Fatalf("form %v, want %v", f, want)
		}
	}
	// A Messaging Service sends as MessagingServiceSid.
	n := twilioNotifier(srv.URL, false, "+15005550002")
	n.From = "MG0123456789abcdef0123456789abcdef"
	send(t, mustNew(t, n), resolved(sampleEv))
	f := form(t, srv.requests()[2])
	if f.Get("MessagingServiceSid") != n.From || f.Has("From") || f.Get("Body") != "api is up again after 12m3s\nhttps://status.example.com/" {
		t.Fatalf("form %v", f)
	}
}

func TestTwilioVoice(t *testing.T) {
	srv := twilioServer(t, nil)
	p := mustNew(t, twilioNotifier(srv.URL, true, "+821012345678"))
	e := sampleEv
	e.DisplayName = "Checkout <EU> & co"
	if r := send(t, p, e); r.Status != 201 || !strings.Contains(r.Body, "CA821012345678") {
		t.Fatalf("receipt %+v", r)
	}
	req := srv.requests()[0]
	checkReq(t, req, "POST", "/2010-04-01/Accounts/"+twilioSID+"/Calls.json", "", nil)
	f := form(t, req)
	if f.Get("To") != "+821012345678" || f.Get("From") != "+15005550006" || f.Has("Body") {
		t.Fatalf("form %v", f)
	}
	var twiml struct {
		XMLName xml.Name `xml:"Response"`
		Say     []string `xml:"Say"`
		Pause   struct {
			Length string `xml:"length,attr"`
		} `xml:"Pause"`
	}
	if err := xml.Unmarshal([]byte(f.Get("Twiml")), &twiml); err != nil {
		t.Fatalf("Twiml %q: %v", f.Get("Twiml"), err)
	}
	h := "Checkout <EU> & co is not reachable from 2 of 3 regions (eu-west, us-east): connection timed out"
	if len(twiml.Say) != 2 || twiml.Say[0] != "Vantage alert. "+h || twiml.Say[1] != "Again: "+h || twiml.Pause.Length != "1" {
		t.Fatalf("Twiml %+v", twiml)
	}
}

// TestTwilioNumbers: a retry reaches only the numbers not reached yet; a
// number refused permanently does not hold the others back; every number
// refused is a permanent failure.
func TestTwilioNumbers(t *testing.T) {
	srv := twilioServer(t, func(to string, n int) int {
		switch {
		case to == "+15005550002" && n == 0:
			return http.StatusServiceUnavailable
		case to == "+15005550009":
			return http.StatusBadRequest
		}
		return http.StatusCreated
	})
	p := mustNew(t, twilioNotifier(srv.URL, false, "+15005550001", "+15005550002", "+15005550009"))
	_, err := p.Send(context.Background(), sampleEv)
	var se *SendError
	if !errors.As(err, &se) || !se.Retryable || se.Status != 503 || !strings.HasPrefix(se.Body, "reached 1 of 3 numbers; +15005550002: ") {
		t.Fatalf("first attempt: %#v", err)
	}
	r, err := p.Send(context.Background(), sampleEv)
	if err != nil || !strings.HasPrefix(r.Body, "reached 2 of 3 numbers: +15005550001: SM15005550001; +15005550002: SM15005550002; refused: +15005550009: permanent error: status 400") {
		t.Fatalf("second attempt: %+v %v", r, err)
	}
	var to []string
	for _, r := range srv.requests() {
		to = append(to, form(t, r).Get("To"))
	}
	// 1 and 9 once, 2 twice (503, then 201); the second attempt skipped 1 and 9.
	if got := strings.Join(to, " "); got != "+15005550001 +15005550002 +15005550009 +15005550002" {
		t.Fatalf("requests to %s", got)
	}
	// The resolve is another notification: every number again.
	send(t, p, resolved(sampleEv))
	if n := srv.count(); n != 7 {
		t.Fatalf("%d requests after the resolve", n)
	}

	// Every number refused: permanent.
	_, err = mustNew(t, twilioNotifier(srv.URL, false, "+15005550009")).Send(context.Background(), sampleEv)
	if !errors.As(err, &se) || se.Retryable || se.Status != 400 || !strings.Contains(se.Body, "21211") {
		t.Fatalf("all refused: %#v", err)
	}
}

// TestTwilioThroughOutbox: the outbox retries a 429 and a 5xx, and each
// number gets the trigger and the resolve exactly once.
func TestTwilioThroughOutbox(t *testing.T) {
	srv := twilioServer(t, func(to string, n int) int {
		switch {
		case to == "+15005550001" && n == 0:
			return http.StatusTooManyRequests
		case to == "+15005550002" && n < 2:
			return http.StatusInternalServerError
		}
		return http.StatusCreated
	})
	p := mustNew(t, twilioNotifier(srv.URL, false, "+15005550001", "+15005550002"))
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), []Provider{p},
		OutboxOptions{BaseBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err := o.Enqueue(context.Background(), sampleEv, "phone"); err != nil {
		t.Fatal(err)
	}
	waitState(t, o, "phone", ActionTrigger, StateDelivered)
	if err := o.Enqueue(context.Background(), resolved(sampleEv), "phone"); err != nil {
		t.Fatal(err)
	}
	e := waitState(t, o, "phone", ActionResolve, StateDelivered)
	o.Close()
	got := map[string]int{}
	for _, r := range srv.requests() {
		f := form(t, r)
		got[f.Get("To")+" "+strings.SplitN(f.Get("Body"), " ", 3)[2]]++
	}
	want := map[string]int{
		"+15005550001 not reachable from 2 of 3 regions (eu-west, us-east): connection timed out\nhttps://status.example.com/": 2, // 429, 201
		"+15005550002 not reachable from 2 of 3 regions (eu-west, us-east): connection timed out\nhttps://status.example.com/": 3, // 500, 500, 201
		"+15005550001 up again after 12m3s\nhttps://status.example.com/":                                                       1,
		"+15005550002 up again after 12m3s\nhttps://status.example.com/":                                                       1,
	}
	if len(got) != len(want) {
		t.Fatalf("requests %v", got)
	}
	for k, n := range want {
		if got[k] != n {
			t.Fatalf("%q: %d requests, want %d (all: %v)", k, got[k], n, got)
		}
	}
	if e.Attempts != 1 {
		t.Fatalf("resolve entry %+v", e)
	}
}

// rewrite sends every request to the test server, whatever its URL says,
// so the documented gateway URLs can be used as they are.
type rewrite struct{ to *url.URL }

func (rw rewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Original-Url", r.URL.String())
	r.URL.Scheme, r.URL.Host = rw.to.Scheme, rw.to.Host
	return http.DefaultTransport.RoundTrip(r)
}

// docNotifiers parses the sms_http examples of docs/notifications.md.
func docNotifiers(t *testing.T, env map[string]string) map[string]config.Notifier {
	t.Helper()
	doc, err := os.ReadFile("../docs/notifications.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]config.Notifier{}
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		if !strings.Contains(m[1], "type: sms_http") {
			continue
		}
		c, err := config.Parse("notifications.md", []byte(m[1]), func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		})
		if err != nil {
			t.Fatalf("documented example does not load: %v\n%s", err, m[1])
		}
		for _, n := range c.Notifiers {
			out[n.Name] = n
		}
	}
	return out
}

// TestSMSHTTPDocumentedGateways sends through the documented NHN Cloud and
// Naver Cloud SENS examples and checks the requests as those APIs want
// them.
func TestSMSHTTPDocumentedGateways(t *testing.T) {
	env := map[string]string{
		"NHN_APP_KEY": "app-key-1", "NHN_SECRET_KEY": "nhn-secret",
		"SENS_SERVICE_ID": "ncp:sms:kr:123456789:vantage", "NCP_ACCESS_KEY": "access-key-1", "NCP_SECRET_KEY": "ncp-secret",
	}
	ns := docNotifiers(t, env)
	nhn, ok1 := ns["nhn-sms"]
	sens, ok2 := ns["sens"]
	if !ok1 || !ok2 {
		t.Fatalf("documented examples: %v", ns)
	}
	e := sampleEv
	e.DisplayName = "결제 API"
	headline := "결제 API is not reachable from 2 of 3 regions (eu-west, us-east): connection timed out\nhttps://status.example.com/"

	t.Run("nhn", func(t *testing.T) {
		ok := true
		var mu sync.Mutex
		rec := newHandlerRecorder(t, func(r request, w http.ResponseWriter) {
			mu.Lock()
			defer mu.Unlock()
			w.Header().Set("Content-Type", "application/json;charset=UTF-8")
			json.NewEncoder(w).Encode(map[string]any{"header": map[string]any{"isSuccessful": ok, "resultCode": map[bool]int{true: 0, false: -1000}[ok],
				"resultMessage": map[bool]string{true: "SUCCESS", false: "Invalid appKey"}[ok]}})
		})
		u, _ := url.Parse(rec.URL)
		p, err := New(nhn, Options{HTTPClient: &http.Client{Transport: rewrite{u}}})
		if err != nil {
			t.Fatal(err)
		}
		send(t, p, e)
		r := rec.requests()[0]
		checkReq(t, r, "POST", "/sms/v3.0/appKeys/app-key-1/sender/mms", "", map[string]string{
			"X-Secret-Key": "nhn-secret", "Content-Type": "application/json;charset=UTF-8",
			"X-Original-Url": "https://api-sms.cloud.toast.com/sms/v3.0/appKeys/app-key-1/sender/mms"})
		assertJSON(t, r.Body, `{"title": "결제 API", "body": `+jsonString(headline)+`, "sendNo": "0212345678",
			"recipientList": [{"recipientNo": "01012345678"}, {"recipientNo": "01087654321"}]}`)
		// NHN Cloud answers 200 to a refused message: success_match makes it a failure.
		mu.Lock()
		ok = false
		mu.Unlock()
		_, err = p.Send(context.Background(), e)
		var se *SendError
		if !errors.As(err, &se) || se.Retryable || !strings.Contains(se.Body, "Invalid appKey") {
			t.Fatalf("refused message: %#v", err)
		}
	})

	t.Run("sens", func(t *testing.T) {
		rec := newHandlerRecorder(t, func(r request, w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, `{"requestId":"RSSA-1","requestTime":"2026-11-22T10:00:00.000","statusCode":"202","statusName":"success"}`)
		})
		u, _ := url.Parse(rec.URL)
		p, err := New(sens, Options{HTTPClient: &http.Client{Transport: rewrite{u}}})
		if err != nil {
			t.Fatal(err)
		}
		before := time.Now().UnixMilli()
		send(t, p, e)
		r := rec.requests()[0]
		path := "/sms/v2/services/ncp:sms:kr:123456789:vantage/messages"
		checkReq(t, r, "POST", path, "", map[string]string{
			"Content-Type": "application/json; charset=utf-8", "X-Ncp-Iam-Access-Key": "access-key-1"})
		ts := r.Header.Get("X-Ncp-Apigw-Timestamp")
		var ms int64
		if err := json.Unmarshal([]byte(ts), &ms); err != nil || ms < before || ms > time.Now().UnixMilli() {
			t.Fatalf("timestamp %q", ts)
		}
		mac := hmac.New(sha256.New, []byte("ncp-secret"))
		mac.Write([]byte("POST " + path + "\n" + ts + "\naccess-key-1"))
		if got, want := r.Header.Get("X-Ncp-Apigw-Signature-V2"), base64.StdEncoding.EncodeToString(mac.Sum(nil)); got != want {
			t.Fatalf("signature %q, want %q", got, want)
		}
		assertJSON(t, r.Body, `{"type": "LMS", "contentType": "COMM", "countryCode": "82", "from": "0212345678",
			"subject": "결제 API", "content": `+jsonString(headline)+`, "messages": [{"to": "01012345678"}]}`)
	})
}

func TestSMSHTTP(t *testing.T) {
	// The default body, and the gateway's answers classified as for every provider.
	rec := newRecorder(t, func(n int, w http.ResponseWriter) int {
		return []int{http.StatusTooManyRequests, http.StatusBadGateway, http.StatusBadRequest, http.StatusOK}[n%4]
	})
	c, err := config.Parse("t.yaml", []byte(`
notifiers:
  - name: gw
    type: sms_http
    url: `+rec.URL+`/send
    headers: {Authorization: "Bearer tok"}
    from: "+15005550006"
    to: ["+15005550001", "+15005550002"]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := mustNew(t, c.Notifiers[0])
	for i, retryable := range []bool{true, true, false} {
		_, err := p.Send(context.Background(), sampleEv)
		var se *SendError
		if !errors.As(err, &se) || se.Retryable != retryable {
			t.Fatalf("answer %d: %#v", i, err)
		}
	}
	send(t, p, sampleEv)
	r := rec.requests()[3]
	checkReq(t, r, "POST", "/send", "", map[string]string{"Authorization": "Bearer tok", "Content-Type": "application/json; charset=utf-8"})
	assertJSON(t, r.Body, `{"from": "+15005550006", "to": ["+15005550001", "+15005550002"],
		"message": `+jsonString(sampleSummary+"\nhttps://status.example.com/")+`}`)

	// A GET gateway: the message in the URL, no body; form bodies with urlquery.
	rec2 := newRecorder(t, nil)
	c, err = config.Parse("t.yaml", []byte(`
notifiers:
  - name: get
    type: sms_http
    method: GET
    url: '`+rec2.URL+`/api?to={{urlquery (join .To ",")}}&msg={{urlquery .Message}}&id={{.IncidentID}}&a={{.Action}}'
    to: ["+15005550001", "+15005550002"]
  - name: form
    type: sms_http
    url: `+rec2.URL+`/form
    content_type: application/x-www-form-urlencoded
    to: ["01012345678"]
    body: 'to={{urlquery (index .To 0)}}&text={{urlquery (truncate 10 .Name)}}&kind={{.Kind}}'
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	send(t, mustNew(t, c.Notifiers[0]), resolved(sampleEv))
	send(t, mustNew(t, c.Notifiers[1]), sampleEv)
	reqs := rec2.requests()
	q, _ := url.ParseQuery(reqs[0].Query)
	if reqs[0].Method != "GET" || len(reqs[0].Body) != 0 || q.Get("to") != "+15005550001,+15005550002" ||
		q.Get("msg") != "api is up again after 12m3s\nhttps://status.example.com/" || q.Get("id") != "inc-1" || q.Get("a") != "resolve" {
		t.Fatalf("GET %+v", reqs[0])
	}
	checkReq(t, reqs[1], "POST", "/form", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if string(reqs[1].Body) != "to=01012345678&text=api&kind=" {
		t.Fatalf("form body %q", reqs[1].Body)
	}
}

// TestSMSFallback: an SMS gateway that refuses the message (a 200 that
// does not match success_match) hands it to its fallback, a Twilio call,
// through the outbox as for every provider; the resolve follows.
func TestSMSFallback(t *testing.T) {
	gw := newHandlerRecorder(t, func(r request, w http.ResponseWriter) {
		io.WriteString(w, `{"header":{"isSuccessful":false,"resultMessage":"no credit"}}`)
	})
	tw := twilioServer(t, nil)
	c, err := config.Parse("t.yaml", []byte(`
notifiers:
  - name: sms
    type: sms_http
    url: `+gw.URL+`/send
    to: ["01012345678"]
    success_match: '"isSuccessful":true'
    fallback: [call]
  - name: call
    type: twilio
    url: `+tw.URL+`
    account_sid: `+twilioSID+`
    auth_token: tok
    from: "+15005550006"
    to: ["+821012345678"]
    voice: true
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := NewAll(c.Notifiers, Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), ps, OutboxOptions{Fallbacks: FallbacksFrom(c.Notifiers)})
	ctx := context.Background()
	if err := o.Enqueue(ctx, sampleEv, "sms"); err != nil {
		t.Fatal(err)
	}
	waitState(t, o, "call", ActionTrigger, StateDelivered)
	if e := entry(t, o, "sms", ActionTrigger); e.State != StateFailed || !strings.Contains(e.LastError, "no credit") {
		t.Fatalf("sms entry %+v", e)
	}
	if err := o.Enqueue(ctx, resolved(sampleEv), "sms"); err != nil {
		t.Fatal(err)
	}
	waitState(t, o, "call", ActionResolve, StateDelivered)
	o.Close()
	reqs := tw.requests()
	if len(reqs) != 2 || !strings.HasSuffix(reqs[0].Path, "/Calls.json") ||
		!strings.Contains(form(t, reqs[1]).Get("Twiml"), "api is up again after 12m3s") {
		t.Fatalf("calls %+v", reqs)
	}
}
