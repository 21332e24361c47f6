package notifier

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Describe turns a probe's error code into words for people: http_503 is
// "HTTP 503", connect_refused "connection refused", dns_nxdomain "DNS: no
// such name", any tls_* "TLS error". An unknown code reads as itself with
// spaces for underscores; "" stays "". Notifications and the status page
// share it.
func Describe(code string) string {
	if p, ok := codePhrases[code]; ok {
		return p
	}
	if n, ok := strings.CutPrefix(code, "http_"); ok && len(n) == 3 {
		if s, err := strconv.Atoi(n); err == nil && s >= 100 && s <= 599 {
			return "HTTP " + n
		}
	}
	switch {
	case strings.HasPrefix(code, "tls_"):
		return "TLS error"
	case strings.HasPrefix(code, "dns_"):
		return "DNS error: " + strings.ReplaceAll(strings.TrimPrefix(code, "dns_"), "_", " ")
	}
	return strings.ReplaceAll(code, "_", " ")
}

// codePhrases are the phrases of the error codes the probes report (see
// package checker) and of those a later prober may add.
var codePhrases = map[string]string{
	"":                "",
	"dns":             "DNS lookup failed",
	"dns_nxdomain":    "DNS: no such name",
	"dns_servfail":    "DNS: server failure",
	"dns_refused":     "DNS: query refused",
	"dns_timeout":     "DNS: no answer in time",
	"dns_rcode":       "DNS: unexpected answer code",
	"dns_answer":      "DNS: unexpected answer",
	"dns_mismatch":    "DNS: unexpected answer",
	"connect_refused": "connection refused",
	"connect_timeout": "connection timed out",
	"connect_reset":   "connection reset",
	"reset":           "connection reset",
	"unreachable":     "network unreachable",
	"connect":         "connection failed",
	"tls":             "TLS error",
	"cert_expiring":   "certificate expires soon",
	"cert_expired":    "certificate expired",
	"http_status":     "unexpected HTTP status",
	"body_mismatch":   "unexpected response",
	"too_slow":        "too slow",
	"timeout":         "no answer in time",
	"icmp_loss":       "packet loss",
	"icmp_permission": "ping not permitted on the probe",
	"protocol":        "protocol error",
	"config":          "check misconfigured",
	"internal":        "probe failure",
	"push_missed":     "no heartbeat",
	"no_heartbeat":    "no heartbeat",
}

// name is what messages call the check: its display name, else its name.
func name(e Event) string {
	switch {
	case e.IsGroup() && e.Check == "":
		return "group " + e.Group
	case e.DisplayName != "":
		return e.DisplayName
	case e.Check != "":
		return e.Check
	}
	return "vantage"
}

// Headline is the first line of every notification: what on-call needs to
// know at a glance, in words.
//
//	Checkout is not reachable from 3 of 3 regions (ap-south, eu-west, us-east): HTTP 503
//	Checkout is not reachable from 2 of 3 regions: HTTP 503 in eu-west; connection timed out in us-east
//	Checkout still DOWN for 1h20m: not reachable from 2 of 3 regions (eu-west, us-east): connection timed out
//	Checkout is up again after 12m3s
//	Checkout is flapping: 6 changes in 10m; notifications paused until it is stable
//	Checkout stopped flapping: stable for 10m; notifications resumed
//	monitoring coverage lost: only 1 of 3 regions can see Checkout
//	monitoring coverage restored after 14m: 3 of 3 regions can see Checkout
//	Checkout's TLS certificate (CN=checkout.example.com) expires in 13 days, on 2026-12-05 10:00 UTC
//	Checkout serves a renewed TLS certificate (CN=checkout.example.com), valid until 2027-03-05 10:00 UTC
//	vantage TEST notification: api
//
// Regions are listed in sorted order; an error code reads as Describe has
// it.
func Headline(e Event) string {
	check := name(e)
	if e.Test || e.Action == ActionTest {
		s := "vantage TEST notification"
		if e.Action == ActionResolve {
			s += " resolved"
		}
		if e.Check != "" {
			s += ": " + check
		}
		return s
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
	case KindCert:
		return certHeadline(e, check)
	case KindGroup:
		return groupHeadline(e)
	case KindMaintenance:
		return maintenanceHeadline(e)
	}
	switch e.Action {
	case ActionResolve:
		if e.ResolvedAt != nil && !e.StartedAt.IsZero() {
			return fmt.Sprintf("%s is up again after %s", check, formatDuration(e.ResolvedAt.Sub(e.StartedAt)))
		}
		return check + " is up again"
	case ActionRepeat:
		s := check + " still DOWN"
		if !e.At.IsZero() && !e.StartedAt.IsZero() {
			s += " for " + formatDuration(e.At.Sub(e.StartedAt))
		}
		if r := unreachable(e.Regions); r != "" {
			s += ": " + r
		}
		return s
	}
	if r := unreachable(e.Regions); r != "" {
		return check + " is " + r
	}
	return check + " is down"
}

// unreachable renders "not reachable from 2 of 3 regions (eu-west,
// us-east): connection timed out", or "" when no region votes down.
func unreachable(regions map[string]RegionVote) string {
	down := downRegions(regions)
	if len(down) == 0 {
		return ""
	}
	s := fmt.Sprintf("not reachable from %d of %d regions", len(down), len(regions))
	// Group the regions by what they saw, the most common first.
	var phrases []string
	by := map[string][]string{}
	for _, r := range down {
		p := Describe(regions[r].Error)
		if _, ok := by[p]; !ok {
			phrases = append(phrases, p)
		}
		by[p] = append(by[p], r)
	}
	sort.SliceStable(phrases, func(i, j int) bool { return len(by[phrases[i]]) > len(by[phrases[j]]) })
	switch {
	case len(phrases) == 1 && phrases[0] == "":
		return s + " (" + strings.Join(down, ", ") + ")"
	case len(phrases) == 1:
		return s + " (" + strings.Join(down, ", ") + "): " + phrases[0]
	}
	parts := make([]string, len(phrases))
	for i, p := range phrases {
		what := p
		if what == "" {
			what = "failing"
		}
		parts[i] = what + " in " + strings.Join(by[p], ", ")
	}
	return s + ": " + strings.Join(parts, "; ")
}

// certHeadline is the headline of a certificate warning.
func certHeadline(e Event, check string) string {
	c := e.Cert
	if c == nil {
		c = &CertInfo{}
	}
	subject := ""
	if c.Subject != "" {
		subject = " (" + c.Subject + ")"
	}
	if e.Action == ActionResolve {
		if r := e.Renewed; r != nil {
			s := check + " serves a renewed TLS certificate"
			if r.Subject != "" {
				s += " (" + r.Subject + ")"
			}
			if !r.NotAfter.IsZero() {
				s += ", valid until " + formatDay(r.NotAfter)
			}
			return s
		}
		return check + " no longer serves the expiring TLS certificate" + subject
	}
	s := check + "'s TLS certificate" + subject
	if c.NotAfter.IsZero() {
		return s + " expires soon"
	}
	at := e.At
	if at.IsZero() {
		at = e.StartedAt
	}
	switch left := c.NotAfter.Sub(at); {
	case at.IsZero():
		return s + " expires on " + formatDay(c.NotAfter)
	case left <= 0:
		return s + " expired " + formatLeft(-left) + " ago, on " + formatDay(c.NotAfter)
	default:
		return s + " expires in " + formatLeft(left) + ", on " + formatDay(c.NotAfter)
	}
}

// formatLeft renders a time to expiry coarsely: "13 days", "5 hours",
// "1 minute".
func formatLeft(d time.Duration) string {
	unit, n := "minute", int(d/time.Minute)
	switch {
	case d >= 48*time.Hour:
		unit, n = "day", int(d/(24*time.Hour))
	case d >= 2*time.Hour:
		unit, n = "hour", int(d/time.Hour)
	}
	if n != 1 {
		unit += "s"
	}
	return fmt.Sprintf("%d %s", n, unit)
}

func formatDay(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// DownRegions returns the regions voting down in e, sorted.
func DownRegions(e Event) []string { return downRegions(e.Regions) }

func downRegions(regions map[string]RegionVote) []string {
	var out []string
	for _, name := range sortedRegions(regions) {
		if regions[name].Vote == "down" {
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

// fieldList collects a notification's details; empty values and zero
// times are left out.
type fieldList []field

func (fs *fieldList) add(name, value string) {
	if value != "" {
		*fs = append(*fs, field{name, value})
	}
}

func (fs *fieldList) addTime(name string, t time.Time) {
	if !t.IsZero() {
		fs.add(name, formatTime(t))
	}
}

// fields are the details that follow the headline, in order.
func fields(e Event) []field {
	if e.IsMaintenance() {
		fs := maintenanceFields(e)
		fs.add("Severity", e.Severity)
		fs.add("Notice", e.IncidentID)
		fs.add("Status page", e.StatusPageURL)
		return fs
	}
	var fs fieldList
	if e.DisplayName != "" && e.DisplayName != e.Check {
		fs.add("Check", e.Check) // a check shown by another name
	}
	fs.add("Target", e.Target)
	if c := e.Cert; e.Kind == KindCert && c != nil {
		fs.add("Certificate", c.Subject)
		fs.add("Issuer", c.Issuer)
		fs.add("Serial", c.Serial)
		fs.addTime("Expires", c.NotAfter)
		if r := e.Renewed; r != nil && e.Action == ActionResolve {
			fs.add("New serial", r.Serial)
			fs.addTime("New certificate expires", r.NotAfter)
		}
	}
	since := "Down since"
	switch e.Kind {
	case KindCoverage:
		since = "Unknown since"
	case KindFlapping:
		since = "Flapping since"
	case KindCert:
		since = "Warned since"
	}
	if e.Test || e.Action == ActionTest {
		since = "Sent at"
	}
	fs.addTime(since, e.StartedAt)
	switch {
	case e.Action == ActionResolve && e.ResolvedAt != nil:
		label := "Resolved at"
		if e.Kind == KindCoverage {
			label = "Restored at"
		}
		fs.add(label, formatTime(*e.ResolvedAt))
		if !e.StartedAt.IsZero() {
			fs.add("Duration", formatDuration(e.ResolvedAt.Sub(e.StartedAt)))
		}
	case e.Action == ActionRepeat:
		if !e.At.IsZero() && !e.StartedAt.IsZero() {
			fs.add("Down for", formatDuration(e.At.Sub(e.StartedAt)))
		}
		if e.Seq > 0 {
			fs.add("Reminder", strconv.Itoa(e.Seq))
		}
	}
	if e.Kind == KindFlapping && e.Action != ActionResolve {
		fs.add("Changes", fmt.Sprintf("%d in %s", e.Changes, formatDuration(e.Window)))
	}
	if e.Kind == KindCoverage {
		fs.add("Regions seeing it", fmt.Sprintf("%d of %d", e.RegionsSeeing, e.RegionsTotal))
	}
	if e.IsGroup() {
		down := 0
		for _, m := range e.Members {
			if m.ResolvedAt == nil {
				down++
			}
		}
		fs.add("Checks down", fmt.Sprintf("%d of %d", down, len(e.Members)))
	}
	fs.add("Severity", e.Severity)
	fs.add("Group", e.Group)
	fs.add("Incident", e.IncidentID)
	fs.add("Status page", e.StatusPageURL)
	return fs
}

// regionLines renders one line per region, sorted:
// "eu-west: down: connection timed out (10000 ms)".
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
		s += ": " + Describe(v.Error)
	}
	if v.LatencyMS > 0 {
		s += fmt.Sprintf(" (%.0f ms)", v.LatencyMS)
	}
	return s
}

// Text is the whole notification as plain text: the headline, the
// details, then one line per region; a grouped page lists its checks.
func Text(e Event) string {
	var b strings.Builder
	b.WriteString(Headline(e))
	b.WriteByte('\n')
	for _, f := range fields(e) {
		fmt.Fprintf(&b, "%s: %s\n", f.Name, f.Value)
	}
	if lines := memberLines(e); len(lines) > 0 {
		b.WriteString("Checks:\n")
		for _, l := range lines {
			b.WriteString("  " + l + "\n")
		}
	}
	if lines := regionLines(e.Regions); len(lines) > 0 {
		b.WriteString("Regions:\n")
		for _, l := range lines {
			b.WriteString("  " + l + "\n")
		}
	}
	return b.String()
}
