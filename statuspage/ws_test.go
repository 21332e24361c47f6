package statuspage

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func dial(t *testing.T, ts *httptest.Server) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	t.Cleanup(func() { c.Close() })
	return c
}

func waitClients(t *testing.T, h *Hub, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.Clients() != n {
		if time.Now().After(deadline) {
			t.Fatalf("clients %d, want %d", h.Clients(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWebsocketReceivesEvent(t *testing.T) {
	s, _, ts := newTestServer(t, nil)
	c := dial(t, ts)
	waitClients(t, s.Hub(), 1)
	since := testNow.Add(-time.Minute)
	s.Publish(Event{Name: "api", State: "down", Since: since, IncidentID: "inc-1",
		Regions: map[string]*RegionVote{"eu-west": {Vote: "down", Error: "timeout"}}})
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, msg, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(msg, &ev); err != nil {
		t.Fatal(err)
	}
	if ev["type"] != "check" || ev["name"] != "api" || ev["state"] != "down" || ev["incident_id"] != "inc-1" ||
		ev["since"] != "2026-11-22T09:59:00Z" || ev["regions"].(map[string]any)["eu-west"].(map[string]any)["vote"] != "down" {
		t.Fatalf("event %s", msg)
	}
}

func TestWebsocketPings(t *testing.T) {
	src := &fakeSource{ready: true, st: testStatus()}
	s := New(Options{Source: src, Hub: HubOptions{PingInterval: 20 * time.Millisecond}})
	ts := httptest.NewServer(s)
	defer ts.Close()
	c := dial(t, ts)
	pings := make(chan struct{}, 10)
	c.SetPingHandler(func(string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return nil
	})
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	select {
	case <-pings:
	case <-time.After(5 * time.Second):
		t.Fatal("no ping")
	}
}

// A client that never reads fills its buffer and is dropped; Publish never
// blocks, and a reading client keeps receiving everything.
func TestWebsocketSlowClientDropped(t *testing.T) {
	src := &fakeSource{ready: true, st: testStatus()}
	s := New(Options{Source: src, Hub: HubOptions{SendBuffer: 4}})
	ts := httptest.NewServer(s)
	defer ts.Close()
	h := s.Hub()
	slow := dial(t, ts) // never reads
	fast := dial(t, ts)
	waitClients(t, h, 2)
	read := make(chan struct{}, 16)
	go func() {
		for {
			if _, _, err := fast.ReadMessage(); err != nil {
				close(read)
				return
			}
			read <- struct{}{}
		}
	}()
	msg := []byte(strings.Repeat("x", 256<<10)) // the slow client's socket buffers fill after a few
	var worst time.Duration
	sent := 0
	for h.Dropped() == 0 && sent < 2000 {
		for range 3 { // fewer than the buffer: the fast client never falls behind
			t0 := time.Now()
			h.Broadcast(msg)
			worst = max(worst, time.Since(t0))
			sent++
		}
		for range 3 {
			select {
			case _, ok := <-read:
				if !ok {
					t.Fatalf("fast client closed after %d messages", sent)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("fast client stalled after %d messages", sent)
			}
		}
	}
	if h.Dropped() != 1 {
		t.Fatalf("dropped %d after %d messages, want the slow client only", h.Dropped(), sent)
	}
	if worst > 100*time.Millisecond {
		t.Fatalf("a Broadcast took %v", worst)
	}
	waitClients(t, h, 1)
	s.Publish(Event{Name: "last", State: "up"})
	if _, ok := <-read; !ok {
		t.Fatal("fast client lost after the drop")
	}
	_ = slow
	t.Logf("slow client dropped after %d messages; slowest Broadcast %v", sent, worst)
}
