package node

import (
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/statuspage"
)

// A node whose data directory fills up to the last byte keeps probing and
// voting, answers 503 on /readyz within 10 s, shows node.degraded, and
// steps aside as the designated sender: the next node pages the outage,
// once.
func TestDegradedNodeStepsAside(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })

	target, failing := switchableTarget(t)
	hook := newHookRecorder(t)
	path := writeFile(t, "mesh.yaml", meshConfig(target.URL, hook.srv.URL, "1s"))
	key := make([]byte, 32)
	rand.Read(key)
	aa := addMeshNodeIn(t, path, key, "aa-1", "eu", "", dir) // sorts first: the sender
	nodes := []*meshNode{aa,
		addMeshNode(t, path, key, "us-1", "us", aa.n.GossipAddr()),
		addMeshNode(t, path, key, "ap-1", "ap", aa.n.GossipAddr())}
	waitMesh(t, nodes, "a whole mesh, api up, aa-1 the sender", func(st *statuspage.Status) bool {
		return aliveCount(st) == 3 && checkByName(st, "api").State == "up"
	})
	if s := aa.n.ev.View().Sender; s != "aa-1" {
		t.Fatalf("premise: aa-1 should be the sender, got %q", s)
	}

	full := fillDisk(t, dir)
	filled := time.Now()
	deadline := filled.Add(10 * time.Second)
	for {
		ok, _ := aa.n.Ready()
		if st := aa.n.Status(); !ok && st.Node.Degraded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("aa-1 still ready 10 s after its disk filled: %+v", aa.n.Status().Node)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("aa-1 degraded %s after its data directory filled: %s", time.Since(filled).Round(time.Millisecond), aa.n.Status().Node.DegradedReason)
	for _, m := range nodes {
		for deadline := time.Now().Add(10 * time.Second); m.n.ev.View().Sender == "aa-1"; {
			if time.Now().After(deadline) {
				t.Fatalf("%s still takes aa-1 for the sender", m.n.o.Name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	failing.Store(true)
	waitMesh(t, nodes, "api down everywhere (aa-1 still votes)", func(st *statuspage.Status) bool {
		c := checkByName(st, "api")
		return c.State == "down" && c.Regions["eu"].Vote == "down"
	})
	incident := checkByName(nodes[1].n.Status(), "api").IncidentID
	for deadline := time.Now().Add(20 * time.Second); len(hook.all()) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("nobody paged while the sender's disk was full")
		}
		time.Sleep(20 * time.Millisecond)
	}
	failing.Store(false)
	for deadline := time.Now().Add(30 * time.Second); len(hook.all()) < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("no resolve: %v", hook.all())
		}
		time.Sleep(20 * time.Millisecond)
	}
	hook.onePage(t, incident)

	// Space again: the node is whole again.
	os.Remove(full)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ok, _ := aa.n.Ready(); ok && !aa.n.Status().Node.Degraded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("aa-1 still degraded after space came back: %+v", aa.n.Status().Node)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fillDisk writes a file in dir until the file system is full to the last
// byte and returns its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, size := range []int{64 << 10, 4 << 10, 512, 1} {
		buf := make([]byte, size)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
	}
	return p
}

func aliveCount(st *statuspage.Status) int {
	k := 0
	for _, m := range st.Cluster.Members {
		if m.State == "alive" {
			k++
		}
	}
	return k
}
