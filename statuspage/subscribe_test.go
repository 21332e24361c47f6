package statuspage

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/subscribe"
)

// fakeSubs records what the pages ask of the subscriptions.
type fakeSubs struct {
	mu       sync.Mutex
	requests []string
}

func (f *fakeSubs) MailEnabled() bool { return true }
func (f *fakeSubs) Request(_ context.Context, email string) error {
	if err := mesh.ValidSubscriberEmail(email); err != nil {
		return subscribe.ErrInvalid
	}
	f.mu.Lock()
	f.requests = append(f.requests, email)
	f.mu.Unlock()
	return nil
}
func (f *fakeSubs) Confirm(context.Context, url.Values) (mesh.Subscriber, error) {
	return mesh.Subscriber{}, subscribe.ErrBadLink
}
func (f *fakeSubs) Unsubscribe(context.Context, url.Values) error { return subscribe.ErrBadLink }
func (f *fakeSubs) UnsubscribeURL(string) string                  { return "" }
func (f *fakeSubs) AddEmail(context.Context, string) (mesh.Subscriber, error) {
	return mesh.Subscriber{}, nil
}
func (f *fakeSubs) AddWebhook(context.Context, string, string) (mesh.Subscriber, error) {
	return mesh.Subscriber{}, nil
}
func (f *fakeSubs) Remove(context.Context, string) (bool, error) { return false, nil }
func (f *fakeSubs) List() []mesh.Subscriber                      { return nil }

// The subscription pages: 404 while off; the form's answer the same for
// any address; a bad address 400; a body over the bound 413; a client
// past its rate 429 with Retry-After, and the whole form past its rate
// too; a forged link 400; pages in Korean with locale ko; and the form's
// page may post to itself (CSP form-action 'self').
func TestSubscribePages(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := New(Options{Source: &fakeSource{ready: true, st: testStatus()}, Page: Page{Title: "Example Status"}, Now: clock})
	post := func(path, remote, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	if w := post("/subscribe", "192.0.2.1:1", "email=a@example.com"); w.Code != http.StatusNotFound {
		t.Fatalf("subscriptions off: %d", w.Code)
	}
	f := &fakeSubs{}
	s.SetSubscriptions(f)
	w := post("/subscribe", "192.0.2.1:1", "email=a@example.com")
	if w.Code != 200 || !strings.Contains(w.Body.String(), "Check your inbox") || !strings.Contains(w.Header().Get("Content-Security-Policy"), "form-action 'self'") {
		t.Fatalf("subscribe: %d %q", w.Code, w.Header().Get("Content-Security-Policy"))
	}
	if w := post("/subscribe", "192.0.2.2:1", "email=nope"); w.Code != http.StatusBadRequest {
		t.Fatalf("bad address: %d", w.Code)
	}
	if w := post("/subscribe", "192.0.2.3:1", "email="+strings.Repeat("a", 5000)); w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("large body: %d", w.Code)
	}
	// One client: 5 at once (one used above), then one a minute.
	for i := range 4 {
		if w := post("/subscribe", "192.0.2.1:1", "email=a@example.com"); w.Code != 200 {
			t.Fatalf("request %d: %d", i+2, w.Code)
		}
	}
	w = post("/subscribe", "192.0.2.1:1", "email=a@example.com")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("past the client's rate: %d %q", w.Code, w.Header().Get("Retry-After"))
	}
	now = now.Add(time.Minute)
	if w := post("/subscribe", "192.0.2.1:1", "email=a@example.com"); w.Code != 200 {
		t.Fatalf("a minute later: %d", w.Code)
	}
	// Many clients: the whole form's rate (30 at once).
	limited := 0
	for i := range 40 { // each its first request
		if w := post("/subscribe", "198.51.100."+strconv.Itoa(i+1)+":1", "email=b@example.com"); w.Code == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("no overall limit")
	}
	if w := post("/subscribe/confirm?e=x&x=1&s=y", "192.0.2.9:1", ""); w.Code != http.StatusBadRequest {
		t.Fatalf("forged confirmation: %d", w.Code)
	}
	if w := post("/unsubscribe?id=00000000000000a1&s=y", "192.0.2.9:1", "List-Unsubscribe=One-Click"); w.Code != http.StatusBadRequest {
		t.Fatalf("forged unsubscription: %d", w.Code)
	}
	s.SetPage(Page{Title: "Example Status", Site: Site{Locale: localeKO}})
	r := httptest.NewRequest("GET", "/subscribe", nil)
	w = httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `lang="ko"`) || !strings.Contains(w.Body.String(), "이메일 주소") {
		t.Fatalf("Korean form: %d %s", w.Code, w.Body.String())
	}
	// The operator API needs the token.
	r = httptest.NewRequest("GET", "/api/v1/subscribers", nil)
	w = httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("GET /api/v1/subscribers without a token: %d", w.Code)
	}
}
