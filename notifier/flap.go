package notifier

import "time"

// FlapDamper keeps a flapping check from paging on every change. It is pure
// logic with no clock of its own: every call takes the time, so tests drive
// it with any clock they like.
//
// Feed it the check's state changes (an incident opening: down; closing:
// up) with Change. While fewer than Threshold+1 changes fall within Window
// it says to send each change's notification as usual. The change that
// makes it more than Threshold starts a flapping episode: send one flapping
// notice instead of that change's notification, and nothing more while the
// episode lasts (Flapping reports it). Once the check has not changed for
// Window, Tick ends the episode and says what the final state needs:
//
//   - it ended down: send the trigger of the open incident (held so far);
//   - a trigger went out before the episode and its resolve was held:
//     send that resolve (when it ended up, that is all that is sent);
//   - otherwise nothing, beyond the end of the flapping notice.
//
// A Threshold of 0 turns dampening off. The zero FlapDamper is off.
type FlapDamper struct {
	Threshold int
	Window    time.Duration

	changes   []time.Time // recent changes, oldest first
	down      bool        // the latest state
	triggered bool        // a trigger went out whose resolve has not
	flapping  bool
	since     time.Time // start of the episode
	last      time.Time // the latest change
}

// NewFlapDamper returns a damper for a check's flap_threshold and
// flap_window.
func NewFlapDamper(threshold int, window time.Duration) *FlapDamper {
	return &FlapDamper{Threshold: threshold, Window: window}
}

// FlapDecision is what to do about a change (Change) or at a moment
// (Tick).
type FlapDecision struct {
	// Send: not flapping; send this change's trigger or resolve as usual.
	Send bool
	// Notice: the check just started flapping; send one flapping notice
	// (Changes changes within the window), not this change's notification.
	Notice  bool
	Changes int
	// Settled: the check has been stable for the window and the episode is
	// over; Trigger and Resolve say what the final state needs.
	Settled bool
	Trigger bool // the open incident's trigger, which was held
	Resolve bool // the resolve of the incident whose trigger went out before the episode
}

func (d *FlapDamper) off() bool { return d == nil || d.Threshold <= 0 || d.Window <= 0 }

// Change records a state change at t: down is the new state (an incident
// opened) or up (it closed).
func (d *FlapDamper) Change(t time.Time, down bool) FlapDecision {
	if d.off() {
		return FlapDecision{Send: true}
	}
	d.down, d.last = down, t
	d.changes = append(d.changes, t)
	d.prune(t)
	if d.flapping {
		return FlapDecision{}
	}
	if len(d.changes) > d.Threshold {
		d.flapping, d.since = true, t
		return FlapDecision{Notice: true, Changes: len(d.changes)}
	}
	d.triggered = down
	return FlapDecision{Send: true}
}

// prune forgets the changes that fell out of the window ending at now.
func (d *FlapDamper) prune(now time.Time) {
	i := 0
	for i < len(d.changes) && !d.changes[i].After(now.Add(-d.Window)) {
		i++
	}
	d.changes = d.changes[i:]
}

// Tick ends a flapping episode once the check has been stable for the
// window (Settled, with the final state), and otherwise returns nothing.
func (d *FlapDamper) Tick(now time.Time) FlapDecision {
	if d.off() || !d.flapping || now.Sub(d.last) < d.Window {
		return FlapDecision{}
	}
	dec := FlapDecision{Settled: true, Trigger: d.down, Resolve: d.triggered}
	d.flapping, d.triggered = false, d.down
	d.prune(now)
	return dec
}

// Flapping reports whether an episode is under way, since when, and how
// many changes fell within the window ending at now.
func (d *FlapDamper) Flapping(now time.Time) (flapping bool, since time.Time, changes int) {
	if d.off() {
		return false, time.Time{}, 0
	}
	n := 0
	for _, c := range d.changes {
		if c.After(now.Add(-d.Window)) {
			n++
		}
	}
	return d.flapping, d.since, n
}
