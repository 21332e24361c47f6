package notifier

import "time"

// CoverageWatch decides a check's coverage alerts: a check whose state has
// been unknown (too few regions can see it to tell) for After sends one
// coverage alert, and a resolve once it is known again (up or down). A
// check that is known again before After sends nothing. After 0 turns the
// alerts off. Like FlapDamper it has no clock of its own: every call takes
// the time.
type CoverageWatch struct {
	After time.Duration

	unknown bool
	since   time.Time
	alerted bool
}

// NewCoverageWatch returns a watch for a check's unknown_after.
func NewCoverageWatch(after time.Duration) *CoverageWatch { return &CoverageWatch{After: after} }

// Coverage decisions.
type CoverageDecision int

const (
	CoverageNone     CoverageDecision = iota
	CoverageLost                      // send the coverage alert (a trigger of kind coverage)
	CoverageRestored                  // send its resolve
)

// Observe takes the check's state at now: unknown or not, and since when
// it has been unknown (the zero time: now). It returns the decision and the
// start of the unknown period the alert is about (for CoverageID).
func (w *CoverageWatch) Observe(now time.Time, unknown bool, since time.Time) (CoverageDecision, time.Time) {
	if !unknown {
		was, start := w.alerted, w.since
		w.unknown, w.alerted, w.since = false, false, time.Time{}
		if was {
			return CoverageRestored, start
		}
		return CoverageNone, time.Time{}
	}
	if !w.unknown {
		w.unknown, w.since = true, since
		if since.IsZero() || since.After(now) {
			w.since = now
		}
	}
	if !w.alerted && w.After > 0 && now.Sub(w.since) >= w.After {
		w.alerted = true
		return CoverageLost, w.since
	}
	return CoverageNone, time.Time{}
}

// Alerted reports whether a coverage alert is out (lost, not yet restored)
// and since when the check has been unknown.
func (w *CoverageWatch) Alerted() (bool, time.Time) { return w.alerted, w.since }
