package store

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
)

// A database of schema 3 opens with migration 4: its incidents are kept,
// with no parent. A child's incident records the parent incident that
// suppressed it (depends_on), which survives a reopen and follows the
// parent's id when the cluster replaces it.
func TestIncidentParent(t *testing.T) {
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "v3.db")
	db, err := sql.Open("sqlite", sqliteDSN(path, "_pragma=journal_mode(WAL)", "_txlock=immediate"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	if _, err := migrateWith(ctx, db, migrations[:3], migrationSteps); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO incidents(id, check_name, title, state, started_at, resolved_at, updated_at, details,
			manual, impact, components, author)
		VALUES ('old', 'api', 'API is down', 'resolved', ?, ?, ?, 'votes', 0, '', '', '')`,
		t0.UnixMilli(), t0.UnixMilli()+60_000, t0.UnixMilli()+60_000); err != nil {
		t.Fatal(err)
	}
	if v := userVersion(t, db); v != 3 {
		t.Fatalf("version %d", v)
	}
	db.Close()

	s := openTest(t, path, Options{})
	if v := userVersion(t, s.rdb); v != SchemaVersion() || v < 4 {
		t.Fatalf("after open: version %d", v)
	}
	old, err := s.Incident(ctx, "old")
	if err != nil || old.ParentIncidentID != "" || old.Title != "API is down" || old.Details != "votes" || old.Open() {
		t.Fatalf("the schema 3 incident after migration: %+v %v", old, err)
	}

	if _, err := s.OpenIncident(ctx, Incident{ID: "parent-a", Check: "db", Title: "DB is down", State: "open", StartedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenIncident(ctx, Incident{ID: "child", Check: "api", Title: "API is down", State: "open", StartedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetIncidentParent(ctx, "nope", "parent-a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an unknown incident: %v, want ErrNotFound", err)
	}
	for range 2 { // idempotent
		if err := s.SetIncidentParent(ctx, "child", "parent-a"); err != nil {
			t.Fatal(err)
		}
	}
	// An incident opened suppressed stores its parent at once.
	if _, err := s.OpenIncident(ctx, Incident{ID: "child2", Check: "web", StartedAt: t0, ParentIncidentID: "parent-a"}); err != nil {
		t.Fatal(err)
	}
	// The cluster names the parent's outage differently: its children follow.
	if err := s.ReplaceIncident(ctx, "parent-a", "parent-b", t0); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openTest(t, path, Options{})
	incs, err := s.Incidents(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, inc := range incs {
		got[inc.ID] = inc.ParentIncidentID
	}
	want := map[string]string{"old": "", "parent-b": "", "child": "parent-b", "child2": "parent-b"}
	if len(got) != len(want) {
		t.Fatalf("incidents %v, want %v", got, want)
	}
	for id, p := range want {
		if got[id] != p {
			t.Fatalf("incidents' parents %v, want %v", got, want)
		}
	}
	open, err := s.OpenIncidents(ctx)
	if err != nil || len(open) != 3 {
		t.Fatalf("open incidents %+v %v", open, err)
	}
}
