package config

import (
	"reflect"
	"slices"
	"time"
)

// CheckByName returns the check called name, or nil.
func (c *Config) CheckByName(name string) *Check {
	if c == nil {
		return nil
	}
	for i := range c.Checks {
		if c.Checks[i].Name == name {
			return &c.Checks[i]
		}
	}
	return nil
}

// NotifierByName returns the notifier called name, or nil.
func (c *Config) NotifierByName(name string) *Notifier {
	if c == nil {
		return nil
	}
	for i := range c.Notifiers {
		if c.Notifiers[i].Name == name {
			return &c.Notifiers[i]
		}
	}
	return nil
}

// InMaintenance reports whether check is inside a maintenance window at t.
// A window covers [Start, End): it begins at Start and is over at End.
func (c *Config) InMaintenance(check string, t time.Time) bool {
	if c == nil {
		return false
	}
	for _, w := range c.Maintenance {
		if w.Contains(t) && slices.Contains(w.Checks, check) {
			return true
		}
	}
	return false
}

// Contains reports whether t lies in the window [Start, End).
func (w Maintenance) Contains(t time.Time) bool {
	return !t.Before(w.Start) && t.Before(w.End)
}

// Same reports whether two definitions of a check are the same, ignoring
// where they stand in the file.
func (c *Check) Same(o *Check) bool { return sameCheck(*c, *o, false) }

// SameProbe reports whether two definitions of a check probe the same way:
// the probe and its thresholds, everything its results depend on, not its
// presentation or routing.
func (c *Check) SameProbe(o *Check) bool { return sameCheck(*c, *o, true) }

func sameCheck(a, b Check, probeOnly bool) bool {
	norm := func(c Check) (Check, string) {
		re := ""
		if c.Expect.BodyRegex != nil {
			re = c.Expect.BodyRegex.String()
		}
		c.Expect.BodyRegex, c.Line, c.Column = nil, 0, 0
		if probeOnly {
			c.Group, c.DisplayName, c.Description, c.Notify, c.Labels, c.Severity = "", "", "", nil, nil, ""
		}
		return c, re
	}
	na, ra := norm(a)
	nb, rb := norm(b)
	return ra == rb && reflect.DeepEqual(na, nb)
}
