package statuspage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets/*
var assetFS embed.FS

// tmplSet is the page's templates with one locale's functions.
type tmplSet struct {
	index, check, inc *template.Template
}

// parseTemplates parses the templates for l.
func parseTemplates(l *locale) *tmplSet {
	parse := func(files ...string) *template.Template {
		return template.Must(template.New("").Funcs(l.funcs()).ParseFS(templateFS, files...))
	}
	return &tmplSet{
		index: parse("templates/layout.html", "templates/index.html", "templates/index-parts.html"),
		check: parse("templates/layout.html", "templates/check.html", "templates/check-parts.html"),
		inc:   parse("templates/layout.html", "templates/incident.html"),
	}
}

// Keys of the documents of a snapshot.
const (
	keyIndex     = "/"
	keyIncidents = "/api/v1/incidents"
	keySummary   = "/api/v2/summary.json"
	keyStatus    = "/api/v2/status.json"
	keyFeed      = "/feed.atom"
	keySPInc     = "/api/v2/incidents.json"
	keySPUnres   = "/api/v2/incidents/unresolved.json"
)

// snapshot is one render: the view and its documents, immutable once
// published.
type snapshot struct {
	gen  uint64
	read uint64 // the number of the Source.Status call rendered
	v    *view
	docs map[string]*doc
}

func (s *Server) cacheControl() string {
	sec := int(s.opts.MaxAge / time.Second)
	return fmt.Sprintf("public, max-age=%d, stale-while-revalidate=%d, stale-if-error=86400", sec, 3*sec)
}

// render reads the Source, without holding a lock, and renders, unless a
// render that read the Source later has been published meanwhile (its
// snapshot is at least as fresh), or, with first, unless there is a
// snapshot already.
func (s *Server) render(ctx context.Context, first bool) {
	n := s.reads.Add(1)
	st := s.opts.Source.Status()
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	if sn := s.snap.Load(); sn != nil && (first || sn.read > n) {
		return
	}
	s.renderLocked(ctx, st, n)
}

// renderLocked renders st, read as the Source's read-th Status; buildMu
// is held.
func (s *Server) renderLocked(ctx context.Context, st *Status, read uint64) {
	start := time.Now()
	v := s.buildView(ctx, st)
	prev := s.snap.Load()
	if ctx.Err() != nil && prev != nil {
		return // cut short (shutdown): the previous render stays
	}
	old := func(k string) *doc {
		if prev == nil {
			return nil
		}
		return prev.docs[k]
	}
	s.gen++
	sn := &snapshot{gen: s.gen, read: read, v: v, docs: map[string]*doc{}}
	cc := s.cacheControl()
	at := v.At

	sn.docs[keyIndex] = s.indexDoc(s.pageData(v, nil), cc, old(keyIndex))
	sn.docs[keySummary] = s.summaryDoc(v, s.started, cc, old(keySummary))
	sn.docs[keyStatus] = newDoc(mustJSON(spStatusDoc{Page: v.spPage(), Status: v.spStatus()}), "application/json", cc, at, old(keyStatus))
	s.renderStatuspage(sn, v, cc, old)
	sn.docs[keyIncidents] = newDoc(mustJSON(v.incidentsJSON()), "application/json", cc, at, old(keyIncidents))
	sn.docs[keySPInc] = newDoc(mustJSON(v.incidentsDoc(s.started, false)), "application/json", cc, at, old(keySPInc))
	sn.docs[keySPUnres] = newDoc(mustJSON(v.incidentsDoc(s.started, true)), "application/json", cc, at, old(keySPUnres))
	if feed, err := v.atom(); err == nil {
		sn.docs[keyFeed] = newDoc(feed, "application/atom+xml; charset=utf-8", cc, at, old(keyFeed))
	} else {
		s.opts.Logger.Error("statuspage: render feed", "err", err)
	}
	s.rc.prune(v)
	s.snap.Store(sn)
	s.opts.Logger.Debug("statuspage: rendered", "gen", sn.gen, "checks", len(v.Checks), "took", time.Since(start))
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err) // only fixed, marshalable types are encoded
	}
	return append(b, '\n')
}

// pageData is what the templates see.
type pageData struct {
	V            *view
	C            *checkView
	PageTitle    string
	AssetVersion string
	Chart        template.HTML
	Series       []chartSeries
	Region24     []regionStat
	Daily        []dailyRow
	Incidents    []*incidentView
	I            *incidentView // the incident page's incident
	L            *locale       // the page's language and time zone
	Meta         string        // the meta description
	Brand        *brandAssets  // logo, links and custom stylesheet; nil without
}

type regionStat struct {
	Name, Uptime, Avg, Max string
	Count                  int64
}

type dailyRow struct {
	Day, Uptime, Avg, P95, Max string
	Count                      int64
}

func (s *Server) pageData(v *view, c *checkView) *pageData {
	l := localeOf(v.Page.Site)
	pd := &pageData{V: v, C: c, PageTitle: v.Title, AssetVersion: s.assetV, L: l, Brand: s.brand.Load()}
	pd.Meta = v.Page.Description
	if pd.Meta == "" {
		pd.Meta = l.t("Live status, uptime and incidents of %s.", v.Title)
	}
	if c != nil {
		pd.PageTitle = c.Label + " · " + v.Title
		pd.Meta = c.Description
		if pd.Meta == "" {
			pd.Meta = l.t("Status, uptime and latency of %s, from every region.", c.Label)
		}
	}
	return pd
}

func (s *Server) serveDoc(key string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d := s.current(r.Context()).docs[key]
		if d == nil {
			http.Error(w, "not available", http.StatusServiceUnavailable)
			return
		}
		d.serve(w, r)
	}
}

// checkPage serves /checks/{name}, rendered once per snapshot generation.
func (s *Server) checkPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	sn := s.current(r.Context())
	c := sn.v.byName[name]
	if c == nil {
		http.Error(w, "unknown check", http.StatusNotFound)
		return
	}
	e := s.pageOf(name, sn.gen, func(old *pageEntry) *pageEntry { return s.renderCheck(r.Context(), sn, c, old) })
	e.d.serve(w, r)
}

// pageSlot holds a check or incident page's latest rendering; mu is held
// by the one request that renders it.
type pageSlot struct {
	mu sync.Mutex
	e  atomic.Pointer[pageEntry]
}

// pageOf returns the page of key for snapshot generation gen, rendering
// it with render if the one kept is older. One request renders a page at
// a time, holding no lock but that page's own: meanwhile other requests
// for it serve its previous rendering (that of a snapshot moments older),
// and only requests for a page never rendered wait. pagesMu guards the
// map of slots only, never a render.
func (s *Server) pageOf(key string, gen uint64, render func(old *pageEntry) *pageEntry) *pageEntry {
	s.pagesMu.Lock()
	sl, _ := s.pages.get(key)
	if sl == nil {
		sl = &pageSlot{}
		s.pages.put(key, sl)
	}
	s.pagesMu.Unlock()
	e := sl.e.Load()
	if e != nil && e.gen >= gen {
		return e
	}
	if !sl.mu.TryLock() {
		if e != nil {
			return e // being rendered: the previous one meanwhile
		}
		sl.mu.Lock()
	}
	defer sl.mu.Unlock()
	if e = sl.e.Load(); e == nil || e.gen < gen {
		e = render(e)
		sl.e.Store(e)
	}
	return e
}

// incidentPage serves /incidents/{id}, rendered once per snapshot
// generation, for the incidents the page lists (the newest 200).
func (s *Server) incidentPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	sn := s.current(r.Context())
	iv := sn.v.incByID[id]
	if iv == nil {
		http.Error(w, "unknown incident", http.StatusNotFound)
		return
	}
	key := "incident/" + id // check names contain no slash
	e := s.pageOf(key, sn.gen, func(old *pageEntry) *pageEntry {
		var prev *doc
		if old != nil {
			prev = old.d
		}
		pd := s.pageData(sn.v, nil)
		pd.I = iv
		pd.PageTitle = iv.Title + " · " + sn.v.Title
		pd.Meta = iv.Title + " · " + pd.L.statusText(iv.Status)
		var buf bytes.Buffer
		if err := pd.L.tmpl.inc.ExecuteTemplate(&buf, "incident.html", pd); err != nil {
			s.opts.Logger.Error("statuspage: render incident page", "incident", id, "err", err)
			buf.Reset()
			buf.WriteString("<!doctype html><title>Status</title><p>This page could not be rendered.</p>")
		}
		return &pageEntry{gen: sn.gen, d: newDoc(buf.Bytes(), "text/html; charset=utf-8", s.cacheControl(), sn.v.At, prev)}
	})
	e.d.serve(w, r)
}

// renderCheck renders the check page of c for snapshot sn; old is the
// page's previous entry, whose main part is reused if c, the minute and
// the regions are the same.
func (s *Server) renderCheck(ctx context.Context, sn *snapshot, c *checkView, old *pageEntry) *pageEntry {
	v := sn.v
	pd := s.pageData(v, c)
	to := v.At.Truncate(time.Minute).Add(time.Minute)
	from := to.Add(-24 * time.Hour)
	regions := map[string]bool{}
	for _, r := range c.Regions {
		regions[r.Name] = true
	}
	for r := range v.Status.Cluster.Regions {
		regions[r] = true
	}
	names := make([]string, 0, len(regions))
	for r := range regions {
		names = append(names, r)
	}
	slices.Sort(names)
	e := &pageEntry{gen: sn.gen, cv: c, to: to, regions: names}
	var prev *doc
	if old != nil {
		prev = old.d
		if old.cv == c && old.to.Equal(to) && slices.Equal(old.regions, names) {
			e.main = old.main
		}
	}
	for _, iv := range v.Incidents {
		if iv.affects(c.Name) && len(pd.Incidents) < 20 {
			pd.Incidents = append(pd.Incidents, iv)
		}
	}
	var buf bytes.Buffer
	tmpl := pd.L.tmpl.check
	err := tmpl.ExecuteTemplate(&buf, "check-top", pd)
	if err == nil && e.main == nil {
		s.checkHistory(ctx, pd, names, from, to)
		start := buf.Len()
		if err = tmpl.ExecuteTemplate(&buf, "check-main", pd); err == nil {
			e.main = bytes.Clone(buf.Bytes()[start:])
		}
	} else if err == nil {
		buf.Write(e.main)
	}
	if err == nil {
		err = tmpl.ExecuteTemplate(&buf, "check-bottom", pd)
	}
	if err != nil {
		s.opts.Logger.Error("statuspage: render check page", "check", c.Name, "err", err)
		buf.Reset()
		buf.WriteString("<!doctype html><title>Status</title><p>This page could not be rendered.</p>")
		e.main = nil
	}
	e.d = newDoc(buf.Bytes(), "text/html; charset=utf-8", s.cacheControl(), v.At, prev)
	return e
}

// checkHistory reads what a check page shows of the last 24 hours and 30
// days.
func (s *Server) checkHistory(ctx context.Context, pd *pageData, regions []string, from, to time.Time) {
	c, v := pd.C, pd.V
	if s.opts.History != nil {
		for _, reg := range regions {
			ms, err := s.opts.History.MinuteStats(ctx, c.Name, reg, from, to)
			if err != nil {
				s.opts.Logger.Warn("statuspage: minute stats", "check", c.Name, "region", reg, "err", err)
				continue
			}
			pd.Series = append(pd.Series, chartSeries{Region: reg, Stats: ms})
			var n, f int64
			var sumUS float64
			var maxLat time.Duration
			for _, m := range ms {
				n += m.Count
				f += m.Failures
				sumUS += float64(m.AvgLatency) * float64(m.Count)
				maxLat = max(maxLat, m.MaxLatency)
			}
			rs := regionStat{Name: reg, Count: n, Uptime: "no data", Avg: "–", Max: "–"}
			if n > 0 {
				rs.Uptime = pct(float64(n-f) / float64(n))
				rs.Avg = fmtDur(time.Duration(sumUS / float64(n)))
				rs.Max = fmtDur(maxLat)
			}
			pd.Region24 = append(pd.Region24, rs)
		}
		days, err := s.opts.History.DailyUptime(ctx, c.Name, 30, v.At)
		if err != nil {
			s.opts.Logger.Warn("statuspage: daily uptime", "check", c.Name, "err", err)
		}
		for i := len(days) - 1; i >= 0; i-- {
			d := days[i]
			pd.Daily = append(pd.Daily, dailyRow{Day: pd.L.date(d.Day), Count: d.Count, Uptime: pct(d.Uptime),
				Avg: fmtDur(d.AvgLatency), P95: fmtDur(d.P95Latency), Max: fmtDur(d.MaxLatency)})
		}
	}
	pd.Chart = latencyChart(pd.Series, from, to, pd.L)
}

func fmtDur(d time.Duration) string {
	if d <= 0 {
		return "–"
	}
	return fmtMS(float64(d) / float64(time.Millisecond))
}

// loadAssets prepares the embedded CSS and JS; their URLs carry a content
// version, so they are cached for a day.
func (s *Server) loadAssets() {
	s.assets = map[string]*doc{}
	h := sha256.New()
	entries, _ := fs.ReadDir(assetFS, "assets")
	for _, e := range entries {
		b, err := assetFS.ReadFile("assets/" + e.Name())
		if err != nil {
			continue
		}
		h.Write(b)
		ctype := "application/octet-stream"
		switch path.Ext(e.Name()) {
		case ".css":
			ctype = "text/css; charset=utf-8"
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		}
		s.assets[e.Name()] = newDoc(b, ctype, "public, max-age=86400", s.started, nil)
	}
	s.assetV = hex.EncodeToString(h.Sum(nil)[:6])
}

func (s *Server) asset(w http.ResponseWriter, r *http.Request) {
	d := s.assets[r.PathValue("file")]
	if d == nil {
		http.NotFound(w, r)
		return
	}
	d.serve(w, r)
}

// pageEntry is a check or incident page as rendered for a snapshot
// generation; a check page's also keeps its main part (the check, its
// chart and tables) with what it shows: the check's view, the minute and
// the regions.
type pageEntry struct {
	gen     uint64
	d       *doc
	cv      *checkView
	to      time.Time
	regions []string
	main    []byte
}
