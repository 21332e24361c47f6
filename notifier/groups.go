package notifier

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Grouped pages (KindGroup): a route with group_by and group_wait sends
// the outages of a group's checks that begin within group_wait of the
// first as one page listing them (Event.Members). The page is a trigger,
// then an update each time more checks join (ActionUpdate, Seq the number
// listed), reminders (ActionRepeat) and one resolve once the last of them
// is up. Package paging decides what goes out; this file renders it.

// GroupMember is one check of a grouped page.
type GroupMember struct {
	Check       string `json:"check"`
	DisplayName string `json:"display_name,omitempty"`
	Target      string `json:"target,omitempty"`
	// IncidentID and StartedAt are the check's own incident.
	IncidentID string    `json:"incident_id"`
	StartedAt  time.Time `json:"started_at"`
	// ResolvedAt is set once the check is up again while others of the
	// group are still down (and on every member in the resolve).
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	// New marks, in an update, the checks that joined since the page's
	// previous notification.
	New     bool                  `json:"new,omitempty"`
	Regions map[string]RegionVote `json:"regions,omitempty"`
}

// GroupID is the id of a grouped page: route is the index of the grouping
// route among the config's routes, group the checks' group and start the
// incident start of the group's first outage. Every node that knows the
// same incidents computes the same id, so a sender that takes over finds
// what its predecessor sent in the sent log.
func GroupID(route int, group string, start time.Time) string {
	h := sha256.Sum256([]byte(strconv.Itoa(route) + "|" + group + "|" + start.UTC().Format(time.RFC3339Nano)))
	return KindGroup + "-" + hex.EncodeToString(h[:16])
}

// IsGroup reports whether e is a grouped page.
func (e Event) IsGroup() bool { return e.Kind == KindGroup }

// memberName is what messages call a member.
func memberName(m GroupMember) string {
	if m.DisplayName != "" {
		return m.DisplayName
	}
	return m.Check
}

// headlineNames lists at most this many checks in a headline.
const headlineNames = 5

// nameList renders "api, web and db", or "a, b, c, d, e and 25 more".
func nameList(ms []GroupMember) string {
	names := make([]string, 0, min(len(ms), headlineNames))
	for i, m := range ms {
		if i == headlineNames {
			break
		}
		names = append(names, memberName(m))
	}
	if rest := len(ms) - len(names); rest > 0 {
		return strings.Join(names, ", ") + fmt.Sprintf(" and %d more", rest)
	}
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func checks(n int) string {
	if n == 1 {
		return "1 check"
	}
	return fmt.Sprintf("%d checks", n)
}

// groupHeadline is the headline of a grouped page.
//
//	5 checks in group payments are down: api, web, db, cache and queue
//	2 more checks in group payments are down, 7 in all: search and mail
//	group payments still DOWN for 1h20m: 7 checks: api, web, db, cache, queue and 2 more
//	all 7 checks in group payments are up again after 12m3s
func groupHeadline(e Event) string {
	g, n := e.Group, len(e.Members)
	switch e.Action {
	case ActionResolve:
		s := fmt.Sprintf("all %s in group %s are up again", checks(n), g)
		if n == 1 {
			s = fmt.Sprintf("%s in group %s is up again", nameList(e.Members), g)
		}
		if e.ResolvedAt != nil && !e.StartedAt.IsZero() {
			s += " after " + formatDuration(e.ResolvedAt.Sub(e.StartedAt))
		}
		return s
	case ActionRepeat:
		s := "group " + g + " still DOWN"
		if !e.At.IsZero() && !e.StartedAt.IsZero() {
			s += " for " + formatDuration(e.At.Sub(e.StartedAt))
		}
		return s + ": " + checks(n) + ": " + nameList(e.Members)
	case ActionUpdate:
		var added []GroupMember
		for _, m := range e.Members {
			if m.New {
				added = append(added, m)
			}
		}
		if len(added) == 0 || len(added) == n {
			return fmt.Sprintf("%s in group %s are down: %s", checks(n), g, nameList(e.Members))
		}
		noun, verb := "checks", "are"
		if len(added) == 1 {
			noun, verb = "check", "is"
		}
		return fmt.Sprintf("%d more %s in group %s %s down, %d in all: %s", len(added), noun, g, verb, n, nameList(added))
	}
	verb := "are"
	if n == 1 {
		verb = "is"
	}
	return fmt.Sprintf("%s in group %s %s down: %s", checks(n), g, verb, nameList(e.Members))
}

// memberLines renders one line per member, in order:
// "api (http://api/): not reachable from 3 of 3 regions (eu, us, ap): HTTP 503",
// "web (http://web/): up again after 4m" or "db (new): down".
func memberLines(e Event) []string {
	out := make([]string, 0, len(e.Members))
	for _, m := range e.Members {
		s := memberName(m)
		if m.DisplayName != "" && m.DisplayName != m.Check {
			s += " [" + m.Check + "]"
		}
		if m.Target != "" {
			s += " (" + m.Target + ")"
		}
		if m.New {
			s += " (new)"
		}
		switch r := unreachable(m.Regions); {
		case m.ResolvedAt != nil && !m.StartedAt.IsZero():
			s += ": up again after " + formatDuration(m.ResolvedAt.Sub(m.StartedAt))
		case m.ResolvedAt != nil:
			s += ": up again"
		case r != "":
			s += ": " + r
		default:
			s += ": down"
		}
		out = append(out, s)
	}
	return out
}
