package statuspage

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vantage-dev/vantage/store"
)

// Display states of a check on the page. The cluster states up, down,
// unknown and maintenance are shown as they are; degraded is the cluster's
// own degraded state, or up while some (not a quorum of) regions vote down.
const (
	stUp          = "up"
	stDegraded    = "degraded"
	stDown        = "down"
	stUnknown     = "unknown"
	stMaintenance = "maintenance"
)

// Overall page states (the banner).
const (
	OverallOperational = "operational"
	OverallDegraded    = "degraded"
	OverallPartial     = "partial_outage"
	OverallMajor       = "major_outage"
	OverallMaintenance = "maintenance"
	OverallMonitoring  = "monitoring_degraded"
)

type overall struct {
	Key       string // one of Overall*
	Text      string // banner text
	Indicator string // Statuspage indicator: none, minor, major, critical
	Desc      string // Statuspage description
}

var overalls = map[string]overall{
	OverallOperational: {OverallOperational, "All systems operational", "none", "All Systems Operational"},
	OverallDegraded:    {OverallDegraded, "Degraded performance", "minor", "Minor Service Outage"},
	OverallPartial:     {OverallPartial, "Partial outage", "major", "Partial System Outage"},
	OverallMajor:       {OverallMajor, "Major outage", "critical", "Major System Outage"},
	OverallMaintenance: {OverallMaintenance, "Under maintenance", "none", "Service Under Maintenance"},
	OverallMonitoring:  {OverallMonitoring, "Monitoring degraded: this view may be stale", "minor", "Monitoring Degraded"},
}

var stateText = map[string]string{
	stUp:          "Operational",
	stDegraded:    "Degraded",
	stDown:        "Down",
	stUnknown:     "Unknown",
	stMaintenance: "Maintenance",
}

// statusText is an incident status in words.
var statusText = map[string]string{
	store.StatusInvestigating: "Investigating",
	store.StatusIdentified:    "Identified",
	store.StatusMonitoring:    "Monitoring",
	store.StatusResolved:      "Resolved",
}

// componentStatus maps a display state to Statuspage's component status.
var componentStatus = map[string]string{
	stUp:          "operational",
	stDegraded:    "degraded_performance",
	stDown:        "major_outage",
	stUnknown:     "operational",
	stMaintenance: "under_maintenance",
}

// displayState derives the page state of a check from its cluster state
// and votes.
func displayState(c *CheckStatus) string {
	switch c.State {
	case stDown, stMaintenance, stDegraded:
		return c.State
	case stUp:
		for _, v := range c.Regions {
			if v.Vote == "down" {
				return stDegraded
			}
		}
		return stUp
	}
	return stUnknown
}

// overallOf derives the banner from display states and staleness.
func overallOf(states []string, stale bool) overall {
	var down, degraded, unknown, maint, n int
	for _, s := range states {
		switch s {
		case stDown:
			down++
		case stDegraded:
			degraded++
		case stUnknown:
			unknown++
		case stMaintenance:
			maint++
			continue
		}
		n++
	}
	switch {
	case down > 0 && down == n:
		return overalls[OverallMajor]
	case down > 0:
		return overalls[OverallPartial]
	case degraded > 0:
		return overalls[OverallDegraded]
	case stale || unknown > 0:
		return overalls[OverallMonitoring]
	case maint > 0:
		return overalls[OverallMaintenance]
	}
	return overalls[OverallOperational]
}

type uptimeView struct {
	Window string  // 24h, 7d, 30d, 90d
	Value  float64 // fraction, or store.NoData
	Text   string  // "99.95%" or "no data"
}

type regionView struct {
	Name      string
	Vote      string
	VoteText  string
	LatencyMS float64
	CheckedAt time.Time
	Error     string
	Eligible  bool
}

type checkView struct {
	Name, Label, Description, Group string
	State, StateText                string
	Since                           time.Time
	IncidentID                      string
	Regions                         []regionView
	Position                        int
	// CertExpiry is when the check's earliest certificate expires, as the
	// node's latest probe was served (CheckStatus.CertExpiry); zero when
	// not known.
	CertExpiry time.Time
	// the uptime numbers by uptimeWindows, the bar and the days of
	// the bar with incidents; their texts are made while rendering
	// (Uptime, Days: bar.go)
	uptimes [4]float64
	bar     *dayBar
	incDays []incDay
}

type groupView struct {
	ID     string
	Name   string
	Checks []*checkView
	State  string // worst display state
}

type updateView struct {
	ID     string
	Status string // investigating, identified, monitoring, resolved
	Body   string
	At     time.Time
	Author string // the node that took an operator's update
	Auto   bool   // written by Vantage from the check's state, not by an operator
}

type incidentView struct {
	ID, Check, Label, Title, State string
	// Status is the incident's status: resolved once resolved, else the
	// latest operator update's status, else investigating.
	Status       string
	Impact       string // none, minor, major, critical
	Manual       bool
	Checks       []string // affected checks: the incident's check, or a manual incident's list
	StartedAt    time.Time
	ResolvedAt   *time.Time
	MonitoringAt *time.Time
	UpdatedAt    time.Time
	Details      string
	Duration     string
	Updates      []updateView // newest first
	// ParentIncidentID is the incident of a check this one depends on
	// that suppressed its pages (depends_on); "" if none.
	ParentIncidentID string
}

// affects reports whether the incident concerns check.
func (iv *incidentView) affects(check string) bool { return slices.Contains(iv.Checks, check) }

// Open reports whether the incident is unresolved.
func (iv *incidentView) Open() bool { return iv.ResolvedAt == nil }

type maintView struct {
	ID     string
	Title  string
	Checks []string // check names
	Labels []string
	Start  time.Time
	End    time.Time
	Active bool
}

// view is everything a snapshot renders from.
type view struct {
	At          time.Time
	Page        Page
	Title       string
	Overall     overall
	Stale       bool
	StaleReason string
	Status      *Status // the node and cluster of the Status rendered, without its checks
	Groups      []*groupView
	Checks      []*checkView
	byName      map[string]*checkView
	incByID     map[string]*incidentView
	Active      []*incidentView
	Past        []*incidentView
	Incidents   []*incidentView // all, newest first
	Maint       []maintView     // active and upcoming
	pid         string          // pageID
	// Compact: the index lists each check in a line, without its bar
	// (more checks than Options.CompactAbove)
	Compact bool
}

var uptimeWindows = []struct {
	name string
	d    time.Duration
}{{"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}, {"90d", 90 * 24 * time.Hour}}

const barDays = 90

// buildView collects the status and history into a view. History errors
// are logged and shown as missing data.
func (s *Server) buildView(ctx context.Context, st *Status) *view {
	now := s.now().UTC()
	if st == nil {
		st = &Status{}
	}
	p := *s.page.Load()
	v := &view{At: now, Page: p, Title: p.Title, Status: st, byName: make(map[string]*checkView, len(st.Checks)), incByID: map[string]*incidentView{}}
	if v.Title == "" {
		v.Title = "Status"
	}
	v.pid = v.pageID()

	// staleness: can this node see a quorum of regions?
	q := st.Cluster.Quorum
	if q < 1 {
		q = 1
	}
	eligible := 0
	for _, ri := range st.Cluster.Regions {
		if ri.Eligible {
			eligible++
		}
	}
	if len(st.Cluster.Regions) > 0 && eligible < q {
		v.Stale = true
		v.StaleReason = fmt.Sprintf("This node sees %d of the %d regions needed to decide; its view may be stale.", eligible, q)
	}

	// checks, in page order, then the rest
	statusByName := map[string]*CheckStatus{}
	for i := range st.Checks {
		statusByName[st.Checks[i].Name] = &st.Checks[i]
	}
	var order []PageCheck
	seen := map[string]bool{}
	for _, pc := range p.Checks {
		if !seen[pc.Name] {
			seen[pc.Name] = true
			order = append(order, pc)
		}
	}
	for _, c := range st.Checks {
		if !seen[c.Name] {
			seen[c.Name] = true
			order = append(order, PageCheck{Name: c.Name, Group: c.Group})
		}
	}

	var incs []store.Incident
	var updates map[string][]store.IncidentUpdate
	if s.opts.History != nil {
		var err error
		incs, err = s.opts.History.Incidents(ctx, 200)
		if err != nil {
			s.opts.Logger.Warn("statuspage: incidents", "err", err)
		}
		if uh, ok := s.opts.History.(UpdateHistory); ok && len(incs) > 0 {
			ids := make([]string, len(incs))
			for i, inc := range incs {
				ids[i] = inc.ID
			}
			if updates, err = uh.IncidentUpdates(ctx, ids...); err != nil {
				s.opts.Logger.Warn("statuspage: incident updates", "err", err)
			}
		}
	}
	labels := map[string]string{}
	for _, pc := range order {
		labels[pc.Name] = pc.label()
	}

	s.markHistory(st)
	s.rc.init()
	byCheck := incidentsByCheck(incs)
	groups := map[string]*groupView{}
	states := make([]string, 0, len(order))
	v.Checks = make([]*checkView, 0, len(order))
	for i, pc := range order {
		if ctx.Err() != nil {
			break // shutting down or the reader left: renderLocked keeps the previous render
		}
		cv := s.checkViewOf(ctx, pc, i+1, statusByName[pc.Name], st.Cluster.Regions, byCheck[pc.Name], now)
		states = append(states, cv.State)
		v.Checks = append(v.Checks, cv)
		v.byName[cv.Name] = cv
		g := groups[cv.Group]
		if g == nil {
			g = &groupView{Name: cv.Group, ID: groupID(cv.Group)}
			groups[cv.Group] = g
			v.Groups = append(v.Groups, g)
		}
		g.Checks = append(g.Checks, cv)
	}
	v.Compact = s.opts.CompactAbove >= 0 && len(v.Checks) > s.opts.CompactAbove
	// The view keeps what it shows of st's checks (their views), not st:
	// of thousands of checks it is tens of MB, and the Source has a newer
	// one by the next render.
	v.Status = &Status{GeneratedAt: st.GeneratedAt, Node: st.Node, Cluster: st.Cluster}
	for _, g := range v.Groups {
		var ss []string
		for _, c := range g.Checks {
			ss = append(ss, c.State)
		}
		g.State = worst(ss)
	}
	v.Overall = overallOf(states, v.Stale)

	for _, inc := range incs {
		iv := incidentOf(inc, labels, updates[inc.ID], now)
		localeOf(p.Site).dressIncident(iv, inc, statusByName[inc.Check], now) // its text in words, in the locale (incidenttext.go)
		v.Incidents = append(v.Incidents, iv)
		v.incByID[iv.ID] = iv
		if inc.Open() {
			v.Active = append(v.Active, iv)
			if iv.Manual {
				// An operator's incident is on the banner too: nothing
				// else would show what no check sees.
				v.Overall = worseOverall(v.Overall, overalls[impactOverall[iv.Impact]])
			}
		} else if len(v.Past) < 20 {
			v.Past = append(v.Past, iv)
		}
	}

	for _, w := range p.windowsAt(now) { // recurring windows' occurrences too (site.go)
		if !w.End.After(now) {
			continue
		}
		mv := maintView{ID: maintID(w), Title: w.Title, Checks: w.Checks,
			Start: w.Start.UTC(), End: w.End.UTC(), Active: !now.Before(w.Start)}
		if mv.Title == "" {
			mv.Title = "Scheduled maintenance"
		}
		for _, c := range w.Checks {
			l := labels[c]
			if l == "" {
				l = c
			}
			mv.Labels = append(mv.Labels, l)
		}
		v.Maint = append(v.Maint, mv)
	}
	sort.SliceStable(v.Maint, func(i, j int) bool { return v.Maint[i].Start.Before(v.Maint[j].Start) })
	return v
}

// impactOverall is the banner an open manual incident of an impact
// calls for at least.
var impactOverall = map[string]string{
	"critical": OverallMajor,
	"major":    OverallPartial,
	"minor":    OverallDegraded,
	"none":     OverallOperational,
	"":         OverallOperational,
}

// overallRank orders banners from best to worst.
var overallRank = map[string]int{OverallOperational: 0, OverallMaintenance: 1, OverallMonitoring: 2,
	OverallDegraded: 3, OverallPartial: 4, OverallMajor: 5}

func worseOverall(a, b overall) overall {
	if overallRank[b.Key] > overallRank[a.Key] {
		return b
	}
	return a
}

// labels maps check names to their display names.
func (v *view) labels() map[string]string {
	m := make(map[string]string, len(v.Checks))
	for _, c := range v.Checks {
		m[c.Name] = c.Label
	}
	return m
}

var severity = map[string]int{stUp: 0, stMaintenance: 1, stUnknown: 2, stDegraded: 3, stDown: 4}

func worst(states []string) string {
	w := stUp
	for _, s := range states {
		if severity[s] > severity[w] {
			w = s
		}
	}
	return w
}

func voteText(v string) string {
	switch v {
	case "up":
		return "Up"
	case "down":
		return "Down"
	case "abstain":
		return "Abstains"
	}
	if v == "" {
		return "No vote"
	}
	return v
}

func groupID(name string) string {
	if name == "" {
		return ""
	}
	var b strings.Builder
	b.WriteString("group-")
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// histEntry is one check's uptime numbers and daily bar as last read:
// fully at slowAt, the 24 h number and today's cell at fastAt.
type histEntry struct {
	have           bool
	fastAt, slowAt time.Time
	gen            uint64     // SeriesGen at slowAt
	uptimes        [4]float64 // by uptimeWindows
	bar            *dayBar    // nil: none read
	// key is the check's state, since and incident when the entry was
	// made: a state change drops what was read. hot: the check is down or
	// degraded, so its 24 h number and today's cell are read every render.
	key string
	hot bool
}

// markHistory drops the history read of every check whose state changed
// since (a new outage, a recovery: the page's numbers must show it at
// once) and notes which checks are in an outage. It applies to a
// SeriesHistory, whose buckets hold every region's results of the running
// minute's outage; other Histories (tests' fakes) keep plain TTL reuse.
func (s *Server) markHistory(st *Status) {
	if _, ok := s.opts.History.(SeriesHistory); !ok {
		return
	}
	s.histMu.Lock()
	defer s.histMu.Unlock()
	for i := range st.Checks {
		c := &st.Checks[i]
		key := c.State + "|" + c.Since.UTC().Format(time.RFC3339Nano) + "|" + c.IncidentID
		hot := displayState(c) == stDown || displayState(c) == stDegraded
		if e, ok := s.hist[c.Name]; !ok || e.key != key || e.hot != hot {
			if ok && e.key == key {
				e.hot = hot // only the votes changed: keep what was read
				s.hist[c.Name] = e
				continue
			}
			s.hist[c.Name] = histEntry{key: key, hot: hot}
		}
	}
}

// historyOf reads a check's uptime per window and its daily stats, reusing
// what it read recently (Options.HistoryTTL, HistorySlowTTL): a burst of
// state changes during an outage re-renders the page without re-reading
// 90 days of buckets per check each time, and the periodic render re-reads
// only the 24 h number and today's cell until the slow part is due. A
// state change drops what was read (markHistory); while a check is down or
// degraded, or has no data yet, the 24 h number and today's cell are read
// on every render; past days are read again once a peer's buckets changed
// one (SeriesGen).
//
// With a SeriesHistory (every node's buckets) the 24 h number is the
// 1,440 minutes that end with the current one, the window the check page
// shows per region, and the 7, 30 and 90 day numbers are those calendar
// days of the bar, today included, so that no number contradicts the bar
// or another.
func (s *Server) historyOf(ctx context.Context, name string, now time.Time) ([4]float64, *dayBar) {
	fastTTL, slowTTL := s.opts.HistoryTTL, max(s.opts.HistorySlowTTL, s.opts.HistoryTTL)
	s.histMu.Lock()
	e := s.hist[name]
	s.histMu.Unlock()
	sh, series := s.opts.History.(SeriesHistory)
	var gen uint64
	if series {
		gen = sh.SeriesGen()
	}
	today := now.Truncate(24 * time.Hour)
	fresh := func(at time.Time, ttl time.Duration) bool {
		return e.have && ttl > 0 && now.Sub(at) < ttl && at.Truncate(24*time.Hour).Equal(today)
	}
	fastOK := fresh(e.fastAt, fastTTL) && (!series || !e.hot && e.uptimes[0] >= 0)
	slowOK := fresh(e.slowAt, slowTTL) && e.bar != nil && e.gen == gen
	switch {
	case fastOK && slowOK:
		return e.uptimes, e.bar
	case slowOK:
		e.uptimes[0] = s.uptime24(ctx, name, now)
		if d := s.daily(ctx, name, 1, now); len(d) == 1 {
			e.bar = e.bar.withToday(d[0])
		}
		e.fastAt = now
	default:
		e = histEntry{have: true, fastAt: now, slowAt: now, gen: gen, key: e.key, hot: e.hot}
		if days := s.daily(ctx, name, barDays, now); len(days) == barDays {
			e.bar = barOf(days)
		}
		for i, w := range uptimeWindows {
			switch {
			case i == 0:
				e.uptimes[i] = s.uptime24(ctx, name, now)
			case !series:
				e.uptimes[i] = s.uptime(ctx, name, w.d, now)
			}
		}
	}
	if series {
		// the 7, 30 and 90 day numbers are those days of the bar
		for i := range barWindows {
			e.uptimes[i+1] = store.NoData
			if e.bar != nil {
				e.uptimes[i+1] = e.bar.uptime(i)
			}
		}
	}
	if fastTTL > 0 {
		s.histMu.Lock()
		s.hist[name] = e
		s.histMu.Unlock()
	}
	return e.uptimes, e.bar
}

// window24 is the window of the 24 h numbers at now: the 1,440 minutes
// that end with the current one, as the check page shows them per region.
func window24(now time.Time) (from, to time.Time) {
	to = now.UTC().Truncate(time.Minute).Add(time.Minute)
	return to.Add(-24 * time.Hour), to
}

// uptime24 is the 24 h number: from every node's buckets (window24) with
// a SeriesHistory, else History.Uptime over the last 24 hours.
func (s *Server) uptime24(ctx context.Context, name string, now time.Time) float64 {
	sh, ok := s.opts.History.(SeriesHistory)
	if !ok {
		return s.uptime(ctx, name, uptimeWindows[0].d, now)
	}
	from, to := window24(now)
	n, f, err := sh.Total(ctx, name, from, to)
	if err != nil {
		s.opts.Logger.Warn("statuspage: uptime", "check", name, "err", err)
		return store.NoData
	}
	if n == 0 {
		return store.NoData
	}
	return float64(n-f) / float64(n)
}

// uptime is History.Uptime, NoData without history or on error (logged).
func (s *Server) uptime(ctx context.Context, name string, w time.Duration, now time.Time) float64 {
	if s.opts.History == nil {
		return store.NoData
	}
	u, err := s.opts.History.Uptime(ctx, name, w, now)
	if err != nil {
		s.opts.Logger.Warn("statuspage: uptime", "check", name, "err", err)
		return store.NoData
	}
	return u
}

// daily is History.DailyUptime, nil without history or on error (logged).
func (s *Server) daily(ctx context.Context, name string, days int, now time.Time) []store.DayStat {
	if s.opts.History == nil {
		return nil
	}
	d, err := s.opts.History.DailyUptime(ctx, name, days, now)
	if err != nil {
		s.opts.Logger.Warn("statuspage: daily uptime", "check", name, "err", err)
		return nil
	}
	return d
}

// checkImpact is the impact of an incident a check opened.
const checkImpact = "major"

// incidentOf builds an incident's view with its timeline: for a check's
// incident, Vantage's own entries (opened, resolved) around the operators'
// updates; for a manual incident, the operators' updates only. ups are the
// operators' updates, newest first.
func incidentOf(inc store.Incident, labels map[string]string, ups []store.IncidentUpdate, now time.Time) *incidentView {
	label := func(c string) string {
		if l := labels[c]; l != "" {
			return l
		}
		return c
	}
	iv := &incidentView{ID: inc.ID, Check: inc.Check, Title: inc.Title, State: inc.State, Manual: inc.Manual,
		StartedAt: inc.StartedAt.UTC(), UpdatedAt: inc.UpdatedAt.UTC(), Details: inc.Details, Impact: inc.Impact,
		ParentIncidentID: inc.ParentIncidentID}
	if inc.Manual {
		iv.Checks = inc.Components
		var ls []string
		for _, c := range inc.Components {
			ls = append(ls, label(c))
		}
		iv.Label = strings.Join(ls, ", ")
		if iv.Impact == "" {
			iv.Impact = "minor"
		}
	} else {
		iv.Checks = []string{inc.Check}
		iv.Label = label(inc.Check)
		if iv.Title == "" {
			iv.Title = iv.Label + " is down"
		}
		if iv.Impact == "" {
			iv.Impact = checkImpact
		}
	}
	end := now
	if inc.ResolvedAt != nil {
		t := inc.ResolvedAt.UTC()
		iv.ResolvedAt = &t
		end = t
		if !inc.Manual {
			iv.Updates = append(iv.Updates, updateView{ID: inc.ID + "-resolved", Status: store.StatusResolved,
				Body: iv.Label + " is operational again.", At: t, Auto: true})
		}
	}
	iv.Duration = humanDur(end.Sub(iv.StartedAt))
	for _, u := range ups {
		at := u.CreatedAt.UTC()
		iv.Updates = append(iv.Updates, updateView{ID: u.ID, Status: u.Status, Body: u.Body, At: at, Author: u.Author})
		if at.After(iv.UpdatedAt) {
			iv.UpdatedAt = at
		}
		if u.Status == store.StatusMonitoring && (iv.MonitoringAt == nil || at.Before(*iv.MonitoringAt)) {
			iv.MonitoringAt = &at
		}
	}
	if !inc.Manual {
		body := iv.Label + " is not responding as expected; we are investigating."
		if inc.Details != "" && !strings.HasPrefix(strings.TrimSpace(inc.Details), "{") {
			body = inc.Details
		}
		iv.Updates = append(iv.Updates, updateView{ID: inc.ID + "-opened", Status: store.StatusInvestigating, Body: body,
			At: iv.StartedAt, Auto: true})
	}
	sort.SliceStable(iv.Updates, func(i, j int) bool { return iv.Updates[i].At.After(iv.Updates[j].At) })
	switch {
	case iv.ResolvedAt != nil:
		iv.Status = store.StatusResolved
	case len(ups) > 0:
		iv.Status = ups[0].Status
	default:
		iv.Status = store.StatusInvestigating
	}
	return iv
}

func humanDur(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d.Seconds()))
	}
	if d < time.Hour {
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
	if d < 48*time.Hour {
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}
