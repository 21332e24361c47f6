package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations is the schema history. migrations[i] brings the database from
// version i to version i+1 (PRAGMA user_version). Append only: never edit an
// entry that has been released.
var migrations = []string{
	// 1: initial schema.
	`
CREATE TABLE results (
	id            INTEGER PRIMARY KEY,
	check_name    TEXT    NOT NULL,
	node          TEXT    NOT NULL,
	region        TEXT    NOT NULL,
	ts            INTEGER NOT NULL,          -- unix milliseconds
	ok            INTEGER NOT NULL,          -- 0 or 1
	latency_ms    REAL    NOT NULL,
	dns_ms        REAL,                      -- NULL: phase did not happen
	connect_ms    REAL,
	tls_ms        REAL,
	first_byte_ms REAL,
	code          TEXT    NOT NULL DEFAULT '',
	message       TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX results_check_ts ON results(check_name, ts);
CREATE INDEX results_ts ON results(ts);

CREATE TABLE minute_rollups (
	check_name TEXT    NOT NULL,
	minute     INTEGER NOT NULL,             -- unix ms of the minute's start
	region     TEXT    NOT NULL,
	count      INTEGER NOT NULL,
	failures   INTEGER NOT NULL,
	lat_count  INTEGER NOT NULL,             -- results with a latency > 0
	lat_min_us INTEGER NOT NULL,
	lat_max_us INTEGER NOT NULL,
	lat_sum_us INTEGER NOT NULL,
	hist       BLOB    NOT NULL,
	PRIMARY KEY (check_name, minute, region)
) WITHOUT ROWID;
CREATE INDEX minute_rollups_minute ON minute_rollups(minute);

CREATE TABLE daily_rollups (
	check_name TEXT    NOT NULL,
	day        INTEGER NOT NULL,             -- unix ms of the UTC day's start
	region     TEXT    NOT NULL,
	count      INTEGER NOT NULL,
	failures   INTEGER NOT NULL,
	lat_count  INTEGER NOT NULL,
	lat_min_us INTEGER NOT NULL,
	lat_max_us INTEGER NOT NULL,
	lat_sum_us INTEGER NOT NULL,
	hist       BLOB    NOT NULL,
	PRIMARY KEY (check_name, day, region)
) WITHOUT ROWID;
CREATE INDEX daily_rollups_day ON daily_rollups(day);

CREATE TABLE state_changes (
	id          INTEGER PRIMARY KEY,
	check_name  TEXT    NOT NULL,
	ts          INTEGER NOT NULL,            -- unix ms
	from_state  TEXT    NOT NULL,
	to_state    TEXT    NOT NULL,
	incident_id TEXT    NOT NULL DEFAULT '',
	detail      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX state_changes_check_ts ON state_changes(check_name, ts);
CREATE INDEX state_changes_ts ON state_changes(ts);

CREATE TABLE incidents (
	id          TEXT    PRIMARY KEY,
	check_name  TEXT    NOT NULL,
	title       TEXT    NOT NULL DEFAULT '',
	state       TEXT    NOT NULL DEFAULT '',
	started_at  INTEGER NOT NULL,            -- unix ms
	resolved_at INTEGER,                     -- unix ms; NULL while open
	updated_at  INTEGER NOT NULL,            -- unix ms
	details     TEXT    NOT NULL DEFAULT ''  -- free text or JSON
) WITHOUT ROWID;
CREATE INDEX incidents_started ON incidents(started_at);
CREATE INDEX incidents_check ON incidents(check_name, started_at);
`,
	// 2: operators' incident updates and manual incidents.
	`
ALTER TABLE incidents ADD COLUMN manual INTEGER NOT NULL DEFAULT 0;      -- opened by an operator, not by a check
ALTER TABLE incidents ADD COLUMN impact TEXT NOT NULL DEFAULT '';        -- none, minor, major, critical; '' = derived
ALTER TABLE incidents ADD COLUMN components TEXT NOT NULL DEFAULT '';    -- affected check names, comma-separated
ALTER TABLE incidents ADD COLUMN author TEXT NOT NULL DEFAULT '';        -- node that opened a manual incident

CREATE TABLE incident_updates (
	id          TEXT    PRIMARY KEY,
	incident_id TEXT    NOT NULL,
	status      TEXT    NOT NULL,            -- investigating, identified, monitoring, resolved
	body        TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,            -- unix ms, on the node that took the update
	author      TEXT    NOT NULL DEFAULT '', -- that node's name
	stored_at   INTEGER NOT NULL             -- unix ms, when this node stored it
) WITHOUT ROWID;
CREATE INDEX incident_updates_incident ON incident_updates(incident_id, created_at);
CREATE INDEX incident_updates_created ON incident_updates(created_at);
`,
}

// SchemaVersion is the schema version this package writes.
func SchemaVersion() int { return len(migrations) }

// migrate applies the migrations the database lacks, each in its own
// transaction together with the user_version bump. It returns the number of
// migrations applied.
func migrate(ctx context.Context, db *sql.DB, migs []string) (int, error) {
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("store: read schema version: %w", err)
	}
	if v > len(migs) {
		return 0, fmt.Errorf("store: database schema version %d is newer than this build supports (%d)", v, len(migs))
	}
	applied := 0
	for i := v; i < len(migs); i++ {
		done, err := applyMigration(ctx, db, i, migs[i])
		if err != nil {
			return applied, err
		}
		if done {
			applied++
		}
	}
	return applied, nil
}

func applyMigration(ctx context.Context, db *sql.DB, i int, stmt string) (bool, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: migration %d: %w", i+1, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	// Another process may have migrated meanwhile: look again under the lock.
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return false, fmt.Errorf("store: migration %d: %w", i+1, err)
	}
	if v > i {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, stmt); err != nil {
		return false, fmt.Errorf("store: migration %d: %w", i+1, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
		return false, fmt.Errorf("store: migration %d: %w", i+1, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("store: migration %d: %w", i+1, err)
	}
	return true, nil
}
