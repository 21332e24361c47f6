package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
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

// recorder is a Handler that keeps what it receives; its vote table is also
// its push-pull state.
type recorder struct {
	NopHandler
	mu         sync.Mutex
	votes      map[string]VoteMsg // node/check
	msgs       []string           // kind:payload
	membership int
}

func newRecorder() *recorder { return &recorder{votes: map[string]VoteMsg{}} }

func (r *recorder) OnVote(v VoteMsg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := v.Node + "/" + v.Check
	if old, ok := r.votes[k]; !ok || !v.At.Before(old.At) {
		r.votes[k] = v
	}
}

func (r *recorder) OnMessage(kind byte, payload []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, fmt.Sprintf("%#x:%s", kind, payload))
}

func (r *recorder) LocalState() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	vs := make([]VoteMsg, 0, len(r.votes))
	for _, v := range r.votes {
		vs = append(vs, v)
	}
	return EncodeVotes(vs)
}

func (r *recorder) MergeRemoteState(b []byte) {
	vs, err := DecodeVotes(b)
	if err != nil {
		panic(err)
	}
	for _, v := range vs {
		r.OnVote(v)
	}
}

func (r *recorder) OnMembership() {
	r.mu.Lock()
	r.membership++
	r.mu.Unlock()
}

func (r *recorder) vote(node, check string) (VoteMsg, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.votes[node+"/"+check]
	return v, ok
}

func (r *recorder) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

type node struct {
	*Cluster
	rec *recorder
	log *syncBuffer
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
	rec := newRecorder()
	cfg := Config{
		Name: name, Region: region, Version: "v1.0.0", ConfigHash: "hash-1",
		Bind: "127.0.0.1:0", Join: seeds, Profile: ProfileLocal, Key: key,
		Logger:         slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo})),
		RejoinInterval: 500 * time.Millisecond,
	}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg, rec)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		_ = c.Shutdown()
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, buf.String())
		}
	})
	return &node{Cluster: c, rec: rec, log: buf}, nil
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
		ar := n.AliveRegions()
		if len(ar) != 3 || ar["eu-west"] != 1 || ar["us-east"] != 1 || ar["ap-south"] != 1 {
			t.Errorf("%s: AliveRegions %v", n.Name(), ar)
		}
	}
	if !strings.HasPrefix(a.LocalAddr(), "127.0.0.1:") || strings.HasSuffix(a.LocalAddr(), ":0") {
		t.Errorf("LocalAddr %q", a.LocalAddr())
	}
	waitFor(t, 5*time.Second, "OnMembership", func() bool {
		a.rec.mu.Lock()
		defer a.rec.mu.Unlock()
		return a.rec.membership > 0
	})
	if !strings.Contains(b.log.String(), "seed answered") {
		t.Errorf("b did not log its join attempt:\n%s", b.log.String())
	}
}

func TestVoteBroadcastReachesOthers(t *testing.T) {
	t.Parallel()
	a, b, c := threeNodes(t, testKey(t))
	at := time.UnixMilli(time.Now().UnixMilli())
	err := a.Broadcast(VoteMsg{Check: "api", Vote: "down", At: at, Failures: 3, Code: "timeout", LatencyMS: 12.5, DownSince: at.Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node{b, c} {
		waitFor(t, 5*time.Second, n.Name()+" to get a's vote", func() bool {
			_, ok := n.rec.vote("a", "api")
			return ok
		})
		v, _ := n.rec.vote("a", "api")
		want := VoteMsg{Node: "a", Region: "eu-west", Check: "api", Vote: "down", At: at, Failures: 3, Code: "timeout", LatencyMS: 12.5, DownSince: at.Add(-time.Minute)}
		if !v.At.Equal(want.At) {
			t.Errorf("%s: At %v want %v", n.Name(), v.At, want.At)
		}
		v.At = want.At
		if v != want {
			t.Errorf("%s got %+v want %+v", n.Name(), v, want)
		}
	}
	if _, ok := a.rec.vote("a", "api"); ok {
		t.Error("a delivered its own vote to itself")
	}

	// A newer vote on the same check replaces the older one.
	later := at.Add(time.Second)
	if err := a.Broadcast(VoteMsg{Check: "api", Vote: "up", At: later}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b to get the newer vote", func() bool {
		v, _ := b.rec.vote("a", "api")
		return v.Vote == "up" && v.At.Equal(later)
	})

	// Caller-defined kinds.
	if err := c.BroadcastMessage(0x20, "confirm/api", []byte("now")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a to get c's message", func() bool {
		ms := a.rec.messages()
		return len(ms) == 1 && ms[0] == "0x20:now"
	})
	if err := c.BroadcastMessage(KindVote, "x", nil); err == nil {
		t.Error("BroadcastMessage accepted a reserved kind")
	}
	if err := c.BroadcastMessage(0x20, "big", make([]byte, MaxMessageSize)); err == nil {
		t.Error("BroadcastMessage accepted an oversized payload")
	}
}

func TestVotesReachEveryNodeOfALargerCluster(t *testing.T) {
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
	if ar := a.AliveRegions(); ar["r0"] != 2 || ar["r1"] != 2 || ar["r2"] != 2 {
		t.Errorf("AliveRegions %v", ar)
	}
	for i := range 20 {
		if err := nodes[5].Broadcast(VoteMsg{Check: fmt.Sprintf("c%d", i), Vote: "up", At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes[:5] {
		waitFor(t, 5*time.Second, n.Name()+" to get all votes", func() bool {
			for i := range 20 {
				if _, ok := n.rec.vote("n5", fmt.Sprintf("c%d", i)); !ok {
					return false
				}
			}
			return true
		})
	}
}

func TestLateJoinerGetsTableByPushPull(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	a := start(t, "a", "eu-west", key, nil)
	b := start(t, "b", "us-east", key, []string{a.LocalAddr()})
	waitFor(t, 10*time.Second, "a and b to meet", func() bool { return a.NumAlive() == 2 })
	// Votes that exist only in a's table, never broadcast.
	now := time.UnixMilli(time.Now().UnixMilli())
	for i := range 50 {
		a.rec.OnVote(VoteMsg{Node: "a", Region: "eu-west", Check: fmt.Sprintf("check-%d", i), Vote: "up", At: now})
	}
	c := start(t, "c", "ap-south", key, []string{b.LocalAddr(), a.LocalAddr()})
	_ = b
	waitFor(t, 10*time.Second, "c to receive a's table", func() bool {
		for i := range 50 {
			if _, ok := c.rec.vote("a", fmt.Sprintf("check-%d", i)); !ok {
				return false
			}
		}
		return true
	})
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

	// x sends a forged vote straight to a, over UDP and TCP.
	forged := encodeEnvelope(KindVote, "b", "api", uint64(time.Now().UnixNano()),
		appendVote(nil, VoteMsg{Region: "us-east", Check: "api", Vote: "down", At: time.Now()}, false))
	host, port, _ := splitHostPort(a.LocalAddr(), 0)
	if err := x.ml.SendToAddress(memberlist.Address{Addr: a.LocalAddr(), Name: "a"}, forged); err != nil {
		t.Log("udp send:", err)
	}
	if err := x.ml.SendToTCP(&memberlist.Node{Name: "a", Addr: net.ParseIP(host), Port: uint16(port)}, forged); err != nil {
		t.Log("tcp send:", err)
	}
	// A barrier: a genuine vote sent after the forged one arrives; the
	// forged one must not have.
	if err := b.Broadcast(VoteMsg{Check: "barrier", Vote: "up", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the barrier vote", func() bool { _, ok := a.rec.vote("b", "barrier"); return ok })
	if v, ok := a.rec.vote("b", "api"); ok {
		t.Errorf("forged vote delivered: %+v", v)
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
		return strings.Contains(a.log.String(), "different checks config")
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
	if n := strings.Count(a.log.String(), "different checks config"); n != 1 {
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
	if ar := a.AliveRegions(); ar["ap-south"] != 0 || a.NumAlive() != 2 {
		t.Errorf("AliveRegions %v", ar)
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
		{"bad profile", func(c *Config) { c.Profile = "mars" }, "unknown gossip profile"},
		{"no name", func(c *Config) { c.Name = "" }, "name is required"},
		{"bad bind", func(c *Config) { c.Bind = "nonsense" }, "bind address"},
	}
	for _, tc := range cases {
		cfg := Config{Name: "a", Bind: "127.0.0.1:0", Profile: ProfileLocal, Key: make([]byte, 16)}
		tc.mod(&cfg)
		c, err := New(cfg, nil)
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
	c, err := New(Config{Name: "a", Bind: "127.0.0.1:0", Profile: ProfileLocal, Insecure: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Shutdown()
}

func TestVoteWireSize(t *testing.T) {
	long := strings.Repeat("x", MaxNameLen)
	region := strings.Repeat("r", MaxRegionLen)
	v := VoteMsg{Node: long, Region: region, Check: long, Vote: "abstain", At: time.Now(), Failures: 1 << 30,
		Code: strings.Repeat("c", 1000), LatencyMS: 123456.789}
	msg := encodeEnvelope(KindVote, v.Node, v.Check, uint64(time.Now().UnixNano()), appendVote(nil, v, false))
	if len(msg) > MaxMessageSize || MaxMessageSize+100 > 1400 {
		t.Fatalf("vote message is %d bytes", len(msg))
	}
	t.Logf("worst-case vote message: %d bytes", len(msg))
	typical := VoteMsg{Node: "eu-west-1", Region: "eu-west", Check: "api-health", Vote: "down", At: time.Now(),
		Failures: 2, Code: "timeout", LatencyMS: 10000}
	tm := encodeEnvelope(KindVote, typical.Node, typical.Check, uint64(time.Now().UnixNano()), appendVote(nil, typical, false))
	if len(tm) > 100 {
		t.Errorf("typical vote message is %d bytes", len(tm))
	}
	t.Logf("typical vote message: %d bytes", len(tm))

	// Broadcast enforces the bound with the real envelope too.
	c, err := New(Config{Name: long, Region: region, Bind: "127.0.0.1:0", Profile: ProfileLocal, Insecure: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	if err := c.Broadcast(v); err != nil {
		t.Error(err)
	}
	v.Check += "y"
	if err := c.Broadcast(v); err == nil {
		t.Error("Broadcast accepted an over-long check name")
	}
}

func TestWireRoundTrip(t *testing.T) {
	at := time.UnixMilli(1763805600123)
	vs := []VoteMsg{
		{Node: "a", Region: "eu", Check: "api", Vote: "down", At: at, Failures: 5, Code: "http_503", LatencyMS: 41.5, DownSince: at},
		{Node: "b", Check: "db", Vote: "abstain"},
	}
	got, err := DecodeVotes(EncodeVotes(vs))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != vs[0] || got[1] != vs[1] {
		t.Errorf("round trip: %+v", got)
	}
	one, err := DecodeVote(EncodeVote(vs[0]))
	if err != nil || one != vs[0] {
		t.Errorf("single: %+v %v", one, err)
	}
	enc := EncodeVotes(vs)
	for i := range len(enc) {
		if _, err := DecodeVotes(enc[:i]); err == nil && i > 0 {
			t.Errorf("truncated table of %d bytes decoded", i)
		}
	}
	if _, err := DecodeVotes([]byte{0xff, 0xff, 0x03}); err == nil {
		t.Error("bogus count decoded")
	}
	if _, err := decodeEnvelope(nil); !errors.Is(err, errShort) {
		t.Error("empty envelope decoded")
	}
	m := nodeMeta{Region: "eu-west", Version: "v1.2.3", ConfigHash: strings.Repeat("f", 64)}
	b := encodeMeta(m, memberlist.MetaMaxSize)
	if len(b) >= memberlist.MetaMaxSize {
		t.Errorf("meta %d bytes", len(b))
	}
	if got, err := decodeMeta(b); err != nil || got != m {
		t.Errorf("meta: %+v %v", got, err)
	}
	huge := nodeMeta{Region: strings.Repeat("r", 1000), Version: strings.Repeat("v", 1000), ConfigHash: strings.Repeat("h", 1000)}
	if b := encodeMeta(huge, memberlist.MetaMaxSize); len(b) >= memberlist.MetaMaxSize {
		t.Errorf("huge meta %d bytes", len(b))
	}
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
	if err := b.Broadcast(VoteMsg{Check: "api", Vote: "up", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "b's vote at a", func() bool { _, ok := a.rec.vote("b", "api"); return ok })

	// A node with neither key gets nowhere.
	x := start(t, "x", "ap-south", testKey(t), nil)
	if _, err := x.ml.Join([]string{a.LocalAddr()}); err == nil {
		t.Error("a node with neither key joined")
	}
	if _, err := New(Config{Name: "d", Bind: "127.0.0.1:0", Profile: "local", Key: k1, OldKeys: [][]byte{[]byte("short")}}, newRecorder()); err == nil {
		t.Error("a bad old key was accepted")
	}
}
