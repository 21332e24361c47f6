package statuspage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/report"
)

// Operator APIs: SLA reports (this file), ad-hoc probes from every region
// (probeapi.go) and failure snapshots (snapshots.go). Each needs the API
// token, and each is served when the Source implements its optional
// interface (the node does); otherwise it answers 501.

// Reporter makes SLA reports (GET /api/v1/reports).
type Reporter interface {
	// Report computes the report of p; Params.Now is the caller's to set
	// or leave zero (now).
	Report(ctx context.Context, p report.Params) (*report.Report, error)
	// ReportLocation is the time zone dates without one are read in
	// (statuspage.timezone).
	ReportLocation() *time.Location
}

// registerOperatorAPIs mounts the operator APIs; New calls it.
func (s *Server) registerOperatorAPIs() {
	s.mux.HandleFunc("GET /api/v1/reports", s.reports)
	s.registerProbeAPI()
	s.registerSnapshotAPI()
}

// authorizeToken checks the API token of a read that may reveal internal
// detail, in constant time; it answers 401 itself.
func (s *Server) authorizeToken(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Set("Cache-Control", "no-store")
	if s.apiToken() == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vantage"`)
		writeErr(w, http.StatusUnauthorized, "this API is disabled: no API token is configured "+
			"(set statuspage.api_token in the config or VANTAGE_API_TOKEN)")
		return false
	}
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vantage"`)
		writeErr(w, http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <token>")
		return false
	}
	if !s.tokenMatches(strings.TrimSpace(tok)) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vantage", error="invalid_token"`)
		s.opts.Logger.Warn("statuspage: wrong API token", "remote", r.RemoteAddr, "path", r.URL.Path)
		writeErr(w, http.StatusUnauthorized, "invalid bearer token")
		return false
	}
	return true
}

func (s *Server) tokenMatches(tok string) bool {
	got, want := sha256.Sum256([]byte(tok)), sha256.Sum256([]byte(s.apiToken()))
	return s.apiToken() != "" && subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// reports serves GET /api/v1/reports?from=&to=&group=&format=&tz=.
func (s *Server) reports(w http.ResponseWriter, r *http.Request) {
	if !s.authorizeToken(w, r) {
		return
	}
	rp, ok := s.opts.Source.(Reporter)
	if !ok {
		writeErr(w, http.StatusNotImplemented, "reports are not available on this server")
		return
	}
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = report.FormatJSON
	}
	if !report.ValidFormat(format) {
		writeErr(w, http.StatusBadRequest, fmt.Sprintf("format %q: want json, csv or html", format))
		return
	}
	loc := rp.ReportLocation()
	if tz := q.Get("tz"); tz != "" {
		l, err := config.LoadLocation(tz)
		if err != nil {
			writeErr(w, http.StatusBadRequest, "tz: "+err.Error())
			return
		}
		loc = l
	}
	var p report.Params
	for _, b := range []struct {
		name string
		t    *time.Time
	}{{"from", &p.From}, {"to", &p.To}} {
		v := q.Get(b.name)
		if v == "" {
			writeErr(w, http.StatusBadRequest, b.name+" is required: a date (2026-11-01) or an RFC 3339 time")
			return
		}
		t, err := report.ParseTime(v, loc)
		if err != nil {
			writeErr(w, http.StatusBadRequest, b.name+": "+err.Error())
			return
		}
		*b.t = t
	}
	if !p.To.After(p.From) {
		writeErr(w, http.StatusBadRequest, "to must be after from")
		return
	}
	if p.To.Sub(p.From) > report.MaxSpan {
		writeErr(w, http.StatusBadRequest, "the period is longer than 400 days")
		return
	}
	p.Group, p.Location = q.Get("group"), loc
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	rep, err := rp.Report(ctx, p)
	switch {
	case errors.Is(err, report.ErrUnknownGroup):
		writeErr(w, http.StatusNotFound, fmt.Sprintf("no check belongs to group %q", p.Group))
		return
	case err != nil:
		s.opts.Logger.Error("statuspage: report", "err", err)
		writeErr(w, http.StatusInternalServerError, "the report could not be made: "+err.Error())
		return
	}
	var buf bytes.Buffer
	code := localeEN
	if pg := s.page.Load(); pg != nil {
		code = localeOf(pg.Site).code
	}
	if err := report.RenderIn(&buf, rep, format, code); err != nil {
		s.opts.Logger.Error("statuspage: render report", "err", err)
		writeErr(w, http.StatusInternalServerError, "the report could not be rendered")
		return
	}
	h := w.Header()
	h.Set("Content-Type", report.ContentType(format))
	name := fmt.Sprintf("vantage-report-%s-%s.%s", p.From.In(loc).Format("20060102"), p.To.In(loc).Format("20060102"), format)
	if format == report.FormatCSV {
		h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	} else {
		h.Set("Content-Disposition", `inline; filename="`+name+`"`)
	}
	if format == report.FormatHTML {
		// The report is one self-contained file: inline styles and SVG, no script.
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'")
	}
	_, _ = w.Write(buf.Bytes())
}
