package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Failure snapshots (package snapshot): what each node recorded of a
// target when its vote turned down, kept with the incidents. The store
// holds them as opaque blobs (gzipped JSON) with the fields queries need.
//
//	snapshots(id PK, check_name, node, region, down_since, taken_at, data)
//	    index (check_name, down_since); kept forever, like incidents.
//
// The table is created on first write (CREATE TABLE IF NOT EXISTS), so it
// needs no schema migration; reads of a database that has none find no
// snapshot.

// SnapshotRow is one stored snapshot.
type SnapshotRow struct {
	ID        string
	Check     string
	Node      string
	Region    string
	DownSince time.Time // when the node's vote turned down
	Taken     time.Time
	Data      []byte // encoded snapshot
}

const snapshotSchema = `CREATE TABLE IF NOT EXISTS snapshots (
	id         TEXT    PRIMARY KEY,
	check_name TEXT    NOT NULL,
	node       TEXT    NOT NULL,
	region     TEXT    NOT NULL,
	down_since INTEGER NOT NULL,             -- unix ms
	taken_at   INTEGER NOT NULL,             -- unix ms
	data       BLOB    NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS snapshots_check ON snapshots(check_name, down_since);`

// PutSnapshots stores snapshots; one whose id is stored already is
// skipped. It returns the ids it stored.
func (s *Store) PutSnapshots(ctx context.Context, rows []SnapshotRow) ([]string, error) {
	var added []string
	err := s.exec(ctx, func(tx *sql.Tx) error {
		added = added[:0]
		if _, err := tx.Exec(snapshotSchema); err != nil {
			return fmt.Errorf("store: snapshots: %w", err)
		}
		for _, r := range rows {
			res, err := tx.Exec(`INSERT INTO snapshots(id, check_name, node, region, down_since, taken_at, data)
				VALUES (?,?,?,?,?,?,?) ON CONFLICT(id) DO NOTHING`,
				r.ID, r.Check, r.Node, r.Region, r.DownSince.UnixMilli(), r.Taken.UnixMilli(), r.Data)
			if err != nil {
				return fmt.Errorf("store: put snapshot: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				added = append(added, r.ID)
			}
		}
		return nil
	})
	return added, err
}

// Snapshots returns check's snapshots whose DownSince is in [from, to],
// oldest first.
func (s *Store) Snapshots(ctx context.Context, check string, from, to time.Time) ([]SnapshotRow, error) {
	return s.querySnapshots(ctx, `SELECT id, check_name, node, region, down_since, taken_at, data FROM snapshots
		WHERE check_name = ? AND down_since >= ? AND down_since <= ? ORDER BY down_since, id`,
		check, from.UnixMilli(), to.UnixMilli())
}

// RecentSnapshots returns the snapshots taken since since, newest first,
// at most limit.
func (s *Store) RecentSnapshots(ctx context.Context, since time.Time, limit int) ([]SnapshotRow, error) {
	return s.querySnapshots(ctx, `SELECT id, check_name, node, region, down_since, taken_at, data FROM snapshots
		WHERE taken_at >= ? ORDER BY taken_at DESC, id LIMIT ?`, since.UnixMilli(), limit)
}

func (s *Store) querySnapshots(ctx context.Context, q string, args ...any) ([]SnapshotRow, error) {
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil, nil
		}
		return nil, fmt.Errorf("store: snapshots: %w", err)
	}
	defer rows.Close()
	var out []SnapshotRow
	for rows.Next() {
		var r SnapshotRow
		var down, taken int64
		if err := rows.Scan(&r.ID, &r.Check, &r.Node, &r.Region, &down, &taken, &r.Data); err != nil {
			return nil, fmt.Errorf("store: snapshots: %w", err)
		}
		r.DownSince, r.Taken = msTime(down), msTime(taken)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: snapshots: %w", err)
	}
	return out, nil
}
