package statuspage

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"time"
)

// Statuspage-compatible documents (/api/v2/summary.json, status.json). Key
// names follow Atlassian Statuspage's public API so existing widgets read
// them unchanged.

type spPage struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	URL       string    `json:"url"`
	TimeZone  string    `json:"time_zone"`
	UpdatedAt time.Time `json:"updated_at"`
}

type spStatus struct {
	Indicator   string `json:"indicator"`
	Description string `json:"description"`
}

type spComponent struct {
	ID                 string    `json:"id"`
	Name               string    `json:"name"`
	Status             string    `json:"status"`
	CreatedAt          time.Time `json:"created_at"`
	UpdatedAt          time.Time `json:"updated_at"`
	Position           int       `json:"position"`
	Description        *string   `json:"description"`
	Showcase           bool      `json:"showcase"`
	StartDate          *string   `json:"start_date"`
	GroupID            *string   `json:"group_id"`
	PageID             string    `json:"page_id"`
	Group              bool      `json:"group"`
	OnlyShowIfDegraded bool      `json:"only_show_if_degraded"`
	Components         []string  `json:"components,omitempty"`
}

type spUpdate struct {
	ID                 string    `json:"id"`
	Status             string    `json:"status"`
	Body               string    `json:"body"`
	IncidentID         string    `json:"incident_id"`
	CreatedAt          time.Time `json:"created_at"`
	UpdatedAt          time.Time `json:"updated_at"`
	DisplayAt          time.Time `json:"display_at"`
	AffectedComponents []any     `json:"affected_components"`
}

type spIncident struct {
	ID              string        `json:"id"`
	Name            string        `json:"name"`
	Status          string        `json:"status"`
	CreatedAt       time.Time     `json:"created_at"`
	UpdatedAt       time.Time     `json:"updated_at"`
	MonitoringAt    *time.Time    `json:"monitoring_at"`
	ResolvedAt      *time.Time    `json:"resolved_at"`
	Impact          string        `json:"impact"`
	Shortlink       string        `json:"shortlink"`
	StartedAt       time.Time     `json:"started_at"`
	PageID          string        `json:"page_id"`
	IncidentUpdates []spUpdate    `json:"incident_updates"`
	Components      []spComponent `json:"components"`
	ScheduledFor    *time.Time    `json:"scheduled_for,omitempty"`
	ScheduledUntil  *time.Time    `json:"scheduled_until,omitempty"`
}

type spSummary struct {
	Page                  spPage        `json:"page"`
	Components            []spComponent `json:"components"`
	Incidents             []spIncident  `json:"incidents"`
	ScheduledMaintenances []spIncident  `json:"scheduled_maintenances"`
	Status                spStatus      `json:"status"`
}

type spStatusDoc struct {
	Page   spPage   `json:"page"`
	Status spStatus `json:"status"`
}

// spIncidentsDoc is /api/v2/incidents.json and incidents/unresolved.json.
type spIncidentsDoc struct {
	Page      spPage       `json:"page"`
	Incidents []spIncident `json:"incidents"`
}

// incidentsDoc lists the 50 newest incidents, or the unresolved ones.
func (v *view) incidentsDoc(created time.Time, unresolved bool) spIncidentsDoc {
	d := spIncidentsDoc{Page: v.spPage(), Incidents: []spIncident{}}
	list := v.Incidents
	if unresolved {
		list = v.Active
	}
	for _, iv := range list {
		if len(d.Incidents) == 50 {
			break
		}
		d.Incidents = append(d.Incidents, v.spIncident(iv, created))
	}
	return d
}

func (v *view) pageID() string {
	if v.pid != "" {
		return v.pid
	}
	if v.Page.ID != "" {
		return v.Page.ID
	}
	h := sha256.Sum256([]byte(v.Title))
	return hex.EncodeToString(h[:6])
}

func (v *view) spPage() spPage {
	tz := localeOf(v.Page.Site).zone
	if tz == "UTC" {
		tz = "Etc/UTC"
	}
	return spPage{ID: v.pageID(), Name: v.Title, URL: v.Page.URL, TimeZone: tz, UpdatedAt: v.updatedAt()}
}

// updatedAt is the latest state change or incident update the page shows.
func (v *view) updatedAt() time.Time {
	var t time.Time
	for _, c := range v.Checks {
		if c.Since.After(t) {
			t = c.Since
		}
	}
	for _, i := range v.Incidents {
		if i.UpdatedAt.After(t) {
			t = i.UpdatedAt
		}
	}
	if t.IsZero() {
		t = v.At
	}
	return t.UTC()
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// componentTimes are a check component's updated_at and created_at.
func componentTimes(c *checkView, created time.Time) (upd, cr time.Time) {
	upd = c.Since.UTC()
	if upd.IsZero() {
		upd = created
	}
	if created.After(upd) {
		created = upd
	}
	return upd, created
}

func (v *view) checkComponent(c *checkView, created time.Time) spComponent {
	upd, created := componentTimes(c, created)
	return spComponent{ID: c.Name, Name: c.Label, Status: componentStatus[c.State], CreatedAt: created, UpdatedAt: upd,
		Position: c.Position, Description: strp(c.Description), GroupID: strp(groupID(c.Group)), PageID: v.pageID(),
		Showcase: true}
}

func (v *view) components(created time.Time) []spComponent {
	var out []spComponent
	pos := 0
	for _, g := range v.Groups {
		if g.Name == "" {
			for _, c := range g.Checks {
				comp := v.checkComponent(c, created)
				pos++
				comp.Position = pos
				out = append(out, comp)
			}
			continue
		}
		pos++
		out = append(out, v.groupComponent(g, created, pos))
		for _, c := range g.Checks {
			comp := v.checkComponent(c, created)
			pos++
			comp.Position = pos
			out = append(out, comp)
		}
	}
	if out == nil {
		out = []spComponent{}
	}
	return out
}

// groupComponent is the component of a named group at position pos; its
// checks follow it.
func (v *view) groupComponent(g *groupView, created time.Time, pos int) spComponent {
	gc := spComponent{ID: g.ID, Name: g.Name, Status: componentStatus[g.State], CreatedAt: created, PageID: v.pageID(),
		Group: true, Position: pos, Components: []string{}}
	gc.UpdatedAt = created
	for _, c := range g.Checks {
		upd, cr := componentTimes(c, created)
		if upd.After(gc.UpdatedAt) {
			gc.UpdatedAt = upd
		}
		if cr.Before(gc.CreatedAt) {
			gc.CreatedAt = cr
		}
		gc.Components = append(gc.Components, c.Name)
	}
	return gc
}

func (v *view) shortlink(anchor string) string {
	return v.Page.URL + "/#" + anchor
}

// incidentURL is the incident's own page.
func (v *view) incidentURL(id string) string {
	return v.Page.URL + "/incidents/" + id
}

func (v *view) spIncident(iv *incidentView, created time.Time) spIncident {
	si := spIncident{ID: iv.ID, Name: iv.Title, Status: iv.Status, CreatedAt: iv.StartedAt, UpdatedAt: iv.UpdatedAt,
		MonitoringAt: iv.MonitoringAt, ResolvedAt: iv.ResolvedAt, Impact: iv.Impact, Shortlink: v.incidentURL(iv.ID),
		StartedAt: iv.StartedAt, PageID: v.pageID(), IncidentUpdates: []spUpdate{}, Components: []spComponent{}}
	if si.UpdatedAt.IsZero() {
		si.UpdatedAt = iv.StartedAt
	}
	for _, u := range iv.Updates {
		si.IncidentUpdates = append(si.IncidentUpdates, spUpdate{ID: u.ID, Status: u.Status, Body: u.Body, IncidentID: iv.ID,
			CreatedAt: u.At, UpdatedAt: u.At, DisplayAt: u.At, AffectedComponents: nil})
	}
	for _, name := range iv.Checks {
		if c := v.byName[name]; c != nil {
			si.Components = append(si.Components, v.checkComponent(c, created))
		}
	}
	return si
}

func (v *view) spMaintenance(m maintView, created time.Time) spIncident {
	status := "scheduled"
	if m.Active {
		status = "in_progress"
	}
	start, end := m.Start, m.End
	si := spIncident{ID: m.ID, Name: m.Title, Status: status, CreatedAt: created, UpdatedAt: created, Impact: "maintenance",
		Shortlink: v.shortlink(m.ID), StartedAt: start, PageID: v.pageID(), IncidentUpdates: []spUpdate{},
		Components: []spComponent{}, ScheduledFor: &start, ScheduledUntil: &end}
	if created.After(start) {
		si.CreatedAt = start
		si.UpdatedAt = start
	}
	for _, c := range m.Checks {
		if cv := v.byName[c]; cv != nil {
			si.Components = append(si.Components, v.checkComponent(cv, created))
		}
	}
	return si
}

func (v *view) summary(created time.Time) spSummary {
	return v.summaryOf(created, v.components(created))
}

// summaryOf is the summary with these components.
func (v *view) summaryOf(created time.Time, comps []spComponent) spSummary {
	s := spSummary{Page: v.spPage(), Components: comps, Incidents: []spIncident{},
		ScheduledMaintenances: []spIncident{}, Status: v.spStatus()}
	for _, iv := range v.Active {
		s.Incidents = append(s.Incidents, v.spIncident(iv, created))
	}
	for _, m := range v.Maint {
		s.ScheduledMaintenances = append(s.ScheduledMaintenances, v.spMaintenance(m, created))
	}
	return s
}

// IncidentJSON is one incident in GET /api/v1/incidents.
type IncidentJSON struct {
	ID         string     `json:"id"`
	Check      string     `json:"check"` // "" for a manual incident
	Title      string     `json:"title"`
	State      string     `json:"state"`
	StartedAt  time.Time  `json:"started_at"`
	ResolvedAt *time.Time `json:"resolved_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	Details    string     `json:"details,omitempty"`
	// Status is the incident's status: investigating, identified,
	// monitoring or resolved (the latest operator update's while open).
	Status  string       `json:"status"`
	Impact  string       `json:"impact"`        // none, minor, major, critical
	Manual  bool         `json:"manual"`        // opened by an operator
	Checks  []string     `json:"checks"`        // affected checks
	URL     string       `json:"url,omitempty"` // the incident's page
	Updates []UpdateJSON `json:"updates"`
	// ParentIncidentID is the incident of a check this one depends on
	// (depends_on) that suppressed its pages; omitted if none did.
	ParentIncidentID string `json:"parent_incident_id,omitempty"`
}

// UpdateJSON is one entry of an incident's timeline, newest first.
type UpdateJSON struct {
	ID         string    `json:"id"`
	IncidentID string    `json:"incident_id"`
	Status     string    `json:"status"`
	Body       string    `json:"body"`
	At         time.Time `json:"at"`
	Author     string    `json:"author,omitempty"`    // the node that took an operator's update
	Automatic  bool      `json:"automatic,omitempty"` // written by Vantage from the check's state
}

// IncidentsJSON is the body of GET /api/v1/incidents.
type IncidentsJSON struct {
	GeneratedAt time.Time      `json:"generated_at"`
	Incidents   []IncidentJSON `json:"incidents"`
}

func (v *view) incidentsJSON() IncidentsJSON {
	out := IncidentsJSON{GeneratedAt: v.At, Incidents: []IncidentJSON{}}
	for _, iv := range v.Incidents {
		ij := v.incidentJSON(iv)
		ij.URL = v.incidentURL(iv.ID)
		out.Incidents = append(out.Incidents, ij)
	}
	return out
}

func (v *view) incidentJSON(iv *incidentView) IncidentJSON {
	ij := IncidentJSON{ID: iv.ID, Check: iv.Check, Title: iv.Title, State: iv.State, StartedAt: iv.StartedAt,
		ResolvedAt: iv.ResolvedAt, UpdatedAt: iv.UpdatedAt, Details: freeDetails(iv.Details), Status: iv.Status, Impact: iv.Impact,
		Manual: iv.Manual, Checks: append([]string{}, iv.Checks...), Updates: []UpdateJSON{}, ParentIncidentID: iv.ParentIncidentID}
	for _, u := range iv.Updates {
		ij.Updates = append(ij.Updates, updateJSON(iv.ID, u))
	}
	return ij
}

func updateJSON(incident string, u updateView) UpdateJSON {
	return UpdateJSON{ID: u.ID, IncidentID: incident, Status: u.Status, Body: u.Body, At: u.At, Author: u.Author, Automatic: u.Auto}
}

// Atom feed of incidents.

type atomLink struct {
	Href string `xml:"href,attr"`
	Rel  string `xml:"rel,attr,omitempty"`
	Type string `xml:"type,attr,omitempty"`
}

type atomText struct {
	Type string `xml:"type,attr,omitempty"`
	Body string `xml:",chardata"`
}

type atomEntry struct {
	ID        string    `xml:"id"`
	Title     string    `xml:"title"`
	Updated   string    `xml:"updated"`
	Published string    `xml:"published"`
	Link      *atomLink `xml:"link,omitempty"`
	Content   atomText  `xml:"content"`
}

type atomFeed struct {
	XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string   `xml:"id"`
	Title   string   `xml:"title"`
	Updated string   `xml:"updated"`
	Author  struct {
		Name string `xml:"name"`
	} `xml:"author"`
	Links   []atomLink  `xml:"link"`
	Entries []atomEntry `xml:"entry"`
}

func (v *view) atom() ([]byte, error) {
	l := localeOf(v.Page.Site)
	f := atomFeed{ID: "urn:vantage:page:" + v.pageID(), Title: l.t("%s incidents", v.Title), Updated: v.updatedAt().Format(time.RFC3339)}
	f.Author.Name = v.Title
	if v.Page.URL != "" {
		f.Links = append(f.Links, atomLink{Href: v.Page.URL + "/", Rel: "alternate", Type: "text/html"},
			atomLink{Href: v.Page.URL + "/feed.atom", Rel: "self", Type: "application/atom+xml"})
	}
	for _, iv := range v.Incidents {
		e := atomEntry{ID: "urn:vantage:incident:" + iv.ID, Title: iv.Title + " (" + l.statusText(iv.Status) + ")",
			Published: iv.StartedAt.Format(time.RFC3339)}
		upd := iv.UpdatedAt
		if upd.IsZero() {
			upd = iv.StartedAt
		}
		e.Updated = upd.Format(time.RFC3339)
		if v.Page.URL != "" {
			e.Link = &atomLink{Href: v.incidentURL(iv.ID), Rel: "alternate"}
		}
		var body string
		for _, u := range iv.Updates {
			body += l.stamp(u.At) + " — " + l.statusText(u.Status) + ": " + u.Body + "\n"
		}
		e.Content = atomText{Type: "text", Body: body}
		f.Entries = append(f.Entries, e)
	}
	b, err := xml.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), append(b, '\n')...), nil
}
