package statuspage

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/vantage-dev/vantage/store"
)

// chartSeries is one region's latency over the chart's span.
type chartSeries struct {
	Region string
	Stats  []store.MinuteStat
}

const (
	chartW, chartH = 640, 180
	chartL, chartR = 44, 8
	chartT, chartB = 8, 22
	chartBucket    = 10 * time.Minute
	maxChartSeries = 8
	chartDotR      = 3.5 // radius of a lone point's dot
)

// latencyChart draws the average latency per 10 minutes of each region
// over [from, to) as an inline SVG (no scripts, no styles: classes only).
func latencyChart(series []chartSeries, from, to time.Time, l *locale) template.HTML {
	type pt struct {
		x, y float64
		ok   bool
	}
	n := int(to.Sub(from) / chartBucket)
	if n < 1 {
		n = 1
	}
	maxMS := 0.0
	pts := make([][]pt, len(series))
	for si, s := range series {
		sum := make([]float64, n)
		cnt := make([]float64, n)
		for _, m := range s.Stats {
			if m.AvgLatency <= 0 {
				continue
			}
			i := int(m.Minute.Sub(from) / chartBucket)
			if i < 0 || i >= n {
				continue
			}
			w := float64(m.Count)
			if w == 0 {
				w = 1
			}
			sum[i] += float64(m.AvgLatency) / float64(time.Millisecond) * w
			cnt[i] += w
		}
		pts[si] = make([]pt, n)
		for i := range n {
			if cnt[i] > 0 {
				ms := sum[i] / cnt[i]
				pts[si][i] = pt{y: ms, ok: true}
				maxMS = math.Max(maxMS, ms)
			}
		}
	}
	top := niceCeil(maxMS)
	pw := float64(chartW - chartL - chartR)
	ph := float64(chartH - chartT - chartB)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="chart-title" preserveAspectRatio="none">`, chartW, chartH)
	b.WriteString(`<title id="chart-title">` + template.HTMLEscapeString(l.t("Average latency per region over the last 24 hours, in milliseconds")) + `</title>`)
	// grid and axis labels
	for i := 0; i <= 4; i++ {
		y := float64(chartT) + ph*float64(i)/4
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, chartL, chartW-chartR, y, y)
		fmt.Fprintf(&b, `<text class="axis" x="%d" y="%.1f" text-anchor="end">%s</text>`, chartL-4, y+4, fmtMS(top*float64(4-i)/4))
	}
	for h := 0; h <= 24; h += 6 {
		x := float64(chartL) + pw*float64(h)/24
		t := l.in(from.Add(time.Duration(h) * time.Hour))
		anchor := "middle"
		if h == 0 {
			anchor = "start"
		} else if h == 24 {
			anchor = "end"
		}
		fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%d" text-anchor="%s">%s</text>`, x, chartH-6, anchor, t.Format("15:04"))
	}
	for si := range series {
		var seg []string
		var lx, ly float64
		flush := func() {
			switch {
			case len(seg) == 1:
				// A lone point (a region with one bucket, or one between
				// gaps) makes no line: mark it with a dot. Earlier regions'
				// dots are larger, so regions at the same point show as rings
				// around each other rather than one hiding the others.
				r := chartDotR + float64(min(len(series)-1-si, maxChartSeries))
				fmt.Fprintf(&b, `<circle class="dot s%d" cx="%.1f" cy="%.1f" r="%g"/>`, si%maxChartSeries, lx, ly, r)
			case len(seg) > 1:
				fmt.Fprintf(&b, `<polyline class="line s%d" points="%s"/>`, si%maxChartSeries, strings.Join(seg, " "))
			}
			seg = seg[:0]
		}
		for i, p := range pts[si] {
			if !p.ok {
				flush()
				continue
			}
			lx = float64(chartL) + pw*(float64(i)+0.5)/float64(n)
			ly = float64(chartT) + ph*(1-p.y/top)
			seg = append(seg, fmt.Sprintf("%.1f,%.1f", lx, ly))
		}
		flush()
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from numbers and fixed markup only
}

func niceCeil(v float64) float64 {
	if v <= 0 {
		return 100
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*e >= v {
			return m * e
		}
	}
	return 10 * e
}

func fmtMS(ms float64) string {
	if ms >= 1000 {
		return fmt.Sprintf("%gs", math.Round(ms/100)/10)
	}
	return fmt.Sprintf("%gms", math.Round(ms*10)/10)
}

var badgeColour = map[string]string{
	stUp: "#2e7d32", stDegraded: "#b26a00", stDown: "#c62828", stUnknown: "#616161", stMaintenance: "#1565c0",
}

func uptimeColour(u float64) string {
	switch dayClass(u) {
	case "ok":
		return "#2e7d32"
	case "minor":
		return "#7c8a00"
	case "major":
		return "#b26a00"
	case "bad":
		return "#c62828"
	}
	return "#616161"
}

// badge draws a shields.io-style flat badge.
func badge(label, value, colour string) []byte {
	esc := func(s string) string { return template.HTMLEscapeString(s) }
	lw := 10 + textWidth(label)
	vw := 10 + textWidth(value)
	w := lw + vw
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="20" role="img" aria-label="%s: %s">`, w, esc(label), esc(value))
	fmt.Fprintf(&b, `<title>%s: %s</title>`, esc(label), esc(value))
	fmt.Fprintf(&b, `<rect width="%d" height="20" rx="3" fill="#555"/><rect x="%d" width="%d" height="20" rx="3" fill="%s"/>`, w, lw, vw, colour)
	fmt.Fprintf(&b, `<rect x="%d" width="4" height="20" fill="%s"/>`, lw, colour)
	b.WriteString(`<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">`)
	fmt.Fprintf(&b, `<text x="%d" y="14">%s</text><text x="%d" y="14">%s</text></g></svg>`, lw/2, esc(label), lw+vw/2, esc(value))
	b.WriteByte('\n')
	return []byte(b.String())
}

// textWidth is about how wide s is in the badge's 11 px font: 7 px a
// character, 12 for the wide ones (Hangul, CJK).
func textWidth(s string) int {
	w := 0
	for _, r := range s {
		if r >= 0x1100 && (r <= 0x115f || r >= 0x2e80 && r <= 0xa4cf || r >= 0xac00 && r <= 0xd7a3 ||
			r >= 0xf900 && r <= 0xfaff || r >= 0xfe30 && r <= 0xfe4f || r >= 0xff00 && r <= 0xff60) {
			w += 12
		} else {
			w += 7
		}
	}
	return w
}
