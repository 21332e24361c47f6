package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func userVersion(t *testing.T, db *sql.DB) int {
	t.Helper()
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func tableExists(t *testing.T, db *sql.DB, name string) bool {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func TestMigrationsIncremental(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	db, err := sql.Open("sqlite", sqliteDSN(path, "_pragma=journal_mode(WAL)", "_txlock=immediate"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	m1 := `CREATE TABLE a(x INTEGER); INSERT INTO a VALUES (1);`
	m2 := `CREATE TABLE b(y TEXT); ALTER TABLE a ADD COLUMN z TEXT;`
	if n, err := migrate(ctx, db, []string{m1}); err != nil || n != 1 {
		t.Fatalf("v1: %d %v", n, err)
	}
	if v := userVersion(t, db); v != 1 {
		t.Fatalf("version %d", v)
	}
	// m1 would fail if run twice (table a exists): only m2 must run.
	if n, err := migrate(ctx, db, []string{m1, m2}); err != nil || n != 1 {
		t.Fatalf("v2: %d %v", n, err)
	}
	if v := userVersion(t, db); v != 2 || !tableExists(t, db, "b") {
		t.Fatalf("version %d", v)
	}
	var rows int
	db.QueryRow(`SELECT count(*) FROM a`).Scan(&rows)
	if rows != 1 {
		t.Fatalf("m1 ran twice? %d rows", rows)
	}
	if n, err := migrate(ctx, db, []string{m1, m2}); err != nil || n != 0 {
		t.Fatalf("again: %d %v", n, err)
	}
	// a failing migration leaves nothing behind
	bad := `CREATE TABLE c(x); THIS IS NOT SQL;`
	if _, err := migrate(ctx, db, []string{m1, m2, bad}); err == nil {
		t.Fatal("bad migration succeeded")
	}
	if v := userVersion(t, db); v != 2 || tableExists(t, db, "c") {
		t.Fatalf("after failed migration: version %d, table c exists %v", v, tableExists(t, db, "c"))
	}
	// a database newer than the code is refused
	if _, err := migrate(ctx, db, []string{m1}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("newer database: %v", err)
	}
}

func TestOpenAppliesSchemaOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s := openTest(t, path, Options{})
	if v := userVersion(t, s.rdb); v != SchemaVersion() || v < 1 {
		t.Fatalf("version %d, want %d", v, SchemaVersion())
	}
	for _, tb := range []string{"results", "series", "series_units", "state_changes", "incidents"} {
		if !tableExists(t, s.rdb, tb) {
			t.Fatalf("table %s missing", tb)
		}
	}
	s.Add(Result{Check: "c", Region: "r", Node: "n", Time: t0, OK: true})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path, Options{})
	if n, err := migrate(context.Background(), s.wdb, migrations); err != nil || n != 0 {
		t.Fatalf("reopen applied %d (%v)", n, err)
	}
	if got, _ := s.History(ctxT(t), "c", t0, t0.Add(time.Millisecond), 0); len(got) != 1 {
		t.Fatal("data lost on reopen")
	}
	// A newer schema on disk makes Open fail.
	if _, err := s.wdb.Exec("PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s2, err := Open(path, Options{Logger: discardLogger}); err == nil {
		s2.Close()
		t.Fatal("opened a newer database")
	}
}
