package statuspage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/store"
)

// Maintenance windows scheduled at runtime:
//
//	POST   /api/v1/maintenance       (token) schedule a window
//	GET    /api/v1/maintenance       list the config's and the runtime windows (public)
//	DELETE /api/v1/maintenance/{id}  (token) cancel a runtime window
//
// The Source schedules and cancels them (MaintenanceScheduler; the node:
// it validates a window against its config, stores it and gossips it, and
// feeds every window to the page through SetPage, so the page and the
// Statuspage scheduled-maintenance documents list them); without it the
// writes answer 501 and the list shows the page's windows.

// MaintenanceScheduler schedules and cancels runtime maintenance windows.
// Errors: ErrInvalidWindow (wrapped, with the reason: 400),
// store.ErrNotFound (no such runtime window: 404), store.ErrConflict (too
// many windows: 409), others (500).
type MaintenanceScheduler interface {
	// ScheduleMaintenance validates w by the config's rules (its checks
	// must exist), stores it and shares it.
	ScheduleMaintenance(ctx context.Context, w config.Maintenance) (ScheduledWindow, error)
	// CancelMaintenance cancels the runtime window id and returns it.
	CancelMaintenance(ctx context.Context, id string) (ScheduledWindow, error)
	// MaintenanceWindows returns the config's windows and the runtime
	// ones.
	MaintenanceWindows() (cfg []config.Maintenance, runtime []ScheduledWindow)
}

// ScheduledWindow is a runtime maintenance window.
type ScheduledWindow struct {
	ID string
	config.Maintenance
	CreatedAt time.Time
	Author    string // the node that took it
}

// ErrInvalidWindow wraps the reason a window is refused.
var ErrInvalidWindow = errors.New("invalid maintenance window")

// MaintenanceRequest is the body of POST /api/v1/maintenance: checks, an
// optional title, and either start and end (RFC 3339) or every (a 5-field
// cron expression), duration and timezone, as the config takes them.
type MaintenanceRequest struct {
	Checks   []string `json:"checks"`
	Title    string   `json:"title"`
	Start    string   `json:"start,omitempty"`
	End      string   `json:"end,omitempty"`
	Every    string   `json:"every,omitempty"`
	Duration string   `json:"duration,omitempty"`
	Timezone string   `json:"timezone,omitempty"`
}

// MaintenanceJSON is one window in GET /api/v1/maintenance and the answer
// to POST and DELETE.
type MaintenanceJSON struct {
	ID     string `json:"id"`
	Source string `json:"source"` // "config" or "api"
	// Status: in_progress, scheduled, completed (an ended one-off window,
	// kept a week), or cancelled (the answer to DELETE).
	Status   string     `json:"status"`
	Title    string     `json:"title"`
	Checks   []string   `json:"checks"`
	Start    *time.Time `json:"start,omitempty"` // one-off
	End      *time.Time `json:"end,omitempty"`
	Every    string     `json:"every,omitempty"` // recurring
	Duration string     `json:"duration,omitempty"`
	Timezone string     `json:"timezone,omitempty"`
	// Current is the occurrence in progress, Next the next one to start.
	Current   *OccurrenceJSON `json:"current,omitempty"`
	Next      *OccurrenceJSON `json:"next,omitempty"`
	CreatedAt *time.Time      `json:"created_at,omitempty"` // runtime windows
	CreatedBy string          `json:"created_by,omitempty"` // the node that took it
}

// OccurrenceJSON is one occurrence of a window.
type OccurrenceJSON struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// MaintenanceListJSON is GET /api/v1/maintenance.
type MaintenanceListJSON struct {
	Maintenance []MaintenanceJSON `json:"maintenance"`
}

// registerMaintenance mounts the maintenance API; New calls it.
func (s *Server) registerMaintenance() {
	s.mux.HandleFunc("GET /api/v1/maintenance", s.listMaintenance)
	s.mux.HandleFunc("POST /api/v1/maintenance", s.postMaintenance)
	s.mux.HandleFunc("DELETE /api/v1/maintenance/{id}", s.deleteMaintenance)
}

func (s *Server) scheduler(w http.ResponseWriter) (MaintenanceScheduler, bool) {
	ms, ok := s.opts.Source.(MaintenanceScheduler)
	if !ok {
		writeErr(w, http.StatusNotImplemented, "maintenance windows cannot be scheduled on this server")
	}
	return ms, ok
}

// postMaintenance serves POST /api/v1/maintenance.
func (s *Server) postMaintenance(w http.ResponseWriter, r *http.Request) {
	if !s.authorizeToken(w, r) {
		return
	}
	ms, ok := s.scheduler(w)
	if !ok {
		return
	}
	var req MaintenanceRequest
	if !decode(w, r, &req) {
		return
	}
	m, err := req.window(s.now())
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	sw, err := ms.ScheduleMaintenance(r.Context(), m)
	if err != nil {
		s.maintFailed(w, r, err)
		return
	}
	s.opts.Logger.Info("maintenance window scheduled", "id", sw.ID, "checks", strings.Join(sw.Checks, ","), "remote", r.RemoteAddr)
	s.RefreshNow(r.Context()) // the writer's next read shows it
	w.Header().Set("Location", "/api/v1/maintenance/"+sw.ID)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(mustJSON(maintJSON(sw.Maintenance, sw.ID, "api", s.now(), &sw)))
}

// deleteMaintenance serves DELETE /api/v1/maintenance/{id}.
func (s *Server) deleteMaintenance(w http.ResponseWriter, r *http.Request) {
	if !s.authorizeToken(w, r) {
		return
	}
	ms, ok := s.scheduler(w)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if strings.HasPrefix(id, configWindowPrefix) {
		writeErr(w, http.StatusConflict, "maintenance window "+id+" is defined in the configuration file: remove it there and reload")
		return
	}
	if !runtimeWindowID.MatchString(id) {
		writeErr(w, http.StatusNotFound, "no maintenance window "+id)
		return
	}
	sw, err := ms.CancelMaintenance(r.Context(), id)
	if err != nil {
		s.maintFailed(w, r, err)
		return
	}
	s.opts.Logger.Info("maintenance window cancelled", "id", id, "remote", r.RemoteAddr)
	s.RefreshNow(r.Context())
	mj := maintJSON(sw.Maintenance, sw.ID, "api", s.now(), &sw)
	mj.Status, mj.Current, mj.Next = "cancelled", nil, nil
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(mustJSON(mj))
}

// maintFailed answers a MaintenanceScheduler error.
func (s *Server) maintFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrInvalidWindow):
		writeErr(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), ErrInvalidWindow.Error()+": "))
	case errors.Is(err, store.ErrNotFound):
		writeErr(w, http.StatusNotFound, "no maintenance window "+r.PathValue("id"))
	case errors.Is(err, store.ErrConflict):
		writeErr(w, http.StatusConflict, strings.TrimPrefix(err.Error(), store.ErrConflict.Error()+": "))
	default:
		s.opts.Logger.Error("statuspage: maintenance API", "path", r.URL.Path, "err", err)
		writeErr(w, http.StatusInternalServerError, "the maintenance window could not be stored")
	}
}

// listMaintenance serves GET /api/v1/maintenance: the config's windows and
// the runtime ones, those in progress first, then by their next start.
// Public, as the Statuspage scheduled-maintenance documents are: titles,
// checks and times only.
func (s *Server) listMaintenance(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	var cfg []config.Maintenance
	var rt []ScheduledWindow
	if ms, ok := s.opts.Source.(MaintenanceScheduler); ok {
		cfg, rt = ms.MaintenanceWindows()
	} else {
		p := s.page.Load()
		for _, m := range p.Maintenance {
			cfg = append(cfg, config.Maintenance{Title: m.Title, Checks: m.Checks, Start: m.Start, End: m.End})
		}
		cfg = append(cfg, p.Site.Recurring...)
	}
	out := MaintenanceListJSON{Maintenance: []MaintenanceJSON{}}
	for _, m := range cfg {
		// Completed one-off windows are listed for a week, as in the
		// Statuspage documents.
		if mj := maintJSON(m, configWindowID(m), "config", now, nil); mj.Status != "completed" || mj.End != nil && mj.End.After(now.Add(-completedFor)) {
			out.Maintenance = append(out.Maintenance, mj)
		}
	}
	for i := range rt {
		out.Maintenance = append(out.Maintenance, maintJSON(rt[i].Maintenance, rt[i].ID, "api", now, &rt[i]))
	}
	slices.SortStableFunc(out.Maintenance, func(a, b MaintenanceJSON) int {
		if c := maintRank(a) - maintRank(b); c != 0 {
			return c
		}
		if a.Status == "completed" { // latest first
			return b.End.Compare(*a.End)
		}
		return maintKey(a).Compare(maintKey(b))
	})
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, r, out, s.opts.Logger)
}

func maintRank(m MaintenanceJSON) int {
	switch m.Status {
	case "in_progress":
		return 0
	case "scheduled":
		return 1
	}
	return 2
}

// maintKey orders windows in progress and scheduled ones: by the start of
// the occurrence in progress, else of the next.
func maintKey(m MaintenanceJSON) time.Time {
	if m.Current != nil {
		return m.Current.Start
	}
	if m.Next != nil {
		return m.Next.Start
	}
	return time.Time{}
}

// maintJSON describes a window as of now.
func maintJSON(m config.Maintenance, id, source string, now time.Time, sw *ScheduledWindow) MaintenanceJSON {
	mj := MaintenanceJSON{ID: id, Source: source, Title: m.Title, Checks: append([]string{}, m.Checks...)}
	if m.Recurring() {
		mj.Every, mj.Duration, mj.Timezone = m.Every, m.Duration.String(), m.Timezone
		if mj.Timezone == "" {
			mj.Timezone = "UTC"
		}
	} else {
		start, end := m.Start.UTC(), m.End.UTC()
		mj.Start, mj.End = &start, &end
	}
	if s, e, ok := m.Occurrence(now); ok {
		mj.Current = &OccurrenceJSON{Start: s.UTC(), End: e.UTC()}
	}
	if s, e, ok := m.Next(now); ok {
		mj.Next = &OccurrenceJSON{Start: s.UTC(), End: e.UTC()}
	}
	switch {
	case mj.Current != nil:
		mj.Status = "in_progress"
	case mj.Next != nil:
		mj.Status = "scheduled"
	default:
		mj.Status = "completed"
	}
	if sw != nil {
		created := sw.CreatedAt.UTC()
		mj.CreatedAt, mj.CreatedBy = &created, sw.Author
	}
	return mj
}

// Ids of windows: a runtime window's is random hex; a config window's is
// derived from its definition (stable across restarts and reloads while
// it is unchanged).
const configWindowPrefix = "config-"

var runtimeWindowID = regexp.MustCompile(`^[0-9a-f]{8,64}$`)

func configWindowID(m config.Maintenance) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d\x00%d\x00%s\x00%d\x00%s", m.Title, strings.Join(m.Checks, ","),
		m.Start.UnixMilli(), m.End.UnixMilli(), m.Every, m.Duration, m.Timezone))
	return configWindowPrefix + hex.EncodeToString(h[:6])
}

// window reads a request as the config reads a maintenance window: the
// reason for a refusal is worded as the config loader words it.
func (q MaintenanceRequest) window(now time.Time) (config.Maintenance, error) {
	title := strings.TrimSpace(q.Title)
	if title != "" {
		if err := store.CheckTitle(title); err != nil {
			return config.Maintenance{}, err
		}
	}
	if len(q.Checks) == 0 {
		return config.Maintenance{}, errors.New("a maintenance window needs checks: at least one check name")
	}
	if len(q.Checks) > store.MaxComponents {
		return config.Maintenance{}, fmt.Errorf("%d checks, at most %d", len(q.Checks), store.MaxComponents)
	}
	var checks []string
	for _, c := range q.Checks {
		if !slices.Contains(checks, c) {
			checks = append(checks, c)
		}
	}
	if strings.TrimSpace(q.Every) != "" {
		if q.Start != "" || q.End != "" {
			return config.Maintenance{}, errors.New("start and end do not go with every: a recurring window has every and duration, a one-off window start and end")
		}
		if strings.TrimSpace(q.Duration) == "" {
			return config.Maintenance{}, errors.New("a recurring maintenance window needs duration (how long each occurrence lasts, such as 2h)")
		}
		d, err := config.ParseDuration(strings.TrimSpace(q.Duration))
		if err != nil {
			return config.Maintenance{}, fmt.Errorf("duration must be a duration such as 90m, 2h or 1d, got %q", q.Duration)
		}
		m, err := config.NewRecurringMaintenance(title, checks, q.Every, d, strings.TrimSpace(q.Timezone))
		if err != nil {
			return config.Maintenance{}, err
		}
		return m, nil
	}
	if q.Duration != "" || q.Timezone != "" {
		return config.Maintenance{}, errors.New("duration and timezone apply to a recurring window (with every); a one-off window has start and end")
	}
	when := func(name, s string) (time.Time, error) {
		if strings.TrimSpace(s) == "" {
			return time.Time{}, fmt.Errorf("a maintenance window needs %s (an RFC 3339 time such as 2026-12-01T02:00:00Z), or every and duration", name)
		}
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
		if err != nil {
			return time.Time{}, fmt.Errorf("%s must be an RFC 3339 time such as 2026-12-01T02:00:00Z, got %q", name, s)
		}
		return t.UTC().Truncate(time.Millisecond), nil // as stored
	}
	start, err := when("start", q.Start)
	if err != nil {
		return config.Maintenance{}, err
	}
	end, err := when("end", q.End)
	if err != nil {
		return config.Maintenance{}, err
	}
	if !end.After(start) {
		return config.Maintenance{}, fmt.Errorf("end %s must be after start %s", end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	if !end.After(now) {
		return config.Maintenance{}, fmt.Errorf("end %s is in the past", end.Format(time.RFC3339))
	}
	return config.Maintenance{Title: title, Checks: checks, Start: start, End: end}, nil
}
