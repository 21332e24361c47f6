package statuspage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vantage-dev/vantage/store"
)

// Writer takes what operators write through the API: updates of incidents
// and manual incidents. The node implements it: it stores the write and
// shares it with the cluster, so every node shows it. It fills in ids,
// times and the author. Errors: store.ErrNotFound (no such incident),
// store.ErrConflict (not allowed in the incident's state), others.
type Writer interface {
	// PostUpdate adds an update to an existing incident and returns the
	// incident as it is afterwards and the update as stored.
	PostUpdate(ctx context.Context, u store.IncidentUpdate) (store.Incident, store.IncidentUpdate, error)
	// OpenIncident opens a manual incident with its first update.
	OpenIncident(ctx context.Context, inc store.Incident, first store.IncidentUpdate) (store.Incident, store.IncidentUpdate, error)
}

// Limits of the write API.
const (
	// MaxUpdateBody is the longest update text, in bytes.
	MaxUpdateBody = 10 * 1024
	// MaxTitle is the longest incident title, in characters.
	MaxTitle = 200
	// maxRequest is the largest request body read.
	maxRequest = 64 << 10
)

// UpdateRequest is the body of POST /api/v1/incidents/{id}/updates.
type UpdateRequest struct {
	Status string `json:"status"` // investigating, identified, monitoring, resolved
	Body   string `json:"body"`
}

// IncidentRequest is the body of POST /api/v1/incidents.
type IncidentRequest struct {
	Title  string   `json:"title"`
	Body   string   `json:"body"`
	Status string   `json:"status"` // default investigating
	Checks []string `json:"checks"` // affected checks, optional
	Impact string   `json:"impact"` // none, minor (default), major, critical
}

// WriteResponse is the answer to a successful write (201).
type WriteResponse struct {
	Incident IncidentJSON `json:"incident"`
	Update   UpdateJSON   `json:"incident_update"`
}

type apiError struct {
	Error string `json:"error"`
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	b, _ := json.Marshal(apiError{Error: msg})
	_, _ = w.Write(append(b, '\n'))
}

// SetAPIToken replaces the API token (a config reload): from its return
// on, every request that needs the token takes only this one, and the
// previous one is refused. "" disables the token-checked APIs.
func (s *Server) SetAPIToken(tok string) { s.token.Store(&tok) }

// apiToken is the API token in force: the last SetAPIToken's, else
// Options.APIToken. Every check of the token reads it.
func (s *Server) apiToken() string {
	if p := s.token.Load(); p != nil {
		return *p
	}
	return s.opts.APIToken
}

// authorize checks the bearer token in constant time; it answers 401 (or
// 503 without a Writer) itself and returns false when the request may not
// write.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) bool {
	if s.apiToken() == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vantage"`)
		writeErr(w, http.StatusUnauthorized, "the write API is disabled: no API token is configured "+
			"(set statuspage.api_token in the config or VANTAGE_API_TOKEN)")
		return false
	}
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vantage"`)
		writeErr(w, http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <token>")
		return false
	}
	if !s.tokenOK(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vantage", error="invalid_token"`)
		s.opts.Logger.Warn("statuspage: write API: wrong token", "remote", r.RemoteAddr, "path", r.URL.Path)
		writeErr(w, http.StatusUnauthorized, "invalid bearer token")
		return false
	}
	if s.opts.Writer == nil {
		writeErr(w, http.StatusServiceUnavailable, "the write API is not available on this server")
		return false
	}
	return true
}

// decode reads one JSON object of at most maxRequest bytes with known
// fields only; it answers 400 or 413 itself.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequest)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err == nil {
		if _, e := dec.Token(); e != io.EOF {
			err = errors.New("data after the JSON object")
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeErr(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", maxRequest))
		return false
	case errors.Is(err, io.EOF):
		writeErr(w, http.StatusBadRequest, "empty request body: want a JSON object")
		return false
	case err != nil:
		writeErr(w, http.StatusBadRequest, "invalid JSON: "+err.Error())
		return false
	}
	return true
}

// cleanText checks an update's text: not empty, at most MaxUpdateBody
// bytes of UTF-8 without control characters other than newline and tab.
func cleanText(field, s string, maxBytes int) (string, error) {
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
	switch {
	case s == "":
		return "", fmt.Errorf("%s is empty", field)
	case len(s) > maxBytes:
		return "", fmt.Errorf("%s is %d bytes, at most %d allowed", field, len(s), maxBytes)
	case !utf8.ValidString(s):
		return "", fmt.Errorf("%s is not valid UTF-8", field)
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return "", fmt.Errorf("%s contains the control character %U", field, r)
		}
	}
	return s, nil
}

func checkStatus(st string) error {
	if !store.ValidUpdateStatus(st) {
		return fmt.Errorf("unknown status %q: want investigating, identified, monitoring or resolved", st)
	}
	return nil
}

// writeFailed answers a Writer error.
func (s *Server) writeFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeErr(w, http.StatusNotFound, "unknown incident "+r.PathValue("id"))
	case errors.Is(err, store.ErrConflict):
		writeErr(w, http.StatusConflict, strings.TrimPrefix(err.Error(), store.ErrConflict.Error()+": "))
	default:
		s.opts.Logger.Error("statuspage: write API", "path", r.URL.Path, "err", err)
		writeErr(w, http.StatusInternalServerError, "the write could not be stored")
	}
}

func (s *Server) created(w http.ResponseWriter, r *http.Request, inc store.Incident, u store.IncidentUpdate) {
	// Render before answering, so that the writer's next read shows it.
	s.RefreshNow(r.Context())
	s.broadcastIncident(inc, u)
	v := s.current(r.Context()).v
	iv := incidentOf(inc, v.labels(), []store.IncidentUpdate{u}, s.now())
	localeOf(v.Page.Site).dressIncident(iv, inc, v.checkStatus(inc.Check), s.now())
	resp := WriteResponse{Incident: v.incidentJSON(iv), Update: updateJSON(inc.ID, updateView{ID: u.ID, Status: u.Status,
		Body: u.Body, At: u.CreatedAt.UTC(), Author: u.Author})}
	resp.Incident.URL = v.incidentURL(inc.ID)
	resp.Incident.Updates = []UpdateJSON{resp.Update}
	w.Header().Set("Location", "/incidents/"+inc.ID)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(mustJSON(resp))
}

// postUpdate serves POST /api/v1/incidents/{id}/updates.
func (s *Server) postUpdate(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r) {
		return
	}
	var req UpdateRequest
	if !decode(w, r, &req) {
		return
	}
	body, err := updateText(req.Status, req.Body)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	id := r.PathValue("id")
	inc, u, err := s.opts.Writer.PostUpdate(r.Context(), store.IncidentUpdate{IncidentID: id, Status: req.Status, Body: body})
	if err != nil {
		s.writeFailed(w, r, err)
		return
	}
	s.opts.Logger.Info("incident update posted", "incident_id", id, "status", u.Status, "update_id", u.ID, "remote", r.RemoteAddr)
	s.created(w, r, inc, u)
}

// postIncident serves POST /api/v1/incidents: a manual incident.
func (s *Server) postIncident(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r) {
		return
	}
	var req IncidentRequest
	if !decode(w, r, &req) {
		return
	}
	title, err := cleanText("title", req.Title, 4*MaxTitle)
	if err == nil && (utf8.RuneCountInString(title) > MaxTitle || strings.ContainsAny(title, "\n\t")) {
		err = fmt.Errorf("title must be one line of at most %d characters", MaxTitle)
	}
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Status == "" {
		req.Status = store.StatusInvestigating
	}
	body, err := updateText(req.Status, req.Body)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	switch req.Impact {
	case "":
		req.Impact = "minor"
	case "none", "minor", "major", "critical":
	default:
		writeErr(w, http.StatusBadRequest, fmt.Sprintf("unknown impact %q: want minor, major or critical (or none)", req.Impact))
		return
	}
	v := s.current(r.Context()).v
	var checks []string
	for _, c := range req.Checks {
		if v.byName[c] == nil {
			writeErr(w, http.StatusBadRequest, fmt.Sprintf("unknown check %q", c))
			return
		}
		if !contains(checks, c) {
			checks = append(checks, c)
		}
	}
	inc, u, err := s.opts.Writer.OpenIncident(r.Context(),
		store.Incident{Title: title, Impact: req.Impact, Components: checks, Manual: true},
		store.IncidentUpdate{Status: req.Status, Body: body})
	if err != nil {
		s.writeFailed(w, r, err)
		return
	}
	s.opts.Logger.Info("manual incident opened", "incident_id", inc.ID, "title", title, "impact", req.Impact, "remote", r.RemoteAddr)
	s.created(w, r, inc, u)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// incidentEvent is the websocket message of an incident update.
type incidentEvent struct {
	Type       string     `json:"type"` // "incident"
	ID         string     `json:"id"`
	Title      string     `json:"title"`
	Status     string     `json:"status"` // the incident's, after the update
	StatusText string     `json:"status_text"`
	Impact     string     `json:"impact"`
	Manual     bool       `json:"manual"`
	Open       bool       `json:"open"`
	Label      string     `json:"label"`
	StartedAt  string     `json:"started_at"` // "2 Jan 2006 15:04 UTC", in the page's language and time zone
	URL        string     `json:"url"`
	Update     UpdateJSON `json:"update"`
	UpdateText string     `json:"update_status_text"`
	UpdateAt   string     `json:"update_at_text"` // the update's time as started_at
}

// PublishIncident re-renders the page and tells the websocket clients that
// an incident has a new update u (the node calls it for updates taken
// here and for those from other nodes). It never blocks.
func (s *Server) PublishIncident(inc store.Incident, u store.IncidentUpdate) {
	s.Refresh()
	s.broadcastIncident(inc, u)
}

func (s *Server) broadcastIncident(inc store.Incident, u store.IncidentUpdate) {
	var labels map[string]string
	var cs *CheckStatus
	if sn := s.snap.Load(); sn != nil {
		labels = sn.v.labels()
		cs = sn.v.checkStatus(inc.Check)
	}
	l := localeOf(s.page.Load().Site)
	iv := incidentOf(inc, labels, []store.IncidentUpdate{u}, s.now())
	l.dressIncident(iv, inc, cs, s.now())
	if !inc.Manual && iv.Open() {
		iv.Status = u.Status
	}
	ev := incidentEvent{Type: "incident", ID: inc.ID, Title: iv.Title, Status: iv.Status, StatusText: l.statusText(iv.Status),
		Impact: iv.Impact, Manual: iv.Manual, Open: iv.Open(), Label: iv.Label, StartedAt: l.when(iv.StartedAt),
		URL: "/incidents/" + inc.ID, UpdateText: l.statusText(u.Status), UpdateAt: l.when(u.CreatedAt),
		Update: updateJSON(inc.ID, updateView{ID: u.ID, Status: u.Status, Body: u.Body, At: u.CreatedAt.UTC(), Author: u.Author})}
	b, err := json.Marshal(ev)
	if err != nil {
		s.opts.Logger.Error("statuspage: encode incident event", "err", err)
		return
	}
	s.hub.Broadcast(b)
}

// updateText validates an update's status and returns its cleaned body.
func updateText(status, body string) (string, error) {
	if err := checkStatus(status); err != nil {
		return "", err
	}
	return cleanText("body", body, MaxUpdateBody)
}
