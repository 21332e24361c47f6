package config

import (
	"encoding/json"
	"hash/fnv"
	"reflect"
	"regexp"
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

// InMaintenance reports whether check is inside a maintenance window at t:
// a one-off window covers [Start, End), a recurring one each of its
// occurrences (see Maintenance.Occurrence).
func (c *Config) InMaintenance(check string, t time.Time) bool {
	if c == nil {
		return false
	}
	for _, w := range c.Maintenance {
		if slices.Contains(w.Checks, check) && w.Contains(t) {
			return true
		}
	}
	return false
}

// Same reports whether two definitions of a check are the same, ignoring
// where they stand in the file.
func (c *Check) Same(o *Check) bool { return sameCheck(*c, *o, false) }

// SameProbe reports whether two definitions of a check probe the same way:
// the probe and its thresholds, everything its results depend on, not its
// presentation or routing.
func (c *Check) SameProbe(o *Check) bool { return sameCheck(*c, *o, true) }

func sameCheck(a, b Check, probeOnly bool) bool {
	na, ra := normalized(a, probeOnly)
	nb, rb := normalized(b, probeOnly)
	return slices.Equal(ra, rb) && reflect.DeepEqual(na, nb)
}

// ProbeKey is a digest of everything the check's results depend on (as
// SameProbe compares): nodes whose keys for a check differ do not probe it
// the same way, so their votes on it cannot be counted together.
func (c *Check) ProbeKey() uint64 {
	n, res := normalized(*c, true)
	b, err := json.Marshal(struct {
		C Check
		R []string
	}{n, res})
	if err != nil {
		b = []byte(c.Name)
	}
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// normalized is c without its place in the file and with compiled
// expressions replaced by their sources (returned apart); with probeOnly
// also without what its results do not depend on.
func normalized(c Check, probeOnly bool) (Check, []string) {
	var res []string
	re := func(r *regexp.Regexp) string {
		if r == nil {
			return "\x00nil"
		}
		return r.String()
	}
	res = append(res, re(c.Expect.BodyRegex), re(c.Expect.BodyNotRegex))
	c.Expect.BodyRegex, c.Expect.BodyNotRegex, c.Line, c.Column = nil, nil, 0, 0
	if len(c.Expect.Headers) > 0 {
		hs := make([]HeaderAssertion, len(c.Expect.Headers))
		for i, h := range c.Expect.Headers {
			res = append(res, re(h.Regex))
			hs[i] = HeaderAssertion{Name: h.Name}
		}
		c.Expect.Headers = hs
	}
	if probeOnly {
		c.Group, c.DisplayName, c.Description, c.Notify, c.Labels, c.Severity = "", "", "", nil, nil, ""
		c.DependsOn, c.DependsWait = nil, 0
	}
	return c, res
}
