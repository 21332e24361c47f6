package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/vantage-dev/vantage/cluster"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/notifier"
	"github.com/vantage-dev/vantage/quorum"
)

// Gossip message kinds of the node, beyond the cluster's votes.
const (
	kindConfirm  byte = cluster.MinUserKind + iota // "probe this check now"
	kindHealth                                     // a node's canary verdict
	kindIncident                                   // an incident's id and start, for convergence
	kindSent                                       // a notification delivered by the cluster
	kindClaim                                      // a notification being delivered by a node (claims.go)
)

// confirmMsg asks every node to probe a check at once (fast confirmation).
type confirmMsg struct {
	Node  string `json:"node"`
	Check string `json:"check"`
}

// healthMsg is a node's canary verdict: while not OK it abstains.
type healthMsg struct {
	Node   string    `json:"node"`
	OK     bool      `json:"ok"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// incidentMsg announces the incident a node holds open for a check. Nodes
// take the designated sender's.
type incidentMsg struct {
	Node  string    `json:"node"`
	Check string    `json:"check"`
	ID    string    `json:"id"`
	Start time.Time `json:"start"`
	Paged bool      `json:"paged"` // a trigger went out: this id is final
}

// sentMsg records that a notification was delivered, so no node sends it
// again: not the sender after a restart, not a node that takes over.
type sentMsg struct {
	Node     string    `json:"node"`
	Incident string    `json:"incident"`
	Start    time.Time `json:"start"`
	Check    string    `json:"check"`
	Action   string    `json:"action"`
	Notifier string    `json:"notifier"`
}

func (m sentMsg) key() sentKey {
	return sentKey{incident: m.Incident, action: m.Action, notifier: m.Notifier}
}

type sentKey struct{ incident, action, notifier string }

// meshState is what push-pull exchanges: the vote table (binary, from
// cluster.EncodeVotes), canary health, the sent log and open incidents.
type meshState struct {
	Votes     []byte        `json:"votes"`
	Health    []healthMsg   `json:"health"`
	Sent      []sentMsg     `json:"sent"`
	Incidents []incidentMsg `json:"incidents"`
	Claims    []claimMsg    `json:"claims,omitempty"`
	Updates   *updateState  `json:"updates,omitempty"` // operators' incident updates (updates.go)
}

// page tracks the notifications of one incident on this node.
type page struct {
	check      string
	trigger    notifier.Event
	resolve    *notifier.Event
	openedAt   time.Time
	triggered  bool // trigger queued here or known sent
	resolvedQd bool // resolve queued here
	doneAt     time.Time
}

// configHash identifies the checks config: nodes whose hashes differ are
// shown in /api/v1/status and logged.
func configHash(cfg *config.Config) string {
	b, err := json.Marshal(struct {
		Cluster config.Cluster
		Checks  []config.Check
	}{cfg.Cluster, cfg.Checks})
	if err != nil {
		return "unknown"
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:6])
}

// randomKey is the gossip key of a node without peers and without a
// configured key: nobody can join it.
func randomKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

// regionView is one evaluation's view of membership.
type regionView struct {
	alive        map[string][]string // region -> alive node names (incl. self)
	seesMajority bool
	sender       string // the designated sender, "" when none
}

// viewLocked computes the membership view from the cached members.
func (n *node) viewLocked(regions []string) regionView {
	v := regionView{alive: map[string][]string{}}
	names := []string{}
	for _, m := range n.members {
		if m.State != cluster.StateAlive && m.State != cluster.StateSuspect {
			continue
		}
		v.alive[m.Region] = append(v.alive[m.Region], m.Name)
		if m.State == cluster.StateAlive && slices.Contains(regions, m.Region) {
			names = append(names, m.Name)
		}
	}
	if !slices.ContainsFunc(n.members, func(m cluster.Member) bool { return m.Name == n.opts.Name }) {
		v.alive[n.opts.Region] = append(v.alive[n.opts.Region], n.opts.Name)
		names = append(names, n.opts.Name)
	}
	seen := 0
	for _, r := range regions {
		if len(v.alive[r]) > 0 {
			seen++
		}
	}
	v.seesMajority = seen*2 > len(regions)
	slices.Sort(names)
	if v.seesMajority && len(names) > 0 {
		v.sender = names[0]
	}
	return v
}

// regionInputsLocked turns the vote table into each region's vote on check
// (quorum.Region over its alive nodes) and the regions' down-since times.
func (n *node) regionInputsLocked(c *config.Check, p quorum.Params, v regionView, now time.Time) (map[string]quorum.RegionInput, []time.Time) {
	in := map[string]quorum.RegionInput{}
	var downSince []time.Time
	table := n.votes[c.Name]
	for _, r := range p.Regions {
		var votes []quorum.NodeVote
		for _, node := range v.alive[r] {
			vm, ok := table[node]
			if !ok {
				continue
			}
			h, known := n.health[node]
			votes = append(votes, quorum.NodeVote{Node: node, Vote: quorum.Vote(vm.Vote), At: vm.At,
				DownSince: vm.DownSince, Healthy: !known || h.OK})
		}
		ri, since, ok := quorum.Region(p, now, votes)
		if !ok {
			continue
		}
		if ri.Vote == quorum.VoteDown {
			downSince = append(downSince, since)
		}
		in[r] = ri
	}
	return in, downSince
}

func (n *node) encodeState() []byte {
	upd := n.updatesForPeers() // may read the store: before the lock
	n.mu.Lock()
	defer n.mu.Unlock()
	var votes []cluster.VoteMsg
	for _, byNode := range n.votes {
		for _, v := range byNode {
			votes = append(votes, v)
		}
	}
	st := meshState{Votes: cluster.EncodeVotes(votes), Updates: upd}
	for _, h := range n.health {
		st.Health = append(st.Health, h)
	}
	for _, m := range n.sent {
		st.Sent = append(st.Sent, m)
	}
	for _, cs := range n.checks {
		if id, start := cs.tracker.Incident(); id != "" {
			st.Incidents = append(st.Incidents, incidentMsg{Node: n.opts.Name, Check: cs.cfg.Name, ID: id, Start: start, Paged: n.pagedLocked(id)})
		}
	}
	for _, c := range n.claims {
		st.Claims = append(st.Claims, c)
	}
	b, err := json.Marshal(st)
	if err != nil {
		n.log.Error("encode gossip state", "err", err)
		return nil
	}
	return b
}

func decodeMsg[T any](payload []byte) (T, error) {
	var m T
	if err := json.Unmarshal(payload, &m); err != nil {
		return m, fmt.Errorf("decode gossip message: %w", err)
	}
	return m, nil
}
