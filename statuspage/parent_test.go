package statuspage

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/store"
)

// A child's incident suppressed by its parent's (depends_on) names it in
// /api/v1/incidents, from the store (a real SQLite file); other incidents
// carry no parent_incident_id.
func TestIncidentsParentIncidentID(t *testing.T) {
	st := newStore(t) // db's incident inc-new is open
	ctx := context.Background()
	if _, err := st.OpenIncident(ctx, store.Incident{ID: "inc-web", Check: "web", Title: "web is down", State: "open",
		StartedAt: testNow.Add(-4 * time.Minute), ParentIncidentID: "inc-new"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OpenIncident(ctx, store.Incident{ID: "inc-api", Check: "api", Title: "API is down", State: "open",
		StartedAt: testNow.Add(-3 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetIncidentParent(ctx, "inc-api", "inc-new"); err != nil { // its parent went down after it opened
		t.Fatal(err)
	}
	status := testStatus()
	status.Checks[2].State, status.Checks[2].IncidentID = "down", "inc-web"
	status.Checks[2].SuppressedBy, status.Checks[2].ParentIncidentID = []string{"db"}, "inc-new"
	_, _, ts := newServerWith(t, st, status, testPage())

	resp, body := fetch(t, ts, "/api/v1/incidents")
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	var doc struct {
		Incidents []map[string]any `json:"incidents"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, inc := range doc.Incidents {
		got[inc["id"].(string)] = inc["parent_incident_id"]
	}
	want := map[string]any{"inc-web": "inc-new", "inc-api": "inc-new", "inc-new": nil, "inc-old": nil}
	if len(got) != len(want) {
		t.Fatalf("incidents' parent_incident_id %v, want %v", got, want)
	}
	for id, p := range want {
		if got[id] != p {
			t.Fatalf("incidents' parent_incident_id %v, want %v", got, want)
		}
	}

	// /api/v1/status shows it on the check.
	_, body = fetch(t, ts, "/api/v1/status")
	var sdoc Status
	if err := json.Unmarshal(body, &sdoc); err != nil {
		t.Fatal(err)
	}
	if c := sdoc.Checks[2]; c.ParentIncidentID != "inc-new" || len(c.SuppressedBy) != 1 {
		t.Fatalf("status of web: %+v", c)
	}
}
