package notifier

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Summary is the first line of every notification: what on-call needs to
// know at a glance.
//
//	api DOWN: eu-west connect_timeout, us-east connect_timeout; ap-south up
//	api still DOWN for 1h20m: eu-west connect_timeout, us-east connect_timeout; ap-south up
//	api UP after 12m3s
//	api is flapping: 6 changes in 10m; notifications paused until it is stable
//	api stopped flapping: stable for 10m; notifications resumed
//	monitoring coverage lost: only 1 of 3 regions can see api
//	monitoring coverage restored after 14m: 3 of 3 regions can see api
//	vantage TEST notification: api
//
// Regions are listed in sorted order: first those voting down (with their
// error code, or "down" when there is none), then those voting up, then
// those abstaining.
func Summary(e Event) string {
	check := e.Check
	if check == "" {
		check = "vantage"
	}
	switch e.Kind {
	case KindFlapping:
		if e.Action == ActionResolve {
			return fmt.Sprintf("%s stopped flapping: stable for %s; notifications resumed", check, formatDuration(e.Window))
		}
		return fmt.Sprintf("%s is flapping: %d changes in %s; notifications paused until it is stable",
			check, e.Changes, formatDuration(e.Window))
	case KindCoverage:
		if e.Action == ActionResolve {
			s := "monitoring coverage restored"
			if e.ResolvedAt != nil && !e.StartedAt.IsZero() {
				s += " after " + formatDuration(e.ResolvedAt.Sub(e.StartedAt))
			}
			return fmt.Sprintf("%s: %d of %d regions can see %s", s, e.RegionsSeeing, e.RegionsTotal, check)
		}
		return fmt.Sprintf("monitoring coverage lost: only %d of %d regions can see %s", e.RegionsSeeing, e.RegionsTotal, check)
	}
	switch e.Action {
	case ActionResolve:
		if e.ResolvedAt != nil && !e.StartedAt.IsZero() {
			return fmt.Sprintf("%s UP after %s", check, formatDuration(e.ResolvedAt.Sub(e.StartedAt)))
		}
		return check + " UP"
	case ActionTest:
		if e.Check == "" {
			return "vantage TEST notification"
		}
		return "vantage TEST notification: " + e.Check
	}
	s := check + " DOWN"
	if e.Action == ActionRepeat {
		s = check + " still DOWN"
		if !e.At.IsZero() && !e.StartedAt.IsZero() {
			s += " for " + formatDuration(e.At.Sub(e.StartedAt))
		}
	}
	if r := regionSummary(e.Regions); r != "" {
		s += ": " + r
	}
	return s
}

// regionSummary renders "eu-west connect_timeout, us-east down; ap-south up; x abstain".
func regionSummary(regions map[string]RegionVote) string {
	var down, up, other []string
	for _, name := range sortedRegions(regions) {
		v := regions[name]
		switch v.Vote {
		case "down":
			code := v.Error
			if code == "" {
				code = "down"
			}
			down = append(down, name+" "+code)
		case "up":
			up = append(up, name+" up")
		default:
			vote := v.Vote
			if vote == "" {
				vote = "abstain"
			}
			other = append(other, name+" "+vote)
		}
	}
	var parts []string
	for _, p := range [][]string{down, up, other} {
		if len(p) > 0 {
			parts = append(parts, strings.Join(p, ", "))
		}
	}
	return strings.Join(parts, "; ")
}

// DownRegions returns the regions voting down, sorted.
func DownRegions(e Event) []string {
	var out []string
	for _, name := range sortedRegions(e.Regions) {
		if e.Regions[name].Vote == "down" {
			out = append(out, name)
		}
	}
	return out
}

func sortedRegions(regions map[string]RegionVote) []string {
	names := make([]string, 0, len(regions))
	for name := range regions {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// formatDuration renders d rounded to the second, without zero trailing
// units: 12m3s, 1h20m, 10m, 2h.
func formatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// field is one labelled line of a notification's details.
type field struct{ Name, Value string }

// fields are the details that follow the summary, in order.
func fields(e Event) []field {
	var fs []field
	if e.Target != "" {
		fs = append(fs, field{"Target", e.Target})
	}
	since := "Down since"
	switch e.Kind {
	case KindCoverage:
		since = "Unknown since"
	case KindFlapping:
		since = "Flapping since"
	}
	if !e.StartedAt.IsZero() {
		fs = append(fs, field{since, formatTime(e.StartedAt)})
	}
	switch {
	case e.Action == ActionResolve && e.ResolvedAt != nil:
		label := "Resolved at"
		if e.Kind == KindCoverage {
			label = "Restored at"
		}
		fs = append(fs, field{label, formatTime(*e.ResolvedAt)})
		if !e.StartedAt.IsZero() {
			fs = append(fs, field{"Duration", formatDuration(e.ResolvedAt.Sub(e.StartedAt))})
		}
	case e.Action == ActionRepeat:
		if !e.At.IsZero() && !e.StartedAt.IsZero() {
			fs = append(fs, field{"Down for", formatDuration(e.At.Sub(e.StartedAt))})
		}
		if e.Seq > 0 {
			fs = append(fs, field{"Reminder", strconv.Itoa(e.Seq)})
		}
	}
	if e.Kind == KindFlapping && e.Action != ActionResolve {
		fs = append(fs, field{"Changes", fmt.Sprintf("%d in %s", e.Changes, formatDuration(e.Window))})
	}
	if e.Kind == KindCoverage {
		fs = append(fs, field{"Regions seeing it", fmt.Sprintf("%d of %d", e.RegionsSeeing, e.RegionsTotal)})
	}
	if e.Severity != "" {
		fs = append(fs, field{"Severity", e.Severity})
	}
	if e.Group != "" {
		fs = append(fs, field{"Group", e.Group})
	}
	if e.IncidentID != "" {
		fs = append(fs, field{"Incident", e.IncidentID})
	}
	if e.StatusPageURL != "" {
		fs = append(fs, field{"Status page", e.StatusPageURL})
	}
	return fs
}

// regionLines renders one line per region, sorted:
// "eu-west: down connect_timeout (10003 ms)".
func regionLines(regions map[string]RegionVote) []string {
	var out []string
	for _, name := range sortedRegions(regions) {
		out = append(out, name+": "+regionDetail(regions[name]))
	}
	return out
}

func regionDetail(v RegionVote) string {
	s := v.Vote
	if s == "" {
		s = "abstain"
	}
	if v.Error != "" {
		s += " " + v.Error
	}
	if v.LatencyMS > 0 {
		s += fmt.Sprintf(" (%.0f ms)", v.LatencyMS)
	}
	return s
}

// Text is the whole notification as plain text: the summary, the details,
// then one line per region.
func Text(e Event) string {
	var b strings.Builder
	b.WriteString(Summary(e))
	b.WriteByte('\n')
	for _, f := range fields(e) {
		fmt.Fprintf(&b, "%s: %s\n", f.Name, f.Value)
	}
	if lines := regionLines(e.Regions); len(lines) > 0 {
		b.WriteString("Regions:\n")
		for _, l := range lines {
			b.WriteString("  " + l + "\n")
		}
	}
	return b.String()
}
