package config

import (
	"errors"
	"math"
	"strings"
	"time"
)

// Day and Week are the units d and w of ParseDuration: 24 and 168 hours of
// elapsed time (not calendar days: a day that a DST change shortens is still
// 24 hours here).
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
)

var errDuration = errors.New("invalid duration")

// ParseDuration reads a duration in Go syntax (300ms, 30s, 1h30m) that may
// also use the units d (24h) and w (7d), alone or mixed with the others:
// 7d, 2w, 1d12h, 1.5d, -1w. It is what every duration in the configuration
// goes through; other packages reading durations from users (API
// parameters) use it too, so that a duration means the same everywhere.
func ParseDuration(s string) (time.Duration, error) {
	if !strings.ContainsAny(s, "dw") {
		return time.ParseDuration(s)
	}
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, errDuration
	}
	// Split into NUMBER UNIT terms; d and w terms are converted here, the
	// rest are left to time.ParseDuration (which knows ns, us, µs, ms, s, m, h).
	var total time.Duration
	var rest strings.Builder
	for s != "" {
		i := 0
		for i < len(s) && (s[i] == '.' || s[i] >= '0' && s[i] <= '9') {
			i++
		}
		if i == 0 {
			return 0, errDuration
		}
		num := s[:i]
		j := i
		for j < len(s) && s[j] != '.' && (s[j] < '0' || s[j] > '9') {
			j++
		}
		unit := s[i:j]
		s = s[j:]
		var mult time.Duration
		switch unit {
		case "d":
			mult = 24
		case "w":
			mult = 168
		case "":
			return 0, errDuration // a number needs a unit
		default:
			rest.WriteString(num)
			rest.WriteString(unit)
			continue
		}
		h, err := time.ParseDuration(num + "h")
		if err != nil {
			return 0, errDuration
		}
		if h > math.MaxInt64/mult {
			return 0, errDuration
		}
		if total, err = addDur(total, h*mult); err != nil {
			return 0, err
		}
	}
	if rest.Len() > 0 {
		d, err := time.ParseDuration(rest.String())
		if err != nil {
			return 0, errDuration
		}
		if total, err = addDur(total, d); err != nil {
			return 0, err
		}
	}
	if neg {
		total = -total
	}
	return total, nil
}

func addDur(a, b time.Duration) (time.Duration, error) {
	if b > 0 && a > math.MaxInt64-b {
		return 0, errDuration
	}
	return a + b, nil
}
