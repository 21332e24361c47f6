package statuspage

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/vantage-dev/vantage/store"
)

// A check's 90-day bar is kept compactly between renders: per day a class
// (its colour) and the key of its text (pctKey), 3 bytes, instead of the
// day's statistics (80 bytes) and the strings of its cell. The cells'
// dates and words are built while a page is rendered (checkView.Days) and
// not kept. The bar also keeps the sums the 7, 30 and 90 day numbers are
// made of, so that a new read of today's cell updates them.

// Day classes: the bar's css classes, and the uptime badges' colours.
const (
	clsNone uint8 = iota
	clsOK
	clsMinor
	clsMajor
	clsBad
)

var classNames = [...]string{clsNone: "none", clsOK: "ok", clsMinor: "minor", clsMajor: "major", clsBad: "bad"}

// classOf is the class of an uptime fraction (NoData: none).
func classOf(u float64) uint8 {
	switch {
	case u < 0:
		return clsNone
	case u >= 0.999:
		return clsOK
	case u >= 0.99:
		return clsMinor
	case u >= 0.95:
		return clsMajor
	}
	return clsBad
}

func dayClass(u float64) string { return classNames[classOf(u)] }

// keyNoData is the pctKey of no data.
const keyNoData = -1

// pctKey is what pct shows of u: the hundredths of a percent, floored
// (0 to 9999), 10000 for 100%, keyNoData without data.
func pctKey(u float64) int16 {
	switch {
	case u < 0 || math.IsNaN(u):
		return keyNoData
	case u >= 1:
		return 10000
	}
	return int16(math.Floor(u * 10000)) // never round 99.999 up to 100
}

// pctText is the text of a pctKey: 99.95%, 100%, or "no data".
func pctText(k int16) string {
	switch {
	case k < 0:
		return "no data"
	case k >= 10000:
		return "100%"
	}
	return fmt.Sprintf("%.2f%%", float64(k)/100)
}

// pct formats an uptime fraction: 99.95%, 100%, or "no data".
func pct(u float64) string { return pctText(pctKey(u)) }

// dayBar is a check's bar of barDays UTC days, oldest first. Immutable
// once made: views, the history cache and the render cache share it.
type dayBar struct {
	first int64 // the oldest day, Unix seconds
	cls   [barDays]uint8
	key   [barDays]int16 // pctKey of the day's uptime; keyNoData without results
	// the results and failures of the days before today within the last
	// 7, 30 and 90 days, and today's
	pastN, pastF   [3]int64
	todayN, todayF int64
}

// barWindows are the days of the 7, 30 and 90 day numbers, as in
// uptimeWindows[1:].
var barWindows = [3]int{7, 30, 90}

// barOf makes the bar of barDays consecutive days, oldest first.
func barOf(days []store.DayStat) *dayBar {
	b := &dayBar{first: days[0].Day.Unix()}
	for i, d := range days {
		b.set(i, d)
	}
	for w, n := range barWindows {
		for _, d := range days[barDays-n : barDays-1] {
			b.pastN[w] += d.Count
			b.pastF[w] += d.Failures
		}
	}
	return b
}

// set makes day i of the bar d (the last: today's numbers too).
func (b *dayBar) set(i int, d store.DayStat) {
	b.cls[i] = classOf(d.Uptime)
	b.key[i] = keyNoData
	if d.Count > 0 {
		b.key[i] = pctKey(d.Uptime)
	}
	if i == barDays-1 {
		b.todayN, b.todayF = d.Count, d.Failures
	}
}

// withToday is the bar with today's cell read again.
func (b *dayBar) withToday(d store.DayStat) *dayBar {
	nb := *b
	nb.set(barDays-1, d)
	return &nb
}

// uptime is the uptime of the last barWindows[w] days, today included;
// NoData without results.
func (b *dayBar) uptime(w int) float64 {
	n, f := b.pastN[w]+b.todayN, b.pastF[w]+b.todayF
	if n == 0 {
		return store.NoData
	}
	return float64(n-f) / float64(n)
}

// sameCells reports whether two bars show the same cells.
func (b *dayBar) sameCells(o *dayBar) bool {
	return b == o || b.first == o.first && b.cls == o.cls && b.key == o.key
}

// day is the start of day i.
func (b *dayBar) day(i int) time.Time { return time.Unix(b.first+int64(i)*86400, 0).UTC() }

// noDataBar is the bar of barDays days without data ending with today's.
func noDataBar(today time.Time) *dayBar {
	b := &dayBar{first: today.AddDate(0, 0, 1-barDays).Unix()}
	for i := range b.key {
		b.key[i] = keyNoData
	}
	return b
}

// incDay is a day of the bar with incidents: their titles, oldest first.
type incDay struct {
	i      uint8
	titles []string
}

// incDaysOf lists the days of b on which incs (the check's, newest
// first) were open, with their titles as the page names them in l.
func incDaysOf(b *dayBar, name, label string, incs []*store.Incident, l *locale) []incDay {
	if len(incs) == 0 {
		return nil
	}
	var out []incDay
	for i := range barDays {
		start := b.day(i)
		end := start.Add(24 * time.Hour)
		var titles []string
		for _, inc := range incs {
			if !inc.StartedAt.Before(end) {
				continue
			}
			if inc.ResolvedAt != nil && inc.ResolvedAt.Before(start) {
				continue
			}
			title := inc.Title
			if !inc.Manual && inc.Check == name {
				title = l.t("%s is down", label)
			}
			titles = append(titles, title)
		}
		if titles != nil {
			slices.Reverse(titles)
			out = append(out, incDay{i: uint8(i), titles: titles})
		}
	}
	return out
}

// dayView is a cell of the bar as a page renders it; made while
// rendering, not kept.
type dayView struct {
	day       time.Time
	Class     string // css: ok, minor, major, bad, none
	key       int16  // pctKey, keyNoData without results
	Incidents []string
}

// Days is the check's bar, oldest first, for the templates.
func (c *checkView) Days() []dayView {
	b := c.bar
	if b == nil {
		return nil
	}
	out := make([]dayView, barDays)
	j := 0
	for i := range out {
		out[i] = dayView{day: b.day(i), Class: classNames[b.cls[i]], key: b.key[i]}
		if j < len(c.incDays) && int(c.incDays[j].i) == i {
			out[i].Incidents = c.incDays[j].titles
			j++
		}
	}
	return out
}

// Uptime is the check's uptime numbers, for the templates.
func (c *checkView) Uptime() []uptimeView {
	out := make([]uptimeView, len(uptimeWindows))
	for i, w := range uptimeWindows {
		out[i] = uptimeView{Window: w.name, Value: c.uptimes[i], Text: pct(c.uptimes[i])}
	}
	return out
}

// Up24 is the 24 h number as text (untranslated).
func (c *checkView) Up24() string { return pct(c.uptimes[0]) }
