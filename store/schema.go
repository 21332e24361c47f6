package store

import (
	"context"
	"database/sql"
	"errors"
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
	// 3: every node's buckets (series) and their digests; the rollups of
	// the node's own results move there (convertRollups) and their tables
	// go.
	`
CREATE TABLE series (
	check_name TEXT    NOT NULL,
	node       TEXT    NOT NULL,             -- the node whose results these are
	step       INTEGER NOT NULL,             -- 0 minute, 1 hour, 2 UTC day
	start      INTEGER NOT NULL,             -- unix ms of the bucket's start
	region     TEXT    NOT NULL,             -- the node's region
	count      INTEGER NOT NULL,
	failures   INTEGER NOT NULL,
	lat_count  INTEGER NOT NULL,
	lat_min_us INTEGER NOT NULL,
	lat_max_us INTEGER NOT NULL,
	lat_sum_us INTEGER NOT NULL,
	hist       BLOB    NOT NULL,
	PRIMARY KEY (check_name, node, step, start)
) WITHOUT ROWID;
CREATE INDEX series_node ON series(node, step, start);

CREATE TABLE series_units (
	node  TEXT    NOT NULL,
	step  INTEGER NOT NULL,
	start INTEGER NOT NULL,
	hash  INTEGER NOT NULL,                  -- sum of the unit's buckets' hashes, mod 2^64
	rows  INTEGER NOT NULL,                  -- its buckets
	PRIMARY KEY (node, step, start)
) WITHOUT ROWID;
`,
	// 4: the incident of a listed check (depends_on) that suppressed a
	// check's incident; existing incidents keep '' (none).
	`
ALTER TABLE incidents ADD COLUMN parent_incident_id TEXT NOT NULL DEFAULT '';
`,
}

// migrationSteps are Go steps of migrations, run in the migration's
// transaction after its SQL: migrationSteps[n] belongs to migration n.
var migrationSteps = map[int]func(context.Context, *sql.Tx) error{
	3: convertRollups,
}

// SchemaVersion is the schema version this package writes.
func SchemaVersion() int { return len(migrations) }

// migrate applies the migrations the database lacks, each in its own
// transaction together with the user_version bump. It returns the number of
// migrations applied.
func migrate(ctx context.Context, db *sql.DB, migs []string) (int, error) {
	return migrateWith(ctx, db, migs, nil)
}

// migrateWith is migrate with Go steps (by migration number).
func migrateWith(ctx context.Context, db *sql.DB, migs []string, steps map[int]func(context.Context, *sql.Tx) error) (int, error) {
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("store: read schema version: %w", err)
	}
	if v > len(migs) {
		return 0, fmt.Errorf("store: database schema version %d is newer than this build supports (%d)", v, len(migs))
	}
	applied := 0
	for i := v; i < len(migs); i++ {
		done, err := applyMigration(ctx, db, i, migs[i], steps[i+1])
		if err != nil {
			return applied, err
		}
		if done {
			applied++
		}
	}
	return applied, nil
}

func applyMigration(ctx context.Context, db *sql.DB, i int, stmt string, step func(context.Context, *sql.Tx) error) (bool, error) {
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
	if step != nil {
		if err := step(ctx, tx); err != nil {
			return false, fmt.Errorf("store: migration %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
		return false, fmt.Errorf("store: migration %d: %w", i+1, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("store: migration %d: %w", i+1, err)
	}
	return true, nil
}

// convertRollups moves the rollups of schema 2 (this node's own results,
// by region) into series as this node's buckets, derives their hour
// buckets, fills series_units and drops the old tables. The node is the
// one that wrote the newest raw result; without raw results (all pruned)
// the buckets are kept under "~REGION".
func convertRollups(ctx context.Context, tx *sql.Tx) error {
	var node sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT node FROM results ORDER BY ts DESC LIMIT 1`).Scan(&node); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	var regions int
	if err := tx.QueryRowContext(ctx, `SELECT count(DISTINCT region) FROM daily_rollups`).Scan(&regions); err != nil {
		return err
	}
	nodeOf := func(region string) string {
		switch {
		case !node.Valid || node.String == "":
			return "~" + region
		case regions > 1:
			return node.String + "~" + region
		}
		return node.String
	}
	ins, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO series(check_name, node, step, start, `+bucketCols+`)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	units := map[ukey]udelta{}
	var buf, blob []byte
	put := func(k rkey, r *row) error {
		blob = r.h.encode(blob)
		res, err := ins.ExecContext(ctx, k.check, k.node, int64(k.step), k.start, r.region, r.count, r.failures,
			r.latN, r.latMin, r.latMax, r.latSum, blob)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		var h uint64
		h, buf = rowHash(buf, k, r)
		u := units[k.unit()]
		u.hash += h
		u.rows++
		units[k.unit()] = u
		return nil
	}
	type legacyRow struct {
		k rkey
		r row
	}
	for _, src := range []struct {
		table, col string
		step       Step
	}{{"minute_rollups", "minute", StepMinute}, {"daily_rollups", "day", StepDay}} {
		var (
			hourKey rkey
			hour    row
			have    bool
			last    = legacyRow{}
			first   = true
		)
		for {
			// keyset pages, so no statement runs while rows are open
			q := fmt.Sprintf(`SELECT check_name, region, %[1]s, count, failures, lat_count, lat_min_us, lat_max_us,
				lat_sum_us, hist FROM %[2]s WHERE ? OR (check_name, region, %[1]s) > (?, ?, ?)
				ORDER BY check_name, region, %[1]s LIMIT 5000`, src.col, src.table)
			rows, err := tx.QueryContext(ctx, q, first, last.k.check, last.r.region, last.k.start)
			if err != nil {
				return err
			}
			var page []legacyRow
			for rows.Next() {
				var lr legacyRow
				var b []byte
				if err := rows.Scan(&lr.k.check, &lr.r.region, &lr.k.start, &lr.r.count, &lr.r.failures, &lr.r.latN,
					&lr.r.latMin, &lr.r.latMax, &lr.r.latSum, &b); err != nil {
					rows.Close()
					return err
				}
				if err := lr.r.h.addEncoded(b); err != nil {
					rows.Close()
					return err
				}
				lr.k.node, lr.k.step = nodeOf(lr.r.region), src.step
				page = append(page, lr)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if len(page) == 0 {
				break
			}
			first, last = false, page[len(page)-1]
			for i := range page {
				k, r := page[i].k, &page[i].r
				if err := put(k, r); err != nil {
					return err
				}
				if src.step != StepMinute {
					continue
				}
				if pk := k.parent(); !have || pk != hourKey {
					if have {
						if err := put(hourKey, &hour); err != nil {
							return err
						}
					}
					hourKey, hour, have = pk, row{region: r.region}, true
				}
				hour.merge(&r.agg)
			}
		}
		if have {
			if err := put(hourKey, &hour); err != nil {
				return err
			}
		}
	}
	up, err := tx.PrepareContext(ctx, `INSERT INTO series_units(node, step, start, hash, rows) VALUES (?,?,?,?,?)`)
	if err != nil {
		return err
	}
	defer up.Close()
	for u, d := range units {
		if _, err := up.ExecContext(ctx, u.node, int64(u.step), u.start, int64(d.hash), d.rows); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, `DROP TABLE minute_rollups; DROP TABLE daily_rollups;`)
	return err
}
