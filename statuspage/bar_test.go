package statuspage

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"

	"github.com/vantage-dev/vantage/store"
)

// oldPct is how uptime fractions were formatted before pctKey.
func oldPct(u float64) string {
	if u < 0 || math.IsNaN(u) {
		return "no data"
	}
	if u >= 1 {
		return "100%"
	}
	return fmt.Sprintf("%.2f%%", math.Floor(u*10000)/100)
}

func TestPctKey(t *testing.T) {
	us := []float64{-1, 0, 1, 2, 0.5, 0.9995, 0.99949999, 0.99950001, 0.999, 0.99, 0.95, 0.99999, 0.9999999999, 1e-9,
		1439.0 / 1440, 1438.0 / 1440, 539.0 / 580, math.NaN(), math.Inf(1), math.Inf(-1)}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		n := r.Int64N(100000) + 1
		us = append(us, float64(n-r.Int64N(n+1))/float64(n))
	}
	for _, u := range us {
		if got, want := pct(u), oldPct(u); got != want {
			t.Fatalf("pct(%v) = %q, want %q", u, got, want)
		}
	}
}

// A bar shows the cells and numbers its days do, and keeps 3 bytes a day
// instead of the days.
func TestBarOfDays(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	today := testNow.UTC().Truncate(24 * time.Hour)
	days := make([]store.DayStat, barDays)
	for range 200 {
		for i := range days {
			d := store.DayStat{Day: today.AddDate(0, 0, i-barDays+1)}
			if r.IntN(4) > 0 {
				d.Count = r.Int64N(2000) + 1
				d.Failures = r.Int64N(d.Count+1) * int64(r.IntN(2)) / int64(1+r.IntN(100))
				d.Uptime = float64(d.Count-d.Failures) / float64(d.Count)
			} else {
				d.Uptime = store.NoData
			}
			days[i] = d
		}
		check := func(b *dayBar, days []store.DayStat) {
			t.Helper()
			cv := &checkView{bar: b}
			for i, dv := range cv.Days() {
				d := days[i]
				want := "no data"
				if d.Count > 0 {
					want = oldPct(d.Uptime) + " uptime"
				}
				if !dv.day.Equal(d.Day) || dv.Class != dayClass(d.Uptime) || localeOf(Site{}).dayText(dv) != want {
					t.Fatalf("day %d: %v %s %q, want %v %s %q", i, dv.day, dv.Class, localeOf(Site{}).dayText(dv), d.Day, dayClass(d.Uptime), want)
				}
			}
			for w, n := range barWindows {
				var c, f int64
				for _, d := range days[barDays-n:] {
					c += d.Count
					f += d.Failures
				}
				want := store.NoData
				if c > 0 {
					want = float64(c-f) / float64(c)
				}
				if got := b.uptime(w); got != want {
					t.Fatalf("%d days: %v, want %v", n, got, want)
				}
			}
		}
		b := barOf(days)
		check(b, days)
		nd := days[barDays-1]
		nd.Count += 100
		nd.Failures += int64(r.IntN(100))
		nd.Uptime = float64(nd.Count-nd.Failures) / float64(nd.Count)
		days[barDays-1] = nd
		b2 := b.withToday(nd)
		check(b2, days)
		if b.todayN == b2.todayN || !barOf(days).sameCells(b2) {
			t.Fatal("withToday: another bar than barOf")
		}
	}
	if n := unsafe.Sizeof(dayBar{}); n > 400 {
		t.Fatalf("a bar is %d bytes", n)
	}
	if nb := noDataBar(today); nb.day(barDays-1) != today || nb.uptime(2) != store.NoData || (&checkView{bar: nb}).Days()[0].Class != "none" {
		t.Fatal("noDataBar")
	}
}
