package cluster

import (
	"fmt"
	"testing"
	"time"
)

// within reports whether a and b differ by at most frac of the larger.
func within(a, b uint64, frac float64) bool {
	lo, hi := min(a, b), max(a, b)
	return float64(hi-lo) <= frac*float64(hi)
}

func TestTrafficCounted(t *testing.T) {
	t.Parallel()
	a, b, c := threeNodes(t, testKey(t))
	nodes := []*node{a, b, c}
	for _, n := range nodes {
		// Every node joined or was joined over TCP (push-pull), then
		// probes its peers over UDP.
		if tr := n.Traffic(); tr.TCPIn == 0 || tr.TCPOut == 0 {
			t.Errorf("%s: no TCP traffic after join: %+v", n.Name(), tr)
		}
		waitFor(t, 5*time.Second, n.Name()+" to probe over UDP", func() bool {
			tr := n.Traffic()
			return tr.UDPIn > 0 && tr.UDPOut > 0
		})
	}

	// Broadcasts go out piggybacked on UDP gossip (compressed and
	// encrypted, so their size on the wire is not predictable to the byte).
	ta, tb := a.Traffic(), b.Traffic()
	for i := range 10 {
		a.put(t, fmt.Sprintf("check-%02d", i), "down after 2 failures: timeout")
	}
	waitFor(t, 10*time.Second, "the broadcasts to reach b and c", func() bool {
		_, okb := b.st.get("a", "check-09")
		_, okc := c.st.get("a", "check-09")
		return okb && okc
	})
	if ta2, tb2 := a.Traffic(), b.Traffic(); ta2.UDPOut <= ta.UDPOut || tb2.UDPIn <= tb.UDPIn {
		t.Errorf("traffic did not grow by the broadcasts: a %+v -> %+v, b %+v -> %+v", ta, ta2, tb, tb2)
	}

	// Across the cluster every byte sent is received (loopback loses
	// nothing); the snapshots are not simultaneous, so allow for packets in
	// flight between them.
	time.Sleep(time.Second)
	var sum Traffic
	for _, n := range nodes {
		tr := n.Traffic()
		t.Logf("%s: udp in %d out %d, tcp in %d out %d", n.Name(), tr.UDPIn, tr.UDPOut, tr.TCPIn, tr.TCPOut)
		sum.UDPIn += tr.UDPIn
		sum.UDPOut += tr.UDPOut
		sum.TCPIn += tr.TCPIn
		sum.TCPOut += tr.TCPOut
	}
	if !within(sum.UDPIn, sum.UDPOut, 0.05) || !within(sum.TCPIn, sum.TCPOut, 0.05) {
		t.Errorf("cluster-wide in and out differ: %+v", sum)
	}
}

func TestTrafficShutdown(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	a := start(t, "a", "eu-west", key, nil)
	b := start(t, "b", "us-east", key, []string{a.LocalAddr()})
	waitFor(t, 10*time.Second, "a and b to meet", func() bool { return a.NumAlive() == 2 && b.NumAlive() == 2 })
	// Shutdown returns although a keeps sending to b (the wrapper drains
	// the inner transport while it stops), and then b's packets are over:
	// its socket is closed. (A stream still open could move a few more TCP
	// bytes.)
	done := make(chan error, 1)
	go func() { done <- b.Shutdown() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown hangs")
	}
	x := b.Traffic()
	time.Sleep(500 * time.Millisecond)
	if y := b.Traffic(); x.UDPIn != y.UDPIn || x.UDPOut != y.UDPOut || x.In() == 0 || x.Out() == 0 {
		t.Errorf("b's traffic after shutdown: %+v then %+v", x, y)
	}
}
