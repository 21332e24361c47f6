package statuspage

import (
	"encoding/csv"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/vantage-dev/vantage/store"
)

// Limits of the history API, whose range the caller chooses.
const (
	historyMaxSpan = 31 * 24 * time.Hour
	historyMaxRows = 100000
)

// ResultJSON is one raw result in the history API.
type ResultJSON struct {
	Time        time.Time `json:"time"`
	Node        string    `json:"node"`
	OK          bool      `json:"ok"`
	LatencyMS   float64   `json:"latency_ms"`
	DNSMS       float64   `json:"dns_ms,omitempty"`
	ConnectMS   float64   `json:"connect_ms,omitempty"`
	TLSMS       float64   `json:"tls_ms,omitempty"`
	FirstByteMS float64   `json:"first_byte_ms,omitempty"`
	Code        string    `json:"code"`
	Message     string    `json:"message"`
}

// StateChangeJSON is one change of a check's cluster-wide state.
type StateChangeJSON struct {
	Time       time.Time `json:"time"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	IncidentID string    `json:"incident_id"`
	Detail     string    `json:"detail,omitempty"`
}

// HistoryJSON is the body of GET /api/v1/checks/{name}/history.
type HistoryJSON struct {
	Check        string                  `json:"check"`
	From         time.Time               `json:"from"`
	To           time.Time               `json:"to"`
	Truncated    bool                    `json:"truncated"`
	Regions      map[string][]ResultJSON `json:"regions"`
	StateChanges []StateChangeJSON       `json:"state_changes"`
}

// queryRange parses a request's from and to (RFC 3339; default the last
// 24 h, from before to); it answers an error itself.
func (s *Server) queryRange(w http.ResponseWriter, q url.Values) (from, to time.Time, ok bool) {
	to = s.now().UTC()
	if v := q.Get("to"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			http.Error(w, "to: want an RFC 3339 time, e.g. 2026-11-22T10:00:00Z", http.StatusBadRequest)
			return
		}
		to = t.UTC()
	}
	from = to.Add(-24 * time.Hour)
	if v := q.Get("from"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			http.Error(w, "from: want an RFC 3339 time, e.g. 2026-11-21T10:00:00Z", http.StatusBadRequest)
			return
		}
		from = t.UTC()
	}
	if !from.Before(to) {
		http.Error(w, "from must be before to", http.StatusBadRequest)
		return
	}
	return from, to, true
}

// historyRange parses from and to (RFC 3339; default the last 24 h).
func (s *Server) historyRange(w http.ResponseWriter, r *http.Request) (name string, from, to time.Time, ok bool) {
	name = r.PathValue("name")
	sn := s.current(r.Context())
	if sn.v.byName[name] == nil {
		http.Error(w, "unknown check", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	from, to, inRange := s.queryRange(w, q)
	if !inRange {
		return
	}
	if to.Sub(from) > historyMaxSpan {
		http.Error(w, "range too long: at most 31 days", http.StatusBadRequest)
		return
	}
	if s.opts.History == nil {
		http.Error(w, "no history on this node", http.StatusServiceUnavailable)
		return
	}
	return name, from, to, true
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	name, from, to, ok := s.historyRange(w, r)
	if !ok {
		return
	}
	res, err := s.opts.History.History(r.Context(), name, from, to, historyMaxRows+1)
	if err != nil {
		s.opts.Logger.Error("statuspage: history", "check", name, "err", err)
		http.Error(w, "history unavailable", http.StatusInternalServerError)
		return
	}
	scs, err := s.opts.History.StateChanges(r.Context(), name, from, to)
	if err != nil {
		s.opts.Logger.Error("statuspage: state changes", "check", name, "err", err)
		http.Error(w, "history unavailable", http.StatusInternalServerError)
		return
	}
	out := HistoryJSON{Check: name, From: from, To: to, Regions: map[string][]ResultJSON{}, StateChanges: []StateChangeJSON{}}
	if len(res) > historyMaxRows {
		out.Truncated = true
		res = res[len(res)-historyMaxRows:]
	}
	for _, rr := range res {
		out.Regions[rr.Region] = append(out.Regions[rr.Region], ResultJSON{Time: rr.Time.UTC(), Node: rr.Node, OK: rr.OK,
			LatencyMS: MS(rr.Latency), DNSMS: MS(rr.DNS), ConnectMS: MS(rr.Connect), TLSMS: MS(rr.TLS),
			FirstByteMS: MS(rr.FirstByte), Code: rr.Code, Message: publicMessage(r, rr.Message)}) // operators only (public.go)
	}
	for _, c := range scs {
		out.StateChanges = append(out.StateChanges, StateChangeJSON{Time: c.Time.UTC(), From: c.From, To: c.To,
			IncidentID: c.IncidentID, Detail: c.Detail})
	}
	w.Header().Set("Cache-Control", "public, max-age=10")
	writeJSON(w, r, out, s.opts.Logger)
}

func (s *Server) historyCSV(w http.ResponseWriter, r *http.Request) {
	name, from, to, ok := s.historyRange(w, r)
	if !ok {
		return
	}
	res, err := s.opts.History.History(r.Context(), name, from, to, historyMaxRows)
	if err != nil {
		s.opts.Logger.Error("statuspage: history", "check", name, "err", err)
		http.Error(w, "history unavailable", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+name+`-history.csv"`)
	h.Set("Cache-Control", "public, max-age=10")
	cw := csv.NewWriter(w)
	_ = cw.Write(csvHeader)
	for _, rr := range res {
		rr.Message = publicMessage(r, rr.Message) // operators only (public.go)
		_ = cw.Write(csvRow(rr))
	}
	cw.Flush()
}

var csvHeader = []string{"time", "check", "region", "node", "ok", "latency_ms", "dns_ms", "connect_ms", "tls_ms", "first_byte_ms", "code", "message"}

func csvRow(r store.Result) []string {
	f := func(d time.Duration) string { return strconv.FormatFloat(MS(d), 'f', -1, 64) }
	return []string{r.Time.UTC().Format(time.RFC3339Nano), r.Check, r.Region, r.Node, strconv.FormatBool(r.OK),
		f(r.Latency), f(r.DNS), f(r.Connect), f(r.TLS), f(r.FirstByte), r.Code, csvSafe(r.Message)}
}

// csvSafe defuses spreadsheet formulas in free text.
func csvSafe(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@') {
		return "'" + s
	}
	return s
}
