package statuspage

import (
	"net/http"
	"strings"
	"time"
)

// Badges are rendered on request from the current snapshot's view, not
// with every render, and kept in a bounded cache (Options.BadgeCacheSize,
// least recently served dropped first): one entry per check and badge,
// reused while what the badge shows is the same (the page's language, and
// the check's state, or the uptime number's text and colour). A badge
// rendered again after a change gets a Last-Modified later than the one
// it replaces, so If-Modified-Since never hides a change.

// badgeKey is a check's badge: kind 0 is the status badge, 1 to 4 the
// uptime badges of uptimeWindows.
type badgeKey struct {
	check string
	kind  int
}

// badgeEntry is a rendered badge and what it shows.
type badgeEntry struct {
	loc   *locale
	state string // the status badge's
	key   int16  // an uptime badge's pctKey
	cls   uint8  // and class (its colour)
	d     *doc
}

func (e *badgeEntry) shows(o *badgeEntry) bool {
	return e.loc == o.loc && e.state == o.state && e.key == o.key && e.cls == o.cls
}

// badgeIndex maps a window to its badge's kind.
var badgeIndex = map[string]int{"24h": 1, "7d": 2, "30d": 3, "90d": 4}

// badge serves GET /badge/{name}.svg?type=status|uptime&window=.
func (s *Server) badge(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("file"), ".svg")
	if !ok {
		http.NotFound(w, r)
		return
	}
	sn := s.current(r.Context())
	c := sn.v.byName[name]
	if c == nil {
		http.Error(w, "unknown check", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	kind := 0
	switch q.Get("type") {
	case "", "status":
	case "uptime":
		win := q.Get("window")
		if win == "" {
			win = "30d"
		}
		if kind = badgeIndex[win]; kind == 0 {
			http.Error(w, "window must be one of 24h, 7d, 30d, 90d", http.StatusBadRequest)
			return
		}
	default:
		http.Error(w, "type must be status or uptime", http.StatusBadRequest)
		return
	}
	s.badgeDoc(sn.v, c, kind).serve(w, r)
}

// badgeDoc returns a badge of c as v shows it: the cached one if it shows
// the same, else a new one.
func (s *Server) badgeDoc(v *view, c *checkView, kind int) *doc {
	l := localeOf(v.Page.Site)
	want := &badgeEntry{loc: l}
	if kind == 0 {
		want.state = c.State
	} else {
		u := c.uptimes[kind-1]
		want.key, want.cls = pctKey(u), classOf(u)
	}
	k := badgeKey{c.Name, kind}
	s.badgeMu.Lock()
	defer s.badgeMu.Unlock()
	old, ok := s.badges.get(k)
	if ok && old.shows(want) {
		return old.d
	}
	var body []byte
	if kind == 0 {
		body = badge(c.Name, strings.ToLower(l.t(c.StateText)), badgeColour[c.State])
	} else {
		u := c.uptimes[kind-1]
		body = badge(c.Name+" "+l.t(uptimeWindows[kind-1].name), l.t(pct(u)), uptimeColour(u))
	}
	mod := v.At
	var prev *doc
	if ok {
		prev = old.d
		// Last-Modified has a resolution of a second: a change within
		// the second of the badge it replaces must not look unmodified.
		if !mod.Truncate(time.Second).After(prev.mod) {
			mod = prev.mod.Add(time.Second)
		}
	}
	want.d = newDoc(body, "image/svg+xml", s.badgeCC, mod, prev)
	s.badges.put(k, want)
	s.badgeRenders.Add(1)
	return want.d
}
