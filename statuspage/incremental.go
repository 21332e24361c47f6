package statuspage

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/vantage-dev/vantage/store"
)

// Renders are incremental: a check's view, its row of the index page and
// its summary.json component are kept from one render to the next and
// reused while the check's inputs stay the same (its state, since,
// incident id, region votes and their eligibility, uptime numbers, daily
// bar and the incidents on it, its page config and position). A render
// after one check changed re-executes that check's row, re-encodes its
// component and recompresses the chunks of the documents they are in
// (assemble.go); the rest is assembling. The output is byte for byte what
// a full render of the same inputs gives (TestIncrementalRenderEqualsFull).

// renderCache is what the last render kept. Guarded by Server.buildMu.
type renderCache struct {
	checks     map[string]*checkEntry // by check name
	rows       map[string]*rowEntry
	comps      map[string]*compEntry
	groups     map[string]*groupEntry // by group name
	index      assembler
	summary    assembler
	components assembler // components.json
	ids        uint64    // the last fragment id given out

	emptyDay time.Time // the day emptyBar is of
	emptyBar *dayBar

	// scratch, reused across checks
	cv    checkView
	names []string
}

func (rc *renderCache) init() {
	if rc.checks == nil {
		rc.checks = map[string]*checkEntry{}
		rc.rows = map[string]*rowEntry{}
		rc.comps = map[string]*compEntry{}
		rc.groups = map[string]*groupEntry{}
	}
}

// prune forgets the checks no longer shown.
func (rc *renderCache) prune(v *view) {
	if len(rc.checks) > len(v.Checks) {
		for name := range rc.checks {
			if v.byName[name] == nil {
				delete(rc.checks, name)
				delete(rc.rows, name)
				delete(rc.comps, name)
			}
		}
	}
	if len(rc.groups) > len(v.Groups) {
		shown := make(map[string]bool, len(v.Groups))
		for _, g := range v.Groups {
			shown[g.Name] = true
		}
		for name := range rc.groups {
			if !shown[name] {
				delete(rc.groups, name)
			}
		}
	}
}

// groupEntry is a group's header on the index page and its component in
// summary.json, as last rendered.
type groupEntry struct {
	state  string
	lines  bool // of a compact index
	openID uint64
	open   []byte
	comp   spComponent
	compID uint64
	compB  []byte // after ",\n    "
}

func (rc *renderCache) group(name string) *groupEntry {
	e := rc.groups[name]
	if e == nil {
		e = &groupEntry{}
		rc.groups[name] = e
	}
	return e
}

// sameComponent compares two group components.
func sameComponent(a, b spComponent) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Status == b.Status && a.CreatedAt.Equal(b.CreatedAt) &&
		a.UpdatedAt.Equal(b.UpdatedAt) && a.Position == b.Position && a.PageID == b.PageID && slices.Equal(a.Components, b.Components)
}

// dropRenderCache makes the next render a full one.
func (s *Server) dropRenderCache() {
	s.buildMu.Lock()
	s.rc = renderCache{}
	s.buildMu.Unlock()
}

// checkEntry is a check's view and what it was built from.
type checkEntry struct {
	cv      *checkView
	uptimes [4]float64
	bar     *dayBar
	incs    []incKey
}

// incKey is what the daily bar shows of an incident.
type incKey struct {
	title      string
	started    time.Time
	resolved   time.Time
	isResolved bool
}

func incKeys(incs []*store.Incident) []incKey {
	out := make([]incKey, len(incs))
	for i, inc := range incs {
		out[i] = incKey{title: inc.Title, started: inc.StartedAt}
		if inc.ResolvedAt != nil {
			out[i].resolved, out[i].isResolved = *inc.ResolvedAt, true
		}
	}
	return out
}

// incidentsByCheck lists, per check, the incidents on its bar (its own and
// the manual ones naming it), in incs' order.
func incidentsByCheck(incs []store.Incident) map[string][]*store.Incident {
	m := map[string][]*store.Incident{}
	for i := range incs {
		inc := &incs[i]
		m[inc.Check] = append(m[inc.Check], inc)
		for _, c := range inc.Components {
			if l := m[c]; len(l) > 0 && l[len(l)-1] == inc {
				continue
			}
			m[c] = append(m[c], inc)
		}
	}
	return m
}

// checkViewOf returns the view of one check: the previous render's when
// its inputs are the same, else a new one.
func (s *Server) checkViewOf(ctx context.Context, pc PageCheck, pos int, cs *CheckStatus, regions map[string]RegionInfo,
	incs []*store.Incident, now time.Time) *checkView {
	rc := &s.rc
	c := &rc.cv
	*c = checkView{Name: pc.Name, Label: pc.label(), Description: pc.Description, Group: pc.Group, Position: pos, Regions: c.Regions[:0]}
	if cs != nil {
		c.State = displayState(cs)
		c.Since = cs.Since
		c.IncidentID = cs.IncidentID
		if cs.CertExpiry != nil {
			c.CertExpiry = cs.CertExpiry.UTC()
		}
		if c.Group == "" {
			c.Group = cs.Group
		}
		names := rc.names[:0]
		for r := range cs.Regions {
			names = append(names, r)
		}
		slices.Sort(names)
		rc.names = names
		for _, r := range names {
			rv := cs.Regions[r]
			ri, ok := regions[r]
			c.Regions = append(c.Regions, regionView{Name: r, Vote: rv.Vote, VoteText: voteText(rv.Vote),
				LatencyMS: rv.LatencyMS, CheckedAt: rv.CheckedAt, Error: rv.Error, Eligible: !ok || ri.Eligible})
		}
	} else {
		c.State = stUnknown
	}
	c.StateText = stateText[c.State]
	uptimes, bar := s.historyOf(ctx, c.Name, now)
	if bar == nil {
		bar = rc.noData(now)
	}
	if e := rc.checks[c.Name]; e != nil && e.same(c, uptimes, bar, incs) {
		return e.cv
	}
	cv := new(checkView)
	*cv = *c
	cv.Regions = nil
	if len(c.Regions) > 0 {
		cv.Regions = slices.Clone(c.Regions)
	}
	cv.uptimes, cv.bar = uptimes, bar
	cv.incDays = incDaysOf(bar, cv.Name, cv.Label, incs, localeOf(s.page.Load().Site))
	rc.checks[c.Name] = &checkEntry{cv: cv, uptimes: uptimes, bar: bar, incs: incKeys(incs)}
	return cv
}

// noData is the bar of a check without history: 90 days without data,
// the same bar all day.
func (rc *renderCache) noData(now time.Time) *dayBar {
	today := now.Truncate(24 * time.Hour)
	if rc.emptyBar == nil || !rc.emptyDay.Equal(today) {
		rc.emptyDay, rc.emptyBar = today, noDataBar(today)
	}
	return rc.emptyBar
}

// same reports whether the entry's view is that of c (whose uptime numbers
// and bar are not filled in yet) with these uptime numbers, bar and
// incidents.
func (e *checkEntry) same(c *checkView, uptimes [4]float64, bar *dayBar, incs []*store.Incident) bool {
	o := e.cv
	if o.Name != c.Name || o.Label != c.Label || o.Description != c.Description || o.Group != c.Group ||
		o.State != c.State || o.StateText != c.StateText || !o.Since.Equal(c.Since) || o.IncidentID != c.IncidentID ||
		o.Position != c.Position || !o.CertExpiry.Equal(c.CertExpiry) || len(o.Regions) != len(c.Regions) {
		return false
	}
	for i, a := range o.Regions {
		b := c.Regions[i]
		if a.Name != b.Name || a.Vote != b.Vote || a.VoteText != b.VoteText || a.LatencyMS != b.LatencyMS ||
			!a.CheckedAt.Equal(b.CheckedAt) || a.Error != b.Error || a.Eligible != b.Eligible {
			return false
		}
	}
	if !e.sameUptimes(uptimes) || !e.sameBar(bar) || len(e.incs) != len(incs) {
		return false
	}
	for i, k := range e.incs {
		inc := incs[i]
		if k.title != inc.Title || !k.started.Equal(inc.StartedAt) || k.isResolved != (inc.ResolvedAt != nil) ||
			k.isResolved && !k.resolved.Equal(*inc.ResolvedAt) {
			return false
		}
	}
	return true
}

// sameUptimes reports whether the uptime numbers show as the view's do
// (the text, and the badge's colour); if so, they are kept for the next
// comparison.
func (e *checkEntry) sameUptimes(uptimes [4]float64) bool {
	if e.uptimes == uptimes {
		return true
	}
	for i, u := range uptimes {
		if o := e.cv.uptimes[i]; u != o && (pctKey(u) != pctKey(o) || classOf(u) != classOf(o)) {
			return false
		}
	}
	e.uptimes = uptimes
	return true
}

// sameBar reports whether bar shows as the view's does; if so, it is kept
// for the next comparison.
func (e *checkEntry) sameBar(bar *dayBar) bool {
	if e.bar == bar {
		return true
	}
	if !e.cv.bar.sameCells(bar) {
		return false
	}
	e.bar = bar
	return true
}

// rowEntry is a check's row of the index page.
type rowEntry struct {
	cv   *checkView
	id   uint64
	html []byte
	// a line of a compact index, and what it shows: kept while they
	// are the same, whatever else of the check's view changed
	line         bool
	label, state string
	up           int16 // pctKey of the 24 h number
}

// sameLine reports whether e is the line of c.
func (e *rowEntry) sameLine(c *checkView) bool {
	return e.line && e.label == c.Label && e.state == c.State && e.up == pctKey(c.uptimes[0])
}

// compEntry is a check's component in summary.json, indented as there and
// preceded by ",\n    ", with what it is encoded from (checkComponent):
// kept while they stay the same, whatever else of the check's view
// changed.
type compEntry struct {
	label, state, desc, group string
	since, created            time.Time
	pos                       int
	pageID                    string
	id                        uint64
	b                         []byte
}

// of reports whether e is the component of c at pos.
func (e *compEntry) of(c *checkView, pos int, pageID string, created time.Time) bool {
	return e.label == c.Label && e.state == c.State && e.desc == c.Description && e.group == c.Group &&
		e.since.Equal(c.Since) && e.created.Equal(created) && e.pos == pos && e.pageID == pageID
}

// indexParts executes the index page in parts, reusing the rows of the
// unchanged checks.
func (s *Server) indexParts(pd *pageData) (parts []part, err error) {
	rc := &s.rc
	var buf bytes.Buffer
	exec := func(name string, data any) []byte {
		if err != nil {
			return nil
		}
		buf.Reset()
		if err = pd.L.tmpl.index.ExecuteTemplate(&buf, name, data); err != nil {
			return nil
		}
		return bytes.Clone(buf.Bytes())
	}
	v := pd.V
	add := func(b []byte, e *rowEntry) {
		p := part{b: b}
		if e != nil {
			p.id = e.id
		}
		parts = append(parts, p)
	}
	add(exec("index-top", pd), nil)
	open, row, closing := "group-open", "check-row", exec("group-close", nil)
	if v.Compact {
		open, row, closing = "group-open-lines", "check-line", exec("group-close-lines", nil)
	}
	for _, g := range v.Groups {
		ge := rc.group(g.Name)
		if ge.open == nil || ge.state != g.State || ge.lines != v.Compact {
			rc.ids++
			ge.state, ge.lines, ge.openID, ge.open = g.State, v.Compact, rc.ids, exec(open, g)
		}
		parts = append(parts, part{id: ge.openID, b: ge.open})
		for _, c := range g.Checks {
			e := rc.rows[c.Name]
			switch {
			case v.Compact && e != nil && e.sameLine(c):
				e.cv = c
			case v.Compact:
				rc.ids++
				e = &rowEntry{cv: c, id: rc.ids, html: exec(row, c), line: true, label: c.Label, state: c.State, up: pctKey(c.uptimes[0])}
				rc.rows[c.Name] = e
			case e == nil || e.cv != c || e.line:
				rc.ids++
				e = &rowEntry{cv: c, id: rc.ids, html: exec(row, c)}
				rc.rows[c.Name] = e
			}
			add(e.html, e)
		}
		add(closing, nil)
	}
	add(exec("index-bottom", pd), nil)
	return parts, err
}

// indexDoc renders the index page.
func (s *Server) indexDoc(pd *pageData, cc string, prev *doc) *doc {
	const ctype = "text/html; charset=utf-8"
	parts, err := s.indexParts(pd)
	if err != nil {
		s.opts.Logger.Error("statuspage: render index", "err", err)
		clear(s.rc.rows)
		return newDoc([]byte("<!doctype html><title>Status</title><p>The status page could not be rendered.</p>"), ctype, cc, pd.V.At, prev)
	}
	a := s.rc.index.assemble(parts)
	if prev != nil && prev.sum == a.sum && prev.ctype[0] == ctype && prev.cache[0] == cc {
		return prev
	}
	return makeDoc(a, ctype, cc, pd.V.At)
}

// summaryDoc renders summary.json: the document without components, into
// which the components are spliced, those of unchanged checks as they
// were encoded before.
func (s *Server) summaryDoc(v *view, created time.Time, cc string, prev *doc) *doc {
	return s.spliceComponents(v, created, cc, prev, mustJSON(v.summaryOf(created, []spComponent{})),
		func() []byte { return mustJSON(v.summary(created)) }, &s.rc.summary)
}

// spliceComponents renders a document with the page's components at its
// top level (summary.json, components.json): b is the document encoded
// with no components, into which they are spliced, those of unchanged
// checks as they were encoded before; full encodes the whole document
// (never needed: a fallback); asm keeps the document's chunks.
func (s *Server) spliceComponents(v *view, created time.Time, cc string, prev *doc, b []byte, full func() []byte, asm *assembler) *doc {
	const ctype = "application/json"
	marker := []byte("\n  \"components\": [")
	i := bytes.Index(b, append(marker, ']'))
	if i < 0 { // cannot happen: encoding/json writes an empty slice so
		return newDoc(full(), ctype, cc, v.At, prev)
	}
	head, tail := b[:i+len(marker)], b[i+len(marker):]

	rc := &s.rc
	parts := []part{{b: head}}
	first := true
	add := func(id uint64, b []byte) {
		// b starts with ",\n    "; the first component has no comma
		if first {
			parts = append(parts, part{b: b[1:]})
			first = false
			return
		}
		parts = append(parts, part{id: id, b: b})
	}
	pageID := v.pageID()
	check := func(c *checkView, pos int) {
		e := rc.comps[c.Name]
		if e == nil || !e.of(c, pos, pageID, created) {
			comp := v.checkComponent(c, created)
			comp.Position = pos
			rc.ids++
			e = &compEntry{label: c.Label, state: c.State, desc: c.Description, group: c.Group, since: c.Since, created: created,
				pos: pos, pageID: pageID, id: rc.ids, b: indentComponent(comp)}
			rc.comps[c.Name] = e
		}
		add(e.id, e.b)
	}
	pos := 0
	for _, g := range v.Groups {
		if g.Name == "" {
			for _, c := range g.Checks {
				pos++
				check(c, pos)
			}
			continue
		}
		pos++
		gc := v.groupComponent(g, created, pos)
		ge := rc.group(g.Name)
		if ge.compB == nil || !sameComponent(ge.comp, gc) {
			rc.ids++
			ge.comp, ge.compID, ge.compB = gc, rc.ids, indentComponent(gc)
		}
		add(ge.compID, ge.compB)
		for _, c := range g.Checks {
			pos++
			check(c, pos)
		}
	}
	parts = append(parts, part{b: append([]byte("\n  "), tail...)})
	if first { // no components: the document as encoded
		parts = []part{{b: b}}
	}
	a := asm.assemble(parts)
	if prev != nil && prev.sum == a.sum && prev.ctype[0] == ctype && prev.cache[0] == cc {
		return prev
	}
	return makeDoc(a, ctype, cc, v.At)
}

// indentComponent encodes a component as an element of summary.json's
// components, after ",\n    ".
func indentComponent(c spComponent) []byte {
	b, err := json.MarshalIndent(c, "    ", "  ")
	if err != nil {
		panic(err) // a fixed, marshalable type
	}
	return append([]byte(",\n    "), b...)
}
