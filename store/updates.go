package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Statuses of an incident update (Atlassian Statuspage's incident statuses).
const (
	StatusInvestigating = "investigating"
	StatusIdentified    = "identified"
	StatusMonitoring    = "monitoring"
	StatusResolved      = "resolved"
)

// ValidUpdateStatus reports whether s is one of the update statuses.
func ValidUpdateStatus(s string) bool {
	switch s {
	case StatusInvestigating, StatusIdentified, StatusMonitoring, StatusResolved:
		return true
	}
	return false
}

// ErrConflict is returned (wrapped, with the reason) when a write is valid
// but not allowed in the incident's current state.
var ErrConflict = errors.New("conflict")

// IncidentUpdate is an operator's update of an incident: what is known and
// done, with a status. Updates are immutable and identified by ID, so the
// same update arriving twice (gossip) is stored once.
type IncidentUpdate struct {
	ID         string
	IncidentID string
	Status     string // investigating, identified, monitoring, resolved
	Body       string
	CreatedAt  time.Time // millisecond precision; set by the node that took it
	Author     string    // that node's name
}

// NewID returns a random identifier: 16 lowercase hex digits.
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func splitNames(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func joinNames(names []string) string { return strings.Join(names, ",") }

func (u *IncidentUpdate) check() error {
	switch {
	case u.ID == "":
		return errors.New("store: incident update without id")
	case u.IncidentID == "":
		return errors.New("store: incident update without incident id")
	case !ValidUpdateStatus(u.Status):
		return fmt.Errorf("store: incident update status %q", u.Status)
	case u.CreatedAt.IsZero():
		return errors.New("store: incident update without time")
	}
	return nil
}

// insertUpdate stores u unless an update with its id exists; it reports
// whether it was stored, and brings the incident's state up to date.
func (s *Store) insertUpdate(tx *sql.Tx, u IncidentUpdate) (bool, error) {
	res, err := tx.Exec(`INSERT INTO incident_updates(id, incident_id, status, body, created_at, author, stored_at)
		VALUES (?,?,?,?,?,?,?) ON CONFLICT(id) DO NOTHING`,
		u.ID, u.IncidentID, u.Status, u.Body, u.CreatedAt.UnixMilli(), u.Author, s.opts.Now().UnixMilli())
	if err != nil {
		return false, fmt.Errorf("store: add incident update: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: add incident update: %w", err)
	}
	if n == 0 {
		return false, nil
	}
	if _, err := tx.Exec(`UPDATE incidents SET updated_at = max(updated_at, ?) WHERE id = ?`,
		u.CreatedAt.UnixMilli(), u.IncidentID); err != nil {
		return false, fmt.Errorf("store: add incident update: %w", err)
	}
	return true, syncManual(tx, u.IncidentID)
}

// syncManual derives a manual incident's state from its latest update (by
// created_at, then id): its status, and resolved at that update's time
// when the status is resolved. The result depends only on the set of
// updates, not on the order they arrived in, so every node agrees.
func syncManual(tx *sql.Tx, id string) error {
	var (
		status string
		at     int64
	)
	err := tx.QueryRow(`SELECT status, created_at FROM incident_updates WHERE incident_id = ?
		ORDER BY created_at DESC, id DESC LIMIT 1`, id).Scan(&status, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: incident state: %w", err)
	}
	var resolved any // NULL while not resolved
	if status == StatusResolved {
		resolved = at
	}
	if _, err := tx.Exec(`UPDATE incidents SET state = ?, resolved_at = ? WHERE id = ? AND manual = 1`,
		status, resolved, id); err != nil {
		return fmt.Errorf("store: incident state: %w", err)
	}
	return nil
}

// PostIncidentUpdate stores an operator's update of an existing incident
// and returns the incident as it is afterwards. An empty ID is set to a
// new random id, a zero CreatedAt to now. An unknown incident gives
// ErrNotFound; status resolved on an open incident of a check gives
// ErrConflict (it resolves when the check is up again). CreatedAt is
// moved just past the incident's latest update if it is not after it, so
// the updates of one node keep their order. The update of a
// manual incident sets its state, and resolves it when the status is
// resolved.
func (s *Store) PostIncidentUpdate(ctx context.Context, u IncidentUpdate) (Incident, IncidentUpdate, error) {
	if u.ID == "" {
		u.ID = NewID()
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.opts.Now()
	}
	u.CreatedAt = msTime(u.CreatedAt.UnixMilli())
	if err := u.check(); err != nil {
		return Incident{}, u, err
	}
	var inc Incident
	err := s.exec(ctx, func(tx *sql.Tx) error {
		cur, err := scanIncident(tx.QueryRow(`SELECT `+incidentCols+` FROM incidents WHERE id = ?`, u.IncidentID))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("store: incident: %w", err)
		}
		if !cur.Manual && cur.Open() && u.Status == StatusResolved {
			return fmt.Errorf("%w: incident %s is open while check %s is down; it resolves when the check is up again (post monitoring meanwhile)",
				ErrConflict, cur.ID, cur.Check)
		}
		// Updates taken here keep their order even within a millisecond
		// or when the clock steps back: the newest is the latest posted.
		var last sql.NullInt64
		if err := tx.QueryRow(`SELECT max(created_at) FROM incident_updates WHERE incident_id = ?`, u.IncidentID).Scan(&last); err != nil {
			return fmt.Errorf("store: incident updates: %w", err)
		}
		if last.Valid && u.CreatedAt.UnixMilli() <= last.Int64 {
			u.CreatedAt = msTime(last.Int64 + 1)
		}
		if _, err := s.insertUpdate(tx, u); err != nil {
			return err
		}
		inc, err = scanIncident(tx.QueryRow(`SELECT `+incidentCols+` FROM incidents WHERE id = ?`, u.IncidentID))
		return err
	})
	return inc, u, err
}

// OpenManualIncident stores an incident an operator opened, with its first
// update. Empty ids are set to new random ones (the incident's prefixed
// "manual-"), a zero StartedAt to now; the update takes the incident's id
// and start time. It returns both as stored.
func (s *Store) OpenManualIncident(ctx context.Context, inc Incident, first IncidentUpdate) (Incident, IncidentUpdate, error) {
	if inc.ID == "" {
		inc.ID = "manual-" + NewID()
	}
	if inc.StartedAt.IsZero() {
		inc.StartedAt = s.opts.Now()
	}
	inc.StartedAt = msTime(inc.StartedAt.UnixMilli())
	inc.Manual, inc.Check = true, ""
	if first.ID == "" {
		first.ID = NewID()
	}
	first.IncidentID, first.CreatedAt = inc.ID, inc.StartedAt
	if first.Author == "" {
		first.Author = inc.Author
	}
	if err := first.check(); err != nil {
		return inc, first, err
	}
	inc.State = first.Status
	var out Incident
	err := s.exec(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRow(`SELECT 1 FROM incidents WHERE id = ?`, inc.ID).Scan(&one); err == nil {
			return fmt.Errorf("%w: incident %s exists", ErrConflict, inc.ID)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: open incident: %w", err)
		}
		if err := insertManual(tx, inc); err != nil {
			return err
		}
		if _, err := s.insertUpdate(tx, first); err != nil {
			return err
		}
		var err error
		out, err = scanIncident(tx.QueryRow(`SELECT `+incidentCols+` FROM incidents WHERE id = ?`, inc.ID))
		return err
	})
	return out, first, err
}

// insertManual stores a manual incident unless its id exists, then derives
// its state from the updates already stored (they may arrive first).
func insertManual(tx *sql.Tx, inc Incident) error {
	start := inc.StartedAt.UnixMilli()
	if _, err := tx.Exec(`INSERT INTO incidents(id, check_name, title, state, started_at, resolved_at, updated_at, details,
			manual, impact, components, author)
		VALUES (?,'',?,?,?,NULL,?,?,1,?,?,?) ON CONFLICT(id) DO NOTHING`,
		inc.ID, inc.Title, inc.State, start, start, inc.Details, inc.Impact, joinNames(inc.Components), inc.Author); err != nil {
		return fmt.Errorf("store: open incident: %w", err)
	}
	if _, err := tx.Exec(`UPDATE incidents SET updated_at = max(updated_at,
			coalesce((SELECT max(created_at) FROM incident_updates WHERE incident_id = ?1), 0)) WHERE id = ?1`, inc.ID); err != nil {
		return fmt.Errorf("store: open incident: %w", err)
	}
	return syncManual(tx, inc.ID)
}

// MergeIncidents stores manual incidents and updates another node took (from
// gossip), in one transaction, skipping those already stored: the same
// item arriving twice is stored once. Updates may come before their
// incident, and are kept for an incident this node does not know. It
// returns the updates that were new here. Invalid items are skipped.
func (s *Store) MergeIncidents(ctx context.Context, incs []Incident, ups []IncidentUpdate) ([]IncidentUpdate, error) {
	var added []IncidentUpdate
	err := s.exec(ctx, func(tx *sql.Tx) error {
		added = added[:0]
		for _, inc := range incs {
			if inc.ID == "" || !inc.Manual {
				continue
			}
			inc.StartedAt = msTime(inc.StartedAt.UnixMilli())
			if err := insertManual(tx, inc); err != nil {
				return err
			}
		}
		for _, u := range ups {
			u.CreatedAt = msTime(u.CreatedAt.UnixMilli())
			if u.check() != nil {
				continue
			}
			ok, err := s.insertUpdate(tx, u)
			if err != nil {
				return err
			}
			if ok {
				added = append(added, u)
			}
		}
		return nil
	})
	return added, err
}

func scanUpdates(rows *sql.Rows) ([]IncidentUpdate, error) {
	defer rows.Close()
	var out []IncidentUpdate
	for rows.Next() {
		var u IncidentUpdate
		var at int64
		if err := rows.Scan(&u.ID, &u.IncidentID, &u.Status, &u.Body, &at, &u.Author); err != nil {
			return nil, fmt.Errorf("store: incident updates: %w", err)
		}
		u.CreatedAt = msTime(at)
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: incident updates: %w", err)
	}
	return out, nil
}

const updateCols = `id, incident_id, status, body, created_at, author`

// IncidentUpdates returns the updates of the given incidents, newest
// first (by CreatedAt, then ID), by incident id.
func (s *Store) IncidentUpdates(ctx context.Context, ids ...string) (map[string][]IncidentUpdate, error) {
	out := map[string][]IncidentUpdate{}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := s.rdb.QueryContext(ctx, `SELECT `+updateCols+` FROM incident_updates
			WHERE incident_id IN (?`+strings.Repeat(",?", len(chunk)-1)+`) ORDER BY created_at DESC, id DESC`, args...)
		if err != nil {
			return nil, fmt.Errorf("store: incident updates: %w", err)
		}
		ups, err := scanUpdates(rows)
		if err != nil {
			return nil, err
		}
		for _, u := range ups {
			out[u.IncidentID] = append(out[u.IncidentID], u)
		}
	}
	return out, nil
}

// RecentIncidentUpdates returns what a node shares with its peers so that
// one that was away catches up: the manual incidents open or started or
// resolved since since, and the updates of open incidents or created since
// since; newest first, at most limit of each (limit <= 0: all).
func (s *Store) RecentIncidentUpdates(ctx context.Context, since time.Time, limit int) ([]Incident, []IncidentUpdate, error) {
	if limit <= 0 {
		limit = -1
	}
	ms := since.UnixMilli()
	incs, err := s.queryIncidents(ctx, `SELECT `+incidentCols+` FROM incidents
		WHERE manual = 1 AND (resolved_at IS NULL OR resolved_at >= ?1 OR started_at >= ?1)
		ORDER BY started_at DESC, id DESC LIMIT ?2`, ms, limit)
	if err != nil {
		return nil, nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+updateCols+` FROM incident_updates
		WHERE created_at >= ?1 OR incident_id IN (SELECT id FROM incidents WHERE resolved_at IS NULL)
		ORDER BY created_at DESC, id DESC LIMIT ?2`, ms, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("store: incident updates: %w", err)
	}
	ups, err := scanUpdates(rows)
	if err != nil {
		return nil, nil, err
	}
	return incs, ups, nil
}
