package notifier

import (
	"testing"
	"time"
)

// fakeNow is the injected clock of the damper and watch tests: the tests
// move it and pass its time to every call.
type fakeNow struct{ t time.Time }

func (c *fakeNow) set(d time.Duration) time.Time { c.t = t0.Add(d); return c.t }

type flapStep struct {
	at   time.Duration
	op   string // "down", "up" (a change) or "tick"
	want FlapDecision
}

var (
	sendIt = FlapDecision{Send: true}
	quiet  = FlapDecision{}
	notice = func(n int) FlapDecision { return FlapDecision{Notice: true, Changes: n} }
)

func TestFlapDamper(t *testing.T) {
	m := time.Minute
	for _, tc := range []struct {
		name      string
		threshold int
		window    time.Duration
		steps     []flapStep
	}{
		{"few changes send normally", 5, 10 * m, []flapStep{
			{0, "down", sendIt}, {1 * m, "up", sendIt}, {2 * m, "down", sendIt}, {3 * m, "up", sendIt},
			{4 * m, "tick", quiet}, {30 * m, "tick", quiet},
		}},
		{"slow changes never flap", 3, 10 * m, []flapStep{
			// At most 3 changes within any 10 minutes.
			{0, "down", sendIt}, {4 * m, "up", sendIt}, {8 * m, "down", sendIt}, {12 * m, "up", sendIt},
			{16 * m, "down", sendIt}, {20 * m, "up", sendIt}, {24 * m, "down", sendIt},
		}},
		{"a change exactly one window old no longer counts", 2, 10 * m, []flapStep{
			{0, "down", sendIt}, {5 * m, "up", sendIt}, {10 * m, "down", sendIt}, // 0 is out: 2 changes in the window
			{11 * m, "up", notice(3)},
		}},
		{"ends up: the resolve of the trigger that went out", 5, 10 * m, []flapStep{
			{0, "down", sendIt}, {1 * m, "up", sendIt}, {2 * m, "down", sendIt}, {3 * m, "up", sendIt},
			{4 * m, "down", sendIt},  // this trigger went out
			{5 * m, "up", notice(6)}, // its resolve is held; one notice
			{6 * m, "down", quiet}, {7 * m, "up", quiet},
			{8 * m, "tick", quiet}, {16*m + 59*time.Second, "tick", quiet}, // stable for less than the window
			{17 * m, "tick", FlapDecision{Settled: true, Resolve: true}},
			{18 * m, "tick", quiet}, // settled once
			// Dampening starts afresh: the old changes are out of the window.
			{19 * m, "down", sendIt}, {20 * m, "up", sendIt},
		}},
		{"ends down: resolve the old incident, trigger the open one", 5, 10 * m, []flapStep{
			{0, "down", sendIt}, {1 * m, "up", sendIt}, {2 * m, "down", sendIt}, {3 * m, "up", sendIt},
			{4 * m, "down", sendIt}, {5 * m, "up", notice(6)},
			{6 * m, "down", quiet}, {7 * m, "up", quiet}, {8 * m, "down", quiet},
			{17 * m, "tick", quiet}, // a held change restarts the stable period
			{18 * m, "tick", FlapDecision{Settled: true, Trigger: true, Resolve: true}},
			{19 * m, "up", sendIt}, // the trigger went out at the end: this resolve is normal
		}},
		{"starts on a down change and ends down: only the trigger", 4, 10 * m, []flapStep{
			{0, "down", sendIt}, {1 * m, "up", sendIt}, {2 * m, "down", sendIt}, {3 * m, "up", sendIt},
			{4 * m, "down", notice(5)}, // this trigger is held; every resolve went out
			{14 * m, "tick", FlapDecision{Settled: true, Trigger: true}},
		}},
		{"starts on a down change and ends up: nothing", 4, 10 * m, []flapStep{
			{0, "down", sendIt}, {1 * m, "up", sendIt}, {2 * m, "down", sendIt}, {3 * m, "up", sendIt},
			{4 * m, "down", notice(5)}, {5 * m, "up", quiet},
			{15 * m, "tick", FlapDecision{Settled: true}},
		}},
		{"threshold 0 is off", 0, 10 * m, []flapStep{
			{0, "down", sendIt}, {1 * time.Second, "up", sendIt}, {2 * time.Second, "down", sendIt},
			{3 * time.Second, "up", sendIt}, {4 * time.Second, "tick", quiet}, {time.Hour, "tick", quiet},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewFlapDamper(tc.threshold, tc.window)
			clock := &fakeNow{}
			for i, s := range tc.steps {
				now := clock.set(s.at)
				var got FlapDecision
				switch s.op {
				case "down", "up":
					got = d.Change(now, s.op == "down")
				case "tick":
					got = d.Tick(now)
				}
				if got != s.want {
					t.Fatalf("step %d (%s at %v): %+v, want %+v", i, s.op, s.at, got, s.want)
				}
			}
		})
	}
}

func TestFlapDamperFlapping(t *testing.T) {
	d := NewFlapDamper(2, 10*time.Minute)
	clock := &fakeNow{}
	d.Change(clock.set(0), true)
	d.Change(clock.set(time.Minute), false)
	if f, _, n := d.Flapping(clock.t); f || n != 2 {
		t.Fatalf("flapping %v with %d changes", f, n)
	}
	start := clock.set(2 * time.Minute)
	if dec := d.Change(start, true); !dec.Notice {
		t.Fatalf("third change: %+v", dec)
	}
	f, since, n := d.Flapping(clock.set(3 * time.Minute))
	if !f || !since.Equal(start) || n != 3 {
		t.Fatalf("Flapping = %v %v %d", f, since, n)
	}
	if f, _, n := d.Flapping(clock.set(11*time.Minute + time.Second)); !f || n != 1 {
		t.Fatalf("later: Flapping = %v %d (one change left in the window, still not stable)", f, n)
	}
	d.Tick(clock.set(12 * time.Minute))
	if f, _, _ := d.Flapping(clock.t); f {
		t.Fatal("still flapping after settling")
	}
	var off *FlapDamper
	if dec := off.Change(clock.t, true); dec != sendIt {
		t.Fatalf("nil damper: %+v", dec)
	}
}

func TestCoverageWatch(t *testing.T) {
	m := time.Minute
	type step struct {
		at      time.Duration
		unknown bool
		since   time.Duration // -1: zero time
		want    CoverageDecision
		start   time.Duration // the unknown period's start, for Lost and Restored
	}
	for _, tc := range []struct {
		name  string
		after time.Duration
		steps []step
	}{
		{"unknown for less than unknown_after: nothing", 10 * m, []step{
			{0, false, -1, CoverageNone, 0}, {1 * m, true, 1 * m, CoverageNone, 0}, {10 * m, true, 1 * m, CoverageNone, 0},
			{10*m + 59*time.Second, false, -1, CoverageNone, 0},
		}},
		{"lost once, restored once", 10 * m, []step{
			{1 * m, true, 1 * m, CoverageNone, 0}, {11 * m, true, 1 * m, CoverageLost, 1 * m},
			{12 * m, true, 1 * m, CoverageNone, 0}, {30 * m, true, 1 * m, CoverageNone, 0},
			{31 * m, false, -1, CoverageRestored, 1 * m}, {32 * m, false, -1, CoverageNone, 0},
			// A new unknown period is a new alert.
			{40 * m, true, 40 * m, CoverageNone, 0}, {50 * m, true, 40 * m, CoverageLost, 40 * m},
		}},
		{"since from the caller, not the first observation", 10 * m, []step{
			{15 * m, true, 2 * m, CoverageLost, 2 * m},
		}},
		{"no since: from the first observation", 10 * m, []step{
			{5 * m, true, -1, CoverageNone, 0}, {15 * m, true, -1, CoverageLost, 5 * m},
		}},
		{"unknown_after 0 is off", 0, []step{
			{0, true, 0, CoverageNone, 0}, {24 * time.Hour, true, 0, CoverageNone, 0}, {25 * time.Hour, false, -1, CoverageNone, 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewCoverageWatch(tc.after)
			clock := &fakeNow{}
			out := false // a coverage alert is out
			for i, s := range tc.steps {
				now := clock.set(s.at)
				var since time.Time
				if s.since >= 0 {
					since = t0.Add(s.since)
				}
				got, start := w.Observe(now, s.unknown, since)
				if got != s.want {
					t.Fatalf("step %d at %v: %v, want %v", i, s.at, got, s.want)
				}
				if got != CoverageNone && !start.Equal(t0.Add(s.start)) {
					t.Fatalf("step %d: unknown since %v, want %v", i, start.Sub(t0), s.start)
				}
				switch got {
				case CoverageLost:
					out = true
				case CoverageRestored:
					out = false
				}
				if alerted, _ := w.Alerted(); alerted != out {
					t.Fatalf("step %d: Alerted %v, want %v", i, alerted, out)
				}
			}
		})
	}
}
