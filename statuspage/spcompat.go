package statuspage

import (
	"net/http"
	"strings"
	"time"
)

// More of Atlassian Statuspage's public documents: components.json and
// the scheduled maintenances, all, upcoming and active; and the overall
// indicator as Statuspage sets it: maintenance while a component is in
// maintenance and none is down, and not raised by checks whose state is
// unknown. Every GET /api/v2/* answers with Access-Control-Allow-Origin: *
// so that widgets on other sites can read them.

// Keys of the documents.
const (
	keyComponents = "/api/v2/components.json"
	keySMAll      = "/api/v2/scheduled-maintenances.json"
	keySMUpcoming = "/api/v2/scheduled-maintenances/upcoming.json"
	keySMActive   = "/api/v2/scheduled-maintenances/active.json"
)

// Statuspage maintenance statuses.
const (
	smScheduled  = "scheduled"
	smInProgress = "in_progress"
	smCompleted  = "completed"
)

// completedFor is how long a finished one-off maintenance stays in
// scheduled-maintenances.json.
const completedFor = 7 * 24 * time.Hour

type spComponentsDoc struct {
	Page       spPage        `json:"page"`
	Components []spComponent `json:"components"`
}

type spMaintenancesDoc struct {
	Page                  spPage       `json:"page"`
	ScheduledMaintenances []spIncident `json:"scheduled_maintenances"`
}

// spStatus is the page's status.indicator and description: from the
// checks' states and the operators' open incidents (the banner), except
// that maintenance is shown as "maintenance" when no check is down, and
// checks whose state is unknown (or a node that cannot see a quorum) do
// not raise it.
func (v *view) spStatus() spStatus {
	l := localeOf(v.Page.Site)
	down, maint := 0, 0
	for _, c := range v.Checks {
		switch c.State {
		case stDown:
			down++
		case stMaintenance:
			maint++
		}
	}
	o := v.Overall
	switch {
	case maint > 0 && down == 0:
		return spStatus{Indicator: "maintenance", Description: l.t(overalls[OverallMaintenance].Desc)}
	case o.Key == OverallMonitoring:
		// Only unknown checks or a stale view make the banner say so:
		// nothing is known to be wrong.
		return spStatus{Indicator: "none", Description: l.t(o.Desc)}
	}
	return spStatus{Indicator: o.Indicator, Description: l.t(o.Desc)}
}

// renderStatuspage adds components.json and the scheduled maintenances
// to a snapshot.
func (s *Server) renderStatuspage(sn *snapshot, v *view, cc string, old func(string) *doc) {
	at := v.At
	page := v.spPage()
	// the components as summary.json has them, encoded once per change
	sn.docs[keyComponents] = s.spliceComponents(v, s.started, cc, old(keyComponents),
		mustJSON(spComponentsDoc{Page: page, Components: []spComponent{}}),
		func() []byte { return mustJSON(spComponentsDoc{Page: page, Components: v.components(s.started)}) }, &s.rc.components)
	all, upcoming, active := v.maintenances(s.started)
	for _, d := range []struct {
		key  string
		list []spIncident
	}{{keySMAll, all}, {keySMUpcoming, upcoming}, {keySMActive, active}} {
		sn.docs[d.key] = newDoc(mustJSON(spMaintenancesDoc{Page: page, ScheduledMaintenances: d.list}), "application/json",
			cc, at, old(d.key))
	}
}

// maintenances are the page's scheduled maintenances: all (in progress,
// upcoming, and one-off windows completed in the last week; newest
// first), the upcoming ones and those in progress.
func (v *view) maintenances(created time.Time) (all, upcoming, active []spIncident) {
	all, upcoming, active = []spIncident{}, []spIncident{}, []spIncident{}
	for _, m := range v.Maint {
		si := v.spMaintenance(m, created)
		all = append(all, si)
		if m.Active {
			active = append(active, si)
		} else {
			upcoming = append(upcoming, si)
		}
	}
	for _, w := range v.Page.Maintenance {
		if w.End.After(v.At) || !w.End.After(v.At.Add(-completedFor)) {
			continue
		}
		m := maintView{ID: maintID(w), Title: w.Title, Checks: w.Checks, Start: w.Start.UTC(), End: w.End.UTC()}
		if m.Title == "" {
			m.Title = "Scheduled maintenance"
		}
		si := v.spMaintenance(m, created)
		si.Status = smCompleted
		end := m.End
		si.ResolvedAt, si.UpdatedAt = &end, end
		all = append(all, si)
	}
	sortByScheduled(all) // latest first, as Statuspage lists them
	return all, upcoming, active
}

// sortByScheduled orders maintenances by their start, latest first.
func sortByScheduled(list []spIncident) {
	for i := 1; i < len(list); i++ {
		for j := i; j > 0 && scheduled(list[j]).After(scheduled(list[j-1])); j-- {
			list[j], list[j-1] = list[j-1], list[j]
		}
	}
}

func scheduled(si spIncident) time.Time {
	if si.ScheduledFor != nil {
		return *si.ScheduledFor
	}
	return si.StartedAt
}

var hdrAnyOrigin = []string{"*"}

// cors lets any site read the Statuspage documents (GET /api/v2/*).
func cors(h http.Header, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/v2/") && (r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions) {
		h["Access-Control-Allow-Origin"] = hdrAnyOrigin
	}
}

// preflight answers a CORS preflight of /api/v2/*.
func preflight(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "If-None-Match, If-Modified-Since")
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}
