package statuspage

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vantage-dev/vantage/notifier"
	"github.com/vantage-dev/vantage/store"
)

// A check's incident reads as its notifications do: "Checkout is not
// reachable from 3 of 3 regions (ap-south, eu-west, us-east): HTTP 503",
// from the regions' votes and error codes when it opened (the incident's
// Details) and notifier.Headline's words. Error codes are public; raw
// error messages never appear.

// IncidentDetails is the structured form of a check's incident's Details
// (store.Incident.Details): the regions' votes and error codes when it
// opened. The node writes it with IncidentDetailsOf; the page, the feed
// and the Statuspage documents read the incident's opening text from it.
type IncidentDetails struct {
	Regions map[string]DetailVote `json:"regions"`
}

// DetailVote is a region's vote and error code in IncidentDetails.
type DetailVote struct {
	Vote  string `json:"vote"`
	Error string `json:"error,omitempty"`
}

// IncidentDetailsOf encodes the votes at an incident's opening as its
// Details. Messages are left out: Details are public.
func IncidentDetailsOf(regions map[string]*RegionVote) string {
	d := IncidentDetails{Regions: make(map[string]DetailVote, len(regions))}
	for r, v := range regions {
		d.Regions[r] = DetailVote{Vote: v.Vote, Error: v.Error}
	}
	b, _ := json.Marshal(d)
	return string(b)
}

// parseDetails reads an incident's Details: IncidentDetails in JSON, or
// the older form "down: a,b; up: c; abstain: none" (no error codes). ok is
// false for anything else (free text, or none).
func parseDetails(s string) (regions map[string]notifier.RegionVote, ok bool) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") {
		var d IncidentDetails
		if json.Unmarshal([]byte(s), &d) != nil || len(d.Regions) == 0 {
			return nil, false
		}
		regions = make(map[string]notifier.RegionVote, len(d.Regions))
		for r, v := range d.Regions {
			regions[r] = notifier.RegionVote{Vote: v.Vote, Error: v.Error}
		}
		return regions, true
	}
	if !strings.HasPrefix(s, "down:") {
		return nil, false
	}
	regions = map[string]notifier.RegionVote{}
	for part := range strings.SplitSeq(s, ";") {
		vote, list, found := strings.Cut(strings.TrimSpace(part), ":")
		if !found {
			return nil, false
		}
		switch vote = strings.TrimSpace(vote); vote {
		case "down", "up", "abstain":
		default:
			return nil, false
		}
		if list = strings.TrimSpace(list); list == "none" || list == "" {
			continue
		}
		for r := range strings.SplitSeq(list, ",") {
			if r = strings.TrimSpace(r); r != "" {
				regions[r] = notifier.RegionVote{Vote: vote}
			}
		}
	}
	return regions, len(regions) > 0
}

// openingRegions are the votes an incident opened with: from its Details,
// with the error codes of the check's current votes for the regions that
// still vote down in the same incident when the Details have none; or the
// current votes when the Details tell nothing and the incident is the
// check's current one.
func openingRegions(inc store.Incident, cs *CheckStatus) map[string]notifier.RegionVote {
	current := cs != nil && inc.ID != "" && cs.IncidentID == inc.ID
	regions, ok := parseDetails(inc.Details)
	if !ok {
		if !current || len(cs.Regions) == 0 {
			return nil
		}
		regions = make(map[string]notifier.RegionVote, len(cs.Regions))
		for r, v := range cs.Regions {
			regions[r] = notifier.RegionVote{Vote: v.Vote, Error: v.Error}
		}
		return regions
	}
	if current {
		for r, v := range regions {
			if lv, ok := cs.Regions[r]; ok && v.Vote == "down" && v.Error == "" && lv.Vote == "down" {
				v.Error = lv.Error
				regions[r] = v
			}
		}
	}
	return regions
}

// headline is an incident's opening sentence in the locale: "Checkout is
// not reachable from 3 of 3 regions (ap-south, eu-west, us-east): HTTP
// 503", "" when no region voted down.
func (l *locale) headline(label string, regions map[string]notifier.RegionVote) string {
	ev := notifier.Event{Action: notifier.ActionTrigger, Check: label, DisplayName: label, Regions: regions}
	down := notifier.DownRegions(ev)
	if len(down) == 0 {
		return ""
	}
	if !l.ko() {
		return notifier.Headline(ev)
	}
	// The same sentence in Korean, from the same phrases (translated).
	var phrases []string
	by := map[string][]string{}
	for _, r := range down {
		p := l.errPhrase(regions[r].Error)
		if _, ok := by[p]; !ok {
			phrases = append(phrases, p)
		}
		by[p] = append(by[p], r)
	}
	sort.SliceStable(phrases, func(i, j int) bool { return len(by[phrases[i]]) > len(by[phrases[j]]) })
	s := fmt.Sprintf("%s: 리전 %d곳 중 %d곳에서 접속할 수 없음", label, len(regions), len(down))
	switch {
	case len(phrases) == 1 && phrases[0] == "":
		return s + " (" + strings.Join(down, ", ") + ")"
	case len(phrases) == 1:
		return s + " (" + strings.Join(down, ", ") + "): " + phrases[0]
	}
	parts := make([]string, len(phrases))
	for i, p := range phrases {
		if p == "" {
			p = l.t("failing")
		}
		parts[i] = strings.Join(by[p], ", ") + "에서 " + p
	}
	return s + ": " + strings.Join(parts, "; ")
}

// errPhrase is an error code in words (notifier.Describe), translated.
func (l *locale) errPhrase(code string) string {
	p := notifier.Describe(code)
	if !l.ko() {
		return p
	}
	if rest, ok := strings.CutPrefix(p, "DNS error: "); ok {
		return "DNS 오류: " + rest
	}
	return l.t(p)
}

// errText is a region's error code as the regions table shows it.
func (l *locale) errText(code string) string { return l.errPhrase(code) }

// dressIncident writes an incident's public text in the locale: a check's
// incident's title ("Checkout is down"), its opening entry from the votes
// it opened with (see openingRegions; cs is the check's current status,
// nil if none), its resolution entry and its duration. Manual incidents
// keep their operators' words.
func (l *locale) dressIncident(iv *incidentView, inc store.Incident, cs *CheckStatus, now time.Time) {
	end := now
	if iv.ResolvedAt != nil {
		end = *iv.ResolvedAt
	}
	iv.Duration = l.dur(end.Sub(iv.StartedAt))
	if inc.Manual {
		return
	}
	iv.Title = l.t("%s is down", iv.Label)
	for i := range iv.Updates {
		u := &iv.Updates[i]
		switch {
		case !u.Auto:
		case u.ID == inc.ID+"-opened":
			if h := l.headline(iv.Label, openingRegions(inc, cs)); h != "" {
				u.Body = h
			} else if inc.Details == "" || isDetails(inc.Details) {
				u.Body = l.t("%s is not responding as expected; we are investigating.", iv.Label)
			}
		case u.ID == inc.ID+"-resolved":
			u.Body = l.t("%s is operational again.", iv.Label)
		}
	}
}

// freeDetails is Details as /api/v1/incidents shows them: free text as
// written; the structured forms are told in words by the incident's
// opening entry instead.
func freeDetails(s string) string {
	if isDetails(s) {
		return ""
	}
	return s
}

// isDetails reports whether Details are in one of the structured forms
// (rather than free text, which is shown as written).
func isDetails(s string) bool {
	s = strings.TrimSpace(s)
	return strings.HasPrefix(s, "{") || strings.HasPrefix(s, "down:")
}

// checkStatus is what the view shows of a check's current status (its
// incident id, the regions' votes and errors), nil if none.
func (v *view) checkStatus(name string) *CheckStatus {
	if v == nil || name == "" {
		return nil
	}
	c := v.byName[name]
	if c == nil {
		return nil
	}
	cs := &CheckStatus{Name: c.Name, State: c.State, Since: c.Since, IncidentID: c.IncidentID, Group: c.Group}
	if len(c.Regions) > 0 {
		cs.Regions = make(map[string]*RegionVote, len(c.Regions))
		for _, r := range c.Regions {
			cs.Regions[r.Name] = &RegionVote{Vote: r.Vote, LatencyMS: r.LatencyMS, CheckedAt: r.CheckedAt, Error: r.Error}
		}
	}
	return cs
}
