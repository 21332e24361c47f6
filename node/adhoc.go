package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vantage-dev/vantage/checker"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/quorum"
	"github.com/vantage-dev/vantage/statuspage"
)

// Ad-hoc probes from every region: the node that takes POST /api/v1/probe
// names one alive node per configured region (itself for its own region,
// else the first by name whose canaries pass), gossips the request, and
// collects the results those nodes gossip back, for at most the probe's
// timeout plus adhocSlack. Bounded everywhere: the API needs the token and
// takes adhocBurst requests at once, adhocPerMinute a minute; a node
// probes each request once, runs at most adhocRunning such probes at a
// time, and takes at most adhocPeerPerMinute requests a minute from any one
// peer (refusals come back as a region's note).
const (
	adhocDefaultTimeout = 5 * time.Second
	adhocSlack          = 1500 * time.Millisecond
	adhocBurst          = 10
	adhocPerMinute      = 20
	adhocPeerPerMinute  = 30
	adhocRunning        = 4
	adhocSeenTTL        = 5 * time.Minute
)

// adhocState is the node's ad-hoc probe bookkeeping.
type adhocState struct {
	mu      sync.Mutex
	api     tokenBucket
	peers   map[string]*tokenBucket
	seen    map[string]time.Time // request ids probed here
	running int
}

// tokenBucket refills rate tokens a minute up to burst.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

// take takes a token at now, or says how long until one is there.
func (b *tokenBucket) take(now time.Time, burst, perMinute float64) (bool, time.Duration) {
	if b.last.IsZero() {
		b.tokens, b.last = burst, now
	}
	b.tokens = min(burst, b.tokens+now.Sub(b.last).Minutes()*perMinute)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / perMinute * float64(time.Minute))
}

func (a *adhocState) init() {
	a.peers = map[string]*tokenBucket{}
	a.seen = map[string]time.Time{}
}

// ProbeEverywhere runs req once from every configured region (POST
// /api/v1/probe).
func (n *Node) ProbeEverywhere(ctx context.Context, req statuspage.ProbeRequest) (*statuspage.ProbeAnswer, error) {
	mreq, err := adhocRequest(req)
	if err != nil {
		return nil, err
	}
	started := n.now()
	a := &n.ext.adhoc
	a.mu.Lock()
	ok, wait := a.api.take(started, adhocBurst, adhocPerMinute)
	a.mu.Unlock()
	if !ok {
		return nil, &statuspage.RateLimitError{RetryAfter: wait}
	}

	cfg := n.cfg.Load()
	regions := cfg.Cluster.Regions
	if len(regions) == 0 {
		regions = []string{n.o.Region}
	}
	mreq.Nodes = n.adhocNodes(regions)
	var idb [12]byte
	_, _ = rand.Read(idb[:])
	mreq.ID, mreq.At = hex.EncodeToString(idb[:]), started.UTC()

	ans := &statuspage.ProbeAnswer{ID: mreq.ID, Type: mreq.Type, Target: mreq.Target, TimeoutMS: mreq.TimeoutMS, Started: started.UTC()}
	got := map[string]mesh.ProbeResult{} // by region
	if len(mreq.Nodes) > 0 {
		results, stop := n.mesh.Ops.Probes.Wait(mreq.ID, len(mreq.Nodes)+8)
		defer stop()
		if err := n.mesh.Ops.Probes.Request(mreq); err != nil {
			return nil, fmt.Errorf("gossip the probe request: %w", err)
		}
		deadline := time.NewTimer(mreq.Timeout() + adhocSlack)
		defer deadline.Stop()
	collect:
		for len(got) < len(mreq.Nodes) {
			select {
			case res := <-results:
				if mreq.Nodes[res.Region] == res.Node {
					got[res.Region] = res
				}
			case <-deadline.C:
				break collect
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	ans.ElapsedMS = statuspage.MS(n.now().Sub(started))

	// One line per region; the verdict from the regions' votes.
	inputs := map[string]quorum.RegionInput{}
	now := n.now()
	for _, reg := range regions {
		rp := statuspage.RegionProbe{Region: reg, Node: mreq.Nodes[reg], State: "no_answer"}
		res, answered := got[reg]
		switch {
		case rp.Node == "":
			rp.Note = "no node of this region is alive"
		case !answered:
			rp.Note = fmt.Sprintf("no answer from %s within %s", rp.Node, (mreq.Timeout() + adhocSlack).Round(100*time.Millisecond))
		case res.Refused != "":
			rp.Note = res.Refused
		default:
			rp.LatencyMS, rp.DNSMS, rp.ConnectMS, rp.TLSMS, rp.FirstByteMS = res.LatencyMS, res.DNSMS, res.ConnectMS, res.TLSMS, res.FirstByteMS
			rp.Code, rp.Message, rp.StatusCode, rp.RemoteAddr, rp.DNSRcode = res.Code, res.Message, res.StatusCode, res.RemoteAddr, res.DNSRcode
			switch {
			case res.OK:
				rp.State = "up"
				inputs[reg] = quorum.RegionInput{Vote: quorum.VoteUp, At: now, Eligible: true}
			case abstains(res.Code):
				rp.Note = "this region cannot tell: " + res.Code
			default:
				rp.State = "down"
				inputs[reg] = quorum.RegionInput{Vote: quorum.VoteDown, At: now, Eligible: true}
			}
		}
		switch rp.State {
		case "up":
			ans.Up = append(ans.Up, reg)
		case "down":
			ans.Down = append(ans.Down, reg)
		default:
			ans.NoAnswer = append(ans.NoAnswer, reg)
		}
		ans.Regions = append(ans.Regions, rp)
	}
	q := cfg.Cluster.Quorum
	if q < 1 {
		q = len(regions)/2 + 1
	}
	p := quorum.Params{Regions: regions, Quorum: q, Round: mreq.Timeout(), MaxAge: time.Hour, RecoverRounds: 1}
	tr := quorum.NewTracker("adhoc", now)
	tr.Update(p, quorum.Input{Now: now, Regions: inputs, SeesMajority: len(inputs) > len(regions)/2})
	st, _ := tr.State()
	ans.Verdict, ans.Quorum = string(st), q
	for _, l := range []*[]string{&ans.Up, &ans.Down, &ans.NoAnswer} {
		if *l == nil {
			*l = []string{}
		}
	}
	return ans, nil
}

// abstains reports whether a failure says nothing about the target: the
// probing node could not probe at all.
func abstains(code string) bool {
	return code == checker.CodeICMPPermission || code == checker.CodeInternal || code == checker.CodeConfig
}

// adhocNodes names one alive node per region: this node for its own
// region, else the first by name whose canaries pass (else the first).
func (n *Node) adhocNodes(regions []string) map[string]string {
	out := map[string]string{}
	type cand struct {
		name    string
		healthy bool
	}
	byRegion := map[string][]cand{}
	if cl := n.cl.Load(); cl != nil {
		for _, m := range cl.Members() {
			if m.State != "alive" || m.Name == n.o.Name {
				continue
			}
			ok, _ := n.mesh.Health.Healthy(m.Name)
			byRegion[m.Region] = append(byRegion[m.Region], cand{m.Name, ok})
		}
	}
	for _, reg := range regions {
		if reg == n.o.Region {
			out[reg] = n.o.Name
			continue
		}
		cs := byRegion[reg]
		slices.SortFunc(cs, func(a, b cand) int {
			if a.healthy != b.healthy {
				if a.healthy {
					return -1
				}
				return 1
			}
			return strings.Compare(a.name, b.name)
		})
		if len(cs) > 0 {
			out[reg] = cs[0].name
		}
	}
	return out
}

// onProbeRequest takes a request that names this node: it probes once,
// bounded, and gossips the result. It never blocks.
func (n *Node) onProbeRequest(req mesh.ProbeRequest) {
	if n.ctx.Err() != nil {
		return
	}
	now := n.now()
	a := &n.ext.adhoc
	a.mu.Lock()
	for id, t := range a.seen {
		if now.Sub(t) > adhocSeenTTL {
			delete(a.seen, id)
		}
	}
	if _, dup := a.seen[req.ID]; dup {
		a.mu.Unlock()
		return
	}
	a.seen[req.ID] = now
	refused := ""
	if req.From != n.o.Name {
		b := a.peers[req.From]
		if b == nil {
			b = &tokenBucket{}
			a.peers[req.From] = b
		}
		if ok, _ := b.take(now, adhocPeerPerMinute, adhocPeerPerMinute); !ok {
			refused = fmt.Sprintf("refused by %s: more than %d requests a minute from %s", n.o.Name, adhocPeerPerMinute, req.From)
		}
	}
	if refused == "" && a.running >= adhocRunning {
		refused = fmt.Sprintf("refused by %s: %d ad-hoc probes already running", n.o.Name, adhocRunning)
	}
	if refused == "" {
		a.running++
	}
	a.mu.Unlock()

	res := mesh.ProbeResult{ID: req.ID, Region: n.o.Region}
	if refused != "" {
		res.Refused = refused
		n.publishProbe(res)
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer func() {
			a.mu.Lock()
			a.running--
			a.mu.Unlock()
		}()
		c, err := adhocCheck(req)
		var r checker.Result
		if err != nil {
			r = checker.Result{Start: n.now(), Code: checker.CodeConfig, Message: err.Error()}
		} else {
			ctx, cancel := context.WithTimeout(n.ctx, c.Timeout)
			r = n.o.Prober.Probe(ctx, c)
			cancel()
		}
		if n.ctx.Err() != nil {
			return
		}
		res.At, res.OK = r.Start.UTC(), r.OK
		if res.At.IsZero() {
			res.At = n.now().UTC()
		}
		res.LatencyMS, res.DNSMS, res.ConnectMS = statuspage.MS(r.Latency), statuspage.MS(r.Phases.DNS), statuspage.MS(r.Phases.Connect)
		res.TLSMS, res.FirstByteMS = statuspage.MS(r.Phases.TLS), statuspage.MS(r.Phases.FirstByte)
		res.Code, res.Message, res.StatusCode, res.RemoteAddr, res.DNSRcode = r.Code, r.Message, r.StatusCode, r.RemoteAddr, r.DNSRcode
		n.publishProbe(res)
	}()
}

func (n *Node) publishProbe(res mesh.ProbeResult) {
	if err := n.mesh.Ops.Probes.Publish(res); err != nil {
		n.log.Warn("gossip an ad-hoc probe result", "id", res.ID, "err", err)
	}
}

// adhocRequest checks an API request and turns it into a gossiped one
// (without id, time and nodes).
func adhocRequest(req statuspage.ProbeRequest) (mesh.ProbeRequest, error) {
	bad := func(format string, args ...any) (mesh.ProbeRequest, error) {
		return mesh.ProbeRequest{}, fmt.Errorf("%w: %s", statuspage.ErrBadProbe, fmt.Sprintf(format, args...))
	}
	target := strings.TrimSpace(req.Target)
	if target == "" {
		return bad("target is required: a URL, HOST:PORT or a host")
	}
	if len(target) > mesh.MaxProbeTarget {
		return bad("target longer than %d bytes", mesh.MaxProbeTarget)
	}
	typ := strings.ToLower(strings.TrimSpace(req.Type))
	if typ == "" {
		typ = guessType(target)
	}
	timeout := adhocDefaultTimeout
	if req.Timeout != "" {
		d, err := config.ParseDuration(req.Timeout)
		if err != nil {
			return bad("timeout %q: %v", req.Timeout, err)
		}
		timeout = d
	}
	if timeout < mesh.MinProbeTimeout || timeout > mesh.MaxProbeTimeout {
		return bad("timeout must be between %s and %s", mesh.MinProbeTimeout, mesh.MaxProbeTimeout)
	}
	if typ == config.TypeHTTP && !strings.Contains(target, "://") {
		target = "https://" + target
	}
	mreq := mesh.ProbeRequest{Type: typ, Target: target, Record: strings.ToUpper(strings.TrimSpace(req.Record)),
		Server: strings.TrimSpace(req.Server), IP: strings.TrimSpace(req.IP), TimeoutMS: timeout.Milliseconds()}
	if _, err := adhocCheck(mreq); err != nil {
		return bad("%v", err)
	}
	return mreq, nil
}

// guessType: a URL is http, HOST:PORT tcp, anything else icmp.
func guessType(target string) string {
	if strings.Contains(target, "://") {
		return config.TypeHTTP
	}
	if _, port, err := net.SplitHostPort(target); err == nil && port != "" {
		return config.TypeTCP
	}
	return config.TypeICMP
}

// adhocCheck is the check an ad-hoc request stands for, with the config's
// defaults; it refuses what the config would.
func adhocCheck(r mesh.ProbeRequest) (*config.Check, error) {
	c := &config.Check{Name: "adhoc", Type: r.Type, Timeout: r.Timeout(), Interval: r.Timeout() + time.Second,
		FailAfter: 1, RecoverAfter: 1, IP: r.IP}
	switch r.IP {
	case "", "any", "4", "6":
	default:
		return nil, fmt.Errorf("ip %q: want 4, 6 or any", r.IP)
	}
	host := ""
	switch r.Type {
	case config.TypeHTTP:
		u, err := url.Parse(r.Target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
			return nil, fmt.Errorf("%q is not an http(s) URL", r.Target)
		}
		c.URL, c.Method, c.FollowRedirects = r.Target, "GET", true // a final status of 200-299 passes
		host = u.Hostname()
	case config.TypeTCP:
		h, port, err := net.SplitHostPort(r.Target)
		if p, perr := strconv.Atoi(port); err != nil || perr != nil || p < 1 || p > 65535 || h == "" {
			return nil, fmt.Errorf("%q is not HOST:PORT", r.Target)
		}
		c.Target, host = r.Target, h
	case config.TypeICMP:
		c.Target, c.Count, c.MaxLoss, host = r.Target, 3, 50, r.Target
	case config.TypeDNS:
		c.Target, c.Record, c.Server, host = strings.TrimSuffix(r.Target, "."), r.Record, r.Server, strings.TrimSuffix(r.Target, ".")
		if c.Record == "" {
			c.Record = config.RecordA
		}
		switch c.Record {
		case config.RecordA, config.RecordAAAA, config.RecordCNAME, config.RecordMX, config.RecordTXT, config.RecordNS, config.RecordSOA:
		default:
			return nil, fmt.Errorf("record %q: want A, AAAA, CNAME, MX, TXT, NS or SOA", r.Record)
		}
		if c.Server != "" {
			if _, _, err := net.SplitHostPort(c.Server); err != nil {
				return nil, fmt.Errorf("server %q is not HOST:PORT", c.Server)
			}
		}
	default:
		return nil, fmt.Errorf("type %q: want http, tcp, icmp or dns", r.Type)
	}
	if host == "" || strings.ContainsAny(host, " /\\@\t\r\n") {
		return nil, fmt.Errorf("%q is not a host", host)
	}
	return c, nil
}
