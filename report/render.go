package report

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"github.com/vantage-dev/vantage/config"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Formats Render writes.
const (
	FormatJSON = "json"
	FormatCSV  = "csv"
	FormatHTML = "html"
)

// ContentType is the media type of a format.
func ContentType(format string) string {
	switch format {
	case FormatCSV:
		return "text/csv; charset=utf-8"
	case FormatHTML:
		return "text/html; charset=utf-8"
	}
	return "application/json"
}

// ValidFormat reports whether format is one Render writes.
func ValidFormat(format string) bool {
	return format == FormatJSON || format == FormatCSV || format == FormatHTML
}

// Render writes r in format (json, csv or html), in English.
func Render(w io.Writer, r *Report, format string) error {
	return RenderIn(w, r, format, config.LocaleEN)
}

// RenderIn writes r in format; the HTML report speaks locale (en or ko,
// statuspage.locale). JSON and CSV are the same in every locale.
func RenderIn(w io.Writer, r *Report, format, locale string) error {
	switch format {
	case FormatJSON, "":
		bw := bufio.NewWriterSize(w, 64<<10)
		enc := json.NewEncoder(bw)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
		return bw.Flush()
	case FormatCSV:
		return renderCSV(w, r)
	case FormatHTML:
		bw := bufio.NewWriterSize(w, 64<<10)
		if err := htmlTmpl.Execute(bw, newHTMLView(r, locale)); err != nil {
			return err
		}
		return bw.Flush()
	}
	return fmt.Errorf("report: unknown format %q (want json, csv or html)", format)
}

// renderCSV writes one row per check, then one per group, then the total.
func renderCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	head := []string{"scope", "name", "display_name", "group", "uptime", "uptime_with_unknown",
		"up_s", "down_s", "unknown_s", "maintenance_s", "no_data_s", "incidents", "incidents_started",
		"downtime_s", "longest_downtime_s", "mttr_s", "mtbf_s"}
	regions := append(append([]string{}, r.Regions...), AllRegions)
	for _, reg := range regions {
		head = append(head, "p95_ms_"+reg)
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	row := func(scope, name, display, group string, f *Figures) error {
		rec := []string{scope, name, display, group, optRatio(f.Uptime), optRatio(f.UptimeWithUnknown),
			num(f.UpS), num(f.DownS), num(f.UnknownS), num(f.MaintenanceS), num(f.NoDataS),
			strconv.Itoa(f.Incidents), strconv.Itoa(f.IncidentsStarted), num(f.DowntimeS), num(f.LongestDowntimeS),
			optNum(f.MTTRS), optNum(f.MTBFS)}
		for _, reg := range regions {
			if l, ok := f.Latency[reg]; ok && l.Results > 0 {
				rec = append(rec, num(l.P95MS))
			} else {
				rec = append(rec, "")
			}
		}
		return cw.Write(rec)
	}
	for i := range r.Checks {
		c := &r.Checks[i]
		if err := row("check", c.Name, c.DisplayName, c.Group, &c.Figures); err != nil {
			return err
		}
	}
	for i := range r.Groups {
		g := &r.Groups[i]
		if err := row("group", g.Name, g.Name, g.Name, &g.Figures); err != nil {
			return err
		}
	}
	if err := row("total", "", "", r.Group, &r.Total); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func optNum(f *float64) string {
	if f == nil {
		return ""
	}
	return strconv.FormatFloat(math.Round(*f*1000)/1000, 'f', -1, 64)
}

func optRatio(f *float64) string {
	if f == nil {
		return ""
	}
	return strconv.FormatFloat(*f, 'f', 6, 64)
}

// Percent formats a ratio as a percentage with three decimals, "n/a"
// without one. 99.9995 % and more of a period that was not all up is
// shown as 99.999 %, never 100 %.
func Percent(f *float64) string {
	if f == nil {
		return "n/a"
	}
	v := math.Floor(*f*100000) / 1000
	return strconv.FormatFloat(v, 'f', 3, 64) + "%"
}

// Duration formats seconds as "2d 3h 4m 5s" (to the second; "0s" for none,
// "<1s" under a second).
func Duration(s float64) string {
	if s <= 0 {
		return "0s"
	}
	if s < 1 {
		return "<1s"
	}
	d := time.Duration(math.Round(s)) * time.Second
	var parts []string
	if days := d / (24 * time.Hour); days > 0 {
		parts = append(parts, fmt.Sprintf("%dd", days))
		d -= days * 24 * time.Hour
	}
	if h := d / time.Hour; h > 0 {
		parts = append(parts, fmt.Sprintf("%dh", h))
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		parts = append(parts, fmt.Sprintf("%dm", m))
		d -= m * time.Minute
	}
	if sec := d / time.Second; sec > 0 {
		parts = append(parts, fmt.Sprintf("%ds", sec))
	}
	return strings.Join(parts, " ")
}

func optDuration(f *float64) string {
	if f == nil {
		return "n/a"
	}
	return Duration(*f)
}

// The HTML report.

type htmlView struct {
	Lang     string
	ko       bool
	R        *Report
	Title    string
	Period   string
	Zone     string
	Regions  []regionColor
	Total    figView
	Groups   []figView
	Checks   []checkView
	Inc      []incView
	Days     int
	Cut      bool
	UntilStr string
}

type regionColor struct{ Name, Color string }

type figView struct {
	Name, Group                      string
	Uptime, UptimeU                  string
	Up, Down, Unknown, Maint, NoData string
	Incidents, Started               int
	Downtime, Longest, MTTR, MTBF    string
	P95                              []string // per region, then all
}

type checkView struct {
	figView
	Bars  template.HTML
	Chart template.HTML
}

type incView struct {
	ID, Check, Title, Start, End, Duration, Downtime string
}

var palette = []string{"#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#558b2f", "#4e342e", "#283593"}

func newHTMLView(r *Report, locale string) *htmlView {
	loc := r.loc
	if loc == nil {
		loc = time.UTC
	}
	v := &htmlView{Lang: "en", R: r, Title: r.Title, Days: len(r.Days), Zone: loc.String()}
	if locale == config.LocaleKO {
		v.Lang, v.ko = "ko", true
	}
	if v.Title == "" {
		v.Title = v.T("Uptime report")
	}
	v.Period = r.From.In(loc).Format("2006-01-02 15:04") + " – " + r.To.In(loc).Format("2006-01-02 15:04 MST")
	if r.Until.Before(r.To) {
		v.Cut, v.UntilStr = true, r.Until.In(loc).Format("2006-01-02 15:04 MST")
	}
	for i, reg := range r.Regions {
		v.Regions = append(v.Regions, regionColor{reg, palette[i%len(palette)]})
	}
	v.Total = figs(v.T("All checks"), "", &r.Total, r.Regions)
	for i := range r.Groups {
		v.Groups = append(v.Groups, figs(r.Groups[i].Name, "", &r.Groups[i].Figures, r.Regions))
	}
	for i := range r.Checks {
		c := &r.Checks[i]
		v.Checks = append(v.Checks, checkView{figView: figs(c.DisplayName, c.Group, &c.Figures, r.Regions),
			Bars: bars(r, c), Chart: chart(r, c)})
	}
	names := map[string]string{}
	for _, c := range r.Checks {
		names[c.Name] = c.DisplayName
	}
	for _, inc := range r.Incidents {
		iv := incView{ID: inc.ID, Check: names[inc.Check], Title: inc.Title, Start: inc.Start.In(loc).Format("2006-01-02 15:04:05"),
			End: v.T("ongoing"), Duration: Duration(inc.DurationS), Downtime: Duration(inc.DowntimeS)}
		if inc.End != nil {
			iv.End = inc.End.In(loc).Format("2006-01-02 15:04:05")
		}
		v.Inc = append(v.Inc, iv)
	}
	return v
}

func figs(name, group string, f *Figures, regions []string) figView {
	fv := figView{Name: name, Group: group, Uptime: Percent(f.Uptime), UptimeU: Percent(f.UptimeWithUnknown),
		Up: Duration(f.UpS), Down: Duration(f.DownS), Unknown: Duration(f.UnknownS), Maint: Duration(f.MaintenanceS),
		NoData: Duration(f.NoDataS), Incidents: f.Incidents, Started: f.IncidentsStarted, Downtime: Duration(f.DowntimeS),
		Longest: Duration(f.LongestDowntimeS), MTTR: optDuration(f.MTTRS), MTBF: optDuration(f.MTBFS)}
	for _, reg := range append(append([]string{}, regions...), AllRegions) {
		if l, ok := f.Latency[reg]; ok && l.Results > 0 {
			fv.P95 = append(fv.P95, strconv.FormatFloat(l.P95MS, 'f', 1, 64))
		} else {
			fv.P95 = append(fv.P95, "–")
		}
	}
	return fv
}

// dayColor is a bar cell's colour, as the status page draws its 90-day bar.
func dayColor(d *Day) (string, string) {
	switch {
	case d.Uptime == nil && d.MaintenanceS > 0:
		return "#1565c0", "maintenance"
	case d.Uptime == nil && d.UnknownS > 0:
		return "#9e9e9e", "unknown"
	case d.Uptime == nil:
		return "#e0e0e0", "no data"
	case *d.Uptime >= 1:
		return "#2e7d32", Percent(d.Uptime)
	case *d.Uptime >= 0.99:
		return "#9e9d24", Percent(d.Uptime)
	case *d.Uptime >= 0.95:
		return "#ef6c00", Percent(d.Uptime)
	}
	return "#c62828", Percent(d.Uptime)
}

func bars(r *Report, c *CheckReport) template.HTML {
	n := len(c.Days)
	if n == 0 {
		return ""
	}
	const w, h, gap = 4, 24, 1
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="bars" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="daily uptime">`,
		n*(w+gap), h, n*(w+gap), h)
	for i := range c.Days {
		d := &c.Days[i]
		col, label := dayColor(d)
		extra := ""
		if d.DownS > 0 {
			extra += ", down " + Duration(d.DownS)
		}
		if d.MaintenanceS > 0 {
			extra += ", maintenance " + Duration(d.MaintenanceS)
		}
		if d.UnknownS > 0 {
			extra += ", unknown " + Duration(d.UnknownS)
		}
		fmt.Fprintf(&b, `<rect x="%d" y="0" width="%d" height="%d" rx="1" fill="%s"><title>%s: %s%s</title></rect>`,
			i*(w+gap), w, h, col, r.Days[i], template.HTMLEscapeString(label), template.HTMLEscapeString(extra))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func chart(r *Report, c *CheckReport) template.HTML {
	n := len(c.Days)
	maxV := 0.0
	for i := range c.Days {
		for _, v := range c.Days[i].P95MS {
			maxV = max(maxV, v)
		}
	}
	if n == 0 || maxV <= 0 {
		return template.HTML(`<span class="muted">no latency data</span>`)
	}
	const w, h = 300, 48
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="daily p95 latency by region">`, w, h+12, w, h+12)
	x := func(i int) float64 {
		if n == 1 {
			return w / 2
		}
		return float64(i) * (w - 2) / float64(n-1)
	}
	for ri, reg := range r.Regions {
		var pts []string
		for i := range c.Days {
			if v, ok := c.Days[i].P95MS[reg]; ok {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i)+1, 2+float64(h-4)*(1-v/maxV)))
			}
		}
		if len(pts) == 0 {
			continue
		}
		col := palette[ri%len(palette)]
		if len(pts) == 1 {
			var cx, cy float64
			fmt.Sscanf(pts[0], "%f,%f", &cx, &cy)
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2" fill="%s"><title>%s</title></circle>`, cx, cy, col, template.HTMLEscapeString(reg))
			continue
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"><title>%s</title></polyline>`,
			col, strings.Join(pts, " "), template.HTMLEscapeString(reg))
	}
	fmt.Fprintf(&b, `<text x="0" y="%d" class="axis">p95 max %.0f ms</text></svg>`, h+11, maxV)
	return template.HTML(b.String())
}

var htmlTmpl = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · {{.Period}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#212121}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.muted{color:#757575}table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:middle;white-space:nowrap}
th{font-weight:600;background:#fafafa}td.num,th.num{text-align:right}
.legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:middle}
.axis{font-size:9px;fill:#757575}dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{font-weight:600}
</style></head><body>
<h1>{{.Title}}</h1>
<p class="muted">{{.Period}}{{if .R.Group}} · {{.Tf "group %s" .R.Group}}{{end}} · {{.Tf "times in %s" .Zone}}{{if .Cut}} · {{.Tf "figures up to %s (the rest of the period has not happened yet)" .UntilStr}}{{end}}</p>

<h2>{{.T "Summary"}}</h2>
<dl>
<dt>{{.T "Uptime (unknown time excluded)"}}</dt><dd>{{.Total.Uptime}}</dd>
<dt>{{.T "Uptime (unknown time counted as not up)"}}</dt><dd>{{.Total.UptimeU}}</dd>
<dt>{{.T "Incidents"}}</dt><dd>{{.Total.Incidents}} ({{.Tf "%d started in the period" .Total.Started}})</dd>
<dt>{{.T "Downtime"}}</dt><dd>{{.Total.Downtime}}, {{.Tf "longest %s" .Total.Longest}}</dd>
<dt>MTTR / MTBF</dt><dd>{{.Total.MTTR}} / {{.Total.MTBF}}</dd>
<dt>{{.T "Unknown / maintenance / no data"}}</dt><dd>{{.Total.Unknown}} / {{.Total.Maint}} / {{.Total.NoData}}</dd>
</dl>
<p class="legend">{{range .Regions}}<span><i class="sw" style="background:{{.Color}}"></i>{{.Name}}</span>{{end}}
<span><i class="sw" style="background:#2e7d32"></i>100%</span><span><i class="sw" style="background:#9e9d24"></i>≥ 99%</span>
<span><i class="sw" style="background:#ef6c00"></i>≥ 95%</span><span><i class="sw" style="background:#c62828"></i>&lt; 95%</span>
<span><i class="sw" style="background:#1565c0"></i>{{.T "maintenance"}}</span><span><i class="sw" style="background:#9e9e9e"></i>{{.T "unknown"}}</span>
<span><i class="sw" style="background:#e0e0e0"></i>{{.T "no data"}}</span></p>

{{if .Groups}}<h2>{{.T "Groups"}}</h2>
<table><thead><tr><th>{{.T "Group"}}</th><th class="num">{{.T "Uptime"}}</th><th class="num">{{.T "With unknown"}}</th><th class="num">{{.T "Incidents"}}</th>
<th class="num">{{.T "Downtime"}}</th><th class="num">{{.T "Longest"}}</th><th class="num">MTTR</th><th class="num">MTBF</th>
{{range .Regions}}<th class="num">p95 {{.Name}}</th>{{end}}<th class="num">{{.T "p95 all"}}</th></tr></thead><tbody>
{{range .Groups}}<tr><td>{{.Name}}</td><td class="num">{{.Uptime}}</td><td class="num">{{.UptimeU}}</td><td class="num">{{.Incidents}}</td>
<td class="num">{{.Downtime}}</td><td class="num">{{.Longest}}</td><td class="num">{{.MTTR}}</td><td class="num">{{.MTBF}}</td>
{{range .P95}}<td class="num">{{.}}</td>{{end}}</tr>
{{end}}</tbody></table>{{end}}

<h2>{{.T "Checks"}}</h2>
<table><thead><tr><th>{{.T "Check"}}</th><th>{{.T "Group"}}</th><th class="num">{{.T "Uptime"}}</th><th class="num">{{.T "With unknown"}}</th><th class="num">{{.T "Incidents"}}</th>
<th class="num">{{.T "Downtime"}}</th><th class="num">{{.T "Longest"}}</th><th class="num">MTTR</th><th class="num">MTBF</th>
{{range .Regions}}<th class="num">p95 {{.Name}}</th>{{end}}<th class="num">{{.T "p95 all"}}</th><th>{{.Tf "Daily uptime (%d days, UTC)" .Days}}</th><th>{{.T "Daily p95 by region"}}</th></tr></thead><tbody>
{{range .Checks}}<tr><td>{{.Name}}</td><td>{{.Group}}</td><td class="num">{{.Uptime}}</td><td class="num">{{.UptimeU}}</td><td class="num">{{.Incidents}}</td>
<td class="num">{{.Downtime}}</td><td class="num">{{.Longest}}</td><td class="num">{{.MTTR}}</td><td class="num">{{.MTBF}}</td>
{{range .P95}}<td class="num">{{.}}</td>{{end}}<td>{{.Bars}}</td><td>{{.Chart}}</td></tr>
{{end}}</tbody></table>

<h2>{{.T "Incidents"}}</h2>
{{if .Inc}}<table><thead><tr><th>{{.T "Check"}}</th><th>{{.T "Incident"}}</th><th>{{.T "Started"}}</th><th>{{.T "Resolved"}}</th><th class="num">{{.T "Duration"}}</th><th class="num">{{.T "Downtime in period"}}</th></tr></thead><tbody>
{{range .Inc}}<tr><td>{{.Check}}</td><td title="{{.ID}}">{{.Title}}</td><td>{{.Start}}</td><td>{{.End}}</td><td class="num">{{.Duration}}</td><td class="num">{{.Downtime}}</td></tr>
{{end}}</tbody></table>{{else}}<p>{{.T "No incidents."}}</p>{{end}}

<h2>{{.T "How these figures are made"}}</h2>
<p class="muted">{{.T "explain"}}</p>
</body></html>
`))

// T is s in the report's language.
func (v *htmlView) T(s string) string {
	if v.ko {
		if k, ok := reportKO[s]; ok {
			return k
		}
	}
	if s == "explain" {
		return explainEN
	}
	return s
}

// Tf formats s, in the report's language, with args.
func (v *htmlView) Tf(s string, args ...any) string { return fmt.Sprintf(v.T(s), args...) }

const explainEN = "Maintenance time is left out of every figure. Uptime is up time over up and down time; the second figure also counts time the cluster could not tell (unknown) as not up. Down time is time inside an incident. MTTR is the mean duration of the incidents resolved in the period; MTBF is up time divided by the incidents that started in it. Latency is the 95th percentile of the probes' total latency per region, from the rollup histograms (within about 11 %). Bars are UTC days."

// reportKO is the HTML report in Korean (statuspage.locale: ko), in the
// status page's words (statuspage/i18n.go).
var reportKO = map[string]string{
	"Uptime report": "가동률 보고서",
	"All checks":    "모든 검사",
	"ongoing":       "진행 중",
	"group %s":      "그룹 %s",
	"times in %s":   "시각: %s",
	"figures up to %s (the rest of the period has not happened yet)": "%s까지의 수치 (기간의 나머지는 아직 오지 않았습니다)",
	"Summary":                                 "요약",
	"Uptime (unknown time excluded)":          "가동률 (알 수 없는 시간 제외)",
	"Uptime (unknown time counted as not up)": "가동률 (알 수 없는 시간을 중단으로 계산)",
	"Incidents":                               "장애",
	"%d started in the period":                "기간 중 시작 %d건",
	"Downtime":                                "다운타임",
	"longest %s":                              "최장 %s",
	"Unknown / maintenance / no data":         "알 수 없음 / 점검 / 데이터 없음",
	"maintenance":                             "점검",
	"unknown":                                 "알 수 없음",
	"no data":                                 "데이터 없음",
	"Groups":                                  "그룹",
	"Group":                                   "그룹",
	"Checks":                                  "검사",
	"Check":                                   "검사",
	"Uptime":                                  "가동률",
	"With unknown":                            "알 수 없음 포함",
	"Longest":                                 "최장",
	"p95 all":                                 "p95 전체",
	"Daily uptime (%d days, UTC)":             "일별 가동률 (%d일, UTC)",
	"Daily p95 by region":                     "리전별 일별 p95",
	"Incident":                                "장애",
	"Started":                                 "시작",
	"Resolved":                                "해결",
	"Duration":                                "지속 시간",
	"Downtime in period":                      "기간 중 다운타임",
	"No incidents.":                           "장애가 없습니다.",
	"How these figures are made":              "수치를 만드는 방법",
	"explain": "점검 시간은 모든 수치에서 뺍니다. 가동률은 정상 시간을 정상 시간과 장애 시간의 합으로 나눈 값이고, 두 번째 수치는 " +
		"클러스터가 판단할 수 없던 시간(알 수 없음)도 정상이 아닌 시간으로 셉니다. 다운타임은 장애 안에 있던 시간입니다. MTTR은 기간 중 " +
		"해결된 장애의 평균 지속 시간이고, MTBF는 정상 시간을 기간 중 시작된 장애 수로 나눈 값입니다. 지연 시간은 리전별 프로브 전체 " +
		"지연 시간의 95번째 백분위수로, 롤업 히스토그램에서 구합니다(오차 약 11 %). 막대는 UTC 기준 일입니다.",
}
