package config

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // time zones do not depend on the host's zoneinfo files

	"github.com/robfig/cron/v3"
)

// Recurring maintenance windows.
//
// Every is read on the local wall clock of Timezone, so that "0 2 * * *"
// means 02:00 local time every day, whatever the UTC offset. Where a
// daylight saving change makes the wall clock skip or repeat:
//   - a time that does not exist that day (02:30 when clocks jump from 02:00
//     to 03:00) starts the window when the clock jumps (03:00 new time);
//   - a time that happens twice (02:30 when clocks fall back from 03:00 to
//     02:00) starts one window, at its first occurrence.
//
// Duration is elapsed time: a 2h window from 01:00 on the night the clocks
// jump forward ends at 04:00 local time.

// dstSlack bounds how far a daylight saving change moves the wall clock
// (2h: Antarctica/Troll; most zones 1h).
const dstSlack = 3 * time.Hour

// maxOccurrenceScan bounds the occurrences examined past a point in wall
// time (only the ones a falling-back clock repeats are ever examined).
const maxOccurrenceScan = 256

var zoneCache sync.Map // name → *time.Location

// LoadLocation is time.LoadLocation for IANA zone names, with "" meaning
// UTC, results cached, and "Local" refused (a configuration must not mean
// different things on different hosts). The zone database is built in.
func LoadLocation(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, errors.New(`"Local" is not an IANA time zone name`)
	}
	if loc, ok := zoneCache.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	zoneCache.Store(name, loc)
	return loc, nil
}

// ParseEvery parses a recurring window's cron expression: 5 fields
// (minute hour day-of-month month day-of-week, robfig/cron's standard
// syntax) or a descriptor (@hourly, @daily, @weekly, @monthly, @yearly).
// Time zone prefixes (CRON_TZ=) and @every are refused: the zone is the
// window's timezone, and @every has no fixed place in the calendar.
func ParseEvery(every string) (*cron.SpecSchedule, error) {
	every = strings.TrimSpace(every)
	if every == "" {
		return nil, errors.New("is empty")
	}
	if strings.HasPrefix(every, "TZ=") || strings.HasPrefix(every, "CRON_TZ=") {
		return nil, errors.New("must not name a time zone: use the timezone key")
	}
	if strings.HasPrefix(every, "@every") {
		return nil, errors.New("must be a cron expression such as \"0 2 * * 0\"; @every is not supported")
	}
	s, err := cron.ParseStandard(every)
	if err != nil {
		return nil, errors.New(strings.TrimSpace(err.Error()))
	}
	spec, ok := s.(*cron.SpecSchedule)
	if !ok {
		return nil, errors.New("must be a cron expression such as \"0 2 * * 0\"")
	}
	spec.Location = time.UTC // read in wall-clock time; see wallClock
	// The parser allows no occurrence at all (0 0 30 2 *): refuse it.
	if spec.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, errors.New("never happens")
	}
	return spec, nil
}

// NewRecurringMaintenance builds a recurring window, for callers that take
// windows from elsewhere than the file (the maintenance API). Problems are
// described as the file would report them, without a position.
func NewRecurringMaintenance(title string, checks []string, every string, d time.Duration, timezone string) (Maintenance, error) {
	sched, err := ParseEvery(every)
	if err != nil {
		return Maintenance{}, fmt.Errorf("every %q %v", every, err)
	}
	if d <= 0 {
		return Maintenance{}, fmt.Errorf("duration must be positive, got %s", d)
	}
	if _, err := LoadLocation(timezone); err != nil {
		return Maintenance{}, fmt.Errorf("timezone: %v", err)
	}
	return Maintenance{Title: title, Checks: checks, Every: strings.TrimSpace(every), Duration: d,
		Timezone: timezone, sched: sched}, nil
}

// Recurring reports whether the window repeats (Every is set).
func (w Maintenance) Recurring() bool { return w.Every != "" }

// schedule returns the parsed Every and the zone, or ok false when either
// is invalid (a hand-built Maintenance).
func (w Maintenance) schedule() (*cron.SpecSchedule, *time.Location, bool) {
	loc, err := LoadLocation(w.Timezone)
	if err != nil || w.Duration <= 0 {
		return nil, nil, false
	}
	sched := w.sched
	if sched == nil {
		if sched, err = ParseEvery(w.Every); err != nil {
			return nil, nil, false
		}
	}
	return sched, loc, true
}

// Contains reports whether t lies in the window: in [Start, End), or, for
// a recurring window, in one of its occurrences.
func (w Maintenance) Contains(t time.Time) bool {
	if !w.Recurring() {
		return !t.Before(w.Start) && t.Before(w.End)
	}
	_, _, ok := w.Occurrence(t)
	return ok
}

// Occurrence returns the occurrence of the window that contains t, as
// [start, end), and whether there is one. For a one-off window that is
// [Start, End). When occurrences overlap (Duration longer than the gap
// between them), the one that ends last is returned.
func (w Maintenance) Occurrence(t time.Time) (start, end time.Time, ok bool) {
	if !w.Recurring() {
		if w.Contains(t) {
			return w.Start, w.End, true
		}
		return time.Time{}, time.Time{}, false
	}
	sched, loc, ok := w.schedule()
	if !ok {
		return time.Time{}, time.Time{}, false
	}
	s, found := latestStart(sched, loc, t, w.Duration)
	if !found || !t.Before(s.Add(w.Duration)) {
		return time.Time{}, time.Time{}, false
	}
	return s, s.Add(w.Duration), true
}

// Next returns the first occurrence that starts after t, as [start, end),
// and whether there is one (a one-off window that has started has none;
// a recurring one has none only when its schedule is invalid).
func (w Maintenance) Next(t time.Time) (start, end time.Time, ok bool) {
	if !w.Recurring() {
		if w.Start.After(t) {
			return w.Start, w.End, true
		}
		return time.Time{}, time.Time{}, false
	}
	sched, loc, ok := w.schedule()
	if !ok {
		return time.Time{}, time.Time{}, false
	}
	// Wall times up to t's own give starts at or before t; past it, starts
	// grow with the wall time, so the first one after t is found by
	// walking forward (more than one step only where clocks fall back).
	wt := wallClock(t, loc)
	for i, n := 0, sched.Next(wt); i < maxOccurrenceScan && !n.IsZero(); i, n = i+1, sched.Next(n) {
		if s := realStart(n, loc); s.After(t) {
			return s, s.Add(w.Duration), true
		}
	}
	return time.Time{}, time.Time{}, false
}

// latestStart returns the latest start of an occurrence at or before t
// that began less than d before t, if there is one.
func latestStart(sched *cron.SpecSchedule, loc *time.Location, t time.Time, d time.Duration) (time.Time, bool) {
	wt := wallClock(t, loc)
	// The latest occurrence at or before wt on the wall clock: every wall
	// time up to t's own starts at or before t.
	lo := wallClock(t.Add(-d), loc).Add(-dstSlack)
	var best time.Time
	found := false
	if first := sched.Next(lo); !first.IsZero() && !first.After(wt) {
		best, found = prevOccurrence(sched, lo, wt), true
	}
	// Wall times just after t's may still start before t where the clock
	// fell back (02:10 the second time comes after 02:20 the first time).
	for i, n := 0, sched.Next(wt); i < maxOccurrenceScan && !n.IsZero() && n.Sub(wt) <= dstSlack; i, n = i+1, sched.Next(n) {
		if realStart(n, loc).After(t) {
			break
		}
		best, found = n, true
	}
	if !found {
		return time.Time{}, false
	}
	return realStart(best, loc), true
}

// prevOccurrence returns the latest occurrence at or before hi, given that
// the first one after lo is at or before hi: a binary search on minutes
// (cron's resolution) for the last x with sched.Next(x) <= hi.
func prevOccurrence(sched *cron.SpecSchedule, lo, hi time.Time) time.Time {
	a := lo.Truncate(time.Minute)
	if a.After(lo) {
		a = a.Add(-time.Minute)
	}
	// Invariant: Next(a) <= hi; Next(b) > hi.
	b := hi
	for b.Sub(a) > time.Minute {
		m := a.Add(b.Sub(a) / 2).Truncate(time.Minute)
		if !m.After(a) {
			m = a.Add(time.Minute)
		}
		if n := sched.Next(m); !n.IsZero() && !n.After(hi) {
			a = m
		} else {
			b = m
		}
	}
	return sched.Next(a)
}

// wallClock is t's local time in loc, written as a UTC time: the clock
// the schedule is read on.
func wallClock(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// realStart is the instant a window whose start reads wall (in loc's local
// time) begins: the first instant with that local time, or, for a local
// time a forward change skips, the instant of the change.
func realStart(wall time.Time, loc *time.Location) time.Time {
	y, mo, d := wall.Date()
	h, mi, s := wall.Clock()
	t := time.Date(y, mo, d, h, mi, s, wall.Nanosecond(), loc)
	if wt := wallClock(t, loc); !wt.Equal(wall) {
		// Skipped: the window starts at the change, which is where t's zone
		// period starts (t reads later than wall) or ends (t reads earlier).
		start, end := t.ZoneBounds()
		if wt.After(wall) && !start.IsZero() {
			return start
		}
		if wt.Before(wall) && !end.IsZero() {
			return end
		}
		return t
	}
	// Repeated: an earlier instant shows the same local time when the
	// previous zone period had a larger offset.
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return t
	}
	_, offNow := t.Zone()
	_, offPrev := start.Add(-time.Nanosecond).Zone()
	if offPrev > offNow {
		if e := t.Add(-time.Duration(offPrev-offNow) * time.Second); e.Before(start) && wallClock(e, loc).Equal(wall) {
			return e
		}
	}
	return t
}
