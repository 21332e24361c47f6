package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// syncBuffer is a log sink safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// kvState is the test State of the cluster tests: this node's own entries
// (name -> value) and what it merged from others (origin "/" name ->
// value). A broadcast carries one entry and push-pull the node's own map,
// both encoded by encodeKV, so Merge takes them alike.
type kvState struct {
	mu     sync.Mutex
	own    map[string]string
	got    map[string]string
	merges int
}

func newKV() *kvState { return &kvState{own: map[string]string{}, got: map[string]string{}} }

// encodeKV encodes a map: a uvarint count, then each name and value as
// strings, in name order.
func encodeKV(m map[string]string) []byte {
	w := writer{}
	w.uvarint(uint64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		w.str(k, 1<<20)
		w.str(m[k], 1<<20)
	}
	return w.b
}

func decodeKV(b []byte) (map[string]string, error) {
	r := reader{b: b}
	n := r.uvarint()
	if r.err != nil {
		return nil, r.err
	}
	if n > uint64(len(r.b)/2) {
		return nil, fmt.Errorf("%d entries in %d bytes", n, len(r.b))
	}
	m := make(map[string]string, n)
	for range n {
		k, v := r.str(), r.str()
		if r.err != nil {
			return nil, r.err
		}
		m[k] = v
	}
	if len(r.b) != 0 {
		return nil, errors.New("trailing bytes")
	}
	return m, nil
}

func (s *kvState) MarshalBinary() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.own) == 0 {
		return nil, nil
	}
	return encodeKV(s.own), nil
}

func (s *kvState) Merge(from string, b []byte) error {
	m, err := decodeKV(b)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.merges++
	for k, v := range m {
		s.got[from+"/"+k] = v
	}
	return nil
}

// set changes an entry of this node's own, without broadcasting it.
func (s *kvState) set(name, value string) {
	s.mu.Lock()
	s.own[name] = value
	s.mu.Unlock()
}

// get returns what this node merged from a node under a name.
func (s *kvState) get(from, name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.got[from+"/"+name]
	return v, ok
}

func (s *kvState) fromNode(from string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.got {
		if strings.HasPrefix(k, from+"/") {
			n++
		}
	}
	return n
}

// node is a started test node with one kvState, registered as "kv".
type node struct {
	*Cluster
	st  *kvState
	kv  *Channel
	log *syncBuffer
}

// put sets an entry of the node's own and broadcasts it.
func (n *node) put(t *testing.T, name, value string) {
	t.Helper()
	n.st.set(name, value)
	if err := n.kv.Broadcast(name, encodeKV(map[string]string{name: value})); err != nil {
		t.Fatal(err)
	}
}

func testKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// start runs a node on 127.0.0.1 with the local profile; mod adjusts its
// config.
func start(t *testing.T, name, region string, key []byte, seeds []string, mod ...func(*Config)) *node {
	t.Helper()
	n, err := tryStart(t, name, region, key, seeds, mod...)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func tryStart(t *testing.T, name, region string, key []byte, seeds []string, mod ...func(*Config)) (*node, error) {
	t.Helper()
	buf := &syncBuffer{}
	cfg := Config{
		Name: name, Region: region, Version: "v1.0.0", ConfigHash: "hash-1",
		Bind: "127.0.0.1:0", Join: seeds, Profile: ProfileLocal, Key: key,
		Logger:         slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo})),
		RejoinInterval: 500 * time.Millisecond,
	}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := Create(cfg)
	if err != nil {
		return nil, err
	}
	st := newKV()
	ch, err := c.AddState("kv", st)
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		_ = c.Shutdown()
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, buf.String())
		}
	})
	return &node{Cluster: c, st: st, kv: ch, log: buf}, nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	begin := time.Now()
	deadline := begin.Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(begin)
}

func member(c *Cluster, name string) (Member, bool) {
	for _, m := range c.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

func memberState(c *Cluster, name string) string {
	m, _ := member(c, name)
	return m.State
}

// threeNodes starts a, b and c in three regions; b and c join through a.
func threeNodes(t *testing.T, key []byte) (a, b, c *node) {
	t.Helper()
	a = start(t, "a", "eu-west", key, nil)
	b = start(t, "b", "us-east", key, []string{a.LocalAddr()})
	c = start(t, "c", "ap-south", key, []string{a.LocalAddr(), b.LocalAddr()})
	for _, n := range []*node{a, b, c} {
		waitFor(t, 10*time.Second, n.Name()+" to see 3 alive", func() bool { return n.NumAlive() == 3 })
	}
	return a, b, c
}

func TestThreeNodesJoinWithMeta(t *testing.T) {
	t.Parallel()
	a, b, c := threeNodes(t, testKey(t))
	want := map[string]string{"a": "eu-west", "b": "us-east", "c": "ap-south"}
	addrs := map[string]string{"a": a.LocalAddr(), "b": b.LocalAddr(), "c": c.LocalAddr()}
	for _, n := range []*node{a, b, c} {
		ms := n.Members()
		if len(ms) != 3 {
			t.Fatalf("%s: members %+v", n.Name(), ms)
		}
		for _, m := range ms {
			if m.State != StateAlive || m.Region != want[m.Name] || m.Version != "v1.0.0" ||
				m.ConfigHash != "hash-1" || m.ConfigMismatch || m.Addr != addrs[m.Name] {
				t.Errorf("%s sees %+v", n.Name(), m)
			}
		}
		if n.Region() != want[n.Name()] {
			t.Errorf("%s: Region %q", n.Name(), n.Region())
		}
	}
	if !strings.HasPrefix(a.LocalAddr(), "127.0.0.1:") || strings.HasSuffix(a.LocalAddr(), ":0") {
		t.Errorf("LocalAddr %q", a.LocalAddr())
	}
	// b and c joining signalled a change (coalesced; nothing read it yet).
	select {
	case <-a.Changes():
	default:
		t.Error("no change signalled on a")
	}
	// memberlist reports the members during the join, before the join
	// returns and b logs it.
	waitFor(t, 5*time.Second, "b to log its join attempt", func() bool {
		return strings.Contains(b.log.String(), "seed answered")
	})
}

func TestBroadcastReachesOthers(t *testing.T) {
	t.Parallel()
	a, b, c := threeNodes(t, testKey(t))
	a.put(t, "api", "down")
	for _, n := range []*node{b, c} {
		waitFor(t, 5*time.Second, n.Name()+" to merge a's entry", func() bool {
			_, ok := n.st.get("a", "api")
			return ok
		})
		if v, _ := n.st.get("a", "api"); v != "down" {
			t.Errorf("%s got %q", n.Name(), v)
		}
	}
	if a.st.fromNode("a") != 0 {
		t.Error("a merged its own broadcast")
	}

	// A newer broadcast with the same name replaces the older one.
	a.put(t, "api", "up")
	waitFor(t, 5*time.Second, "b to get the newer entry", func() bool {
		v, _ := b.st.get("a", "api")
		return v == "up"
	})

	// Every node broadcasts; each gets the others'.
	c.put(t, "db", "from c")
	b.put(t, "db", "from b")
	for _, n := range []*node{a, b, c} {
		for _, from := range []string{"b", "c"} {
			if from == n.Name() {
				continue
			}
			waitFor(t, 5*time.Second, n.Name()+" to merge "+from+"'s db", func() bool {
				v, _ := n.st.get(from, "db")
				return v == "from "+from
			})
		}
	}
}

func TestBroadcastReachesEveryNodeOfALargerCluster(t *testing.T) {
	t.Parallel()
	// Six nodes: more peers than the local profile's GossipNodes (3), so
	// receivers relay what the origin's own gossip may not reach.
	key := testKey(t)
	a := start(t, "n0", "r0", key, nil)
	nodes := []*node{a}
	for i := 1; i < 6; i++ {
		nodes = append(nodes, start(t, fmt.Sprintf("n%d", i), fmt.Sprintf("r%d", i%3), key, []string{a.LocalAddr()}))
	}
	for _, n := range nodes {
		waitFor(t, 10*time.Second, n.Name()+" to see 6 alive", func() bool { return n.NumAlive() == 6 })
	}
	perRegion := map[string]int{}
	for _, m := range a.Members() {
		perRegion[m.Region]++
	}
	if perRegion["r0"] != 2 || perRegion["r1"] != 2 || perRegion["r2"] != 2 {
		t.Errorf("members per region %v", perRegion)
	}
	for i := range 20 {
		nodes[5].put(t, fmt.Sprintf("c%d", i), "up")
	}
	for _, n := range nodes[:5] {
		waitFor(t, 5*time.Second, n.Name()+" to get all entries", func() bool {
			return n.st.fromNode("n5") == 20
		})
	}

	// Messages that only n0 has (as if it alone had received them from a
	// node that went away) reach the others only if n0, and those it
	// passes them to, relay them. Gossip is epidemic: one message may miss
	// a node (push-pull would repair it, but these are in no node's state),
	// so n0 gets several, apart, each gossiped to fresh random peers.
	for i := range 5 {
		name := fmt.Sprintf("relayed-%d", i)
		a.mlc.Delegate.NotifyMsg(encodeEnvelope(kindState, "ghost", "kv/"+name, uint64(time.Now().UnixNano()),
			encodeKV(map[string]string{name: "yes"})))
		time.Sleep(300 * time.Millisecond)
	}
	if n := a.st.fromNode("ghost"); n != 5 {
		t.Errorf("n0 merged %d of the 5 messages", n)
	}
	for _, n := range nodes[1:] {
		waitFor(t, 10*time.Second, n.Name()+" to get a relayed message", func() bool {
			return n.st.fromNode("ghost") > 0
		})
	}
}

func TestLateJoinerGetsStateByPushPull(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	a := start(t, "a", "eu-west", key, nil)
	b := start(t, "b", "us-east", key, []string{a.LocalAddr()})
	waitFor(t, 10*time.Second, "a and b to meet", func() bool { return a.NumAlive() == 2 })
	// Entries that exist only in a's state, never broadcast.
	for i := range 50 {
		a.st.set(fmt.Sprintf("check-%d", i), "up")
	}
	c := start(t, "c", "ap-south", key, []string{b.LocalAddr(), a.LocalAddr()})
	waitFor(t, 10*time.Second, "c to receive a's state", func() bool { return c.st.fromNode("a") == 50 })
}

func TestWrongKeyCannotJoinOrInject(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	a := start(t, "a", "eu-west", key, nil)
	b := start(t, "b", "us-east", key, []string{a.LocalAddr()})
	waitFor(t, 10*time.Second, "a and b to meet", func() bool { return a.NumAlive() == 2 })

	x := start(t, "x", "evil", testKey(t), []string{a.LocalAddr()})
	waitFor(t, 10*time.Second, "x to log a failed join", func() bool {
		return strings.Contains(x.log.String(), "seed did not answer")
	})
	if _, err := x.ml.Join([]string{a.LocalAddr()}); err == nil {
		t.Error("a node with another key joined")
	}

	// x sends a forged state message, as from b, straight to a, over UDP
	// and TCP.
	forged := encodeEnvelope(kindState, "b", "kv/api", uint64(time.Now().UnixNano()),
		encodeKV(map[string]string{"api": "down"}))
	host, port, _ := splitHostPort(a.LocalAddr(), 0)
	if err := x.ml.SendToAddress(memberlist.Address{Addr: a.LocalAddr(), Name: "a"}, forged); err != nil {
		t.Log("udp send:", err)
	}
	if err := x.ml.SendToTCP(&memberlist.Node{Name: "a", Addr: net.ParseIP(host), Port: uint16(port)}, forged); err != nil {
		t.Log("tcp send:", err)
	}
	// A barrier: a genuine broadcast sent after the forged message
	// arrives; the forged one must not have.
	b.put(t, "barrier", "up")
	waitFor(t, 5*time.Second, "the barrier", func() bool { _, ok := a.st.get("b", "barrier"); return ok })
	if v, ok := a.st.get("b", "api"); ok {
		t.Errorf("forged message merged: %q", v)
	}
	if _, ok := member(a.Cluster, "x"); ok {
		t.Error("a lists x as a member")
	}
	if _, ok := member(b.Cluster, "x"); ok {
		t.Error("b lists x as a member")
	}
	if x.NumAlive() != 1 {
		t.Errorf("x sees %d alive", x.NumAlive())
	}
}

func TestInsecureCannotJoinKeyed(t *testing.T) {
	t.Parallel()
	a := start(t, "a", "eu-west", testKey(t), nil)
	x := start(t, "x", "open", nil, []string{a.LocalAddr()}, func(c *Config) { c.Insecure = true })
	if _, err := x.ml.Join([]string{a.LocalAddr()}); err == nil {
		t.Error("an insecure node joined a keyed cluster")
	}
	waitFor(t, 10*time.Second, "x to log a failed join", func() bool {
		return strings.Contains(x.log.String(), "seed did not answer")
	})
	if _, ok := member(a.Cluster, "x"); ok || a.NumAlive() != 1 {
		t.Errorf("a lists x: %+v", a.Members())
	}
	// Nor can a keyed node join an insecure one.
	if _, err := a.ml.Join([]string{x.LocalAddr()}); err == nil {
		t.Error("a keyed node joined an insecure node")
	}
}

func TestConfigHashMismatchReported(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	a := start(t, "a", "eu-west", key, nil)
	b := start(t, "b", "us-east", key, []string{a.LocalAddr()}, func(c *Config) { c.ConfigHash = "hash-2" })
	waitFor(t, 10*time.Second, "a to see b", func() bool { return a.NumAlive() == 2 })
	m, _ := member(a.Cluster, "b")
	if !m.ConfigMismatch || m.ConfigHash != "hash-2" {
		t.Errorf("a sees b as %+v", m)
	}
	if m, _ := member(a.Cluster, "a"); m.ConfigMismatch {
		t.Error("a mismatches itself")
	}
	waitFor(t, 5*time.Second, "the mismatch warning", func() bool {
		return strings.Contains(a.log.String(), "different config hash")
	})
	// Re-advertising the same hash does not warn again.
	if err := b.SetConfigHash("hash-2"); err != nil {
		t.Fatal(err)
	}
	// b reloads to the same config: no mismatch any more.
	if err := b.SetConfigHash("hash-1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the mismatch to clear", func() bool {
		m, _ := member(a.Cluster, "b")
		return !m.ConfigMismatch
	})
	if n := strings.Count(a.log.String(), "different config hash"); n != 1 {
		t.Errorf("warning logged %d times:\n%s", n, a.log.String())
	}
}

func TestShutdownNodeSeenDead(t *testing.T) {
	t.Parallel()
	a, b, c := threeNodes(t, testKey(t))
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	sawSuspect := false
	took := waitFor(t, 10*time.Second, "c dead on a and b", func() bool {
		sa, sb := memberState(a.Cluster, "c"), memberState(b.Cluster, "c")
		sawSuspect = sawSuspect || sa == StateSuspect || sb == StateSuspect
		return sa == StateDead && sb == StateDead
	})
	if !sawSuspect {
		t.Error("neither a nor b showed c suspect before dead")
	}
	t.Logf("dead noticed after %v", took)
	if took > 5*time.Second {
		t.Errorf("dead noticed after %v, local profile promises 5s", took)
	}
	if n := a.NumAlive(); n != 2 {
		t.Errorf("a counts %d alive", n)
	}
}

func TestLeaveSeenLeft(t *testing.T) {
	t.Parallel()
	a, b, c := threeNodes(t, testKey(t))
	if err := c.Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "c left on a and b", func() bool {
		return memberState(a.Cluster, "c") == StateLeft && memberState(b.Cluster, "c") == StateLeft
	})
}

// freePort finds a port free on 127.0.0.1 for both TCP and UDP.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

func TestJoinRetriesUntilSeedIsUp(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		b := start(t, "b", "us-east", key, []string{addr})
		waitFor(t, 10*time.Second, "b to try the absent seed", func() bool {
			return strings.Contains(b.log.String(), "seed did not answer")
		})
		a, err := tryStart(t, "a", "eu-west", key, nil, func(c *Config) { c.Bind = addr })
		if err != nil && attempt < 3 && strings.Contains(err.Error(), "in use") {
			t.Logf("port %d taken meanwhile, retrying: %v", port, err)
			_ = b.Shutdown()
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		took := waitFor(t, 10*time.Second, "b to join a once a is up", func() bool {
			return a.NumAlive() == 2 && b.NumAlive() == 2
		})
		t.Logf("joined %v after a started", took)
		return
	}
}

func TestRejoinAfterPeerRestart(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	a := start(t, "a", "eu-west", key, nil)
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	b := start(t, "b", "us-east", key, []string{a.LocalAddr()}, func(c *Config) { c.Bind = addr })
	waitFor(t, 10*time.Second, "a and b to meet", func() bool { return a.NumAlive() == 2 })
	_ = b.Shutdown()
	waitFor(t, 10*time.Second, "b dead on a", func() bool { return memberState(a.Cluster, "b") == StateDead })
	// b comes back on the same address without seeds: a re-contacts it.
	b2, err := tryStart(t, "b", "us-east", key, nil, func(c *Config) { c.Bind = addr })
	if err != nil {
		t.Skipf("cannot rebind %s: %v", addr, err)
	}
	waitFor(t, 10*time.Second, "a to re-contact b", func() bool {
		return memberState(a.Cluster, "b") == StateAlive && b2.NumAlive() == 2
	})
}

func TestSeedsSkipOwnAddress(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	n := start(t, "a", "eu-west", testKey(t), []string{addr, "localhost:" + fmt.Sprint(port), "127.0.0.1:1"},
		func(c *Config) { c.Bind = addr })
	for _, s := range n.seeds() {
		if s == addr {
			t.Errorf("seeds %v include this node's own address", n.seeds())
		}
	}
	if got := n.seeds(); !slices.Contains(got, "127.0.0.1:1") {
		t.Errorf("seeds %v lack 127.0.0.1:1", got)
	}
}

// One seed name for the whole cluster (a Kubernetes headless Service)
// resolves to every node, this one included: each node joins the others.
func TestSeedNameListingEveryNode(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	lookup := func(ctx context.Context, host string) ([]net.IP, error) {
		if host != "vantage-gossip.test" {
			return nil, fmt.Errorf("no such host %s", host)
		}
		return []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("127.0.0.2")}, nil
	}
	seed := []string{fmt.Sprintf("vantage-gossip.test:%d", port)}
	a := start(t, "a", "eu-west", nil, seed, func(c *Config) {
		c.Bind, c.Insecure, c.lookupIP = fmt.Sprintf("127.0.0.1:%d", port), true, lookup
	})
	b, err := tryStart(t, "b", "us-east", nil, seed, func(c *Config) {
		c.Bind, c.Insecure, c.lookupIP = fmt.Sprintf("127.0.0.2:%d", port), true, lookup
	})
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2 here: %v", err)
	}
	if got := a.seeds(); len(got) != 1 || got[0] != fmt.Sprintf("127.0.0.2:%d", port) {
		t.Errorf("a's seeds %v, want only b's address", got)
	}
	waitFor(t, 10*time.Second, "a and b to meet through the shared seed name", func() bool {
		return a.NumAlive() == 2 && b.NumAlive() == 2
	})
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no key", func(c *Config) { c.Key = nil }, "key is required"},
		{"short key", func(c *Config) { c.Key = make([]byte, 10) }, "gossip key"},
		{"short old key", func(c *Config) { c.OldKeys = [][]byte{[]byte("short")} }, "gossip key 2"},
		{"bad profile", func(c *Config) { c.Profile = "mars" }, "unknown gossip profile"},
		{"no name", func(c *Config) { c.Name = "" }, "name is required"},
		{"long name", func(c *Config) { c.Name = strings.Repeat("n", MaxNameLen+1) }, "too long"},
		{"long region", func(c *Config) { c.Region = strings.Repeat("r", MaxRegionLen+1) }, "too long"},
		{"bad bind", func(c *Config) { c.Bind = "nonsense" }, "bind address"},
		{"bad advertise", func(c *Config) { c.Advertise = "1.2.3.4:x" }, "advertise address"},
	}
	for _, tc := range cases {
		cfg := Config{Name: "a", Bind: "127.0.0.1:0", Profile: ProfileLocal, Key: make([]byte, 16)}
		tc.mod(&cfg)
		c, err := Create(cfg)
		if err == nil {
			c.Shutdown()
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	for _, p := range []string{"", ProfileWAN, ProfileLAN, ProfileLocal} {
		if _, err := profileConfig(p); err != nil {
			t.Error(err)
		}
	}
	// Insecure without a key is allowed.
	c, err := Create(Config{Name: "a", Bind: "127.0.0.1:0", Profile: ProfileLocal, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	c.Shutdown()
}

// A key rotation: nodes that send with different keys understand each other
// while each also holds the other's key as an old key.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	k1, k2 := testKey(t), testKey(t)
	a := start(t, "a", "eu-west", k1, nil, func(c *Config) { c.OldKeys = [][]byte{k2} })
	b := start(t, "b", "us-east", k2, []string{a.LocalAddr()}, func(c *Config) { c.OldKeys = [][]byte{k1} })
	waitFor(t, 10*time.Second, "a (sending with k1) and b (with k2) to meet", func() bool {
		return a.NumAlive() == 2 && b.NumAlive() == 2
	})
	b.put(t, "api", "up")
	waitFor(t, 10*time.Second, "b's broadcast at a", func() bool { _, ok := a.st.get("b", "api"); return ok })

	// A node with neither key gets nowhere.
	x := start(t, "x", "ap-south", testKey(t), nil)
	if _, err := x.ml.Join([]string{a.LocalAddr()}); err == nil {
		t.Error("a node with neither key joined")
	}
}
