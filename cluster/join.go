package cluster

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"
)

// joinLoop first contacts the seeds until one answers (or a peer finds us),
// backing off from 500 ms to RejoinInterval; then, every RejoinInterval,
// while a seed or a member seen before is missing, it contacts them again so
// that a healed partition merges.
func (c *Cluster) joinLoop() {
	defer c.wg.Done()
	backoff := min(500*time.Millisecond, c.cfg.RejoinInterval)
	joined := false
	for {
		if c.stopped() {
			return
		}
		seeds := c.seeds()
		if !joined {
			switch {
			case len(seeds) == 0:
				joined = true
			case c.NumAlive() > 1:
				c.log.Info("joined the cluster", "members", c.NumAlive())
				joined = true
			default:
				ok := c.joinAll(seeds, true)
				if ok > 0 {
					c.log.Info("joined the cluster", "seeds_answered", ok, "members", c.NumAlive())
					joined = true
				}
			}
			if !joined {
				if !c.sleep(backoff) {
					return
				}
				backoff = min(2*backoff, c.cfg.RejoinInterval)
				continue
			}
		}
		if !c.sleep(c.cfg.RejoinInterval) {
			return
		}
		c.pruneSeen()
		if targets := c.missing(seeds); len(targets) > 0 {
			c.log.Debug("re-contacting missing seeds and members", "targets", targets)
			if n := c.joinAll(targets, false); n > 0 {
				c.log.Info("re-contacted missing seeds or members", "answered", n, "of", len(targets), "members", c.NumAlive())
			}
		}
	}
}

func (c *Cluster) stopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed || c.left
}

func (c *Cluster) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.done:
		return false
	case <-t.C:
		return !c.stopped()
	}
}

// joinAll contacts every address in parallel (an unreachable one costs a
// whole TCP timeout) and returns how many answered.
func (c *Cluster) joinAll(addrs []string, verbose bool) int {
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok int
	)
	for _, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.stopped() {
				return
			}
			_, err := c.ml.Join([]string{a})
			switch {
			case err == nil:
				mu.Lock()
				ok++
				mu.Unlock()
				if verbose {
					c.log.Info("seed answered", "seed", a)
				}
			case verbose:
				c.log.Warn("seed did not answer; will retry", "seed", a, "err", err)
			default:
				c.log.Debug("no answer", "addr", a, "err", err)
			}
		}()
	}
	wg.Wait()
	return ok
}

// seeds returns the configured seeds as IP:PORT addresses, resolved now,
// except this node's own. A name resolving to several addresses (a
// Kubernetes headless Service lists every pod, this one included) gives
// all of them but ours. A name that does not resolve now is kept as it
// is: the join attempt logs why it fails, and the next one resolves again.
func (c *Cluster) seeds() []string {
	var out []string
	seen := map[string]bool{}
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, s := range c.cfg.Join {
		if s == "" {
			continue
		}
		addrs := c.resolve(s)
		if len(addrs) == 0 {
			add(s)
			continue
		}
		for _, a := range addrs {
			if !c.isSelfAddr(a) {
				add(a)
			}
		}
	}
	return out
}

// resolve turns HOST:PORT (default port 7946) into IP:PORT strings.
func (c *Cluster) resolve(addr string) []string {
	lookup := c.cfg.lookupIP
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]net.IP, error) {
			return net.DefaultResolver.LookupIP(ctx, "ip", host)
		}
	}
	return resolveWith(addr, lookup)
}

func resolveWith(addr string, lookup func(context.Context, string) ([]net.IP, error)) []string {
	host, port, err := splitHostPort(addr, DefaultPort)
	if err != nil {
		if host, port, err = splitHostPort(net.JoinHostPort(addr, ""), DefaultPort); err != nil {
			return nil
		}
	}
	ps := strconv.Itoa(port)
	if ip := net.ParseIP(host); ip != nil {
		return []string{net.JoinHostPort(ip.String(), ps)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ips, err := lookup(ctx, host)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip.String(), ps))
	}
	return out
}

// isSelfAddr tells whether an IP:PORT address is this node's.
func (c *Cluster) isSelfAddr(a string) bool {
	self := c.LocalAddr()
	bindIP := net.ParseIP(c.mlc.BindAddr)
	bindPort := strconv.Itoa(c.mlc.BindPort)
	if a == self || (bindIP != nil && a == net.JoinHostPort(bindIP.String(), bindPort)) {
		return true
	}
	host, port, _ := net.SplitHostPort(a)
	if port != bindPort || bindIP == nil || !bindIP.IsUnspecified() {
		return false
	}
	ip := net.ParseIP(host)
	if ip.IsLoopback() {
		return true
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, ia := range addrs {
			if n, ok := ia.(*net.IPNet); ok && n.IP.Equal(ip) {
				return true
			}
		}
	}
	return false
}

// missing returns, when a seed matches no alive member or a member died (not
// left) within deadRetention, every seed and every such dead member's
// address; otherwise nothing.
func (c *Cluster) missing(seeds []string) []string {
	alive := map[string]bool{}
	var dead []string
	now := time.Now()
	c.mu.Lock()
	for name, p := range c.peers {
		if name == c.cfg.Name {
			continue
		}
		switch st := c.stateLocked(p, now); st {
		case StateAlive, StateSuspect:
			alive[p.node.Address()] = true
		case StateDead:
			if now.Sub(p.changedAt) < deadRetention {
				dead = append(dead, p.node.Address())
			}
		}
	}
	c.mu.Unlock()
	anyMissing := len(dead) > 0
	for _, s := range seeds {
		found := false
		for _, a := range c.resolve(s) {
			if alive[a] {
				found = true
				break
			}
		}
		if !found {
			anyMissing = true
		}
	}
	if !anyMissing {
		return nil
	}
	// Something is missing: contact every seed (one may know the missing
	// side) and every dead member.
	var out []string
	seen := map[string]bool{}
	for _, a := range append(append([]string(nil), seeds...), dead...) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// pruneSeen forgets broadcast stamps not refreshed for ten minutes (their
// messages stopped circulating long ago).
func (c *Cluster) pruneSeen() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, s := range c.seen {
		if time.Since(s.recvAt) > 10*time.Minute {
			delete(c.seen, k)
		}
	}
}
