package statuspage

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/netutil"
)

// The public surface's limits: the HTTP server's timeouts and connection
// cap (HTTPOptions, for the node's server), request bodies bounded before
// anything is answered, and the history API (whose range the caller
// chooses and which reads the database) limited per client and in
// concurrency, so that it cannot starve the page's reads.

// HTTPOptions harden the node's HTTP server.
type HTTPOptions struct {
	// ReadHeaderTimeout bounds reading a request's headers, ReadTimeout
	// the whole request with its body.
	ReadHeaderTimeout, ReadTimeout time.Duration
	// WriteTimeout bounds writing a response (the history API's handlers
	// get longer; the websocket sets its own deadlines).
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes int
	// MaxConns is the most connections served at once, websockets
	// included; more wait to be accepted.
	MaxConns int
}

// DefaultHTTPOptions are the node's HTTP limits.
func DefaultHTTPOptions() HTTPOptions {
	return HTTPOptions{ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second, WriteTimeout: 30 * time.Second,
		IdleTimeout: 60 * time.Second, MaxHeaderBytes: 32 << 10, MaxConns: 4096}
}

// NewHTTPServer is an http.Server for h with o's limits (zero values take
// the defaults); log receives the server's own errors.
func NewHTTPServer(h http.Handler, o HTTPOptions, log *slog.Logger) *http.Server {
	d := DefaultHTTPOptions()
	pick := func(v, def time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return def
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = d.MaxHeaderBytes
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: pick(o.ReadHeaderTimeout, d.ReadHeaderTimeout),
		ReadTimeout: pick(o.ReadTimeout, d.ReadTimeout), WriteTimeout: pick(o.WriteTimeout, d.WriteTimeout),
		IdleTimeout: pick(o.IdleTimeout, d.IdleTimeout), MaxHeaderBytes: o.MaxHeaderBytes}
	if log != nil {
		srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	return srv
}

// LimitListener serves at most n connections of ln at once (default
// DefaultHTTPOptions().MaxConns when n <= 0).
func LimitListener(ln net.Listener, n int) net.Listener {
	if n <= 0 {
		n = DefaultHTTPOptions().MaxConns
	}
	return netutil.LimitListener(ln, n)
}

// HistoryLimits bound the history API (GET /api/v1/checks/...): per
// client, a token bucket of Burst requests refilled at PerSecond; for all
// clients, Concurrent requests at once, others waiting up to QueueWait
// for a turn. Requests with the API token are not rate limited (they
// share the concurrency). Zero values take the defaults.
type HistoryLimits struct {
	PerSecond  float64       // default 0.5: one request every 2 s after the burst
	Burst      int           // default 10
	Concurrent int           // default 2: the store's read pool has 4 connections, the page's renders keep the rest
	QueueWait  time.Duration // default 5s
	Clients    int           // clients tracked at most (default 10000); beyond, the idlest are forgotten
}

func (l HistoryLimits) withDefaults() HistoryLimits {
	if l.PerSecond <= 0 {
		l.PerSecond = 0.5
	}
	if l.Burst <= 0 {
		l.Burst = 10
	}
	if l.Concurrent <= 0 {
		l.Concurrent = 2
	}
	if l.QueueWait <= 0 {
		l.QueueWait = 5 * time.Second
	}
	if l.Clients <= 0 {
		l.Clients = 10000
	}
	return l
}

// historyWriteTimeout is how long a history response may take to write.
const historyWriteTimeout = 5 * time.Minute

// limiter is the history API's rate and concurrency limit.
type limiter struct {
	l    HistoryLimits
	now  func() time.Time
	sem  chan struct{}
	mu   sync.Mutex
	buck map[netip.Prefix]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(l HistoryLimits, now func() time.Time) *limiter {
	l = l.withDefaults()
	return &limiter{l: l, now: now, sem: make(chan struct{}, l.Concurrent), buck: map[netip.Prefix]*bucket{}}
}

// clientOf is the client a request counts against: its address, or its
// /64 for IPv6 (one host commonly has many addresses in its /64).
func clientOf(r *http.Request) netip.Prefix {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// allow takes a token of the client's bucket; if there is none, it returns
// how long until there is.
func (lm *limiter) allow(c netip.Prefix) (bool, time.Duration) {
	now := lm.now()
	lm.mu.Lock()
	defer lm.mu.Unlock()
	b := lm.buck[c]
	if b == nil {
		if len(lm.buck) >= lm.l.Clients {
			lm.prune(now)
		}
		b = &bucket{tokens: float64(lm.l.Burst), at: now}
		lm.buck[c] = b
	}
	if el := now.Sub(b.at).Seconds(); el > 0 {
		b.tokens = math.Min(float64(lm.l.Burst), b.tokens+el*lm.l.PerSecond)
	}
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / lm.l.PerSecond * float64(time.Second))
	return false, wait
}

// prune forgets the clients whose buckets are full again, or, if that
// frees nothing, half of them, the idlest first; lm.mu is held.
func (lm *limiter) prune(now time.Time) {
	full := time.Duration(float64(lm.l.Burst) / lm.l.PerSecond * float64(time.Second))
	for c, b := range lm.buck {
		if now.Sub(b.at) >= full {
			delete(lm.buck, c)
		}
	}
	if len(lm.buck) < lm.l.Clients {
		return
	}
	ats := make([]time.Time, 0, len(lm.buck))
	for _, b := range lm.buck {
		ats = append(ats, b.at)
	}
	cut := median(ats)
	for c, b := range lm.buck {
		if !b.at.After(cut) {
			delete(lm.buck, c)
		}
	}
}

func median(ts []time.Time) time.Time {
	sorted := slices.Clone(ts)
	slices.SortFunc(sorted, func(a, b time.Time) int { return a.Compare(b) })
	return sorted[len(sorted)/2]
}

// acquire waits for a turn, at most QueueWait or until ctx ends.
func (lm *limiter) acquire(ctx context.Context) bool {
	select {
	case lm.sem <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(lm.l.QueueWait)
	defer t.Stop()
	select {
	case lm.sem <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func (lm *limiter) release() { <-lm.sem }

// isHistoryPath reports whether a path is one of the history API's
// (GET /api/v1/checks/{name}/history, history.csv, series and the like).
func isHistoryPath(p string) bool {
	rest, ok := strings.CutPrefix(p, "/api/v1/checks/")
	return ok && strings.Contains(rest, "/")
}

// guardHistory serves a history API request within the limits: an
// operator's (with the API token) is marked so in its context and not
// rate limited; a wrong token is refused; a client over its rate gets 429
// with Retry-After, and a request that finds no turn in time 503.
func (s *Server) guardHistory(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if _, sent := r.Header["Authorization"]; sent {
		if !s.operator(w, r) {
			return
		}
		r = withOperator(r)
	} else if ok, wait := s.limit.allow(clientOf(r)); !ok {
		secs := max(1, int(math.Ceil(wait.Seconds())))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeErr(w, http.StatusTooManyRequests, fmt.Sprintf("too many history requests from this address: retry in %d s", secs))
		return
	}
	if !s.limit.acquire(r.Context()) {
		w.Header().Set("Retry-After", "5")
		writeErr(w, http.StatusServiceUnavailable, "the history API is busy: retry in a few seconds")
		return
	}
	defer s.limit.release()
	// A large range takes longer to write than a page.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(historyWriteTimeout))
	next.ServeHTTP(w, r)
}

// boundBody answers 413 for a request whose declared body is over the
// limit, and caps the body of every other one, before any handler (and
// so before a token is checked) reads it. It reports whether to go on.
func (s *Server) boundBody(w http.ResponseWriter, r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	if r.ContentLength > s.opts.MaxBodyBytes {
		w.Header().Set("Connection", "close")
		writeErr(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", s.opts.MaxBodyBytes))
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
	return true
}
