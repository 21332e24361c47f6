package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Maintenance windows scheduled at runtime (POST /api/v1/maintenance), as
// every node keeps them so that they survive a restart. A window is
// identified by its ID and changes by versions: the node that schedules
// one stores version 1; cancelling it stores a later version marked
// Deleted (a tombstone), kept until it expires (PruneMaintenance) so that
// a node that was away learns of the cancellation instead of bringing the
// window back. PutMaintenance keeps, per id, the greatest of what it was
// given and what it holds, so the stored windows do not depend on the
// order in which the versions arrive.
//
// The table is not part of the numbered schema (schema.go): it is created
// on the first write (CREATE TABLE IF NOT EXISTS), and reads of a database
// that never had one find no windows. It does not take a schema version,
// and an older build opening the database simply ignores it.

// MaintenanceWindow is one version of a runtime maintenance window: either
// one window [Start, End), or a recurring one (Every, Duration, Timezone,
// as config.Maintenance takes them).
type MaintenanceWindow struct {
	ID      string
	Version uint64 // 1 when scheduled; each change is a greater one
	Deleted bool   // cancelled: a tombstone (no window fields)

	Title    string
	Checks   []string
	Start    time.Time // one-off: inclusive
	End      time.Time // one-off: exclusive
	Every    string    // recurring: a 5-field cron expression
	Duration time.Duration
	Timezone string // recurring: IANA zone Every is read in; "" is UTC

	Author    string    // the node that made this version
	CreatedAt time.Time // when the window was scheduled
	UpdatedAt time.Time // when this version was made
}

const maintSchema = `CREATE TABLE IF NOT EXISTS maintenance_windows (
	id          TEXT    PRIMARY KEY,
	version     INTEGER NOT NULL,
	deleted     INTEGER NOT NULL DEFAULT 0,  -- 1: a tombstone
	title       TEXT    NOT NULL DEFAULT '',
	checks      TEXT    NOT NULL DEFAULT '', -- comma-separated check names
	start_at    INTEGER,                     -- unix ms; NULL for a recurring window
	end_at      INTEGER,
	every       TEXT    NOT NULL DEFAULT '',
	duration_ms INTEGER NOT NULL DEFAULT 0,
	timezone    TEXT    NOT NULL DEFAULT '',
	author      TEXT    NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,            -- unix ms
	updated_at  INTEGER NOT NULL,            -- unix ms
	stored_at   INTEGER NOT NULL             -- unix ms, when this node stored this version
) WITHOUT ROWID`

const maintCols = `id, version, deleted, title, checks, start_at, end_at, every, duration_ms, timezone, author, created_at, updated_at`

func (w *MaintenanceWindow) check() error {
	switch {
	case w.ID == "" || len(w.ID) > maxWriteID:
		return fmt.Errorf("store: maintenance window id %q", w.ID)
	case w.Version == 0 || w.Version > 1<<53:
		return fmt.Errorf("store: maintenance window %s: version %d", w.ID, w.Version)
	case w.CreatedAt.IsZero() || w.UpdatedAt.IsZero():
		return fmt.Errorf("store: maintenance window %s without time", w.ID)
	}
	return nil
}

func optMillis(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// PutMaintenance stores versions of runtime maintenance windows: for each
// id, the stored version is replaced only by a greater one (by version,
// then a tombstone over a window, then the later UpdatedAt, then the
// greater author). It returns the ids whose stored version changed.
func (s *Store) PutMaintenance(ctx context.Context, ws ...MaintenanceWindow) ([]string, error) {
	for i := range ws {
		if err := ws[i].check(); err != nil {
			return nil, err
		}
	}
	var changed []string
	err := s.exec(ctx, func(tx *sql.Tx) error {
		changed = changed[:0]
		if _, err := tx.Exec(maintSchema); err != nil {
			return fmt.Errorf("store: maintenance table: %w", err)
		}
		stmt, err := tx.Prepare(`INSERT INTO maintenance_windows(` + maintCols + `, stored_at)
			VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)
			ON CONFLICT(id) DO UPDATE SET version = excluded.version, deleted = excluded.deleted, title = excluded.title,
				checks = excluded.checks, start_at = excluded.start_at, end_at = excluded.end_at, every = excluded.every,
				duration_ms = excluded.duration_ms, timezone = excluded.timezone, author = excluded.author,
				created_at = excluded.created_at, updated_at = excluded.updated_at, stored_at = excluded.stored_at
			WHERE (excluded.version, excluded.deleted, excluded.updated_at, excluded.author) >
				(maintenance_windows.version, maintenance_windows.deleted, maintenance_windows.updated_at, maintenance_windows.author)`)
		if err != nil {
			return fmt.Errorf("store: put maintenance window: %w", err)
		}
		defer stmt.Close()
		now := s.opts.Now().UnixMilli()
		for _, w := range ws {
			res, err := stmt.Exec(w.ID, int64(w.Version), b2i(w.Deleted), w.Title, joinNames(w.Checks), optMillis(w.Start), optMillis(w.End),
				w.Every, w.Duration.Milliseconds(), w.Timezone, w.Author, w.CreatedAt.UnixMilli(), w.UpdatedAt.UnixMilli(), now)
			if err != nil {
				return fmt.Errorf("store: put maintenance window %s: %w", w.ID, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("store: put maintenance window %s: %w", w.ID, err)
			} else if n > 0 {
				changed = append(changed, w.ID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return changed, nil
}

// MaintenanceWindows returns every stored runtime window, tombstones
// included, by creation time.
func (s *Store) MaintenanceWindows(ctx context.Context) ([]MaintenanceWindow, error) {
	var n int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'maintenance_windows'`).Scan(&n); err != nil {
		return nil, fmt.Errorf("store: maintenance windows: %w", err)
	}
	if n == 0 {
		return nil, nil
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+maintCols+` FROM maintenance_windows ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("store: maintenance windows: %w", err)
	}
	defer rows.Close()
	var out []MaintenanceWindow
	for rows.Next() {
		var (
			w                   MaintenanceWindow
			version             int64
			deleted             int64
			checks              string
			start, end          sql.NullInt64
			durMS, created, upd int64
		)
		if err := rows.Scan(&w.ID, &version, &deleted, &w.Title, &checks, &start, &end, &w.Every, &durMS, &w.Timezone,
			&w.Author, &created, &upd); err != nil {
			return nil, fmt.Errorf("store: maintenance windows: %w", err)
		}
		w.Version, w.Deleted, w.Checks = uint64(version), deleted != 0, splitNames(checks)
		if start.Valid {
			w.Start = msTime(start.Int64)
		}
		if end.Valid {
			w.End = msTime(end.Int64)
		}
		w.Duration = time.Duration(durMS) * time.Millisecond
		w.CreatedAt, w.UpdatedAt = msTime(created), msTime(upd)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: maintenance windows: %w", err)
	}
	return out, nil
}

// PruneMaintenance deletes the tombstones made before deletedBefore and
// the one-off windows that ended before endedBefore; it returns how many
// it deleted. Recurring windows stay until they are cancelled.
func (s *Store) PruneMaintenance(ctx context.Context, deletedBefore, endedBefore time.Time) (int, error) {
	var n int64
	err := s.exec(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(maintSchema); err != nil {
			return fmt.Errorf("store: maintenance table: %w", err)
		}
		res, err := tx.Exec(`DELETE FROM maintenance_windows
			WHERE (deleted = 1 AND updated_at < ?) OR (deleted = 0 AND every = '' AND end_at < ?)`,
			deletedBefore.UnixMilli(), endedBefore.UnixMilli())
		if err != nil {
			return fmt.Errorf("store: prune maintenance windows: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err // the writer may still run fn (ctx gave up first): n is not read
	}
	return int(n), nil
}
