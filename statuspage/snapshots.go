package statuspage

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	snap "github.com/vantage-dev/vantage/snapshot"
	"github.com/vantage-dev/vantage/store"
)

// Failure snapshots of an incident, side by side per region:
// GET /api/v1/incidents/{id}/snapshots (JSON) and /incidents/{id}/snapshots
// (HTML). Both need the API token, or the incident's signed link (sig, an
// HMAC of the incident id under the token: what notifications carry, so
// that on-call opens it from PagerDuty without the token, and it opens
// nothing else).

// IncidentSnapshots is the body of GET /api/v1/incidents/{id}/snapshots.
type IncidentSnapshots struct {
	IncidentID string     `json:"incident_id"`
	Check      string     `json:"check"`
	Title      string     `json:"title"`
	StartedAt  time.Time  `json:"started_at"`
	ResolvedAt *time.Time `json:"resolved_at"`
	// Snapshots are the latest of each node whose vote turned down for
	// this incident, by region in the configured order.
	Snapshots []*snap.Snapshot `json:"snapshots"`
	// Differences lists what the regions saw differently.
	Differences []snap.Difference `json:"differences"`
}

// SnapshotSource gives an incident's snapshots (the node). An unknown
// incident is store.ErrNotFound.
type SnapshotSource interface {
	IncidentSnapshots(ctx context.Context, id string) (*IncidentSnapshots, error)
}

// SnapshotSig is the signature of an incident's snapshot link.
func SnapshotSig(token, id string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("vantage snapshots\x00" + id))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// SnapshotsURL is the signed link to an incident's snapshots under the
// page's base URL; "" without a base URL or a token.
func SnapshotsURL(base, token, id string) string {
	if base == "" || token == "" || id == "" {
		return ""
	}
	return strings.TrimSuffix(base, "/") + "/incidents/" + url.PathEscape(id) + "/snapshots?sig=" + SnapshotSig(token, id)
}

func (s *Server) registerSnapshotAPI() {
	s.mux.HandleFunc("GET /api/v1/incidents/{id}/snapshots", s.snapshotsJSON)
	s.mux.HandleFunc("GET /incidents/{id}/snapshots", s.snapshotsHTML)
}

// authorizeSnapshots takes the token or the incident's signature.
func (s *Server) authorizeSnapshots(w http.ResponseWriter, r *http.Request, id string) bool {
	if sig := r.URL.Query().Get("sig"); sig != "" && s.apiToken() != "" {
		want := SnapshotSig(s.apiToken(), id)
		if subtle.ConstantTimeCompare([]byte(sig), []byte(want)) == 1 {
			w.Header().Set("Cache-Control", "no-store")
			return true
		}
		w.Header().Set("Cache-Control", "no-store")
		writeErr(w, http.StatusUnauthorized, "invalid link signature")
		return false
	}
	return s.authorizeToken(w, r)
}

func (s *Server) incidentSnapshots(w http.ResponseWriter, r *http.Request) (*IncidentSnapshots, bool) {
	id := r.PathValue("id")
	if !s.authorizeSnapshots(w, r, id) {
		return nil, false
	}
	src, ok := s.opts.Source.(SnapshotSource)
	if !ok {
		writeErr(w, http.StatusNotImplemented, "snapshots are not available on this server")
		return nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	is, err := src.IncidentSnapshots(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeErr(w, http.StatusNotFound, "unknown incident")
		return nil, false
	case err != nil:
		s.opts.Logger.Error("statuspage: snapshots", "incident", id, "err", err)
		writeErr(w, http.StatusInternalServerError, "the snapshots could not be read")
		return nil, false
	}
	if is.Snapshots == nil {
		is.Snapshots = []*snap.Snapshot{}
	}
	if is.Differences == nil {
		is.Differences = []snap.Difference{}
	}
	return is, true
}

func (s *Server) snapshotsJSON(w http.ResponseWriter, r *http.Request) {
	if is, ok := s.incidentSnapshots(w, r); ok {
		writeJSON(w, r, is, s.opts.Logger)
	}
}

func (s *Server) snapshotsHTML(w http.ResponseWriter, r *http.Request) {
	is, ok := s.incidentSnapshots(w, r)
	if !ok {
		return
	}
	var buf bytes.Buffer
	if err := snapshotTmpl.Execute(&buf, snapshotPage(is, s.page.Load())); err != nil {
		s.opts.Logger.Error("statuspage: render snapshots", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	_, _ = w.Write(buf.Bytes())
}

// The side-by-side page.

type snapView struct {
	Title, PageTitle  string
	IncidentID, Check string
	Started, Resolved string
	Labels            []string
	Diffs             []snap.Difference
	Rows              []snapRow
	Empty             bool
}

type snapRow struct {
	Section string
	Label   string
	Cells   []template.HTML
	Diff    bool
}

// diffRows maps a Difference's field to the row that shows it.
var diffRows = map[string]string{
	"dns.resolver": "Resolver", "dns.addrs": "Answers", "connect": "Connected to", "tls.leaf": "Chain",
	"tls.chain": "Chain", "tls.verified": "Verification", "http.status": "Status", "http.header.server": "Headers",
	"http.header.via": "Headers", "http.header.content-type": "Headers", "http.header.location": "Headers",
	"http.body": "Body", "probe.code": "Failure", "traceroute.end": "Path",
}

func esc(s string) string { return html.EscapeString(s) }

func snapshotPage(is *IncidentSnapshots, p *Page) snapView {
	v := snapView{Title: is.Title, IncidentID: is.IncidentID, Check: is.Check, Started: is.StartedAt.UTC().Format(time.RFC3339),
		Diffs: is.Differences, Empty: len(is.Snapshots) == 0}
	if v.Title == "" {
		v.Title = is.Check + " is down"
	}
	v.PageTitle = "Snapshots · " + v.Title
	if p != nil && p.Title != "" {
		v.PageTitle += " · " + p.Title
	}
	if is.ResolvedAt != nil {
		v.Resolved = is.ResolvedAt.UTC().Format(time.RFC3339)
	}
	for _, sn := range is.Snapshots {
		v.Labels = append(v.Labels, snap.Label(sn, is.Snapshots))
	}
	differs := map[string]bool{}
	for _, d := range is.Differences {
		differs[diffRows[d.Field]] = true
	}
	row := func(section, label string, cell func(*snap.Snapshot) string) {
		r := snapRow{Section: section, Label: label, Diff: differs[label]}
		any := false
		for _, sn := range is.Snapshots {
			c := cell(sn)
			if c != "" {
				any = true
			} else {
				c = `<span class="muted">–</span>`
			}
			r.Cells = append(r.Cells, template.HTML(c))
		}
		if any {
			v.Rows = append(v.Rows, r)
		}
	}
	ms := func(f float64) string {
		if f <= 0 {
			return ""
		}
		return fmt.Sprintf("%.1f ms", f)
	}
	row("", "Node", func(s *snap.Snapshot) string {
		return esc(s.Node) + `<br><span class="muted">vote down ` + esc(s.DownSince.UTC().Format("15:04:05")) +
			`, recorded in ` + esc(fmt.Sprintf("%.0f ms", s.DurationMS)) + `</span>`
	})
	row("", "Failure", func(s *snap.Snapshot) string {
		if s.Probe == nil {
			return ""
		}
		return `<code>` + esc(s.Probe.Code) + `</code> ` + esc(s.Probe.Message)
	})
	row("DNS", "Resolver", func(s *snap.Snapshot) string {
		if s.DNS == nil {
			return ""
		}
		return `<code>` + esc(s.DNS.Resolver) + `</code> ` + esc(s.DNS.Rcode) + ` ` + esc(ms(s.DNS.RTTMS))
	})
	row("DNS", "Answers", func(s *snap.Snapshot) string {
		if s.DNS == nil {
			return ""
		}
		var b strings.Builder
		for _, a := range s.DNS.Answers {
			fmt.Fprintf(&b, "<div><code>%s %s %s</code> <span class=\"muted\">ttl %d</span></div>", esc(a.Name), esc(a.Type), esc(a.Value), a.TTL)
		}
		if len(s.DNS.Answers) == 0 && len(s.DNS.Addrs) > 0 {
			b.WriteString("<code>" + esc(strings.Join(s.DNS.Addrs, ", ")) + "</code>")
		}
		if s.DNS.Error != "" {
			b.WriteString(`<div class="err">` + esc(s.DNS.Error) + `</div>`)
		}
		return b.String()
	})
	row("Connection", "Connected to", func(s *snap.Snapshot) string {
		if s.Connect == nil {
			return ""
		}
		out := `<code>` + esc(s.Connect.Addr) + `</code> ` + esc(ms(s.Connect.MS))
		if !s.Connect.OK {
			out += `<div class="err">` + esc(s.Connect.Error) + `</div>`
		}
		return out
	})
	row("TLS", "Handshake", func(s *snap.Snapshot) string {
		if s.TLS == nil {
			return ""
		}
		out := esc(strings.TrimSpace(s.TLS.Version + " " + s.TLS.Cipher + " " + s.TLS.ALPN))
		if s.TLS.Error != "" {
			out += `<div class="err">` + esc(s.TLS.Error) + `</div>`
		}
		return out
	})
	row("TLS", "Verification", func(s *snap.Snapshot) string {
		if s.TLS == nil || len(s.TLS.Chain) == 0 {
			return ""
		}
		if s.TLS.Verified {
			return "valid for " + esc(s.TLS.ServerName)
		}
		return `<span class="err">` + esc(s.TLS.VerifyError) + `</span>`
	})
	row("TLS", "Chain", func(s *snap.Snapshot) string {
		if s.TLS == nil {
			return ""
		}
		var b strings.Builder
		for i, c := range s.TLS.Chain {
			fmt.Fprintf(&b, `<div class="cert"><b>%d</b> %s<br><span class="muted">issued by %s<br>expires %s<br>sha256 <code>%s</code></span></div>`,
				i, esc(c.Subject), esc(c.Issuer), esc(c.NotAfter.UTC().Format("2006-01-02 15:04 MST")), esc(c.SHA256))
		}
		return b.String()
	})
	row("HTTP", "Status", func(s *snap.Snapshot) string {
		if s.HTTP == nil {
			return ""
		}
		out := ""
		if s.HTTP.Status != 0 {
			out = fmt.Sprintf("<b>%d</b> %s <code>%s</code>", s.HTTP.Status, esc(s.HTTP.Proto), esc(s.HTTP.URL))
		}
		for _, r := range s.HTTP.Redirects {
			out += `<div class="muted">→ ` + esc(r) + `</div>`
		}
		if s.HTTP.Error != "" {
			out += `<div class="err">` + esc(s.HTTP.Error) + `</div>`
		}
		return out
	})
	row("HTTP", "Headers", func(s *snap.Snapshot) string {
		if s.HTTP == nil || len(s.HTTP.Headers) == 0 {
			return ""
		}
		names := make([]string, 0, len(s.HTTP.Headers))
		for k := range s.HTTP.Headers {
			names = append(names, k)
		}
		slices.Sort(names)
		var b strings.Builder
		for _, k := range names {
			for _, val := range s.HTTP.Headers[k] {
				fmt.Fprintf(&b, "<div><code>%s: %s</code></div>", esc(k), esc(val))
			}
		}
		return b.String()
	})
	row("HTTP", "Body", func(s *snap.Snapshot) string {
		if s.HTTP == nil || s.HTTP.BodyBytes == 0 {
			return ""
		}
		more := ""
		if s.HTTP.Truncated {
			more = ", more not kept"
		}
		return fmt.Sprintf(`<details><summary>%d bytes%s · sha256 %s…</summary><pre>%s</pre></details>`,
			s.HTTP.BodyBytes, more, esc(shortHex(s.HTTP.BodySHA256)), esc(s.HTTP.Body))
	})
	row("Timings", "Phases", func(s *snap.Snapshot) string {
		t := s.Timings
		var parts []string
		for _, p := range []struct {
			n string
			v float64
		}{{"dns", t.DNSMS}, {"connect", t.ConnectMS}, {"tls", t.TLSMS}, {"first byte", t.FirstByteMS}, {"total", t.TotalMS}} {
			if p.v > 0 {
				parts = append(parts, fmt.Sprintf("%s %.1f ms", p.n, p.v))
			}
		}
		out := esc(strings.Join(parts, " · "))
		if s.Probe != nil {
			pt := s.Probe.Timings
			out += fmt.Sprintf(`<div class="muted">failing probe: %.0f ms (dns %.1f, connect %.1f, tls %.1f, first byte %.1f)</div>`,
				s.Probe.LatencyMS, pt.DNSMS, pt.ConnectMS, pt.TLSMS, pt.FirstByteMS)
		}
		return out
	})
	row("Path", "Path", func(s *snap.Snapshot) string {
		t := s.Trace
		if t == nil {
			return ""
		}
		var b strings.Builder
		fmt.Fprintf(&b, `<div class="muted">%s to %s</div><ol class="hops">`, esc(t.Method), esc(t.Dest))
		for _, h := range t.Hops {
			addr := h.Addr
			if addr == "" {
				addr = "*"
			}
			note := ""
			if h.Reached {
				note = " (target)"
			}
			if h.Error != "" {
				note += " " + h.Error
			}
			fmt.Fprintf(&b, `<li value="%d"><code>%s</code> %s<span class="muted">%s</span></li>`, h.TTL, esc(addr), esc(ms(h.RTTMS)), esc(note))
		}
		b.WriteString("</ol>")
		if t.Note != "" {
			b.WriteString(`<div class="muted">` + esc(t.Note) + `</div>`)
		}
		return b.String()
	})
	row("", "Notes", func(s *snap.Snapshot) string {
		var b strings.Builder
		for _, n := range s.Notes {
			b.WriteString("<div>" + esc(n) + "</div>")
		}
		return b.String()
	})
	return v
}

func shortHex(s string) string {
	if len(s) > 16 {
		return s[:16]
	}
	return s
}

var snapshotTmpl = template.Must(template.New("snapshots").Funcs(template.FuncMap{"inc": func(n int) int { return n + 1 }}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.PageTitle}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#212121}
h1{font-size:21px;margin:0 0 4px}.muted{color:#757575}.err{color:#b71c1c}
table{border-collapse:collapse;width:100%;table-layout:fixed}th,td{text-align:left;vertical-align:top;padding:6px 8px;border-bottom:1px solid #eee;overflow-wrap:anywhere}
th.field{width:120px;color:#424242}thead th{background:#fafafa}tr.sec td{background:#f5f5f5;font-weight:600;padding-top:10px}
tr.diff td,tr.diff th{background:#fff8e1}tr.diff th.field::after{content:" ≠";color:#e65100}
.diffs{background:#fff3e0;border-left:4px solid #ef6c00;padding:8px 12px;margin:12px 0}.diffs li{margin:3px 0}
pre{white-space:pre-wrap;max-height:320px;overflow:auto;background:#fafafa;padding:6px;font-size:12px}
code{font-size:12px}.cert{margin-bottom:6px}ol.hops{margin:0;padding-left:28px}
</style></head><body>
<h1>{{.Title}}</h1>
<p class="muted">Incident <code>{{.IncidentID}}</code> · check <code>{{.Check}}</code> · started {{.Started}}{{if .Resolved}} · resolved {{.Resolved}}{{else}} · ongoing{{end}} · <a href="/incidents/{{.IncidentID}}">incident page</a></p>
{{if .Empty}}<p>No snapshot yet: each region records one when its vote turns down.</p>{{else}}
{{if .Diffs}}<div class="diffs"><b>What differs between regions</b><ul>{{range .Diffs}}<li>{{.Summary}}</li>{{end}}</ul></div>
{{else}}<p class="muted">Every region saw the same.</p>{{end}}
<table><thead><tr><th class="field"></th>{{range .Labels}}<th>{{.}}</th>{{end}}</tr></thead><tbody>
{{$sec := ""}}{{range .Rows}}{{if and .Section (ne .Section $sec)}}<tr class="sec"><td colspan="{{len .Cells | inc}}">{{.Section}}</td></tr>{{$sec = .Section}}{{end}}
<tr{{if .Diff}} class="diff"{{end}}><th class="field">{{.Label}}</th>{{range .Cells}}<td>{{.}}</td>{{end}}</tr>
{{end}}</tbody></table>{{end}}
</body></html>
`))
