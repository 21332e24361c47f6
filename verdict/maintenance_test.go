package verdict

import (
	"testing"
	"time"

	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/quorum"
)

// Runtime maintenance windows (Options.Maintenance) count as the
// config's do: a check inside one is in maintenance and opens no
// incident; the once-a-second sweep notices a window that begins, ends
// or is cancelled.
func TestRuntimeMaintenance(t *testing.T) {
	c := newCluster(t, "ap-1", "eu-1", "us-1") // ap-1 is the designated sender
	windows := mesh.NewMaintenance(func() time.Time { return c.now }, quiet)
	c.ev = New(Options{Self: "ap-1", Region: "ap", Now: func() time.Time { return c.now }, Votes: c.self.Votes, Health: c.self.Health,
		Incidents: c.self.Incidents, Sent: c.self.Sent, Logger: quiet, Maintenance: windows.Active})
	c.ev.SetConfig(c.cfg)
	c.ev.SetMembers([]Member{{"ap-1", "ap", MemberAlive}, {"eu-1", "eu", MemberAlive}, {"us-1", "us", MemberAlive}})
	c.observe(true)
	c.vote("eu-1", "up", 0)
	c.vote("us-1", "up", 0)
	if st, _ := c.state(); st != quorum.StateUp {
		t.Fatalf("premise: %s", st)
	}

	// A window that begins in 5 s: the sweep puts api in maintenance then.
	w := mesh.Window{ID: "00000000000000a1", Version: 1, Checks: []string{"api"}, Start: t0.Add(5 * time.Second),
		End: t0.Add(time.Hour), Created: t0, Updated: t0}
	if err := windows.Schedule(w); err != nil {
		t.Fatal(err)
	}
	c.at(4 * time.Second)
	c.ev.EvaluateDue()
	if st, _ := c.state(); st != quorum.StateUp {
		t.Fatalf("before the window: %s", st)
	}
	c.at(5 * time.Second)
	c.observe(true)
	c.ev.EvaluateDue()
	if st, _ := c.state(); st != quorum.StateMaintenance {
		t.Fatalf("in the window: %s, want maintenance", st)
	}

	// An outage inside it: still maintenance, no incident.
	c.at(6 * time.Second)
	c.observe(false)
	c.observe(false)
	c.vote("eu-1", "down", 6*time.Second)
	c.vote("us-1", "down", 6*time.Second)
	c.ev.EvaluateDue()
	if st, id := c.state(); st != quorum.StateMaintenance || id != "" {
		t.Fatalf("outage in the window: %s incident %q, want maintenance and none", st, id)
	}

	// Cancelled: the next sweep shows the outage.
	c.at(7 * time.Second)
	if _, _, err := windows.Cancel(w.ID, "eu-1"); err != nil {
		t.Fatal(err)
	}
	c.ev.EvaluateDue()
	if st, id := c.state(); st != quorum.StateDown || id == "" {
		t.Fatalf("after the cancellation: %s incident %q, want down with an incident", st, id)
	}

	// A window that ends by itself: maintenance, then the state of the votes.
	c.vote("eu-1", "up", 0)
	c.vote("us-1", "up", 0)
	c.observe(true)
	c.at(8 * time.Second)
	short := mesh.Window{ID: "00000000000000b2", Version: 1, Checks: []string{"api"}, Start: t0.Add(8 * time.Second),
		End: t0.Add(10 * time.Second), Created: c.now, Updated: c.now}
	if err := windows.Schedule(short); err != nil {
		t.Fatal(err)
	}
	c.ev.EvaluateDue()
	if st, _ := c.state(); st != quorum.StateMaintenance {
		t.Fatalf("in the short window: %s", st)
	}
	c.at(10 * time.Second)
	c.ev.EvaluateDue()
	if st, _ := c.state(); st == quorum.StateMaintenance {
		t.Fatal("still in maintenance after the window ended")
	}
}
