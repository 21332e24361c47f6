package subscribe

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/notifier"
)

var (
	t0    = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
)

// A confirmation link is good until its expiry and for its address only;
// an unsubscribe link for its subscriber only, under the same key.
func TestLinks(t *testing.T) {
	s := Signer{Key: Secret("0123456789abcdef0123", nil, "")}
	q := s.ConfirmQuery("ann@example.com", t0.Add(48*time.Hour))
	if e, err := s.Confirm(q, t0.Add(47*time.Hour)); err != nil || e != "ann@example.com" {
		t.Fatalf("Confirm = %q, %v", e, err)
	}
	if _, err := s.Confirm(q, t0.Add(48*time.Hour+time.Second)); err != ErrBadLink {
		t.Errorf("expired link: %v", err)
	}
	forged := url.Values{"e": {"Ym9iQGV4YW1wbGUuY29t"}, "x": q["x"], "s": q["s"]} // bob@example.com
	if _, err := s.Confirm(forged, t0); err != ErrBadLink {
		t.Errorf("another address under the signature: %v", err)
	}
	later := url.Values{"e": q["e"], "x": {"9999999999"}, "s": q["s"]}
	if _, err := s.Confirm(later, t0); err != ErrBadLink {
		t.Errorf("a later expiry under the signature: %v", err)
	}
	other := Signer{Key: Secret("another secret of 20+", nil, "")}
	if _, err := other.Confirm(q, t0); err != ErrBadLink {
		t.Errorf("another key took the link: %v", err)
	}
	u := s.UnsubscribeQuery("00000000000000a1")
	if id, err := s.Unsubscribe(u); err != nil || id != "00000000000000a1" {
		t.Fatalf("Unsubscribe = %q, %v", id, err)
	}
	u.Set("id", "00000000000000a2")
	if _, err := s.Unsubscribe(u); err != ErrBadLink {
		t.Errorf("another id under the signature: %v", err)
	}
	if (Signer{}).ok("", "x") {
		t.Error("an empty key signs")
	}
	// The key: the configured secret, else the gossip key, else the token.
	if string(Secret("", []byte("k"), "tok")) == string(Secret("", nil, "tok")) || Secret("", nil, "") != nil {
		t.Error("secret derivation")
	}
}

type fakeOutbox struct {
	mu  sync.Mutex
	evs []notifier.Event
}

func (o *fakeOutbox) Enqueue(_ context.Context, e notifier.Event, _ ...string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.evs = append(o.evs, e)
	return nil
}

func (o *fakeOutbox) take() []notifier.Event {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.evs
	o.evs = nil
	return out
}

type node struct {
	name   string
	now    time.Time
	sender bool
	sent   *mesh.SentLog
	claims *mesh.Claims
	out    *fakeOutbox
	d      *Dispatcher
}

func newNode(name string, subs func() []mesh.Subscriber) *node {
	n := &node{name: name, now: t0, out: &fakeOutbox{}}
	clock := func() time.Time { return n.now }
	n.sent = mesh.NewSentLogBounded(name, clock, nil, quiet, mesh.SubSentMax, mesh.SubSentTTL)
	n.claims = mesh.NewClaims(name, clock, quiet)
	n.d = NewDispatcher(DispatchOptions{Self: name, Now: clock, Subscribers: subs, Sent: n.sent, Claims: n.claims,
		Outbox: n.out, Provider: "subscribers", Logger: quiet,
		Sender: func() (bool, func(string) bool) { return n.sender, func(string) bool { return true } },
		Compose: func(e Event, s mesh.Subscriber) (*notifier.SubscriberMessage, error) {
			return &notifier.SubscriberMessage{ID: s.ID, Email: s.Email, Subject: e.Title}, nil
		}})
	return n
}

// deliver plays the outbox: every queued message is delivered and
// recorded in the subscribers' sent log, which gossip carries to peers.
func (n *node) deliver(peers ...*node) int {
	evs := n.out.take()
	for _, e := range evs {
		Log{Sent: n.sent}.Delivered(e, "subscribers")
	}
	b, _ := n.sent.MarshalBinary()
	for _, p := range peers {
		_ = p.sent.Merge(n.name, b)
	}
	return len(evs)
}

// Each event reaches each subscriber once: after Settle, only from the
// sender, only subscribers who subscribed before it happened; a node that
// takes over waits Takeover and sends only what the sent log does not
// show delivered; an event queued here is not queued again.
func TestDispatchExactlyOnce(t *testing.T) {
	ann := mesh.Subscriber{ID: mesh.SubscriberID("ann@example.com"), Email: "ann@example.com", Created: t0.Add(-time.Hour)}
	bob := mesh.Subscriber{ID: mesh.SubscriberID("bob@example.com"), Email: "bob@example.com", Created: t0.Add(-time.Hour)}
	late := mesh.Subscriber{ID: mesh.SubscriberID("late@example.com"), Email: "late@example.com", Created: t0.Add(time.Minute)}
	subs := []mesh.Subscriber{ann, bob, late}
	list := func() []mesh.Subscriber { return subs }
	a, b := newNode("eu-1", list), newNode("us-1", list)
	a.sender = true
	ctx := context.Background()
	start := Event{Incident: "inc1", Action: notifier.ActionTrigger, Title: "Checkout is down", At: t0}
	a.d.Add(start)
	b.d.Add(start)
	a.d.Sweep(ctx)
	b.d.Sweep(ctx)
	if n := len(a.out.evs) + len(b.out.evs); n != 0 {
		t.Fatalf("%d queued before Settle", n)
	}
	a.now, b.now = t0.Add(Settle), t0.Add(Settle)
	b.d.Sweep(ctx)
	a.d.Sweep(ctx)
	if len(b.out.evs) != 0 {
		t.Fatal("a node that is not the sender queued")
	}
	evs := a.out.evs
	if len(evs) != 2 || evs[0].IncidentID == evs[1].IncidentID {
		t.Fatalf("queued %+v, want ann and bob (late subscribed after the event)", evs)
	}
	for _, e := range evs {
		if e.Kind != notifier.KindSubscriber || e.Key() != "trigger" || !strings.HasSuffix(e.IncidentID, ":inc1") {
			t.Errorf("event %+v", e)
		}
	}
	a.d.Sweep(ctx)
	if len(a.out.evs) != 2 {
		t.Fatalf("queued again: %d", len(a.out.evs))
	}
	// ann's is delivered and recorded; the sender dies before bob's goes.
	a.out.evs = a.out.evs[:1]
	a.deliver(b)
	// b takes over: it waits Takeover, then sends bob's alone (a's claim
	// lapsed: a is gone).
	b.sender = true
	b.now = t0.Add(time.Minute)
	b.d.Sweep(ctx)
	b.d.o.Sender = func() (bool, func(string) bool) { return true, func(n string) bool { return n != "eu-1" } }
	b.now = b.now.Add(Takeover - time.Second)
	b.d.Sweep(ctx)
	if len(b.out.evs) != 0 {
		t.Fatal("queued before the takeover wait")
	}
	b.now = b.now.Add(time.Second)
	b.d.Sweep(ctx)
	if len(b.out.evs) != 1 || !strings.Contains(b.out.evs[0].IncidentID, bob.ID) {
		t.Fatalf("after takeover: %+v, want bob's alone", b.out.evs)
	}
	b.deliver(a)
	// The resolution reaches all three (late subscribed before it).
	res := Event{Incident: "inc1", Action: notifier.ActionResolve, Title: "Checkout is down", At: b.now}
	b.d.Add(res)
	b.now = b.now.Add(Settle)
	b.d.Sweep(ctx)
	if n := b.deliver(a); n != 3 {
		t.Fatalf("resolution to %d subscribers, want 3", n)
	}
	b.d.Sweep(ctx)
	if n := len(b.out.evs); n != 0 {
		t.Fatalf("%d queued again", n)
	}
	// An operator's update: its key is its number.
	up := Event{Incident: "inc1", Action: notifier.ActionUpdate, Seq: UpdateSeq("u1"), Status: "monitoring", At: b.now}
	if up.Key() == "update#0" || UpdateSeq("u1") != UpdateSeq("u1") || UpdateSeq("u1") == UpdateSeq("u2") {
		t.Fatalf("update key %q", up.Key())
	}
	// Events older than MaxAge are dropped.
	b.now = b.now.Add(MaxAge + time.Minute)
	b.d.Sweep(ctx)
	if b.d.Len() != 0 {
		t.Errorf("%d events kept past MaxAge", b.d.Len())
	}
}

// The outbox's log maps a subscriber message to the subscribers' sent
// log; confirmation mails are not recorded.
func TestLogMapsOutboxIDs(t *testing.T) {
	sent := mesh.NewSentLogBounded("eu-1", func() time.Time { return t0 }, nil, quiet, 10, time.Hour)
	l := Log{Sent: sent}
	e := notifier.Event{Kind: notifier.KindSubscriber, Action: notifier.ActionTrigger, IncidentID: OutboxID("00000000000000a1", "inc:1"), StartedAt: t0}
	l.Delivered(e, "subscribers")
	if by, ok := l.DeliveredBy(e.IncidentID, "trigger", "subscribers"); !ok || by != "eu-1" {
		t.Fatalf("DeliveredBy = %q %v", by, ok)
	}
	if _, ok := sent.DeliveredBy("inc:1", "trigger", "00000000000000a1"); !ok {
		t.Fatal("not recorded under the incident and subscriber")
	}
	l.Delivered(notifier.Event{Kind: notifier.KindSubscriber, Action: notifier.ActionTrigger, IncidentID: "sub:confirm:abc"}, "subscribers")
	if sent.Len() != 1 {
		t.Errorf("a confirmation mail was recorded")
	}
}

// An incident's events reach a subscriber in order: an update learnt
// after a takeover waits for the incident's start, which waits for the
// takeover.
func TestDispatchKeepsAnIncidentsOrder(t *testing.T) {
	ann := mesh.Subscriber{ID: mesh.SubscriberID("ann@example.com"), Email: "ann@example.com", Created: t0.Add(-time.Hour)}
	a := newNode("eu-1", func() []mesh.Subscriber { return []mesh.Subscriber{ann} })
	ctx := context.Background()
	a.d.Add(Event{Incident: "m1", Action: notifier.ActionTrigger, At: t0})
	a.now = t0.Add(100 * time.Millisecond)
	a.sender = true
	a.d.Sweep(ctx) // becomes the sender: the start waits for the takeover
	a.now = t0.Add(200 * time.Millisecond)
	a.d.Add(Event{Incident: "m1", Action: notifier.ActionUpdate, Seq: UpdateSeq("u1"), At: a.now})
	a.d.Add(Event{Incident: "other", Action: notifier.ActionTrigger, At: a.now})
	a.now = t0.Add(2 * time.Second)
	a.d.Sweep(ctx)
	if evs := a.out.take(); len(evs) != 1 || !strings.HasSuffix(evs[0].IncidentID, ":other") {
		t.Fatalf("queued %+v before the takeover ended, want only the other incident's start", evs)
	}
	a.now = t0.Add(100*time.Millisecond + Takeover)
	a.d.Sweep(ctx)
	evs := a.out.take()
	if len(evs) != 2 || evs[0].Key() != "trigger" || evs[1].Key() != updateSeqKey("u1") {
		t.Fatalf("queued %+v, want m1's start, then its update", evs)
	}
}

func updateSeqKey(id string) string {
	return notifier.Event{Action: notifier.ActionUpdate, Seq: UpdateSeq(id)}.Key()
}

// Messages speak the page's language and zone; a mail carries its
// one-click unsubscribe link, a webhook its JSON.
func TestComposeLocales(t *testing.T) {
	seoul, _ := time.LoadLocation("Asia/Seoul")
	settings := Settings{Site: "예시 상태", BaseURL: "https://status.example.com", Locale: "ko", Location: seoul, ConfirmWithin: 48 * time.Hour}
	svc := NewService(ServiceOptions{Self: "eu-1", Now: func() time.Time { return t0 }, Signer: Signer{Key: Secret("0123456789abcdef0123", nil, "")},
		Settings: func() Settings { return settings }, Logger: quiet})
	ann := mesh.Subscriber{ID: mesh.SubscriberID("ann@example.com"), Email: "ann@example.com"}
	e := Event{Incident: "inc1", Action: notifier.ActionUpdate, Seq: UpdateSeq("u1"), Title: "Checkout is down", Status: "monitoring",
		Body: "A fix is out.", At: t0}
	m, err := svc.Compose(e, ann)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "[예시 상태] 업데이트: Checkout is down (모니터링 중)" || !strings.Contains(m.Text, "게시: 2026-11-30 19:00 KST") ||
		!strings.Contains(m.Text, "구독 해지: https://status.example.com/unsubscribe?id="+ann.ID) ||
		!strings.HasPrefix(m.Unsubscribe, "https://status.example.com/unsubscribe?id="+ann.ID+"&s=") {
		t.Fatalf("Korean mail:\n%s\n%s\n%s", m.Subject, m.Text, m.Unsubscribe)
	}
	if _, err := svc.o.Signer.Unsubscribe(mustQuery(t, m.Unsubscribe)); err != nil {
		t.Fatalf("the mail's unsubscribe link does not check: %v", err)
	}
	settings.Locale, settings.Location = "en", time.UTC
	e.Action, e.Seq = notifier.ActionResolve, 0
	if m, _ := svc.Compose(e, ann); m.Subject != "[예시 상태] Resolved: Checkout is down" || !strings.Contains(m.Text, "Resolved at: 2026-11-30 10:00 UTC") {
		t.Fatalf("English mail:\n%s\n%s", m.Subject, m.Text)
	}
	hook := mesh.Subscriber{ID: "00000000000000b2", URL: "https://hooks.example.com/x", Secret: "s"}
	m, err = svc.Compose(e, hook)
	if err != nil || m.URL != hook.URL || m.Secret != "s" || !strings.Contains(string(m.Body), `"event":"incident.resolved"`) ||
		!strings.Contains(string(m.Body), `"url":"https://status.example.com/incidents/inc1"`) {
		t.Fatalf("webhook message %+v %s, %v", m, m.Body, err)
	}
}

func mustQuery(t *testing.T, u string) url.Values {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Query()
}
