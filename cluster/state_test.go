package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// testState records what it is given; MarshalBinary returns full.
type testState struct {
	mu   sync.Mutex
	full []byte
	got  []merged

	block   chan struct{} // when set, Merge waits until it is closed
	entered chan struct{} // when set, Merge signals it started (non-blocking)
	fail    error         // returned by Merge
}

type merged struct {
	from string
	b    []byte
}

func (s *testState) MarshalBinary() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.full), nil
}

func (s *testState) Merge(from string, b []byte) error {
	if s.entered != nil {
		select {
		case s.entered <- struct{}{}:
		default:
		}
	}
	if s.block != nil {
		<-s.block
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, merged{from, bytes.Clone(b)})
	return s.fail
}

func (s *testState) setFull(b []byte) {
	s.mu.Lock()
	s.full = b
	s.mu.Unlock()
}

// has reports whether Merge got b from a node.
func (s *testState) has(from string, b []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.got {
		if m.from == from && bytes.Equal(m.b, b) {
			return true
		}
	}
	return false
}

func (s *testState) merges() []merged {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]merged(nil), s.got...)
}

type stateNode struct {
	*Cluster
	ch  map[string]*Channel
	log *syncBuffer
}

// startStates runs a node on 127.0.0.1 with the local profile and the
// given states; before runs after Create and AddState, before Start.
func startStates(t *testing.T, name string, key []byte, seeds []string, states map[string]State, before ...func(*Cluster)) *stateNode {
	t.Helper()
	buf := &syncBuffer{}
	c, err := Create(Config{
		Name: name, Region: "r-" + name, Version: "v1", ConfigHash: "h",
		Bind: "127.0.0.1:0", Join: seeds, Profile: ProfileLocal, Key: key,
		Logger:         slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo})),
		RejoinInterval: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &stateNode{Cluster: c, ch: map[string]*Channel{}, log: buf}
	for k, s := range states {
		ch, err := c.AddState(k, s)
		if err != nil {
			t.Fatal(err)
		}
		n.ch[k] = ch
	}
	for _, f := range before {
		f(c)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Shutdown()
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, buf.String())
		}
	})
	return n
}

func waitAlive(t *testing.T, n int, nodes ...*stateNode) {
	t.Helper()
	for _, x := range nodes {
		waitFor(t, 10*time.Second, fmt.Sprintf("%s to see %d alive", x.Name(), n), func() bool { return x.NumAlive() == n })
	}
}

func TestStateBroadcastReachesOthers(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	sa, sb, sc := &testState{}, &testState{}, &testState{}
	a := startStates(t, "a", key, nil, map[string]State{"alerts": sa})
	b := startStates(t, "b", key, []string{a.LocalAddr()}, map[string]State{"alerts": sb})
	c := startStates(t, "c", key, []string{a.LocalAddr()}, map[string]State{"alerts": sc})
	waitAlive(t, 3, a, b, c)

	if err := a.ch["alerts"].Broadcast("x", []byte("from a")); err != nil {
		t.Fatal(err)
	}
	if err := c.ch["alerts"].Broadcast("x", []byte("from c")); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		n        *stateNode
		s        *testState
		from     string
		expected string
	}{{b, sb, "a", "from a"}, {c, sc, "a", "from a"}, {a, sa, "c", "from c"}, {b, sb, "c", "from c"}} {
		waitFor(t, 5*time.Second, fmt.Sprintf("%s to merge %q from %s", x.n.Name(), x.expected, x.from), func() bool {
			return x.s.has(x.from, []byte(x.expected))
		})
	}
	for _, m := range sa.merges() {
		if m.from == "a" {
			t.Errorf("a merged its own broadcast %q", m.b)
		}
	}
	if st := b.StateStats()["alerts"]; st.Delivered < 2 || st.Dropped != 0 || st.MergeErrors != 0 {
		t.Errorf("b's stats %+v", st)
	}
	if err := a.ch["alerts"].Broadcast("", []byte("x")); err == nil {
		t.Error("broadcast with an empty name accepted")
	}
	if err := a.ch["alerts"].Broadcast(strings.Repeat("n", MaxStateNameLen+1), nil); err == nil {
		t.Error("broadcast with an over-long name accepted")
	}
	if err := a.ch["alerts"].Broadcast("big", make([]byte, MaxStateMessage+1)); err == nil {
		t.Error("broadcast over MaxStateMessage accepted")
	}
}

func TestStateLargeBroadcastArrivesWhole(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	sa, sb, sc := &testState{}, &testState{}, &testState{}
	a := startStates(t, "a", key, nil, map[string]State{"big": sa})
	b := startStates(t, "b", key, []string{a.LocalAddr()}, map[string]State{"big": sb})
	c := startStates(t, "c", key, []string{a.LocalAddr()}, map[string]State{"big": sc})
	waitAlive(t, 3, a, b, c)

	msg := randBytes(t, 20000)
	if err := a.ch["big"].Broadcast("snapshot", msg); err != nil {
		t.Fatal(err)
	}
	most := randBytes(t, MaxStateMessage)
	if err := c.ch["big"].Broadcast("most", most); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		s    *testState
		from string
		b    []byte
	}{{sb, "a", msg}, {sc, "a", msg}, {sa, "c", most}, {sb, "c", most}} {
		waitFor(t, 10*time.Second, fmt.Sprintf("%d bytes from %s", len(x.b), x.from), func() bool { return x.s.has(x.from, x.b) })
	}
	// Gossip retransmits each chunk: each message was still merged once.
	for _, s := range []*testState{sa, sb, sc} {
		for _, m := range s.merges() {
			if len(m.b) != len(msg) && len(m.b) != len(most) {
				t.Errorf("merged a message of %d bytes from %s", len(m.b), m.from)
			}
		}
	}
}

func TestStateLateJoinerByPushPull(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	sa, sb := &testState{full: []byte("a's table")}, &testState{full: []byte("b's table")}
	a := startStates(t, "a", key, nil, map[string]State{"silences": sa})
	b := startStates(t, "b", key, []string{a.LocalAddr()}, map[string]State{"silences": sb})
	waitAlive(t, 2, a, b)
	waitFor(t, 10*time.Second, "a and b to exchange their tables", func() bool {
		return sa.has("b", []byte("b's table")) && sb.has("a", []byte("a's table"))
	})
	sa.setFull([]byte("a's newer table"))

	sc := &testState{}
	// c joins through both: the join's push-pull with each brings its table.
	c := startStates(t, "c", key, []string{b.LocalAddr(), a.LocalAddr()}, map[string]State{"silences": sc})
	waitFor(t, 10*time.Second, "c to get a's and b's tables", func() bool {
		return sc.has("a", []byte("a's newer table")) && sc.has("b", []byte("b's table"))
	})
	_ = c
}

func TestStateKeysStaySeparate(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	a1, a2, a3 := &testState{full: []byte("a1")}, &testState{full: []byte("a2")}, &testState{}
	b1, b2 := &testState{}, &testState{}
	a := startStates(t, "a", key, nil, map[string]State{"one": a1, "two": a2, "three": a3})
	b := startStates(t, "b", key, []string{a.LocalAddr()}, map[string]State{"one": b1, "two": b2})
	waitAlive(t, 2, a, b)
	if err := a.ch["three"].Broadcast("m", []byte("three")); err != nil {
		t.Fatal(err)
	}
	if err := a.ch["one"].Broadcast("m", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := a.ch["two"].Broadcast("m", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if err := a.ch["two"].Broadcast("large", bytes.Repeat([]byte("2"), 5000)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "b's states to get their messages and tables", func() bool {
		return b1.has("a", []byte("one")) && b2.has("a", []byte("two")) && b2.has("a", bytes.Repeat([]byte("2"), 5000)) &&
			b1.has("a", []byte("a1")) && b2.has("a", []byte("a2"))
	})
	for _, m := range b1.merges() {
		if s := string(m.b); s != "one" && s != "a1" {
			t.Errorf("state one merged %.20q", s)
		}
	}
	for _, m := range b2.merges() {
		if s := string(m.b); s != "two" && s != "a2" && len(s) != 5000 {
			t.Errorf("state two merged %.20q", s)
		}
	}
	if st := b.StateStats(); len(st) != 2 || st["one"].MergeErrors != 0 || st["two"].Dropped != 0 {
		t.Errorf("b's stats %+v", st)
	}
}

// pingCounter counts a node's completed probes of other nodes.
type pingCounter struct {
	memberlist.PingDelegate
	n atomic.Int64
}

func (p *pingCounter) NotifyPingComplete(n *memberlist.Node, rtt time.Duration, payload []byte) {
	p.n.Add(1)
	p.PingDelegate.NotifyPingComplete(n, rtt, payload)
}

func countPings(p **pingCounter) func(*Cluster) {
	return func(c *Cluster) {
		*p = &pingCounter{PingDelegate: c.mlc.Ping}
		c.mlc.Ping = *p
	}
}

// A state whose Merge blocks stalls neither memberlist (its node keeps
// answering probes) nor the other states.
func TestStateBlockingMergeStallsNothingElse(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	release := make(chan struct{})
	defer close(release)
	slowB := &testState{block: release, entered: make(chan struct{}, 1), full: []byte("slow table")}
	fastB := &testState{}
	slowA, fastA := &testState{full: []byte("slow table a")}, &testState{}
	var pa, pb *pingCounter
	a := startStates(t, "a", key, nil, map[string]State{"slow": slowA, "fast": fastA}, countPings(&pa))
	b := startStates(t, "b", key, []string{a.LocalAddr()}, map[string]State{"slow": slowB, "fast": fastB}, countPings(&pb))
	waitAlive(t, 2, a, b)

	// b's slow Merge blocks on its first delivery (a broadcast or a's
	// table by push-pull).
	if err := a.ch["slow"].Broadcast("m", []byte("stuck")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-slowB.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("b's slow Merge never called")
	}

	// Fill b's slow queue past its bound, as gossip would: NotifyMsg
	// must return at once all the same.
	d := b.mlc.Delegate
	filled := make(chan struct{})
	go func() {
		defer close(filled)
		for i := range stateQueueLen + 100 {
			d.NotifyMsg(encodeEnvelope(kindState, "a", fmt.Sprintf("slow/n%d", i), uint64(i+1), []byte("x")))
		}
	}()
	select {
	case <-filled:
	case <-time.After(10 * time.Second):
		t.Fatal("NotifyMsg blocks while a state's Merge does")
	}
	if st := b.StateStats()["slow"]; st.Dropped < 100 {
		t.Errorf("slow: %+v, want at least 100 dropped", st)
	}
	if n := strings.Count(b.log.String(), "state delivery queue full"); n != 1 {
		t.Errorf("queue-full warning logged %d times, want once per 10s", n)
	}

	// Other states' deliveries go on.
	for i := range 5 {
		msg := []byte(fmt.Sprintf("fast %d", i))
		if err := a.ch["fast"].Broadcast("m", msg); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "b's fast state to merge "+string(msg), func() bool { return fastB.has("a", msg) })
	}
	if err := b.ch["fast"].Broadcast("back", []byte("from b")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a's fast state to merge b's", func() bool { return fastA.has("b", []byte("from b")) })

	// For several probe rounds both keep probing and answering each other
	// (were b's memberlist goroutines stuck in Merge, a's probes of b would
	// fail and b would be declared dead within a few rounds). A single late
	// ack under load may make a node suspect for a moment: only dead or
	// left fails at once, and both must end alive.
	const rounds = 10
	startA, startB := pa.n.Load(), pb.n.Load()
	waitFor(t, 20*time.Second, fmt.Sprintf("%d probe rounds each way", rounds), func() bool {
		for _, v := range []struct {
			n    *stateNode
			peer string
		}{{a, "b"}, {b, "a"}} {
			if s := memberState(v.n.Cluster, v.peer); s == StateDead || s == StateLeft {
				t.Fatalf("%s sees %s %s while b's slow Merge blocks", v.n.Name(), v.peer, s)
			}
		}
		return pa.n.Load()-startA >= rounds && pb.n.Load()-startB >= rounds
	})
	waitFor(t, 5*time.Second, "a and b to see each other alive", func() bool {
		return memberState(a.Cluster, "b") == StateAlive && memberState(b.Cluster, "a") == StateAlive
	})
	if m := slowB.merges(); len(m) != 0 {
		t.Errorf("blocked Merge returned: %v", m)
	}
}

func TestStateMergeErrorsCounted(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	sb := &testState{fail: errors.New("bad delta")}
	a := startStates(t, "a", key, nil, map[string]State{"k": &testState{}})
	b := startStates(t, "b", key, []string{a.LocalAddr()}, map[string]State{"k": sb})
	waitAlive(t, 2, a, b)
	for i := range 3 {
		if err := a.ch["k"].Broadcast(fmt.Sprint(i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "three merge errors", func() bool { return b.StateStats()["k"].MergeErrors >= 3 })
	logs := b.log.String()
	if n := strings.Count(logs, "state merge failed"); n != 1 || !strings.Contains(logs, "key=k from=a") {
		t.Errorf("merge failure logged %d times:\n%s", n, logs)
	}
}

func TestChanges(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	a := startStates(t, "a", key, nil, nil)
	// Drain what a's own join produced.
	select {
	case <-a.Changes():
	default:
	}
	b := startStates(t, "b", key, []string{a.LocalAddr()}, nil)
	waitFor(t, 10*time.Second, "a to be notified of b", func() bool {
		select {
		case <-a.Changes():
			return a.NumAlive() == 2
		default:
			return false
		}
	})
	_ = b.Shutdown()
	waitFor(t, 10*time.Second, "a to be notified of b's failure", func() bool {
		select {
		case <-a.Changes():
			return memberState(a.Cluster, "b") == StateDead
		default:
			return false
		}
	})
}

func TestCreateAddStateStart(t *testing.T) {
	t.Parallel()
	cfg := Config{Name: "a", Bind: "127.0.0.1:0", Profile: ProfileLocal, Insecure: true}
	c, err := Create(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.LocalAddr() != "" || c.NumAlive() != 1 {
		t.Errorf("before Start: addr %q, %d alive", c.LocalAddr(), c.NumAlive())
	}
	for _, k := range []string{"", "Upper", "under_score", "sl/ash", strings.Repeat("k", 33), "_handler", "ünï"} {
		if _, err := c.AddState(k, &testState{}); err == nil {
			t.Errorf("key %q accepted", k)
		}
	}
	if _, err := c.AddState("ok", nil); err == nil {
		t.Error("nil state accepted")
	}
	ch, err := c.AddState("a-0", &testState{})
	if err != nil || ch.Key() != "a-0" {
		t.Fatal(ch, err)
	}
	if _, err := c.AddState("a-0", &testState{}); err == nil {
		t.Error("duplicate key accepted")
	}
	for i := 1; i < maxStates; i++ {
		if _, err := c.AddState(fmt.Sprintf("k%d", i), &testState{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.AddState("one-too-many", &testState{}); err == nil {
		t.Error("more than maxStates states accepted")
	}
	if err := c.Leave(time.Second); err == nil {
		t.Error("Leave before Start")
	}
	if err := c.SetConfigHash("h2"); err != nil {
		t.Error(err)
	}
	// Broadcasting before Start queues.
	if err := ch.Broadcast("early", []byte("x")); err != nil {
		t.Error(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err == nil {
		t.Error("second Start")
	}
	if _, err := c.AddState("late", &testState{}); err == nil {
		t.Error("AddState after Start")
	}
	if len(c.StateStats()) != maxStates {
		t.Errorf("stats for %d states", len(c.StateStats()))
	}
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err == nil {
		t.Error("Start after Shutdown")
	}
	if err := ch.Broadcast("late", []byte("x")); err == nil {
		t.Error("Broadcast after Shutdown")
	}

	// Shutdown without Start.
	c2, err := Create(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Shutdown(); err != nil {
		t.Error(err)
	}
	if _, err := Create(Config{Name: "a", Profile: ProfileLocal}); err == nil {
		t.Error("Create without a key or Insecure")
	}
	var nilCh *Channel
	if err := nilCh.Broadcast("x", nil); err == nil {
		t.Error("nil channel broadcast")
	}
}

// offline creates a node that is never started, with states, for driving
// its delegate directly.
func offline(t testing.TB, name string, states map[string]State) (*Cluster, *syncBuffer) {
	t.Helper()
	buf := &syncBuffer{}
	c, err := Create(Config{Name: name, Bind: "127.0.0.1:0", Profile: ProfileLocal, Insecure: true,
		Logger: slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	for k, s := range states {
		if _, err := c.AddState(k, s); err != nil {
			t.Fatal(err)
		}
	}
	return c, buf
}

// drain delivers what a never-started node queued, as its delivery
// goroutines would.
func drain(c *Cluster) {
	for _, e := range c.stateList {
		for {
			d, ok := e.next()
			if !ok {
				break
			}
			c.deliver(e, d)
		}
	}
}

func TestPushPull(t *testing.T) {
	s1, s2 := &testState{full: []byte("one")}, &testState{}
	a, _ := offline(t, "a", map[string]State{"one": s1, "two": s2, "only-a": &testState{full: []byte("x")}})
	st := a.localState()
	if st[0] != pushPullVersion {
		t.Fatalf("version %d", st[0])
	}
	node, entries, err := decodePushPull(st)
	if err != nil || node != "a" {
		t.Fatal(node, err)
	}
	keys := map[string]string{}
	for _, e := range entries {
		keys[e.key] = string(e.data)
	}
	if len(entries) != 2 || keys["one"] != "one" || keys["only-a"] != "x" {
		t.Errorf("entries %q", keys) // "two" is empty: skipped
	}

	r1, r2 := &testState{}, &testState{}
	b, log := offline(t, "b", map[string]State{"one": r1, "two": r2})
	b.mlc.Delegate.MergeRemoteState(st, false)
	drain(b)
	if m := r1.merges(); len(m) != 1 || m[0].from != "a" || string(m[0].b) != "one" {
		t.Errorf("one merged %+v", m)
	}
	if m := r2.merges(); len(m) != 0 {
		t.Errorf("two merged %+v", m)
	}
	// Our own state coming back is ignored.
	a.mlc.Delegate.MergeRemoteState(st, false)
	drain(a)
	if len(s1.merges()) != 0 {
		t.Error("a merged its own push-pull state")
	}
	// The retired version 1 (one opaque blob) is logged and ignored.
	b.mlc.Delegate.MergeRemoteState([]byte{1, 'o', 'n', 'e'}, false)
	drain(b)
	if len(r1.merges()) != 1 || len(r2.merges()) != 0 {
		t.Error("a version 1 state was merged")
	}
	if !strings.Contains(log.String(), "unknown version") {
		t.Errorf("version 1 not logged:\n%s", log.String())
	}
	// A node without states sends an empty state, which decodes.
	empty, _ := offline(t, "e", nil)
	if node, entries, err := decodePushPull(empty.localState()); err != nil || node != "e" || len(entries) != 0 {
		t.Errorf("empty state: %q %v %v", node, entries, err)
	}
}

func TestPushPullDecodeRejects(t *testing.T) {
	enc := func(node string, es ...ppEntry) []byte { return encodePushPull(node, es) }
	good := enc("a", ppEntry{"k", []byte("x")}, ppEntry{"l", []byte("y")})
	if _, _, err := decodePushPull(good); err != nil {
		t.Fatal(err)
	}
	var most []ppEntry
	for i := range maxStates + 1 {
		most = append(most, ppEntry{fmt.Sprintf("k%d", i), []byte("x")})
	}
	if _, _, err := decodePushPull(enc("a", most[:maxStates]...)); err != nil {
		t.Errorf("%d entries: %v", maxStates, err)
	}
	cases := map[string][]byte{
		"empty":          nil,
		"version":        append([]byte{9}, good[1:]...),
		"version 1":      append([]byte{1}, good[1:]...),
		"no node":        enc("", ppEntry{"k", []byte("x")}),
		"bad key":        enc("a", ppEntry{"K!", []byte("x")}),
		"legacy key":     enc("a", ppEntry{"_handler", []byte("x")}),
		"duplicate key":  enc("a", ppEntry{"k", []byte("x")}, ppEntry{"k", []byte("y")}),
		"trailing":       append(bytes.Clone(good), 0),
		"huge count":     {pushPullVersion, 1, 'a', 0xff, 0xff, 0xff, 0xff, 0x0f},
		"too many":       enc("a", most...),
		"count past":     {pushPullVersion, 1, 'a', 3, 1, 'k', 0, 1, 'l', 0},
		"length past":    {pushPullVersion, 1, 'a', 1, 1, 'k', 0xff, 0xff, 0x03, 'x'},
		"huge length":    {pushPullVersion, 1, 'a', 1, 1, 'k', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"overlong input": append([]byte{pushPullVersion}, make([]byte, maxPushPull+1<<20)...),
	}
	for name, in := range cases {
		if _, _, err := decodePushPull(in); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	for i := 1; i < len(good); i++ {
		if _, _, err := decodePushPull(good[:i]); err == nil {
			t.Errorf("truncated to %d bytes: decoded", i)
		}
	}
	// Malformed states are logged and ignored.
	c, log := offline(t, "b", map[string]State{"k": &testState{}})
	c.mlc.Delegate.MergeRemoteState(cases["length past"], false)
	c.mlc.Delegate.MergeRemoteState([]byte{7, 1, 2}, false)
	if !strings.Contains(log.String(), "malformed push-pull state") || !strings.Contains(log.String(), "unknown version") {
		t.Errorf("log:\n%s", log.String())
	}
}

// FuzzDecodePushPull: the decoder never panics, accepts only what it can
// account for, and what it accepts encodes back to the same entries.
func FuzzDecodePushPull(f *testing.F) {
	f.Add(encodePushPull("a", nil))
	f.Add(encodePushPull("node-1", []ppEntry{{"k", []byte("x")}, {"l", []byte("y")}}))
	f.Add(encodePushPull("n", []ppEntry{{"alerts", bytes.Repeat([]byte{0}, 300)}, {"silences", []byte{1}}}))
	f.Add([]byte{pushPullVersion})
	f.Add([]byte{pushPullVersion, 1, 'a', 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{pushPullVersion, 1, 'a', 1, 1, 'k', 0xff, 0xff, 0x03, 'x'})
	f.Add([]byte{1, 1, 2, 3})
	f.Fuzz(func(t *testing.T, in []byte) {
		node, entries, err := decodePushPull(in)
		if err != nil {
			return
		}
		if node == "" || len(node) > MaxNameLen || len(entries) > maxStates {
			t.Fatalf("accepted node %q with %d entries", node, len(entries))
		}
		total := len(node)
		for _, e := range entries {
			if validKey(e.key) != nil {
				t.Fatalf("accepted key %q", e.key)
			}
			total += len(e.key) + len(e.data)
		}
		if total > len(in) {
			t.Fatalf("%d bytes from %d input bytes", total, len(in))
		}
		node2, entries2, err := decodePushPull(encodePushPull(node, entries))
		if err != nil || node2 != node || len(entries2) != len(entries) {
			t.Fatalf("re-encoding: %q %d %v", node2, len(entries2), err)
		}
		for i := range entries {
			if entries[i].key != entries2[i].key || !bytes.Equal(entries[i].data, entries2[i].data) {
				t.Fatalf("entry %d differs after re-encoding", i)
			}
		}
	})
}

// FuzzNotifyMsg feeds arbitrary gossip messages and push-pull states to a
// node with states: nothing panics, queues stay bounded, and nothing is
// merged as from this node or from nobody.
func FuzzNotifyMsg(f *testing.F) {
	f.Add(encodeEnvelope(kindState, "b", "k/name", 1, []byte("delta")))
	f.Add(encodeEnvelope(kindState, "b", "nokey", 1, []byte("delta")))
	f.Add(encodeEnvelope(kindState, "b", "k/", 1, nil))
	msgs, _ := encodeChunks("b", 5, "k", "n", bytes.Repeat([]byte("z"), 3000))
	for _, m := range msgs {
		f.Add(m)
	}
	f.Add(encodeEnvelope(kindLeave, "b", "leave", 1, nil))
	f.Add(encodeEnvelope(0x01, "b", "api", 1, []byte("retired kind")))
	f.Add(encodeEnvelope(0x20, "b", "x", 1, []byte("unknown kind")))
	f.Add(encodePushPull("b", []ppEntry{{"k", []byte("x")}}))
	f.Fuzz(func(t *testing.T, in []byte) {
		s := &testState{}
		c, _ := offline(t, "a", map[string]State{"k": s})
		d := c.mlc.Delegate
		d.NotifyMsg(in)
		// All chunks of the seeds' message too, so reassembly runs.
		for _, m := range msgs {
			d.NotifyMsg(m)
		}
		d.MergeRemoteState(in, false)
		for _, e := range c.stateList {
			if e.queued() > stateQueueLen || e.qBytes.Load() > stateQueueBytes {
				t.Fatalf("queue of %d items, %d bytes", e.queued(), e.qBytes.Load())
			}
		}
		drain(c)
		for _, m := range s.merges() {
			if m.from == "" || m.from == "a" {
				t.Fatalf("merged from %q", m.from)
			}
		}
	})
}

// A state's delivery queue holds nothing once drained: it grows with what
// arrives, not allocated at its bound for every state.
func TestDeliveryQueueReleasedWhenDrained(t *testing.T) {
	s := &testState{}
	c, _ := offline(t, "a", map[string]State{"k": s})
	e := c.stateList[0]
	if e.q != nil {
		t.Fatalf("new state's queue: cap %d, want none", cap(e.q))
	}
	for i := range 10 {
		c.enqueue(e, delivery{from: "b", data: []byte{byte(i)}})
	}
	if n := e.queued(); n != 10 {
		t.Fatalf("queued %d, want 10", n)
	}
	drain(c)
	if len(s.merges()) != 10 {
		t.Fatalf("merged %d, want 10", len(s.merges()))
	}
	if e.q != nil || e.qBytes.Load() != 0 {
		t.Fatalf("after drain: cap %d, %d bytes; want none", cap(e.q), e.qBytes.Load())
	}
}
