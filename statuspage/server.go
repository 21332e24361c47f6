// Package statuspage serves a node's HTTP interface: the public status page,
// the JSON APIs and the health endpoints. Everything it serves is read-only.
package statuspage

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"
)

// Source provides what the server shows. Implementations must be safe for
// concurrent use.
type Source interface {
	// Status returns the node's current view.
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
}

// Server is the HTTP handler of a node.
type Server struct {
	opts Options
	mux  *http.ServeMux
}

// New returns a Server.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{opts: opts, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /api/v1/status", s.status)
	for pattern, h := range opts.Extra {
		s.mux.Handle(pattern, h)
	}
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	s.mux.ServeHTTP(w, r)
}

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

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st := s.opts.Source.Status()
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, r, st, s.opts.Logger)
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
