package verdict

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/checker"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/quorum"
)

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// cluster is one evaluator under test (this node, eu-1 of region eu) and
// the meshes of its peers, all on a fixed clock the test moves. Peers'
// votes and announcements reach it through the real encodings: the peer's
// table is marshalled and merged, as push-pull would.
type cluster struct {
	t     *testing.T
	now   time.Time
	self  *mesh.Mesh
	ev    *Evaluator
	peers map[string]*mesh.Mesh
	cfg   *config.Config
	keys  map[string]uint64 // peers probing api with other settings
}

var regionOf = map[string]string{"eu-1": "eu", "us-1": "us", "ap-1": "ap", "aa-1": "eu", "us-2": "us"}

func newCluster(t *testing.T, self string, members ...string) *cluster {
	c := &cluster{t: t, now: t0, peers: map[string]*mesh.Mesh{}, keys: map[string]uint64{}}
	clock := func() time.Time { return c.now }
	c.cfg = &config.Config{
		Cluster: config.Cluster{Regions: []string{"eu", "us", "ap"}, Quorum: 2},
		Checks: []config.Check{{Name: "api", Type: "http", URL: "http://api/", Interval: 10 * time.Second,
			Timeout: 5 * time.Second, FailAfter: 2, RecoverAfter: 1}},
	}
	keep := map[string]bool{"api": true}
	c.self = mesh.New(mesh.Options{Self: self, Region: regionOf[self], Now: clock, Logger: quiet})
	c.self.Retain(keep)
	c.ev = New(Options{Self: self, Region: regionOf[self], Now: clock, Votes: c.self.Votes, Health: c.self.Health,
		Incidents: c.self.Incidents, Sent: c.self.Sent, Logger: quiet})
	c.ev.SetConfig(c.cfg)
	ms := []Member{{Name: self, Region: regionOf[self], State: MemberAlive}}
	for _, p := range members {
		m := mesh.New(mesh.Options{Self: p, Region: regionOf[p], Now: clock, Logger: quiet})
		m.Retain(keep)
		c.peers[p] = m
		ms = append(ms, Member{Name: p, Region: regionOf[p], State: MemberAlive})
	}
	c.ev.SetMembers(ms)
	return c
}

func (c *cluster) at(d time.Duration) { c.now = t0.Add(d) }

// keyOf is the settings digest a peer probes api with: this node's, unless
// the test gave the peer other settings.
func (c *cluster) keyOf(peer string) uint64 {
	if k, ok := c.keys[peer]; ok {
		return k
	}
	return c.cfg.Checks[0].ProbeKey()
}

// vote makes peer vote v on api now, and delivers the peer's vote table.
func (c *cluster) vote(peer, v string, downSince time.Duration) {
	c.t.Helper()
	m := c.peers[peer]
	mv := mesh.Vote{Check: "api", Vote: v, At: c.now, Key: c.keyOf(peer)}
	if v == mesh.VoteDown {
		mv.DownSince = t0.Add(downSince)
	}
	if err := m.Votes.Put(mv); err != nil {
		c.t.Fatal(err)
	}
	c.push(peer)
}

// push delivers peer's tables to this node, as push-pull does.
func (c *cluster) push(peer string) {
	c.t.Helper()
	m := c.peers[peer]
	for _, s := range []interface {
		MarshalBinary() ([]byte, error)
	}{m.Votes, m.Incidents, m.Sent} {
		b, err := s.MarshalBinary()
		if err != nil {
			c.t.Fatal(err)
		}
		var merr error
		switch s.(type) {
		case *mesh.Votes:
			merr = c.self.Votes.Merge(peer, b)
		case *mesh.Incidents:
			merr = c.self.Incidents.Merge(peer, b)
		case *mesh.SentLog:
			merr = c.self.Sent.Merge(peer, b)
		}
		if merr != nil {
			c.t.Fatal(merr)
		}
	}
	c.ev.Evaluate("api") // as the node does when a table tells it the check changed
}

// observe feeds this node's own probe result.
func (c *cluster) observe(ok bool) Observation {
	c.t.Helper()
	r := checker.Result{Start: c.now, OK: ok, Latency: 12 * time.Millisecond}
	if !ok {
		r.Code = "http_503"
	}
	obs, known := c.ev.Observe("api", r, true)
	if !known {
		c.t.Fatal("api unknown")
	}
	return obs
}

func (c *cluster) state() (quorum.State, string) {
	st, _, id, _, _ := c.ev.State("api")
	return st, id
}

// A region's vote is the majority of its alive nodes' fresh votes; a
// region whose nodes are all unhealthy, stale or gone abstains; quorum
// down regions make the state down, and one region cut off from the target
// never does.
func TestRegionsAndQuorum(t *testing.T) {
	c := newCluster(t, "aa-1", "us-1", "us-2", "ap-1")
	steps := []struct {
		at    time.Duration
		do    func()
		state quorum.State
	}{
		{0, func() { c.observe(true); c.vote("us-1", "up", 0); c.vote("us-2", "up", 0); c.vote("ap-1", "up", 0) }, quorum.StateUp},
		// one region cut from the target: not a quorum
		{10 * time.Second, func() { c.vote("ap-1", "down", 10*time.Second) }, quorum.StateUp},
		// us split 1:1 is not a down vote (a tie cannot confirm)
		{11 * time.Second, func() { c.vote("us-1", "down", 11*time.Second) }, quorum.StateUp},
		// us 2:0 down: two regions down (this node is the sender: aa-1 sorts first)
		{12 * time.Second, func() { c.vote("us-2", "down", 12*time.Second) }, quorum.StateDown},
		// us recovers: one region down, up again
		{20 * time.Second, func() { c.vote("us-1", "up", 0); c.vote("us-2", "up", 0); c.ev.Evaluate("api") }, quorum.StateUp},
		// 26 s later only this node's own vote is fresh (max age 2×10 s + 5 s):
		// a region can not decide alone
		{46 * time.Second, func() { c.observe(true) }, quorum.StateUnknown},
	}
	for i, s := range steps {
		c.at(s.at)
		s.do()
		if st, _ := c.state(); st != s.state {
			t.Fatalf("step %d (at %s): state %s, want %s", i, s.at, st, s.state)
		}
	}
	// One down incident opened and resolved.
	var opened, resolved int
	for _, ch := range c.ev.Drain() {
		if ch.Opened {
			opened++
		}
		if ch.Resolved {
			resolved++
		}
	}
	if opened != 1 || resolved != 1 {
		t.Fatalf("opened %d, resolved %d incidents, want 1 and 1", opened, resolved)
	}
}

// Own results make the node's vote: down after fail_after failures,
// abstain while the canaries fail, with the failure's code on a down vote.
func TestObserveStreakAndHealth(t *testing.T) {
	c := newCluster(t, "eu-1", "us-1", "ap-1")
	if o := c.observe(false); o.Vote != quorum.VoteUp || o.Failures != 1 {
		t.Fatalf("first failure: %+v", o)
	}
	c.at(2 * time.Second)
	if o := c.observe(false); o.Vote != quorum.VoteDown || o.Prev != quorum.VoteUp {
		t.Fatalf("second failure: %+v", o)
	}
	v, ok := c.self.Votes.Get("api", "eu-1")
	if !ok || v.Vote != "down" || v.Code != "http_503" || !v.DownSince.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("own vote %+v", v)
	}
	c.at(3 * time.Second)
	if _, ok := c.ev.Observe("api", checker.Result{Start: c.now, Code: "connect_timeout"}, false); !ok {
		t.Fatal("api unknown")
	}
	if v, _ := c.self.Votes.Get("api", "eu-1"); v.Vote != "abstain" {
		t.Fatalf("vote while the canaries fail: %s, want abstain", v.Vote)
	}
	if _, ok := c.ev.Observe("nope", checker.Result{}, true); ok {
		t.Fatal("a check not in the config was observed")
	}
}

// A node that is not the designated sender waits up to IDSettle for the
// sender's incident id before it shows the check down; it then shows the
// sender's id from the start.
func TestIncidentIDFromTheSender(t *testing.T) {
	c := newCluster(t, "us-1", "aa-1", "ap-1") // aa-1 is the sender
	c.at(0)
	c.observe(true)
	c.vote("aa-1", "up", 0)
	c.vote("ap-1", "up", 0)
	c.ev.Drain()
	c.at(10 * time.Second)
	c.observe(false)
	c.at(11 * time.Second)
	c.observe(false) // us down
	c.vote("ap-1", "down", 10500*time.Millisecond)
	if st, _ := c.state(); st != quorum.StateUp {
		t.Fatalf("shown %s before the sender's id arrived; want up (waiting)", st)
	}
	c.at(12 * time.Second)
	// The sender's id (named from its own view: a different start).
	sender := c.peers["aa-1"]
	start := t0.Add(10 * time.Second)
	if err := sender.Incidents.Announce("api", "sender-id", start, false); err != nil {
		t.Fatal(err)
	}
	c.push("aa-1")
	c.ev.Evaluate("api")
	if st, id := c.state(); st != quorum.StateDown || id != "sender-id" {
		t.Fatalf("state %s id %q, want down under sender-id", st, id)
	}
	chs := c.ev.Drain()
	if len(chs) != 1 || !chs[0].Opened || chs[0].IncidentID != "sender-id" || !chs[0].Start.Equal(start) || chs[0].Replaced != "" {
		t.Fatalf("changes %+v", chs)
	}
	// The node announced the id it took.
	if a, ok := c.self.Incidents.Get("api", "us-1"); !ok || a.ID != "sender-id" {
		t.Fatalf("own announcement %+v", a)
	}
}

// Without the sender's id within IDSettle a node shows down under its own
// id, and takes the sender's when it comes (a Change with Replaced).
func TestIncidentIDLateSender(t *testing.T) {
	c := newCluster(t, "us-1", "aa-1", "ap-1")
	c.observe(true)
	c.vote("aa-1", "up", 0)
	c.at(10 * time.Second)
	c.observe(false)
	c.at(11 * time.Second)
	c.observe(false)
	c.vote("ap-1", "down", 10*time.Second)
	c.at(11*time.Second + IDSettle)
	c.ev.Evaluate("api")
	st, own := c.state()
	if st != quorum.StateDown || own == "" {
		t.Fatalf("after IDSettle: %s %q, want down under its own id", st, own)
	}
	c.ev.Drain()
	c.at(15 * time.Second)
	if err := c.peers["aa-1"].Incidents.Announce("api", "sender-id", t0.Add(9*time.Second), false); err != nil {
		t.Fatal(err)
	}
	c.push("aa-1")
	c.ev.Evaluate("api")
	chs := c.ev.Drain()
	if len(chs) != 1 || chs[0].Replaced != own || chs[0].IncidentID != "sender-id" || chs[0].From != chs[0].To {
		t.Fatalf("changes %+v, want one replacing %s", chs, own)
	}
}

// A paged id is final: a node adopts the incident whose trigger the sent
// log shows delivered, even from a node that is not the sender; an
// announcement of the incident resolved last is ignored however late.
func TestPagedIDIsFinalAndResolvedIgnored(t *testing.T) {
	c := newCluster(t, "aa-1", "us-1", "ap-1") // this node is the sender
	c.observe(true)
	c.vote("us-1", "up", 0)
	c.vote("ap-1", "up", 0)
	c.at(10 * time.Second)
	c.vote("us-1", "down", 10*time.Second)
	c.vote("ap-1", "down", 10*time.Second)
	st, own := c.state()
	if st != quorum.StateDown {
		t.Fatalf("state %s, want down", st)
	}
	// ap-1 (not the sender) delivered a trigger for another id: it is final.
	ap := c.peers["ap-1"]
	if err := ap.Sent.Record(mesh.Sent{Incident: "paged-id", Check: "api", Start: t0.Add(9 * time.Second), Action: "trigger", Notifier: "pd"}); err != nil {
		t.Fatal(err)
	}
	c.push("ap-1")
	c.ev.Evaluate("api")
	if _, id := c.state(); id != "paged-id" {
		t.Fatalf("id %q, want the paged paged-id (was %s)", id, own)
	}
	// Recovery resolves it.
	c.at(20 * time.Second)
	c.vote("us-1", "up", 0)
	c.vote("ap-1", "up", 0)
	c.ev.Evaluate("api")
	if st, id := c.state(); st != quorum.StateUp || id != "" {
		t.Fatalf("after recovery %s %q", st, id)
	}
	// A new outage: the old paged id and a late announcement of it are not
	// taken for the new incident.
	c.at(40 * time.Second)
	c.observe(true)
	if err := ap.Incidents.Announce("api", "paged-id", t0.Add(9*time.Second), true); err != nil {
		t.Fatal(err)
	}
	c.vote("us-1", "down", 40*time.Second)
	c.vote("ap-1", "down", 40*time.Second)
	if st, id := c.state(); st != quorum.StateDown || id == "paged-id" || id == "" {
		t.Fatalf("new outage: %s %q, want down under a new id", st, id)
	}
}

// A sender that opens an incident alive peers already hold (it joined or
// took over mid-incident) takes theirs: the earliest start, then the least
// id; a dead peer's announcement does not count.
func TestSenderAdoptsPeersIncident(t *testing.T) {
	c := newCluster(t, "aa-1", "eu-1", "us-1", "ap-1") // aa-1 sorts first: the sender
	for _, p := range []struct {
		node, id string
		start    time.Duration
	}{{"us-1", "b-id", 5 * time.Second}, {"ap-1", "a-id", 5 * time.Second}, {"eu-1", "z-id", 6 * time.Second}} {
		if err := c.peers[p.node].Incidents.Announce("api", p.id, t0.Add(p.start), false); err != nil {
			t.Fatal(err)
		}
		c.push(p.node)
	}
	c.at(10 * time.Second)
	c.vote("us-1", "down", 5*time.Second)
	c.vote("ap-1", "down", 5*time.Second)
	if st, id := c.state(); st != quorum.StateDown || id != "a-id" {
		t.Fatalf("%s %q, want down under a-id (earliest start, least id)", st, id)
	}
	// Once ap-1 and us-1 die, their announcements would not count.
	c2 := newCluster(t, "aa-1", "eu-1", "us-1", "ap-1")
	if err := c2.peers["ap-1"].Incidents.Announce("api", "a-id", t0.Add(5*time.Second), false); err != nil {
		t.Fatal(err)
	}
	c2.push("ap-1")
	c2.ev.SetMembers([]Member{{"aa-1", "eu", MemberAlive}, {"eu-1", "eu", MemberAlive}, {"us-1", "us", MemberAlive},
		{"ap-1", "ap", MemberDead}})
	c2.at(10 * time.Second)
	c2.observe(false)
	c2.at(12 * time.Second)
	c2.observe(false)
	c2.vote("us-1", "down", 10*time.Second)
	if st, id := c2.state(); st != quorum.StateDown || id == "a-id" {
		t.Fatalf("%s %q, want down under its own id, not a dead peer's", st, id)
	}
}

// A node that cannot see a majority of the regions never decides down, and
// has no sender.
func TestMinorityNeverDown(t *testing.T) {
	c := newCluster(t, "us-1", "us-2")
	c.observe(false)
	c.at(2 * time.Second)
	c.observe(false)
	c.vote("us-2", "down", 0)
	if st, _ := c.state(); st == quorum.StateDown {
		t.Fatal("a node seeing one region of three decided down")
	}
	if v := c.ev.View(); v.SeesMajority || v.Sender != "" {
		t.Fatalf("view %+v", v)
	}
}

// A reload keeps a check's state, restarts the streak of one whose probe
// changed (and forgets this node's vote on it), and reports the open
// incident of a removed check.
func TestSetConfig(t *testing.T) {
	c := newCluster(t, "aa-1", "us-1", "ap-1")
	c.at(IDSettle) // the sender since t0 names incidents itself from here
	c.observe(false)
	c.at(IDSettle + time.Second)
	c.observe(false)
	c.vote("us-1", "down", IDSettle)
	if st, _ := c.state(); st != quorum.StateDown {
		t.Fatalf("premise: state %s", st)
	}
	next := *c.cfg
	next.Checks = []config.Check{next.Checks[0]}
	next.Checks[0].URL = "http://api/v2"
	d := c.ev.SetConfig(&next)
	if len(d.Changed) != 1 || len(d.Reset) != 1 || len(d.Closed) != 0 {
		t.Fatalf("diff %+v", d)
	}
	if _, ok := c.self.Votes.Get("api", "aa-1"); ok {
		t.Fatal("own vote on the old probe kept")
	}
	if st, _ := c.state(); st != quorum.StateDown {
		t.Fatalf("state after a probe change %s, want down (kept)", st)
	}
	d = c.ev.SetConfig(&config.Config{Cluster: next.Cluster})
	if len(d.Removed) != 1 || len(d.Closed) != 1 || d.Closed[0].IncidentID == "" {
		t.Fatalf("diff %+v", d)
	}
}

// The once-a-second sweep evaluates only the checks whose verdict time
// alone can change: a counted vote going stale, or the wait for the
// sender's id ending.
func TestEvaluateDue(t *testing.T) {
	c := newCluster(t, "aa-1", "us-1", "ap-1")
	c.observe(true)
	c.vote("us-1", "up", 0)
	c.vote("ap-1", "up", 0)
	if st, _ := c.state(); st != quorum.StateUp {
		t.Fatalf("premise: %s", st)
	}
	c.at(20 * time.Second)
	c.observe(true) // eu fresh again; us and ap voted at t0
	// MaxAge is 2×10 s + 5 s = 25 s: at 25 s the t0 votes still count.
	c.at(25 * time.Second)
	c.ev.EvaluateDue()
	if st, _ := c.state(); st != quorum.StateUp {
		t.Fatalf("at 25 s: %s, want up", st)
	}
	c.at(25*time.Second + 2*time.Millisecond)
	c.ev.EvaluateDue()
	if st, _ := c.state(); st != quorum.StateUnknown {
		t.Fatalf("after the t0 votes went stale: %s, want unknown", st)
	}
	// Membership: a change of who can vote is reported, a repeat is not.
	ms := []Member{{"aa-1", "eu", MemberAlive}, {"us-1", "us", MemberAlive}, {"ap-1", "ap", MemberAlive}}
	if c.ev.SetMembers(ms) {
		t.Fatal("the same membership reported as a change")
	}
	ms[2].State = MemberDead
	if !c.ev.SetMembers(ms) {
		t.Fatal("a member's death not reported as a change")
	}
}

// fakeCanary is the node's canaries on the test's clock: rounds complete
// when the test says, each with the time it began.
type fakeCanary struct {
	began  time.Time
	ok     bool
	asked  int
	rounds bool // a round has completed
}

func (f *fakeCanary) since(t time.Time) (bool, bool) {
	if f.rounds && !f.began.Before(t) {
		return f.ok, true
	}
	f.asked++
	return false, false
}

// With canaries, a region's down vote waits for a canary round that began
// after the failing probe began: a round begun before does not count; a
// pass makes the vote down, a failure makes the region abstain. Two regions
// that go blind together therefore never make a quorum, however fast their
// probes confirm.
func TestCanaryGate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		roundOK  bool
		wantVote string
	}{
		{"canaries pass: a real outage", true, "down"},
		{"canaries fail: the region is blind", false, "abstain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, "aa-1", "us-1", "ap-1")
			fc := &fakeCanary{}
			c.ev.o.Canary = fc.since
			// A round at t0 passed.
			fc.rounds, fc.began, fc.ok = true, t0, true
			c.observe(true)
			c.at(10 * time.Second)
			c.observe(false)
			c.at(10*time.Second + 100*time.Millisecond)
			if o := c.observe(false); o.Vote != quorum.VoteDown {
				t.Fatalf("premise: the streak says %s", o.Vote)
			}
			if v, _ := c.self.Votes.Get("api", "aa-1"); v.Vote != "up" || fc.asked == 0 {
				t.Fatalf("without a canary round after the failing probe: shared %q (asked %d), want up kept and a round asked", v.Vote, fc.asked)
			}
			// More failures while waiting keep the first probe's place.
			c.at(11 * time.Second)
			c.observe(false)
			if v, _ := c.self.Votes.Get("api", "aa-1"); v.Vote != "up" {
				t.Fatalf("still waiting: shared %q", v.Vote)
			}
			// A round that began before the failing probe still counts for nothing.
			fc.began = t0.Add(9 * time.Second)
			c.ev.CanaryRound()
			if v, _ := c.self.Votes.Get("api", "aa-1"); v.Vote != "up" {
				t.Fatalf("a round begun before the probe counted: shared %q", v.Vote)
			}
			fc.began, fc.ok = t0.Add(10*time.Second+200*time.Millisecond), tc.roundOK
			c.ev.CanaryRound()
			v, _ := c.self.Votes.Get("api", "aa-1")
			if v.Vote != tc.wantVote {
				t.Fatalf("after the round: shared %q, want %s", v.Vote, tc.wantVote)
			}
			if tc.wantVote == "down" && v.DownSince.IsZero() {
				t.Fatal("a down vote without its down-since")
			}
		})
	}
}

// A region that abstained while blind does not vote down once its network
// heals: a success the streak still counts as down (recover_after) keeps
// the shared vote, and a later canary pass escalates nothing.
func TestCanaryGateAfterBlindness(t *testing.T) {
	c := newCluster(t, "aa-1", "us-1", "ap-1")
	c.cfg.Checks[0].RecoverAfter = 2
	c.ev.SetConfig(c.cfg)
	fc := &fakeCanary{rounds: true, began: t0, ok: true}
	c.ev.o.Canary = fc.since
	c.observe(true)
	c.at(time.Second)
	c.observe(false)
	c.at(2 * time.Second)
	c.observe(false) // the streak: down; waits for a round
	fc.began, fc.ok = t0.Add(2100*time.Millisecond), false
	c.ev.CanaryRound()
	if v, _ := c.self.Votes.Get("api", "aa-1"); v.Vote != "abstain" {
		t.Fatalf("blind: shared %q, want abstain", v.Vote)
	}
	c.at(3 * time.Second)
	c.observe(true) // healed; the streak still says down (recover_after 2)
	fc.began, fc.ok = t0.Add(3100*time.Millisecond), true
	c.ev.CanaryRound()
	if v, _ := c.self.Votes.Get("api", "aa-1"); v.Vote == "down" {
		t.Fatal("voted down on a success after the network healed")
	}
	c.at(4 * time.Second)
	c.observe(true)
	if v, _ := c.self.Votes.Get("api", "aa-1"); v.Vote != "up" {
		t.Fatalf("after recover_after successes: shared %q, want up", v.Vote)
	}
}

// A node probing a check with other settings than the majority (its config
// differs) does not count: here two of three regions vote down, but one of
// them probes another URL, so api stays up.
func TestOtherSettingsDoNotCount(t *testing.T) {
	c := newCluster(t, "aa-1", "us-1", "ap-1")
	c.keys["ap-1"] = 42 // ap-1's api differs
	c.observe(true)
	c.vote("us-1", "up", 0)
	c.vote("ap-1", "up", 0)
	c.at(10 * time.Second)
	c.vote("us-1", "down", 10*time.Second)
	c.vote("ap-1", "down", 10*time.Second)
	if st, _ := c.state(); st != quorum.StateUp {
		t.Fatalf("state %s, want up: ap-1's votes are about other settings", st)
	}
	cv, _ := c.ev.Check("api")
	if cv.Regions["ap"].Vote != quorum.VoteAbstain {
		t.Fatalf("ap shown voting %s, want abstain (its settings differ)", cv.Regions["ap"].Vote)
	}
	// Once ap-1 runs the same settings, its votes count.
	delete(c.keys, "ap-1")
	c.at(11 * time.Second)
	c.vote("ap-1", "down", 10*time.Second)
	if st, _ := c.state(); st != quorum.StateDown {
		t.Fatalf("state %s, want down", st)
	}
}

// A push check has no region votes: it is unknown until period + grace has
// passed without a report since the node started, up while some node took
// a report within period + grace, down after; a peer's report counts
// whatever its clock says.
func TestPushCheck(t *testing.T) {
	c := newCluster(t, "aa-1", "us-1", "ap-1")
	c.cfg.Checks = append(c.cfg.Checks, config.Check{Name: "backup", Type: config.TypePush, Token: "0123456789abcdef",
		Period: time.Hour, Grace: 6 * time.Minute, Interval: time.Minute})
	keep := map[string]bool{"api": true, "backup": true}
	c.self.Retain(keep)
	c.ev.o.Receipts = c.self.Receipts
	c.ev.SetConfig(c.cfg)
	state := func() quorum.State { st, _, _, _, _ := c.ev.State("backup"); return st }
	c.ev.Evaluate("backup")
	if st := state(); st != quorum.StateUnknown {
		t.Fatalf("before any report: %s, want unknown", st)
	}
	// A report taken by us-1, whose clock is 10 minutes ahead.
	peerNow := t0.Add(10 * time.Minute)
	peer := mesh.New(mesh.Options{Self: "us-1", Now: func() time.Time { return peerNow }, Logger: quiet})
	peer.Retain(keep)
	c.at(5 * time.Minute)
	peerNow = c.now.Add(10 * time.Minute)
	if err := peer.Receipts.Take("backup"); err != nil {
		t.Fatal(err)
	}
	b, _ := peer.Receipts.MarshalBinary()
	if err := c.self.Receipts.Merge("us-1", b); err != nil {
		t.Fatal(err)
	}
	if at, _ := c.self.Receipts.Last("backup"); !at.Equal(c.now) {
		t.Fatalf("receipt placed at %v on this node's clock, want %v", at, c.now)
	}
	c.ev.Evaluate("backup")
	if st := state(); st != quorum.StateUp {
		t.Fatalf("after a report: %s, want up", st)
	}
	c.at(5*time.Minute + time.Hour + 6*time.Minute)
	c.ev.EvaluateDue()
	if st := state(); st != quorum.StateUp {
		t.Fatalf("at period + grace: %s, want up", st)
	}
	c.at(5*time.Minute + time.Hour + 6*time.Minute + 2*time.Millisecond)
	c.ev.EvaluateDue()
	if st := state(); st != quorum.StateDown {
		t.Fatalf("after period + grace: %s, want down", st)
	}
	cv, _ := c.ev.Check("backup")
	for r, rv := range cv.Regions {
		if rv.Vote != quorum.VoteAbstain {
			t.Fatalf("region %s shown voting %s on a push check", r, rv.Vote)
		}
	}
	c.at(2 * time.Hour)
	if err := c.self.Receipts.Take("backup"); err != nil {
		t.Fatal(err)
	}
	c.ev.Evaluate("backup")
	if st := state(); st != quorum.StateUp {
		t.Fatalf("after a new report: %s, want up", st)
	}
}

// A node that has just become the designated sender (it joined, or took
// over) waits IDSettle for peers' incident ids before naming an incident
// itself: peers holding an incident open is what it would otherwise miss.
func TestNewSenderWaitsForPeersIDs(t *testing.T) {
	c := newCluster(t, "aa-1", "us-1", "ap-1") // aa-1: the sender from t0
	c.at(time.Second)
	c.vote("us-1", "down", 0)
	c.vote("ap-1", "down", 0)
	if st, _ := c.state(); st == quorum.StateDown {
		t.Fatal("a sender of one second named an incident without waiting for its peers' ids")
	}
	if err := c.peers["us-1"].Incidents.Announce("api", "held-id", t0, false); err != nil {
		t.Fatal(err)
	}
	c.push("us-1")
	if st, id := c.state(); st != quorum.StateDown || id != "held-id" {
		t.Fatalf("%s %q, want down under the id its peers hold", st, id)
	}
}
