package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// StateChange is a change of a check's cluster-wide state.
type StateChange struct {
	Check      string
	Time       time.Time // stored with millisecond precision
	From, To   string    // states: up, down, unknown, maintenance, ...
	IncidentID string    // the incident this change opened, kept or closed; "" if none
	Detail     string    // free text or JSON, e.g. the regions' votes
}

// Incident is an outage of one check, from the state becoming down to up.
type Incident struct {
	ID         string // computed by the cluster, the same on every node
	Check      string
	Title      string
	State      string     // e.g. "down", "resolved"
	StartedAt  time.Time  // millisecond precision
	ResolvedAt *time.Time // nil while open
	UpdatedAt  time.Time  // last change; set by the store
	Details    string     // free text or JSON

	// Manual is true for an incident an operator opened (POST
	// /api/v1/incidents) for something no check sees; Check is then "".
	// Its State is the status of its latest update, and an update with
	// status resolved resolves it (see AddIncidentUpdate).
	Manual     bool
	Impact     string   // none, minor, major, critical; "" = derived from the checks
	Components []string // names of the affected checks (manual incidents)
	Author     string   // the node that took a manual incident

	// ParentIncidentID is the incident of a check this one depends on
	// (depends_on) that suppressed this incident's pages, the latest if
	// several did; "" if none did.
	ParentIncidentID string
}

// Open reports whether the incident is still open.
func (i *Incident) Open() bool { return i.ResolvedAt == nil }

// ResolvedState is the State ResolveIncident sets.
const ResolvedState = "resolved"

// RecordStateChange stores a state change. It returns once committed.
func (s *Store) RecordStateChange(ctx context.Context, c StateChange) error {
	if c.Time.IsZero() {
		c.Time = s.opts.Now()
	}
	return s.exec(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO state_changes(check_name, ts, from_state, to_state, incident_id, detail)
			VALUES (?,?,?,?,?,?)`, c.Check, c.Time.UnixMilli(), c.From, c.To, c.IncidentID, c.Detail)
		if err != nil {
			return fmt.Errorf("store: record state change: %w", err)
		}
		return nil
	})
}

// StateChanges returns the state changes of check ("" = all checks) with
// from <= Time < to, oldest first.
func (s *Store) StateChanges(ctx context.Context, check string, from, to time.Time) ([]StateChange, error) {
	q := `SELECT check_name, ts, from_state, to_state, incident_id, detail FROM state_changes
		WHERE ts >= ? AND ts < ?`
	args := []any{from.UnixMilli(), to.UnixMilli()}
	if check != "" {
		q += ` AND check_name = ?`
		args = append(args, check)
	}
	q += ` ORDER BY ts, id`
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: state changes: %w", err)
	}
	defer rows.Close()
	var out []StateChange
	for rows.Next() {
		var c StateChange
		var ts int64
		if err := rows.Scan(&c.Check, &ts, &c.From, &c.To, &c.IncidentID, &c.Detail); err != nil {
			return nil, fmt.Errorf("store: state changes: %w", err)
		}
		c.Time = msTime(ts)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: state changes: %w", err)
	}
	return out, nil
}

// OpenIncident stores a new incident. It is idempotent on inc.ID: when an
// incident with that id exists (open or resolved) nothing changes and
// created is false. inc.ResolvedAt is ignored; a zero StartedAt means now.
func (s *Store) OpenIncident(ctx context.Context, inc Incident) (created bool, err error) {
	if inc.ID == "" {
		return false, errors.New("store: incident without id")
	}
	now := s.opts.Now()
	if inc.StartedAt.IsZero() {
		inc.StartedAt = now
	}
	err = s.exec(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`INSERT INTO incidents(id, check_name, title, state, started_at, resolved_at, updated_at, details,
				manual, impact, components, author, parent_incident_id)
			VALUES (?,?,?,?,?,NULL,?,?,?,?,?,?,?) ON CONFLICT(id) DO NOTHING`,
			inc.ID, inc.Check, inc.Title, inc.State, inc.StartedAt.UnixMilli(), now.UnixMilli(), inc.Details,
			inc.Manual, inc.Impact, joinNames(inc.Components), inc.Author, inc.ParentIncidentID)
		if err != nil {
			return fmt.Errorf("store: open incident: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("store: open incident: %w", err)
		}
		created = n == 1
		return nil
	})
	return created, err
}

// ResolveIncident marks an open incident resolved at the given time (zero
// means now) with State "resolved". It is idempotent: resolving a resolved
// incident changes nothing and returns resolved false. An unknown id gives
// ErrNotFound.
func (s *Store) ResolveIncident(ctx context.Context, id string, at time.Time) (resolved bool, err error) {
	now := s.opts.Now()
	if at.IsZero() {
		at = now
	}
	err = s.exec(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`UPDATE incidents SET resolved_at = ?, state = ?, updated_at = ?
			WHERE id = ? AND resolved_at IS NULL`, at.UnixMilli(), ResolvedState, now.UnixMilli(), id)
		if err != nil {
			return fmt.Errorf("store: resolve incident: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("store: resolve incident: %w", err)
		}
		if n == 1 {
			resolved = true
			return nil
		}
		var one int
		if err := tx.QueryRow(`SELECT 1 FROM incidents WHERE id = ?`, id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return fmt.Errorf("store: resolve incident: %w", err)
		}
		return nil
	})
	return resolved, err
}

// UpdateIncident changes the title, state and details of an incident
// (empty arguments keep the stored value). An unknown id gives ErrNotFound.
func (s *Store) UpdateIncident(ctx context.Context, id, title, state, details string) error {
	now := s.opts.Now()
	return s.exec(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`UPDATE incidents SET
				title = CASE WHEN ?1 = '' THEN title ELSE ?1 END,
				state = CASE WHEN ?2 = '' THEN state ELSE ?2 END,
				details = CASE WHEN ?3 = '' THEN details ELSE ?3 END,
				updated_at = ?4
			WHERE id = ?5`, title, state, details, now.UnixMilli(), id)
		if err != nil {
			return fmt.Errorf("store: update incident: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("store: update incident: %w", err)
		}
		if n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// SetIncidentParent records that the incident of a check this one depends
// on (parent) suppressed incident id's pages. It is idempotent; the
// incident's updated_at moves only when the parent changes. An unknown id
// gives ErrNotFound (its incident may not be stored yet).
func (s *Store) SetIncidentParent(ctx context.Context, id, parent string) error {
	if id == "" || parent == "" {
		return errors.New("store: incident parent without ids")
	}
	return s.exec(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`UPDATE incidents SET parent_incident_id = ?, updated_at = ?
			WHERE id = ? AND parent_incident_id != ?`, parent, s.opts.Now().UnixMilli(), id, parent)
		if err != nil {
			return fmt.Errorf("store: incident parent: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store: incident parent: %w", err)
		} else if n == 1 {
			return nil
		}
		var one int
		if err := tx.QueryRow(`SELECT 1 FROM incidents WHERE id = ?`, id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return fmt.Errorf("store: incident parent: %w", err)
		}
		return nil
	})
}

const incidentCols = `id, check_name, title, state, started_at, resolved_at, updated_at, details, manual, impact, components, author,
	parent_incident_id`

func scanIncident(sc interface{ Scan(...any) error }) (Incident, error) {
	var (
		inc              Incident
		started, updated int64
		resolved         sql.NullInt64
		comps            string
	)
	if err := sc.Scan(&inc.ID, &inc.Check, &inc.Title, &inc.State, &started, &resolved, &updated, &inc.Details,
		&inc.Manual, &inc.Impact, &comps, &inc.Author, &inc.ParentIncidentID); err != nil {
		return inc, err
	}
	inc.Components = splitNames(comps)
	inc.StartedAt = msTime(started)
	inc.UpdatedAt = msTime(updated)
	if resolved.Valid {
		t := msTime(resolved.Int64)
		inc.ResolvedAt = &t
	}
	return inc, nil
}

func (s *Store) queryIncidents(ctx context.Context, q string, args ...any) ([]Incident, error) {
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: incidents: %w", err)
	}
	defer rows.Close()
	var out []Incident
	for rows.Next() {
		inc, err := scanIncident(rows)
		if err != nil {
			return nil, fmt.Errorf("store: incidents: %w", err)
		}
		out = append(out, inc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: incidents: %w", err)
	}
	return out, nil
}

// Incidents returns incidents newest (by StartedAt) first; limit <= 0
// returns all.
func (s *Store) Incidents(ctx context.Context, limit int) ([]Incident, error) {
	if limit <= 0 {
		limit = -1
	}
	return s.queryIncidents(ctx, `SELECT `+incidentCols+` FROM incidents ORDER BY started_at DESC, id DESC LIMIT ?`, limit)
}

// OpenIncidents returns the incidents not yet resolved, newest first.
func (s *Store) OpenIncidents(ctx context.Context) ([]Incident, error) {
	return s.queryIncidents(ctx, `SELECT `+incidentCols+` FROM incidents WHERE resolved_at IS NULL
		ORDER BY started_at DESC, id DESC`)
}

// Incident returns one incident, or ErrNotFound.
func (s *Store) Incident(ctx context.Context, id string) (Incident, error) {
	inc, err := scanIncident(s.rdb.QueryRowContext(ctx, `SELECT `+incidentCols+` FROM incidents WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Incident{}, ErrNotFound
	}
	if err != nil {
		return Incident{}, fmt.Errorf("store: incident: %w", err)
	}
	return inc, nil
}

// ReplaceIncident renames an open incident: the cluster agreed on another id
// for the same outage (see quorum's incident id rules). The row keeps its
// history; its id and start become newID and startedAt, and state changes
// and the incidents it suppressed (parent_incident_id) that named the old
// id follow. If newID already exists, the old row is
// removed instead. An unknown oldID gives ErrNotFound.
func (s *Store) ReplaceIncident(ctx context.Context, oldID, newID string, startedAt time.Time) error {
	if oldID == newID {
		return nil
	}
	return s.exec(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRow(`SELECT 1 FROM incidents WHERE id = ?`, oldID).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return fmt.Errorf("store: replace incident: %w", err)
		}
		err := tx.QueryRow(`SELECT 1 FROM incidents WHERE id = ?`, newID).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.Exec(`UPDATE incidents SET id = ?, started_at = ?, updated_at = ? WHERE id = ?`,
				newID, startedAt.UnixMilli(), s.opts.Now().UnixMilli(), oldID); err != nil {
				return fmt.Errorf("store: replace incident: %w", err)
			}
		case err != nil:
			return fmt.Errorf("store: replace incident: %w", err)
		default:
			if _, err := tx.Exec(`DELETE FROM incidents WHERE id = ?`, oldID); err != nil {
				return fmt.Errorf("store: replace incident: %w", err)
			}
		}
		if _, err := tx.Exec(`UPDATE state_changes SET incident_id = ? WHERE incident_id = ?`, newID, oldID); err != nil {
			return fmt.Errorf("store: replace incident: %w", err)
		}
		if _, err := tx.Exec(`UPDATE incidents SET parent_incident_id = ? WHERE parent_incident_id = ?`, newID, oldID); err != nil {
			return fmt.Errorf("store: replace incident: %w", err)
		}
		if _, err := tx.Exec(`UPDATE incident_updates SET incident_id = ? WHERE incident_id = ?`, newID, oldID); err != nil {
			return fmt.Errorf("store: replace incident: %w", err)
		}
		return nil
	})
}
