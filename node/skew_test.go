package node

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/statuspage"
)

// Three nodes whose clocks are ten minutes behind, right, and ten minutes
// ahead: every region's votes count on every node (freshness is judged by
// when a vote arrives, not by its maker's clock), every node shows the
// peers' offsets, and an outage pages exactly once.
func TestMeshSkewedClocks(t *testing.T) {
	target, failing := switchableTarget(t)
	hook := newHookRecorder(t)
	path := writeFile(t, "mesh.yaml", meshConfig(target.URL, hook.srv.URL, "1s"))
	key := make([]byte, 32)
	rand.Read(key)
	skewed := func(d time.Duration) func(*Options) {
		return func(o *Options) { o.Now = func() time.Time { return time.Now().Add(d) } }
	}
	eu := addMeshNodeIn(t, path, key, "eu-1", "eu", "", t.TempDir(), skewed(-10*time.Minute))
	nodes := []*meshNode{eu,
		addMeshNodeIn(t, path, key, "us-1", "us", eu.n.GossipAddr(), t.TempDir()),
		addMeshNodeIn(t, path, key, "ap-1", "ap", eu.n.GossipAddr(), t.TempDir(), skewed(10*time.Minute))}
	waitMesh(t, nodes, "every region voting up on every node, offsets shown", func(st *statuspage.Status) bool {
		c := checkByName(st, "api")
		for _, r := range []string{"eu", "us", "ap"} {
			if c.Regions[r].Vote != "up" || !st.Cluster.Regions[r].Eligible {
				return false
			}
		}
		shown := 0
		for _, m := range st.Cluster.Members {
			if m.ClockOffsetMS != nil {
				shown++
			}
		}
		return c.State == "up" && shown == 2
	})
	var usView *statuspage.Status = nodes[1].n.Status()
	for _, m := range usView.Cluster.Members {
		want := map[string]float64{"eu-1": -600_000, "ap-1": 600_000}[m.Name]
		if m.ClockOffsetMS == nil {
			continue
		}
		if d := *m.ClockOffsetMS - want; d > 0 || d < -2000 {
			t.Fatalf("us-1 sees %s %v ms off, want about %v", m.Name, *m.ClockOffsetMS, want)
		}
	}
	failing.Store(true)
	waitMesh(t, nodes, "api down everywhere", func(st *statuspage.Status) bool {
		return checkByName(st, "api").State == "down"
	})
	incident := checkByName(nodes[1].n.Status(), "api").IncidentID
	for deadline := time.Now().Add(20 * time.Second); len(hook.all()) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no page")
		}
		time.Sleep(20 * time.Millisecond)
	}
	failing.Store(false)
	waitMesh(t, nodes, "api up again", func(st *statuspage.Status) bool {
		return checkByName(st, "api").State == "up"
	})
	for deadline := time.Now().Add(20 * time.Second); len(hook.all()) < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("no resolve: %v", hook.all())
		}
		time.Sleep(20 * time.Millisecond)
	}
	hook.onePage(t, incident)
}
