package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/notifier"
	"github.com/vantage-dev/vantage/notifier/smtptest"
	"github.com/vantage-dev/vantage/statuspage"
	"github.com/vantage-dev/vantage/subscribe"
)

const subsToken = "subs-test-token-0123456789"

// subsMail is one mail the SMTP server received, decoded.
type subsMail struct {
	To      string
	Subject string
	Header  mail.Header
	Text    string
}

func readSubsMail(t *testing.T, m smtptest.Msg) subsMail {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
	if err != nil {
		t.Fatal(err)
	}
	var body io.Reader = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(msg.Body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	return subsMail{To: strings.Join(m.To, ","), Subject: subj, Header: msg.Header, Text: string(b)}
}

// waitMails waits for the SMTP server to hold n mails.
func waitMails(t *testing.T, srv *smtptest.Server, n int) []smtptest.Msg {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ms := srv.Messages(); len(ms) >= n {
			return ms
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mails after 30 s, want %d", len(srv.Messages()), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// signedHook records a webhook subscriber's events, checking signatures.
type signedHook struct {
	srv    *httptest.Server
	mu     sync.Mutex
	secret string
	events []subscribe.WebhookBody
	bad    int
}

func newSignedHook(t *testing.T) *signedHook {
	h := &signedHook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var ev subscribe.WebhookBody
		h.mu.Lock()
		defer h.mu.Unlock()
		if json.Unmarshal(b, &ev) != nil || r.Header.Get(notifier.SignatureHeader) != notifier.Sign(h.secret, b) {
			h.bad++
		}
		h.events = append(h.events, ev)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *signedHook) all() []subscribe.WebhookBody {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]subscribe.WebhookBody(nil), h.events...)
}

func (h *signedHook) waitFor(t *testing.T, n int) []subscribe.WebhookBody {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if evs := h.all(); len(evs) >= n {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook got %d events after 30 s, want %d: %+v", len(h.all()), n, h.all())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var linkRE = regexp.MustCompile(`https?://\S+`)

// TestSubscriptionsEndToEnd: a visitor subscribes through the page's form
// (no JavaScript: plain form posts), gets a confirmation mail from a real
// SMTP server on loopback, follows its link and confirms; an operator
// registers a webhook through the token API. An incident opens and
// resolves: the visitor gets exactly two mails (start, resolution), each
// with RFC 8058's List-Unsubscribe headers, and the webhook two signed
// events. The one-click POST unsubscribes; the next incident reaches the
// webhook and mails nobody.
func TestSubscriptionsEndToEnd(t *testing.T) {
	smtp, _ := smtptest.Start(t, "none")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	p := &switchProber{}
	n := soloNode(t, fmt.Sprintf(`
defaults: {interval: 1s, fail_after: 1, recover_after: 1}
checks:
  - {name: api, type: http, url: "http://127.0.0.1:9/", display_name: Checkout}
notifiers:
  - {name: mail, type: email, smtp: "%s", tls: none, from: "Ops <ops@example.com>", to: [oncall@example.com]}
statuspage:
  title: Example Status
  url: %s
  api_token: %s
  subscriptions:
    enabled: true
    email: mail
    from: "Example Status <status@example.com>"
    secret: sub-secret-0123456789
`, smtp.Addr(), base, subsToken), p)
	srv := httptest.NewUnstartedServer(n.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	waitState(t, n, "api", "up")

	get := func(u string) (int, string) {
		t.Helper()
		resp, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	postForm := func(u string, form url.Values) (int, string) {
		t.Helper()
		resp, err := client.PostForm(u, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// The page's footer has the form.
	if code, page := get(base + "/"); code != 200 || !strings.Contains(page, `<form class="subscribe" method="post" action="/subscribe">`) {
		t.Fatalf("GET / = %d, no subscription form", code)
	}
	// A webhook subscriber, through the token API.
	hook := newSignedHook(t)
	code, _, m := apiPost(t, srv, "/api/v1/subscribers", subsToken, `{"url": "`+hook.srv.URL+`/hook"}`)
	if code != http.StatusCreated || m["secret"] == "" || m["type"] != "webhook" {
		t.Fatalf("POST /api/v1/subscribers = %d %v", code, m)
	}
	hook.mu.Lock()
	hook.secret = m["secret"].(string)
	hook.mu.Unlock()
	if code, _, _ := apiPost(t, srv, "/api/v1/subscribers", "", `{"url": "http://127.0.0.1:9/x"}`); code != http.StatusUnauthorized {
		t.Fatalf("POST without the token = %d", code)
	}

	// Subscribe: the answer says nothing about the address.
	code, body := postForm(base+"/subscribe", url.Values{"email": {"ann@example.com"}})
	if code != 200 || !strings.Contains(body, "Check your inbox") {
		t.Fatalf("POST /subscribe = %d %s", code, body)
	}
	if code, _ := postForm(base+"/subscribe", url.Values{"email": {"not an address"}}); code != http.StatusBadRequest {
		t.Fatalf("bad address = %d", code)
	}
	confirm := readSubsMail(t, waitMails(t, smtp, 1)[0])
	if confirm.To != "ann@example.com" || !strings.Contains(confirm.Subject, "Confirm your subscription to Example Status") ||
		confirm.Header.Get("List-Unsubscribe") != "" {
		t.Fatalf("confirmation mail %+v", confirm)
	}
	link := linkRE.FindString(confirm.Text)
	if !strings.HasPrefix(link, base+"/subscribe/confirm?") {
		t.Fatalf("confirmation link %q in %q", link, confirm.Text)
	}
	// Following the link shows a button; pressing it confirms.
	if code, page := get(link); code != 200 || !strings.Contains(page, `method="post"`) {
		t.Fatalf("GET link = %d %s", code, page)
	}
	if len(n.mesh.Subs.Live()) != 1 {
		t.Fatal("GET of the link subscribed (a mail scanner would)")
	}
	if code, page := postForm(link, nil); code != 200 || !strings.Contains(page, "You are subscribed") {
		t.Fatalf("POST link = %d %s", code, page)
	}
	if code, _ := postForm(link+"x", nil); code != http.StatusBadRequest {
		t.Fatalf("a torn link = %d", code)
	}
	// Asking again for a subscribed address answers the same and mails
	// nothing.
	if code, body := postForm(base+"/subscribe", url.Values{"email": {"ann@example.com"}}); code != 200 || !strings.Contains(body, "Check your inbox") {
		t.Fatalf("second POST /subscribe = %d", code)
	}
	// The operator's list shows both.
	req, _ := http.NewRequest("GET", base+"/api/v1/subscribers", nil)
	req.Header.Set("Authorization", "Bearer "+subsToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Subscribers []map[string]any }
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Subscribers) != 2 {
		t.Fatalf("GET /api/v1/subscribers: %+v", list)
	}

	// An incident opens and resolves.
	p.failing.Store(true)
	waitState(t, n, "api", "down")
	p.failing.Store(false)
	waitState(t, n, "api", "up")
	evs := hook.waitFor(t, 2)
	ms := waitMails(t, smtp, 3)
	if len(ms) != 3 {
		t.Fatalf("%d mails, want the confirmation, the start and the resolution", len(ms))
	}
	start, end := readSubsMail(t, ms[1]), readSubsMail(t, ms[2])
	if start.To != "ann@example.com" || !strings.Contains(start.Subject, "[Example Status] Incident: Checkout is down") ||
		!strings.Contains(end.Subject, "[Example Status] Resolved: Checkout is down") {
		t.Fatalf("mails %q, %q", start.Subject, end.Subject)
	}
	var unsub string
	for _, m := range []subsMail{start, end} {
		lu := m.Header.Get("List-Unsubscribe")
		if !strings.HasPrefix(lu, "<"+base+"/unsubscribe?") || !strings.HasSuffix(lu, ">") ||
			m.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
			t.Fatalf("mail %q: List-Unsubscribe %q, List-Unsubscribe-Post %q", m.Subject, lu, m.Header.Get("List-Unsubscribe-Post"))
		}
		unsub = strings.Trim(lu, "<>")
	}
	if len(evs) != 2 || evs[0].Event != subscribe.EventStarted || evs[1].Event != subscribe.EventResolved ||
		evs[0].IncidentID != evs[1].IncidentID || evs[0].Check != "api" || hook.bad != 0 {
		t.Fatalf("webhook events %+v (bad signatures %d)", evs, hook.bad)
	}

	// RFC 8058 one-click: a POST of List-Unsubscribe=One-Click to the URL.
	resp, err = client.Post(unsub, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("one-click POST = %d", resp.StatusCode)
	}
	if live := n.mesh.Subs.Live(); len(live) != 1 || live[0].URL == "" {
		t.Fatalf("after unsubscribing: %+v", live)
	}

	// The next incident reaches the webhook only.
	p.failing.Store(true)
	waitState(t, n, "api", "down")
	p.failing.Store(false)
	waitState(t, n, "api", "up")
	hook.waitFor(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	entries, err := n.SubscriptionsOutbox().Entries(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	mails := 0
	for _, e := range entries {
		if e.Event.Subscriber != nil && e.Event.Subscriber.Email != "" {
			mails++
		}
	}
	if mails != 3 || len(smtp.Messages()) != 3 {
		t.Fatalf("%d mails queued, %d sent; want 3 (confirmation, start, resolution)", mails, len(smtp.Messages()))
	}
}

// TestMeshSubscriptionMailedOnceBySender: three nodes on loopback. A
// visitor subscribes on one node and confirms on another (the links work
// on every node); the subscriber reaches every node; an outage is mailed
// to them once, start and resolution, by the designated sender alone.
func TestMeshSubscriptionMailedOnceBySender(t *testing.T) {
	smtp, _ := smtptest.Start(t, "none")
	target, failing := switchableTarget(t)
	const public = "https://status.example.com"
	nodes := startMesh(t, fmt.Sprintf(`
cluster:
  regions: [eu, us, ap]
  quorum: 2
  gossip: local
defaults: {interval: 1s, fail_after: 2, recover_after: 2}
checks:
  - {name: api, type: http, url: "%s/health"}
notifiers:
  - {name: mail, type: email, smtp: "%s", tls: none, from: "ops@example.com", to: [oncall@example.com]}
statuspage:
  title: Mesh Status
  url: %s
  subscriptions: {enabled: true, email: mail}
`, target.URL, smtp.Addr(), public), []string{"eu", "us", "ap"})
	srvs := map[string]*httptest.Server{}
	for _, m := range nodes {
		s := httptest.NewServer(m.n.Handler())
		t.Cleanup(s.Close)
		srvs[m.region] = s
	}
	waitMesh(t, nodes, "api up", func(st *statuspage.Status) bool { return checkByName(st, "api").State == "up" })

	// Subscribe on us-1; the confirmation link (signed under the gossip
	// key) is followed on eu-1.
	resp, err := http.PostForm(srvs["us"].URL+"/subscribe", url.Values{"email": {"ann@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	confirm := readSubsMail(t, waitMails(t, smtp, 1)[0])
	link := linkRE.FindString(confirm.Text)
	if !strings.HasPrefix(link, public+"/subscribe/confirm?") {
		t.Fatalf("link %q", link)
	}
	resp, err = http.PostForm(srvs["eu"].URL+strings.TrimPrefix(link, public), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("confirming on another node: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		all := true
		for _, m := range nodes {
			all = all && len(m.n.mesh.Subs.Live()) == 1
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the subscriber did not reach every node")
		}
		time.Sleep(20 * time.Millisecond)
	}

	failing.Store(true)
	waitMesh(t, nodes, "api down everywhere", func(st *statuspage.Status) bool { return checkByName(st, "api").State == "down" })
	failing.Store(false)
	waitMesh(t, nodes, "api up again", func(st *statuspage.Status) bool {
		c := checkByName(st, "api")
		return c.State == "up" && c.IncidentID == ""
	})
	ms := waitMails(t, smtp, 3)
	// Every node learns both deliveries before the count is read.
	for _, m := range nodes {
		deadline := time.Now().Add(10 * time.Second)
		for m.n.mesh.SubSent.Len() < 2 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	ms = smtp.Messages()
	if len(ms) != 3 {
		t.Fatalf("%d mails, want the confirmation, one start and one resolution", len(ms))
	}
	start, end := readSubsMail(t, ms[1]), readSubsMail(t, ms[2])
	if !strings.Contains(start.Subject, "Incident: api is down") || !strings.Contains(end.Subject, "Resolved: api is down") {
		t.Fatalf("mails %q, %q", start.Subject, end.Subject)
	}
	// Only the designated sender queued them.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	queuedBy := map[string]int{}
	for _, m := range nodes {
		es, err := m.n.SubscriptionsOutbox().Entries(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if !strings.HasPrefix(e.IncidentID, "sub:confirm:") {
				queuedBy[m.n.o.Name]++
			}
		}
	}
	if len(queuedBy) != 1 || queuedBy[nodes[0].n.ev.View().Sender] != 2 {
		t.Fatalf("incident mails queued by %v, want 2 by the sender %s", queuedBy, nodes[0].n.ev.View().Sender)
	}
}

// Operators' incidents reach webhook subscribers: a manual incident's
// opening is its start, each update an update, its resolved update its
// resolution; an update of a check's incident is an update. Each once.
func TestSubscriptionsOperatorsUpdates(t *testing.T) {
	p := &switchProber{}
	n := soloNode(t, fmt.Sprintf(`
defaults: {interval: 1s, fail_after: 1, recover_after: 1}
checks:
  - {name: api, type: http, url: "http://127.0.0.1:9/"}
statuspage:
  url: https://status.example.com
  api_token: %s
  subscriptions: {enabled: true}
`, subsToken), p)
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	waitState(t, n, "api", "up")
	hook := newSignedHook(t)
	code, _, m := apiPost(t, srv, "/api/v1/subscribers", subsToken, `{"url": "`+hook.srv.URL+`", "secret": "s3cret-hook"}`)
	if code != http.StatusCreated || m["secret"] != "s3cret-hook" {
		t.Fatalf("POST /api/v1/subscribers = %d %v", code, m)
	}
	hook.mu.Lock()
	hook.secret = "s3cret-hook"
	hook.mu.Unlock()
	// The visitor's form is off without an email notifier.
	if resp, err := http.PostForm(srv.URL+"/subscribe", url.Values{"email": {"a@example.com"}}); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("form without email: %v %v", resp.StatusCode, err)
	}

	code, _, m = apiPost(t, srv, "/api/v1/incidents", subsToken, `{"title": "Payments delayed", "body": "Looking into it."}`)
	if code != http.StatusCreated {
		t.Fatalf("POST /api/v1/incidents = %d %v", code, m)
	}
	id := m["incident"].(map[string]any)["id"].(string)
	if code, _, m := apiPost(t, srv, "/api/v1/incidents/"+id+"/updates", subsToken, `{"status": "monitoring", "body": "A fix is out."}`); code != http.StatusCreated {
		t.Fatalf("update = %d %v", code, m)
	}
	if code, _, m := apiPost(t, srv, "/api/v1/incidents/"+id+"/updates", subsToken, `{"status": "resolved", "body": "All good."}`); code != http.StatusCreated {
		t.Fatalf("resolution = %d %v", code, m)
	}
	evs := hook.waitFor(t, 3)
	want := []string{subscribe.EventStarted, subscribe.EventUpdated, subscribe.EventResolved}
	for i, ev := range evs {
		if ev.Event != want[i] || ev.IncidentID != id || ev.URL != "https://status.example.com/incidents/"+id {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	if evs[0].Title != "Payments delayed" || evs[0].Body != "Looking into it." || evs[1].Status != "monitoring" || hook.bad != 0 {
		t.Fatalf("events %+v (bad signatures %d)", evs, hook.bad)
	}

	// A check's incident: its start, an operator's update, its resolution.
	p.failing.Store(true)
	waitState(t, n, "api", "down")
	inc := checkByName(n.Status(), "api").IncidentID
	if code, _, m := apiPost(t, srv, "/api/v1/incidents/"+inc+"/updates", subsToken, `{"status": "identified", "body": "Upstream."}`); code != http.StatusCreated {
		t.Fatalf("update of the check's incident = %d %v", code, m)
	}
	hook.waitFor(t, 5)
	p.failing.Store(false)
	waitState(t, n, "api", "up")
	evs = hook.waitFor(t, 6)
	kinds := []string{}
	for _, ev := range evs[3:] {
		if ev.IncidentID != inc {
			t.Fatalf("event of %s, want %s: %+v", ev.IncidentID, inc, ev)
		}
		kinds = append(kinds, ev.Event)
	}
	// The start and the update may be queued in the same sweep; both come
	// before the resolution.
	if len(kinds) != 3 || kinds[2] != subscribe.EventResolved || !(kinds[0] == subscribe.EventStarted || kinds[1] == subscribe.EventStarted) {
		t.Fatalf("check incident events %v", kinds)
	}
}

// statuspage.subscriptions needs a restart: a reload keeps the running
// settings and says so.
func TestSubscriptionsNeedARestart(t *testing.T) {
	text := `
defaults: {interval: 1s, fail_after: 1, recover_after: 1}
checks:
  - {name: api, type: http, url: "http://127.0.0.1:9/"}
statuspage:
  url: https://status.example.com
  subscriptions: {enabled: true, secret: first-secret-0123456789}
`
	n := soloNode(t, text, &switchProber{})
	waitState(t, n, "api", "up") // started: nothing of the start is in flight at Close
	cfg, err := config.Load(writeFile(t, "next.yaml", strings.Replace(text, "first-secret", "other-secret", 1)))
	if err != nil {
		t.Fatal(err)
	}
	res, err := n.Reload(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.Ignored, "statuspage.subscriptions") || n.cfg.Load().StatusPage.Subscriptions.Secret != "first-secret-0123456789" {
		t.Fatalf("reload: ignored %v, running secret %q", res.Ignored, n.cfg.Load().StatusPage.Subscriptions.Secret)
	}
}
