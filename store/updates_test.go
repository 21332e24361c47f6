package store

import (
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestIncidentUpdatesOfCheckIncident(t *testing.T) {
	ctx := ctxT(t)
	s := openTest(t, "", Options{})
	if _, err := s.OpenIncident(ctx, Incident{ID: "inc1", Check: "api", Title: "API is down", State: "open", StartedAt: t0}); err != nil {
		t.Fatal(err)
	}
	// unknown incident
	if _, _, err := s.PostIncidentUpdate(ctx, IncidentUpdate{IncidentID: "nope", Status: StatusIdentified, Body: "x"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown incident: %v", err)
	}
	// bad status
	if _, _, err := s.PostIncidentUpdate(ctx, IncidentUpdate{IncidentID: "inc1", Status: "fixed", Body: "x"}); err == nil {
		t.Fatal("bad status accepted")
	}
	// a check's open incident is not resolved by hand
	if _, _, err := s.PostIncidentUpdate(ctx, IncidentUpdate{IncidentID: "inc1", Status: StatusResolved, Body: "x"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("resolved on an open check incident: %v", err)
	}
	inc, u1, err := s.PostIncidentUpdate(ctx, IncidentUpdate{IncidentID: "inc1", Status: StatusIdentified, Body: "A bad deploy.",
		CreatedAt: t0.Add(time.Minute), Author: "eu-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(u1.ID) != 16 || !u1.CreatedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("update %+v", u1)
	}
	if !inc.Open() || inc.State != "open" || !inc.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("incident after update %+v", inc)
	}
	_, u2, err := s.PostIncidentUpdate(ctx, IncidentUpdate{ID: "u2", IncidentID: "inc1", Status: StatusMonitoring, Body: "Rolled back.",
		CreatedAt: t0.Add(2 * time.Minute), Author: "us-1"})
	if err != nil {
		t.Fatal(err)
	}
	// the same update again (gossip) is stored once
	added, err := s.MergeIncidents(ctx, nil, []IncidentUpdate{u2, u1})
	if err != nil || len(added) != 0 {
		t.Fatalf("duplicate merge added %v (%v)", added, err)
	}
	got, err := s.IncidentUpdates(ctx, "inc1", "other")
	if err != nil {
		t.Fatal(err)
	}
	if ups := got["inc1"]; len(ups) != 2 || ups[0] != u2 || ups[1] != u1 || len(got["other"]) != 0 {
		t.Fatalf("updates newest first: %+v", got)
	}
	// once the check is up the incident is resolved; a resolved update is a postmortem note
	if _, err := s.ResolveIncident(ctx, "inc1", t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PostIncidentUpdate(ctx, IncidentUpdate{IncidentID: "inc1", Status: StatusResolved, Body: "Postmortem: ...",
		CreatedAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	inc, err = s.Incident(ctx, "inc1")
	if err != nil || inc.Open() || !inc.ResolvedAt.Equal(t0.Add(3*time.Minute)) || inc.Manual {
		t.Fatalf("resolved check incident %+v %v", inc, err)
	}
	// a renamed incident keeps its updates
	if _, err := s.OpenIncident(ctx, Incident{ID: "a", Check: "db", StartedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PostIncidentUpdate(ctx, IncidentUpdate{IncidentID: "a", Status: StatusIdentified, Body: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceIncident(ctx, "a", "b", t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.IncidentUpdates(ctx, "a", "b"); len(got["a"]) != 0 || len(got["b"]) != 1 {
		t.Fatalf("updates after rename %+v", got)
	}
}

func TestManualIncident(t *testing.T) {
	ctx := ctxT(t)
	s := openTest(t, "", Options{})
	inc, first, err := s.OpenManualIncident(ctx,
		Incident{Title: "Email delays", Impact: "minor", Components: []string{"api", "web"}, Author: "eu-1", StartedAt: t0},
		IncidentUpdate{Status: StatusInvestigating, Body: "Some emails arrive late."})
	if err != nil {
		t.Fatal(err)
	}
	if !inc.Manual || inc.Check != "" || inc.State != StatusInvestigating || !inc.Open() || inc.Impact != "minor" ||
		!slices.Equal(inc.Components, []string{"api", "web"}) || inc.Author != "eu-1" || len(inc.ID) != len("manual-")+16 {
		t.Fatalf("manual incident %+v", inc)
	}
	if first.IncidentID != inc.ID || !first.CreatedAt.Equal(t0) || first.Author != "eu-1" {
		t.Fatalf("first update %+v", first)
	}
	// the same id again is refused
	if _, _, err := s.OpenManualIncident(ctx, Incident{ID: inc.ID, Title: "x"}, IncidentUpdate{Status: StatusInvestigating, Body: "x"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate manual incident: %v", err)
	}
	// a manual incident is not restored as a check's open incident... but is open
	open, _ := s.OpenIncidents(ctx)
	if len(open) != 1 || open[0].ID != inc.ID {
		t.Fatalf("open incidents %+v", open)
	}
	inc2, _, err := s.PostIncidentUpdate(ctx, IncidentUpdate{IncidentID: inc.ID, Status: StatusResolved, Body: "All delivered.",
		CreatedAt: t0.Add(10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if inc2.Open() || !inc2.ResolvedAt.Equal(t0.Add(10*time.Minute)) || inc2.State != StatusResolved {
		t.Fatalf("resolved manual incident %+v", inc2)
	}
	// a later update reopens it
	inc3, _, err := s.PostIncidentUpdate(ctx, IncidentUpdate{IncidentID: inc.ID, Status: StatusIdentified, Body: "Again.",
		CreatedAt: t0.Add(20 * time.Minute)})
	if err != nil || !inc3.Open() || inc3.State != StatusIdentified {
		t.Fatalf("reopened manual incident %+v %v", inc3, err)
	}
}

// Nodes that receive the same updates in different orders, some before the
// incident, end up with the same incident.
func TestMergeIncidentsOrderIndependent(t *testing.T) {
	ctx := ctxT(t)
	inc := Incident{ID: "manual-1", Manual: true, Title: "Payments slow", Impact: "major", StartedAt: t0, Author: "eu-1"}
	ups := []IncidentUpdate{
		{ID: "u1", IncidentID: "manual-1", Status: StatusInvestigating, Body: "Looking.", CreatedAt: t0, Author: "eu-1"},
		{ID: "u2", IncidentID: "manual-1", Status: StatusMonitoring, Body: "Fix out.", CreatedAt: t0.Add(time.Minute), Author: "us-1"},
		{ID: "u3", IncidentID: "manual-1", Status: StatusResolved, Body: "Done.", CreatedAt: t0.Add(2 * time.Minute), Author: "eu-1"},
		{ID: "bad", IncidentID: "manual-1", Status: "weird", Body: "x", CreatedAt: t0},
	}
	a := openTest(t, "", Options{})
	if added, err := a.MergeIncidents(ctx, []Incident{inc}, ups); err != nil || len(added) != 3 {
		t.Fatalf("merge: %d added, %v", len(added), err)
	}
	b := openTest(t, "", Options{})
	for _, u := range []IncidentUpdate{ups[2], ups[0]} { // updates first, out of order
		if _, err := b.MergeIncidents(ctx, nil, []IncidentUpdate{u}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.MergeIncidents(ctx, []Incident{inc}, nil); err != nil {
		t.Fatal(err)
	}
	if added, err := b.MergeIncidents(ctx, []Incident{inc}, ups[:2]); err != nil || len(added) != 1 || added[0].ID != "u2" {
		t.Fatalf("second merge added %+v (%v)", added, err)
	}
	ia, _ := a.Incident(ctx, "manual-1")
	ib, _ := b.Incident(ctx, "manual-1")
	if ia.State != StatusResolved || ia.ResolvedAt == nil || !ia.ResolvedAt.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("a: %+v", ia)
	}
	ia.UpdatedAt, ib.UpdatedAt = time.Time{}, time.Time{}
	if ia.State != ib.State || !ia.ResolvedAt.Equal(*ib.ResolvedAt) || ia.Title != ib.Title || ia.Impact != ib.Impact {
		t.Fatalf("nodes disagree:\n a %+v\n b %+v", ia, ib)
	}
}

func TestRecentIncidentUpdates(t *testing.T) {
	ctx := ctxT(t)
	s := openTest(t, "", Options{})
	week := t0.Add(-7 * 24 * time.Hour)
	// an old resolved manual incident, an old open check incident, a new one
	old, _, _ := s.OpenManualIncident(ctx, Incident{Title: "old", StartedAt: week.Add(-48 * time.Hour)},
		IncidentUpdate{Status: StatusResolved, Body: "done"})
	s.OpenIncident(ctx, Incident{ID: "open-old", Check: "api", StartedAt: week.Add(-48 * time.Hour)})
	s.PostIncidentUpdate(ctx, IncidentUpdate{ID: "u-open-old", IncidentID: "open-old", Status: StatusIdentified, Body: "x", CreatedAt: week.Add(-24 * time.Hour)})
	cur, _, _ := s.OpenManualIncident(ctx, Incident{Title: "new", StartedAt: t0}, IncidentUpdate{ID: "u-new", Status: StatusInvestigating, Body: "y"})
	incs, ups, err := s.RecentIncidentUpdates(ctx, week, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(incs) != 1 || incs[0].ID != cur.ID {
		t.Fatalf("manual incidents %+v (old %s)", incs, old.ID)
	}
	var ids []string
	for _, u := range ups {
		ids = append(ids, u.ID)
	}
	if !slices.Equal(ids, []string{"u-new", "u-open-old"}) {
		t.Fatalf("updates %v", ids)
	}
	if _, ups, _ := s.RecentIncidentUpdates(ctx, week, 1); len(ups) != 1 || ups[0].ID != "u-new" {
		t.Fatalf("limit: %+v", ups)
	}
}

// A database written by the previous schema version opens, migrates and
// keeps its incidents; updates can then be added, and it reopens.
func TestOpenVersion1Database(t *testing.T) {
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", sqliteDSN(path, "_pragma=journal_mode(WAL)", "_txlock=immediate"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	if _, err := migrate(ctx, db, migrations[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO incidents(id, check_name, title, state, started_at, resolved_at, updated_at, details)
		VALUES ('inc-v1', 'api', 'API is down', 'open', ?, NULL, ?, 'votes')`, t0.UnixMilli(), t0.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if v := userVersion(t, db); v != 1 {
		t.Fatalf("version %d", v)
	}
	db.Close()

	s := openTest(t, path, Options{})
	if v := userVersion(t, s.rdb); v != SchemaVersion() || v < 2 || !tableExists(t, s.rdb, "incident_updates") {
		t.Fatalf("after open: version %d", v)
	}
	inc, err := s.Incident(ctx, "inc-v1")
	if err != nil || inc.Manual || inc.Impact != "" || inc.Components != nil || inc.Details != "votes" || !inc.Open() {
		t.Fatalf("old incident %+v %v", inc, err)
	}
	if _, _, err := s.PostIncidentUpdate(ctx, IncidentUpdate{ID: "u1", IncidentID: "inc-v1", Status: StatusIdentified, Body: "found it"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, path, Options{})
	got, err := s.IncidentUpdates(ctx, "inc-v1")
	if err != nil || len(got["inc-v1"]) != 1 || got["inc-v1"][0].Body != "found it" {
		t.Fatalf("after reopen %+v %v", got, err)
	}
}

// Updates posted within one millisecond keep their order.
func TestPostIncidentUpdateKeepsOrder(t *testing.T) {
	ctx := ctxT(t)
	s := openTest(t, "", Options{}) // the clock stands still at t0
	inc, _, err := s.OpenManualIncident(ctx, Incident{Title: "x"}, IncidentUpdate{Status: StatusInvestigating, Body: "a"})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{StatusMonitoring, StatusResolved} {
		if _, _, err := s.PostIncidentUpdate(ctx, IncidentUpdate{IncidentID: inc.ID, Status: st, Body: st}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := s.IncidentUpdates(ctx, inc.ID)
	ups := got[inc.ID]
	if len(ups) != 3 || ups[0].Status != StatusResolved || !ups[0].CreatedAt.Equal(t0.Add(2*time.Millisecond)) || ups[2].Status != StatusInvestigating {
		t.Fatalf("updates %+v", ups)
	}
	if inc, _ = s.Incident(ctx, inc.ID); inc.Open() {
		t.Fatalf("not resolved: %+v", inc)
	}
}
