// Package statuspage serves a node's HTTP interface: the public status page,
// the JSON APIs, the live websocket and the health endpoints. Everything it
// serves is read-only, except the write API for operators' incident updates
// and manual incidents (write.go), which needs a bearer token.
//
// The page and the JSON documents are rendered once per change (Refresh,
// and every Options.RefreshInterval for the uptime numbers) and served from
// memory with ETag, Last-Modified, Cache-Control and pre-compressed gzip;
// a request never queries the database, except the history API, whose
// range the caller chooses.
package statuspage

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

// Source provides what the server shows. Implementations must be safe for
// concurrent use. The server never holds a lock of its own while calling
// them.
type Source interface {
	// Status returns the node's current view. The value is immutable:
	// neither the Source nor the caller changes it (or its slices and
	// maps) once returned, and Status returns the same pointer for as long
	// as nothing in it changed, and a new one after a change. GET
	// /api/v1/status is served from a document encoded once per pointer,
	// so Status is called per request and must be cheap (an atomic load).
	Status() *Status
	// Ready reports whether the node has joined and has results, and if not,
	// why.
	Ready() (bool, string)
}

// Options configure a Server.
type Options struct {
	Source Source
	Logger *slog.Logger
	// Extra handlers mounted on the same mux (for example /metrics), by
	// pattern.
	Extra map[string]http.Handler

	// History is the result store (*store.Store); nil shows no history.
	History History
	// Page is the page's title, check presentation and maintenance windows.
	Page Page
	// RefreshInterval re-renders the page to keep uptime numbers current;
	// default 30s.
	RefreshInterval time.Duration
	// MinRefreshGap is the least time between two renders, so a burst of
	// Refresh calls costs one render; default 250ms.
	MinRefreshGap time.Duration
	// HistoryTTL lets a render reuse a check's uptime numbers and daily bar
	// read less than this long ago (and on the same UTC day), so renders
	// for state changes do not re-read every check's rollups; 0 (the
	// default) reads them on every render. Keep it under RefreshInterval.
	HistoryTTL time.Duration
	// HistorySlowTTL (at least HistoryTTL) is how long the 7, 30 and 90
	// day numbers and the bar's past days are reused; in between, renders
	// re-read only the 24 h number and today's cell.
	HistorySlowTTL time.Duration
	// MaxAge is the Cache-Control max-age of the page and documents;
	// default 10s.
	MaxAge time.Duration
	// Hub tunes the websocket hub.
	Hub HubOptions
	// Writer takes operators' incident updates and manual incidents (POST
	// /api/v1/incidents, /api/v1/incidents/{id}/updates); nil disables
	// the write API.
	Writer Writer
	// APIToken is the bearer token the write API requires; "" disables
	// the write API (every write answers 401).
	APIToken string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// HistoryLimits bound the history API per client and in concurrency.
	HistoryLimits HistoryLimits
	// MaxBodyBytes bounds every request body (default 64 KB): a larger
	// one is refused before anything else is answered.
	MaxBodyBytes int64
	// BadgeCacheSize bounds the badges kept rendered (they are rendered
	// on request), least recently served dropped first; default 1,024.
	BadgeCacheSize int
	// PageCacheSize bounds the check and incident pages kept rendered
	// (on request), least recently served dropped first; default 128.
	PageCacheSize int
	// CompactAbove is the most checks the index page shows with their
	// 90-day bars: a page of more lists each check in one line (its
	// name, linking to its own page, which has the bar; its state; its
	// 24 h uptime). Default 200; negative: no limit.
	CompactAbove int
}

// Server is the HTTP handler of a node.
type Server struct {
	opts    Options
	mux     *http.ServeMux
	hub     *Hub
	started time.Time
	assets  map[string]*doc
	assetV  string

	snap    atomic.Pointer[snapshot]
	dirty   atomic.Bool
	running atomic.Bool
	kick    chan struct{}
	buildMu sync.Mutex  // one render at a time
	gen     uint64      // guarded by buildMu
	rc      renderCache // guarded by buildMu

	pagesMu sync.Mutex
	pages   *lru[string, *pageSlot] // check and incident pages, rendered once per generation (pageOf)

	badgeMu      sync.Mutex
	badges       *lru[badgeKey, *badgeEntry] // rendered on request (badges.go)
	badgeCC      string                      // their Cache-Control
	badgeRenders atomic.Uint64               // for tests

	limit *limiter // of the history API

	page  atomic.Pointer[Page]        // replaced by SetPage on a config reload
	brand atomic.Pointer[brandAssets] // of the page's site; nil without branding

	histMu sync.Mutex
	hist   map[string]histEntry // by check; used when Options.HistoryTTL > 0

	reads atomic.Uint64 // numbers the renders' Source.Status calls, in order

	token atomic.Pointer[string] // the API token once SetAPIToken replaced Options.APIToken (write.go)

	subs atomic.Pointer[subsState] // visitors' and webhook subscriptions (subscribe.go)

	// GET /api/v1/status: the public view, and the operators' (with
	// targets, messages and addresses), each encoded once per Status.
	statusDoc [2]atomic.Pointer[statusEntry]
	statusMu  [2]sync.Mutex // one encoding of each at a time
	encodes   atomic.Uint64 // of statusDoc, for tests
}

// SetPage replaces the page's title, check presentation and maintenance
// windows (after a config reload) and re-renders.
func (s *Server) SetPage(p Page) {
	old := s.page.Swap(&p)
	if old == nil || !sameBrand(old.Site, p.Site) {
		// Another language, time zone or branding: nothing rendered
		// before can be reused.
		s.brand.Store(brandOf(p.Site, s.now()))
		s.dropRenderCache()
		s.pagesMu.Lock()
		s.pages.clear()
		s.pagesMu.Unlock()
	}
	s.Refresh()
}

// New returns a Server. Call Run in a goroutine for periodic re-rendering;
// without it the page is rendered on the first request after Refresh.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = 30 * time.Second
	}
	if opts.MinRefreshGap <= 0 {
		opts.MinRefreshGap = 250 * time.Millisecond
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = maxRequest
	}
	if opts.BadgeCacheSize <= 0 {
		opts.BadgeCacheSize = 1024
	}
	if opts.PageCacheSize <= 0 {
		opts.PageCacheSize = 128
	}
	if opts.CompactAbove == 0 {
		opts.CompactAbove = 200
	}
	s := &Server{opts: opts, mux: http.NewServeMux(), kick: make(chan struct{}, 1), hist: map[string]histEntry{},
		pages: newLRU[string, *pageSlot](opts.PageCacheSize), badges: newLRU[badgeKey, *badgeEntry](opts.BadgeCacheSize)}
	s.badgeCC = s.cacheControl()
	s.limit = newLimiter(opts.HistoryLimits, opts.Now)
	s.page.Store(&opts.Page)
	s.started = s.now().UTC()
	s.brand.Store(brandOf(opts.Page.Site, s.started))
	s.hub = NewHub(opts.Hub, opts.Logger)
	s.loadAssets()
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /api/v1/status", s.status)
	s.mux.HandleFunc("GET /{$}", s.serveDoc(keyIndex))
	s.mux.HandleFunc("GET /api/v1/incidents", s.serveDoc(keyIncidents))
	s.mux.HandleFunc("GET /api/v2/summary.json", s.serveDoc(keySummary))
	s.mux.HandleFunc("GET /api/v2/status.json", s.serveDoc(keyStatus))
	s.mux.HandleFunc("GET /api/v2/incidents.json", s.serveDoc(keySPInc))
	s.mux.HandleFunc("GET /api/v2/incidents/unresolved.json", s.serveDoc(keySPUnres))
	s.mux.HandleFunc("GET /api/v2/components.json", s.serveDoc(keyComponents))
	s.mux.HandleFunc("GET /api/v2/scheduled-maintenances.json", s.serveDoc(keySMAll))
	s.mux.HandleFunc("GET /api/v2/scheduled-maintenances/upcoming.json", s.serveDoc(keySMUpcoming))
	s.mux.HandleFunc("GET /api/v2/scheduled-maintenances/active.json", s.serveDoc(keySMActive))
	s.mux.HandleFunc("OPTIONS /api/v2/", preflight)
	s.mux.HandleFunc("GET /incidents/{id}", s.incidentPage)
	s.mux.HandleFunc("POST /api/v1/incidents", s.postIncident)
	s.mux.HandleFunc("POST /api/v1/incidents/{id}/updates", s.postUpdate)
	s.mux.HandleFunc("GET /feed.atom", s.serveDoc(keyFeed))
	s.mux.HandleFunc("GET /badge/{file}", s.badge)
	s.mux.HandleFunc("GET /checks/{name}", s.checkPage)
	s.mux.HandleFunc("GET /api/v1/checks/{name}/history", s.history)
	s.mux.HandleFunc("GET /api/v1/checks/{name}/history.csv", s.historyCSV)
	s.registerSeries() // every region's buckets: /series and /series.csv (series.go)
	s.mux.HandleFunc("GET /assets/{file}", s.asset)
	s.mux.HandleFunc("GET /brand/logo", s.brandLogo)
	s.mux.HandleFunc("GET /brand/custom.css", s.brandCSS)
	s.mux.HandleFunc("GET /favicon.ico", s.favicon)
	s.mux.Handle("GET /ws", s.hub)
	s.registerOperatorAPIs() // reports, ad-hoc probes, failure snapshots (reports.go)
	s.registerMaintenance()  // runtime maintenance windows (maintenance.go)
	s.registerSubscriptions()
	for pattern, h := range opts.Extra {
		s.mux.Handle(pattern, h)
	}
	return s
}

func (s *Server) now() time.Time { return s.opts.Now() }

// Hub returns the websocket hub.
func (s *Server) Hub() *Hub { return s.hub }

// Publish sends ev to the websocket clients and schedules a re-render.
// It never blocks.
func (s *Server) Publish(ev Event) {
	s.hub.Publish(ev)
	s.Refresh()
}

// Refresh marks the rendered page stale: the node calls it when a check's
// state, an incident or the membership changes. It never blocks; a burst
// of calls costs one render.
func (s *Server) Refresh() {
	s.dirty.Store(true)
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// RefreshNow renders at once and waits.
func (s *Server) RefreshNow(ctx context.Context) {
	s.dirty.Store(false)
	s.render(ctx, false)
}

// Run re-renders on Refresh and every RefreshInterval until ctx ends, then
// disconnects the websocket clients.
func (s *Server) Run(ctx context.Context) {
	s.running.Store(true)
	defer s.running.Store(false)
	defer s.hub.Close()
	t := time.NewTicker(s.opts.RefreshInterval)
	defer t.Stop()
	s.RefreshNow(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
		if ctx.Err() != nil {
			return
		}
		s.RefreshNow(ctx)
		select { // coalesce bursts
		case <-ctx.Done():
			return
		case <-time.After(s.opts.MinRefreshGap):
		}
	}
}

// current returns the snapshot to serve, rendering it when there is none,
// or when it is stale and no Run loop will: the request that finds it
// stale renders, others wait for that render.
func (s *Server) current(ctx context.Context) *snapshot {
	sn := s.snap.Load()
	if sn != nil && (s.running.Load() || !s.dirty.Load()) {
		return sn
	}
	switch {
	case sn == nil:
		s.render(ctx, true)
	case s.dirty.Swap(false):
		s.render(ctx, false)
	default: // another request is rendering
		s.buildMu.Lock()
		s.buildMu.Unlock() //nolint:staticcheck // waits for the render in progress
	}
	return s.snap.Load()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["X-Content-Type-Options"] = hdrNoSniff
	h["Referrer-Policy"] = hdrNoReferrer
	h["Content-Security-Policy"] = hdrCSP
	h["X-Frame-Options"] = hdrDeny
	cors(h, r)
	if !s.boundBody(w, r) {
		return
	}
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && isHistoryPath(r.URL.Path) {
		s.guardHistory(w, r, s.mux)
		return
	}
	s.mux.ServeHTTP(w, r)
}

var (
	hdrNoReferrer = []string{"no-referrer"}
	hdrDeny       = []string{"DENY"}
	hdrCSP        = []string{"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"}
)

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	ok, why := s.opts.Source.Ready()
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: " + why + "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// statusEntry is GET /api/v1/status encoded from one Status, which it
// does not keep alive (of thousands of checks, it is tens of MB, and the
// Source's next one replaces it): a Status collected since cannot be the
// one asked about.
type statusEntry struct {
	src    weak.Pointer[Status]
	srcNil bool
	at     time.Time // src's GeneratedAt
	d      *doc
}

// status serves GET /api/v1/status from a document encoded once per
// Status pointer (Source.Status returns the same one while nothing
// changed): a request costs a pointer comparison and the write. Without
// an Authorization header it is the public view (publicStatus); with the
// API token, the operators' view; with another token, 401.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	view := viewPublic
	if _, sent := r.Header["Authorization"]; sent {
		if !s.operator(w, r) {
			return
		}
		view = viewOperator
	}
	d := s.statusDocOf(s.opts.Source.Status(), view)
	if d == nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	d.serve(w, r)
}

// Views of /api/v1/status.
const (
	viewPublic   = 0
	viewOperator = 1
)

var statusCache = [2]string{"no-cache", "private, no-cache"}

// statusDocOf returns the document of st in a view, encoding it if the
// cached one is of another Status, unless that one is newer. One request
// encodes at a time; meanwhile the others serve the previous document (a
// Status the Source returned moments ago) or, before the first, wait for
// it.
func (s *Server) statusDocOf(st *Status, view int) *doc {
	fresh := func(e *statusEntry) bool {
		if e == nil || st == nil || e.srcNil {
			return e != nil && st == nil && e.srcNil
		}
		return e.src.Value() == st || st.GeneratedAt.Before(e.at)
	}
	e := s.statusDoc[view].Load()
	if fresh(e) {
		return e.d
	}
	mu := &s.statusMu[view]
	if !mu.TryLock() {
		if e != nil {
			return e.d
		}
		mu.Lock()
	}
	defer mu.Unlock()
	e = s.statusDoc[view].Load()
	if fresh(e) {
		return e.d
	}
	s.encodes.Add(1)
	out := st
	if view == viewPublic {
		out = publicStatus(st)
	}
	body, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		s.opts.Logger.Error("statuspage: encode status", "err", err)
		if e != nil {
			return e.d
		}
		return nil
	}
	mod := s.now()
	if st != nil && !st.GeneratedAt.IsZero() {
		mod = st.GeneratedAt
	}
	var prev *doc
	if e != nil {
		prev = e.d
		// Last-Modified has a resolution of a second: a change within
		// the second of the previous document must not look unmodified.
		if pm := prev.mod; !mod.Truncate(time.Second).After(pm) {
			mod = pm.Add(time.Second)
		}
	}
	d := newDoc(append(body, '\n'), "application/json", statusCache[view], mod, prev) // prev if the same bytes
	if d != prev {
		d.vary = hdrVaryAuth
	}
	ne := &statusEntry{src: weak.Make(st), srcNil: st == nil, d: d}
	if st != nil {
		ne.at = st.GeneratedAt
	}
	s.statusDoc[view].Store(ne)
	return d
}

func writeJSON(w http.ResponseWriter, r *http.Request, v any, log *slog.Logger) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		log.Error("encode json", "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(body, '\n'))
}

// MS converts a duration to float milliseconds, rounded to 0.1 ms.
func MS(d time.Duration) float64 {
	return float64(d.Round(100*time.Microsecond)) / float64(time.Millisecond)
}
