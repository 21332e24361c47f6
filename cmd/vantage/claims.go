package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/vantage-dev/vantage/cluster"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/notifier"
)

// Send claims. The designated sender gossips a claim before it queues a
// notification and renews it while the delivery is pending; it gossips the
// sent log once the provider accepted. A node that becomes the sender does
// not send what a live, alive peer has claimed: a slow delivery (a provider
// that keeps answering 503) is not duplicated by a takeover. When the
// claimer dies or its lease runs out unrenewed, the new sender pages.
const (
	// claimLease is how long a claim holds without renewal; longer than
	// the outbox's longest backoff (30 s), so a node retrying a slow
	// provider renews it several times before it could lapse.
	claimLease = 2 * time.Minute
	// claimRenew is how often the claimer renews a pending claim.
	claimRenew = 30 * time.Second
)

// claimMsg says Node has queued Action of Incident for Notifiers and is
// delivering it.
type claimMsg struct {
	Node      string    `json:"node"`
	Incident  string    `json:"incident"`
	Action    string    `json:"action"`
	Notifiers []string  `json:"notifiers"`
	At        time.Time `json:"at"`
}

type claimKey struct{ incident, action string }

func (m claimMsg) key() claimKey { return claimKey{m.Incident, m.Action} }

// learnClaim records a peer's claim; the newest per key wins.
func (n *node) learnClaim(m claimMsg) {
	if m.Node == n.opts.Name {
		return
	}
	n.mu.Lock()
	if old, ok := n.claims[m.key()]; !ok || m.At.After(old.At) {
		n.claims[m.key()] = m
	}
	n.mu.Unlock()
}

// claimHeldLocked reports which peer, if any, holds a live claim on
// (incident, action): its lease has not run out and it is alive in gossip.
func (n *node) claimHeldLocked(incident string, action notifier.Action, now time.Time) (string, bool) {
	c, ok := n.claims[claimKey{incident, string(action)}]
	if !ok || c.Node == n.opts.Name || now.Sub(c.At) >= claimLease || !n.aliveLocked(c.Node) {
		return "", false
	}
	return c.Node, true
}

// claimLocked records this node's claim; the caller gossips it.
func (n *node) claimLocked(incident string, action notifier.Action, notifiers []string, now time.Time) claimMsg {
	c := claimMsg{Node: n.opts.Name, Incident: incident, Action: string(action), Notifiers: notifiers, At: now}
	n.claims[c.key()] = c
	return c
}

// renewClaimsLocked renews this node's claims whose deliveries are still
// pending, forgets finished and long-expired ones, and returns the claims
// to gossip again.
func (n *node) renewClaimsLocked(now time.Time) []claimMsg {
	var out []claimMsg
	for k, c := range n.claims {
		if c.Node != n.opts.Name {
			if now.Sub(c.At) > 2*claimLease {
				delete(n.claims, k)
			}
			continue
		}
		if len(n.unsentLocked(c.Incident, notifier.Action(c.Action), c.Notifiers)) == 0 {
			delete(n.claims, k)
			continue
		}
		if now.Sub(c.At) >= claimRenew {
			c.At = now
			n.claims[k] = c
			out = append(out, c)
		}
	}
	return out
}

// gossipClaims broadcasts claims (not under n.mu).
func (n *node) gossipClaims(cs []claimMsg) {
	cl := n.cl.Load()
	if cl == nil {
		return
	}
	for _, c := range cs {
		b, _ := json.Marshal(c)
		if err := cl.BroadcastMessage(kindClaim, "claim/"+c.Incident+"/"+c.Action, b); err != nil {
			n.log.Warn("gossip send claim", "incident_id", c.Incident, "err", err)
		}
	}
}

// aliveLocked reports whether a node is alive (or only suspect) in gossip.
func (n *node) aliveLocked(name string) bool {
	if name == n.opts.Name {
		return true
	}
	for _, m := range n.members {
		if m.Name == name {
			return m.State == cluster.StateAlive || m.State == cluster.StateSuspect
		}
	}
	return false
}

// gatedProvider makes a node's outbox part of the cluster's exactly-once
// paging. It does not deliver what the cluster's sent log shows another
// node delivered (a node back from a restart or a partition finds its
// pending sends already done), and it holds deliveries, as a retryable
// failure, while this node cannot see a majority of the regions: the
// other side of the partition, which can, pages instead.
type gatedProvider struct {
	notifier.Provider
	n *node
}

func (g gatedProvider) Send(ctx context.Context, e notifier.Event) (notifier.Receipt, error) {
	if by, ok := g.n.sentBy(e.IncidentID, e.Key(), g.Name()); ok && by != g.n.opts.Name {
		return notifier.Receipt{Body: "not sent: already delivered by " + by}, nil
	}
	if !g.n.seesMajority() {
		return notifier.Receipt{}, &notifier.SendError{Retryable: true,
			Body: "held: this node cannot see a majority of the regions"}
	}
	return g.Provider.Send(ctx, e)
}

// RateLimit forwards the wrapped provider's rate (notifier.RateLimited),
// so the outbox paces the gated provider as it would the provider itself.
func (g gatedProvider) RateLimit() notifier.Rate {
	if rl, ok := g.Provider.(notifier.RateLimited); ok {
		return rl.RateLimit()
	}
	return notifier.Rate{}
}

// sentBy reports which node the cluster's sent log names for a delivery.
// key is the event's action key (notifier.Event.Key: "repeat#N" for a
// reminder).
func (n *node) sentBy(incident, key, notifierName string) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	m, ok := n.sent[sentKey{incident: incident, action: key, notifier: notifierName}]
	return m.Node, ok
}

// seesMajority reports whether this node sees a majority of the regions.
func (n *node) seesMajority() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.viewLocked(n.params(&config.Check{}).Regions).seesMajority
}
