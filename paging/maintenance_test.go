package paging

import (
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/notifier"
)

// newMaintRig is a rig whose api check is critical and web a warning; the
// critical route asks for maintenance notices (through pager), the
// warning route does not (through chat). Windows: DB upgrade over api
// from 1m to 2m, a recurring one over api and web at :30 of every hour
// for 5m, and one over web alone (no route asks) from 3m to 4m. Runtime
// windows come from the rig's mesh.
func newMaintRig(t *testing.T, self string) *rig {
	r := newRig(t, self, func(c *config.Config) {
		c.Checks[0].Severity, c.Checks[0].Notify = "critical", nil
		c.Checks[1].Severity, c.Checks[1].Notify = "warning", nil
		c.Routes = []config.Route{
			{Match: config.RouteMatch{Severity: "critical"}, Notify: []string{"pager"}, NotifyMaintenance: true},
			{Match: config.RouteMatch{Severity: "warning"}, Notify: []string{"chat"}},
		}
		hourly, err := config.NewRecurringMaintenance("hourly", []string{"api", "web"}, "30 * * * *", 5*time.Minute, "")
		if err != nil {
			t.Fatal(err)
		}
		c.Maintenance = []config.Maintenance{
			{Title: "DB upgrade", Checks: []string{"api"}, Start: t0.Add(time.Minute), End: t0.Add(2 * time.Minute)},
			hourly,
			{Title: "web only", Checks: []string{"web"}, Start: t0.Add(3 * time.Minute), End: t0.Add(4 * time.Minute)},
		}
	})
	r.p.o.Maintenance = r.mesh.Maint
	return r
}

// schedule adds a runtime window (as POST /api/v1/maintenance does).
func schedule(t *testing.T, r *rig, id string, checks []string, start, end time.Time) {
	t.Helper()
	w := mesh.Window{ID: id, Version: 1, Title: "runtime " + id, Checks: checks, Start: start, End: end, Author: "aa-1",
		Created: r.now, Updated: r.now}
	if err := r.mesh.Maint.Schedule(w); err != nil {
		t.Fatal(err)
	}
}

// The sender announces each window's start and end once: a one-off
// window of the config, each occurrence of a recurring one, and runtime
// windows, one of them cancelled before its end; a window over checks no
// route asks for is not announced.
func TestMaintenanceNotices(t *testing.T) {
	r := newMaintRig(t, "aa-1")
	const start, end = "maintenance:trigger/:pager", "maintenance:resolve/:pager"
	steps := []struct {
		at   time.Duration
		do   func()
		want []string
	}{
		{0, nil, nil},
		{59 * time.Second, nil, nil},
		{time.Minute, nil, []string{start}}, // DB upgrade
		{time.Minute + time.Second, nil, nil},
		{2*time.Minute - time.Millisecond, nil, nil},
		{2 * time.Minute, nil, []string{end}},
		{2*time.Minute + time.Second, nil, nil},
		{3 * time.Minute, nil, nil}, // web only: no route asks
		{4 * time.Minute, nil, nil},
		{30 * time.Minute, nil, []string{start}}, // hourly, 10:30
		{31 * time.Minute, nil, nil},
		{35 * time.Minute, nil, []string{end}},
		{40 * time.Minute, func() {
			schedule(t, r, "0123abcd", []string{"api"}, t0.Add(45*time.Minute), t0.Add(50*time.Minute))
			schedule(t, r, "4567cdef", []string{"web"}, t0.Add(45*time.Minute), t0.Add(50*time.Minute))
		}, nil},
		{45 * time.Minute, nil, []string{start}},
		{46 * time.Minute, nil, nil},
		{47 * time.Minute, func() {
			if _, _, err := r.mesh.Maint.Cancel("0123abcd", "us-1"); err != nil {
				t.Fatal(err)
			}
		}, []string{end}},
		{50 * time.Minute, nil, nil},
		{90 * time.Minute, nil, []string{start}}, // hourly, 11:30
		{95 * time.Minute, nil, []string{end}},
		{96 * time.Minute, nil, nil},
	}
	for _, s := range steps {
		r.at(s.at)
		if s.do != nil {
			s.do()
		}
		expect(t, "at "+s.at.String(), r.sweep(), s.want...)
	}
	r.outbox.mu.Lock()
	evs := r.outbox.evs
	r.outbox.mu.Unlock()
	if len(evs) != 8 {
		t.Fatalf("%d notices", len(evs))
	}
	type want struct {
		title       string
		checks      int
		start, stop time.Duration // the occurrence's scheduled bounds
		resolved    time.Duration // the end notice's ResolvedAt
		cancelled   bool
	}
	for i, w := range []want{
		{"DB upgrade", 1, time.Minute, 2 * time.Minute, 2 * time.Minute, false},
		{"hourly", 2, 30 * time.Minute, 35 * time.Minute, 35 * time.Minute, false},
		{"runtime 0123abcd", 1, 45 * time.Minute, 50 * time.Minute, 47 * time.Minute, true},
		{"hourly", 2, 90 * time.Minute, 95 * time.Minute, 95 * time.Minute, false},
	} {
		s, e := evs[2*i], evs[2*i+1]
		m := e.Maintenance
		if s.IncidentID != e.IncidentID || s.Maintenance == nil || m == nil || m.Title != w.title || len(m.Checks) != w.checks ||
			!m.Start.Equal(t0.Add(w.start)) || !m.End.Equal(t0.Add(w.stop)) || !s.StartedAt.Equal(t0.Add(w.start)) ||
			e.ResolvedAt == nil || !e.ResolvedAt.Equal(t0.Add(w.resolved)) || m.Cancelled != w.cancelled || s.Maintenance.Cancelled ||
			s.Severity != notifier.MaintenanceSeverity || s.Kind != notifier.KindMaintenance {
			t.Errorf("window %d: start %+v %+v, end %+v %+v, want %+v", i, s, s.Maintenance, e, m, w)
		}
	}
	if evs[1].IncidentID == evs[3].IncidentID || evs[3].IncidentID == evs[7].IncidentID {
		t.Error("two occurrences share an id")
	}
	if id := evs[4].Maintenance.WindowID; id != "0123abcd" {
		t.Errorf("runtime window id %q", id)
	}
	if n := r.p.MaintenanceFollowed(); n != 0 {
		t.Errorf("still following %d occurrences after they ended", n)
	}
}

// Only the sender sends; every node follows the occurrences and learns
// from the sent log what went out, so a new sender sends what the old one
// did not: the end of a start the old sender sent, or a start it missed
// (late, after Takeover), never a notice twice.
func TestMaintenanceSenderChange(t *testing.T) {
	const start, end = "maintenance:trigger/:pager", "maintenance:resolve/:pager"
	for _, c := range []struct {
		name  string
		dieAt time.Duration // the old sender's last sweep is before this
		steps []struct {
			at   time.Duration
			want []string
		}
		old []string // what the old sender queued
	}{
		{"after the start", 90 * time.Second, []struct {
			at   time.Duration
			want []string
		}{
			{90 * time.Second, nil},          // takes over: the start went out
			{2 * time.Minute, []string{end}}, // the end
			{3 * time.Minute, nil},
		}, []string{start}},
		{"before the start", 59 * time.Second, []struct {
			at   time.Duration
			want []string
		}{
			{61 * time.Second, nil},                             // takes over
			{61*time.Second + Takeover - time.Millisecond, nil}, // waits for the sent log
			{61*time.Second + Takeover, []string{start}},        // late
			{2 * time.Minute, []string{end}},
		}, nil},
		{"after the end was sent", 150 * time.Second, []struct {
			at   time.Duration
			want []string
		}{
			{150 * time.Second, nil},
			{150*time.Second + Takeover, nil},
			{4 * time.Minute, nil},
		}, []string{start, end}},
	} {
		t.Run(c.name, func(t *testing.T) {
			old, next := newMaintRig(t, "aa-1"), newMaintRig(t, "ap-1")
			var queued []string
			for d := time.Duration(0); d < c.dieAt; d += 10 * time.Second {
				for _, r := range []*rig{old, next} {
					r.at(d)
				}
				queued = append(queued, old.sweep()...)
				delivered(old)
				gossip(t, old, next)
				expect(t, "the old sender's peer at "+d.String(), next.sweep())
			}
			expect(t, "the old sender", queued, c.old...)
			next.checks.members("ap-1", "us-1", "ap-1") // aa-1 died
			for _, s := range c.steps {
				next.at(s.at)
				expect(t, "the new sender at "+s.at.String(), next.sweep(), s.want...)
			}
		})
	}
}

// A start a peer delivered is not sent again; a peer's live claim holds
// the send.
func TestMaintenanceDedup(t *testing.T) {
	r := newMaintRig(t, "aa-1")
	r.sweep()
	r.at(time.Minute)
	id := notifier.MaintenanceID(configWindowKey(r.cfg.Maintenance[0]), t0.Add(time.Minute))
	peer := mesh.New(mesh.Options{Self: "us-1", Now: func() time.Time { return r.now }, Logger: quiet})
	if err := peer.Claims.Claim(id, "trigger", []string{"pager"}); err != nil {
		t.Fatal(err)
	}
	b, _ := peer.Claims.MarshalBinary()
	if err := r.mesh.Claims.Merge("us-1", b); err != nil {
		t.Fatal(err)
	}
	expect(t, "claimed by us-1", r.sweep())
	if err := peer.Sent.Record(mesh.Sent{Incident: id, Start: t0.Add(time.Minute), Action: "trigger", Notifier: "pager"}); err != nil {
		t.Fatal(err)
	}
	b, _ = peer.Sent.MarshalBinary()
	if err := r.mesh.Sent.Merge("us-1", b); err != nil {
		t.Fatal(err)
	}
	r.at(time.Minute + time.Second)
	expect(t, "delivered by us-1", r.sweep())
	r.at(2 * time.Minute)
	expect(t, "the end", r.sweep(), "maintenance:resolve/:pager")
}

// A window removed from the config while it runs ends at once, as a
// cancelled one; one made longer ends at its new end.
func TestMaintenanceConfigChange(t *testing.T) {
	r := newMaintRig(t, "aa-1")
	r.sweep()
	r.at(time.Minute)
	expect(t, "start", r.sweep(), "maintenance:trigger/:pager")
	longer := *r.cfg
	longer.Maintenance = append([]config.Maintenance(nil), r.cfg.Maintenance...)
	longer.Maintenance[0].End = t0.Add(3 * time.Minute)
	r.p.SetConfig(&longer)
	r.at(2 * time.Minute)
	expect(t, "its old end", r.sweep())
	r.at(150 * time.Second)
	removed := longer
	removed.Maintenance = removed.Maintenance[1:]
	r.p.SetConfig(&removed)
	expect(t, "removed", r.sweep(), "maintenance:resolve/:pager")
	m := r.lastEvent().Maintenance
	if !m.Cancelled || !m.End.Equal(t0.Add(3*time.Minute)) || !r.lastEvent().ResolvedAt.Equal(t0.Add(150*time.Second)) {
		t.Fatalf("end %+v at %v", m, r.lastEvent().ResolvedAt)
	}
}

// A notifier removed by a reload while a window runs does not hear of
// its end; the others do.
func TestMaintenanceNotifierRemoved(t *testing.T) {
	r := newMaintRig(t, "aa-1")
	r.cfg.Routes[0].Notify = []string{"pager", "chat"}
	r.p.SetConfig(r.cfg)
	r.sweep()
	r.at(time.Minute)
	expect(t, "start", r.sweep(), "maintenance:trigger/:pager,chat")
	fewer := *r.cfg
	fewer.Notifiers = fewer.Notifiers[:1] // pager
	fewer.Routes = []config.Route{{Match: config.RouteMatch{Severity: "critical"}, Notify: []string{"pager"}, NotifyMaintenance: true}}
	r.p.SetConfig(&fewer)
	r.at(2 * time.Minute)
	expect(t, "end", r.sweep(), "maintenance:resolve/:pager")
	r.at(3 * time.Minute)
	expect(t, "after", r.sweep())
	if n := r.p.MaintenanceFollowed(); n != 0 {
		t.Errorf("still following %d occurrences", n)
	}
}
