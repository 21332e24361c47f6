package statuspage

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Event is a live update sent to every websocket client as JSON.
type Event struct {
	Type       string                 `json:"type"` // "check"
	Name       string                 `json:"name"`
	State      string                 `json:"state"`
	Since      time.Time              `json:"since"`
	IncidentID string                 `json:"incident_id"`
	Regions    map[string]*RegionVote `json:"regions,omitempty"`
}

// HubOptions tune the websocket hub; zero values take the defaults.
type HubOptions struct {
	SendBuffer   int           // messages queued per client before it is dropped; default 16
	PingInterval time.Duration // default 30s
	WriteTimeout time.Duration // per write; default 10s
	MaxClients   int           // connections refused beyond this; default 2048 (half of HTTPOptions.MaxConns)
}

// Hub fans events out to websocket clients. Publish never blocks: a client
// whose buffer is full is dropped.
type Hub struct {
	opts     HubOptions
	log      *slog.Logger
	upgrader websocket.Upgrader

	mu      sync.Mutex
	clients map[*wsClient]struct{}
	closed  bool

	dropped atomic.Uint64
}

type wsClient struct {
	conn *websocket.Conn
	send chan []byte
	once sync.Once
	done chan struct{}
}

func (c *wsClient) close() {
	c.once.Do(func() { close(c.done) })
}

// NewHub returns a hub.
func NewHub(opts HubOptions, log *slog.Logger) *Hub {
	if opts.SendBuffer <= 0 {
		opts.SendBuffer = 16
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 30 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.MaxClients <= 0 {
		opts.MaxClients = DefaultHTTPOptions().MaxConns / 2
	}
	if log == nil {
		log = slog.Default()
	}
	return &Hub{opts: opts, log: log, clients: map[*wsClient]struct{}{},
		upgrader: websocket.Upgrader{ReadBufferSize: 512, WriteBufferSize: 4096}}
}

// Publish sends ev to every client without blocking.
func (h *Hub) Publish(ev Event) {
	if ev.Type == "" {
		ev.Type = "check"
	}
	ev.Regions = publicVotes(ev.Regions) // no raw error messages: the websocket is public
	b, err := json.Marshal(ev)
	if err != nil {
		h.log.Error("statuspage: encode event", "err", err)
		return
	}
	h.Broadcast(b)
}

// Broadcast sends a raw message to every client without blocking; clients
// whose buffer is full are dropped.
func (h *Hub) Broadcast(msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		select {
		case c.send <- msg:
		default:
			delete(h.clients, c)
			c.close()
			_ = c.conn.Close() // unblocks a writer stuck on the slow peer
			h.dropped.Add(1)
		}
	}
}

// Clients returns the number of connected clients.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// Dropped returns how many slow clients were dropped.
func (h *Hub) Dropped() uint64 { return h.dropped.Load() }

// Close disconnects every client and refuses new ones.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.clients {
		delete(h.clients, c)
		c.close()
	}
}

func (h *Hub) remove(c *wsClient) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
	c.close()
}

// ServeHTTP upgrades to a websocket and streams events.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	full := h.closed || len(h.clients) >= h.opts.MaxClients
	h.mu.Unlock()
	if full {
		http.Error(w, "too many clients", http.StatusServiceUnavailable)
		return
	}
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := &wsClient{conn: conn, send: make(chan []byte, h.opts.SendBuffer), done: make(chan struct{})}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = conn.Close()
		return
	}
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	go h.writer(c)
	h.reader(c)
}

// reader consumes control frames (pongs, close) and discards data; it ends
// the client when the connection fails or the peer goes silent.
func (h *Hub) reader(c *wsClient) {
	defer h.remove(c)
	c.conn.SetReadLimit(512)
	wait := 2*h.opts.PingInterval + h.opts.WriteTimeout
	_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	c.conn.SetPongHandler(func(string) error { return c.conn.SetReadDeadline(time.Now().Add(wait)) })
	for {
		if _, _, err := c.conn.NextReader(); err != nil {
			return
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	}
}

// writer is the only goroutine writing to the connection.
func (h *Hub) writer(c *wsClient) {
	t := time.NewTicker(h.opts.PingInterval)
	defer func() {
		t.Stop()
		_ = c.conn.Close()
	}()
	for {
		select {
		case msg := <-c.send:
			_ = c.conn.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout))
			if err := c.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
				h.remove(c)
				return
			}
		case <-t.C:
			_ = c.conn.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				h.remove(c)
				return
			}
		case <-c.done:
			_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
			_ = c.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye"))
			return
		}
	}
}
