package store

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestMaintenanceWindowsPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vantage.db")
	s := openTest(t, path, Options{})
	ctx := ctxT(t)

	// A database that never had a window has none (no table yet).
	if ws, err := s.MaintenanceWindows(ctx); err != nil || len(ws) != 0 {
		t.Fatalf("fresh database: %v %v", ws, err)
	}

	oneOff := MaintenanceWindow{ID: "00000000000000a1", Version: 1, Title: "DB upgrade", Checks: []string{"api", "web"},
		Start: t0.Add(time.Hour), End: t0.Add(2 * time.Hour), Author: "eu-1", CreatedAt: t0, UpdatedAt: t0}
	weekly := MaintenanceWindow{ID: "00000000000000b2", Version: 1, Checks: []string{"api"}, Every: "0 2 * * 0",
		Duration: 90 * time.Minute, Timezone: "Europe/Berlin", Author: "us-1", CreatedAt: t0.Add(time.Second), UpdatedAt: t0.Add(time.Second)}
	changed, err := s.PutMaintenance(ctx, oneOff, weekly)
	if err != nil || len(changed) != 2 {
		t.Fatalf("put: %v %v", changed, err)
	}
	// The same versions again change nothing.
	if changed, err := s.PutMaintenance(ctx, oneOff, weekly); err != nil || len(changed) != 0 {
		t.Fatalf("put again: %v %v", changed, err)
	}

	// A tombstone replaces the window; an older version arriving after it
	// does not bring the window back.
	tomb := MaintenanceWindow{ID: oneOff.ID, Version: 2, Deleted: true, Author: "ap-1", CreatedAt: t0, UpdatedAt: t0.Add(time.Minute)}
	if changed, err := s.PutMaintenance(ctx, tomb); err != nil || len(changed) != 1 {
		t.Fatalf("tombstone: %v %v", changed, err)
	}
	if changed, err := s.PutMaintenance(ctx, oneOff); err != nil || len(changed) != 0 {
		t.Fatalf("older version after the tombstone: %v %v", changed, err)
	}
	// Equal versions: the later one wins, whichever arrives first.
	tomb2 := tomb
	tomb2.Author, tomb2.UpdatedAt = "eu-2", tomb.UpdatedAt.Add(time.Second)
	if changed, err := s.PutMaintenance(ctx, tomb2); err != nil || len(changed) != 1 {
		t.Fatalf("later tombstone: %v %v", changed, err)
	}
	if changed, err := s.PutMaintenance(ctx, tomb); err != nil || len(changed) != 0 {
		t.Fatalf("earlier tombstone after the later: %v %v", changed, err)
	}

	// Survives a restart, fields intact.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path, Options{})
	ws, err := s.MaintenanceWindows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []MaintenanceWindow{tomb2, weekly}
	want[0].CreatedAt = t0
	if !reflect.DeepEqual(ws, want) {
		t.Fatalf("after restart:\n got %+v\nwant %+v", ws, want)
	}

	// Pruning: tombstones past their horizon and one-off windows long
	// ended go; recurring windows stay.
	ended := MaintenanceWindow{ID: "00000000000000c3", Version: 1, Checks: []string{"web"}, Start: t0.Add(-3 * time.Hour),
		End: t0.Add(-2 * time.Hour), CreatedAt: t0.Add(-4 * time.Hour), UpdatedAt: t0.Add(-4 * time.Hour)}
	if _, err := s.PutMaintenance(ctx, ended); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PruneMaintenance(ctx, t0, t0); err != nil || n != 1 {
		t.Fatalf("prune before the tombstone's time: %d %v", n, err) // only the ended window
	}
	if n, err := s.PruneMaintenance(ctx, t0.Add(time.Hour), t0.Add(100*24*time.Hour)); err != nil || n != 1 {
		t.Fatalf("prune: %d %v", n, err) // the tombstone
	}
	if ws, err := s.MaintenanceWindows(ctx); err != nil || len(ws) != 1 || ws[0].ID != weekly.ID {
		t.Fatalf("after pruning: %+v %v", ws, err)
	}

	// Invalid versions are refused before anything is written.
	for _, bad := range []MaintenanceWindow{{Version: 1, CreatedAt: t0, UpdatedAt: t0}, {ID: "x", CreatedAt: t0, UpdatedAt: t0},
		{ID: "x", Version: 1}} {
		if _, err := s.PutMaintenance(ctx, weekly, bad); err == nil {
			t.Fatalf("invalid window %+v stored", bad)
		}
	}
}
