package checker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/vantage-dev/vantage/config"
)

const (
	// DefaultICMPCount is the number of echo requests when the check sets none.
	DefaultICMPCount = 3
	// MaxICMPCount caps the echo requests of one probe.
	MaxICMPCount = 1000
	// DefaultICMPInterval spaces the echo requests of one probe.
	DefaultICMPInterval = 100 * time.Millisecond

	icmpPermissionFix = `allow unprivileged ICMP with sysctl net.ipv4.ping_group_range="0 2147483647" or grant CAP_NET_RAW`
)

// ICMPProber sends c.Count echo requests and fails with CodeICMPLoss when
// more than c.MaxLoss percent go unanswered (or none is answered). Latency
// is the average round trip of the replies.
//
// It first opens an unprivileged datagram ICMP socket ("udp4"/"udp6", Linux
// ping sockets, allowed by net.ipv4.ping_group_range) and falls back to a raw
// socket ("ip4:icmp"/"ip6:ipv6-icmp", needs CAP_NET_RAW). Each probe has its
// own socket; replies are matched by sequence number and a random payload
// token, plus a random echo ID on raw sockets (datagram sockets have their ID
// rewritten by the kernel, which also demultiplexes replies per socket), so
// concurrent probes never see each other's replies.
type ICMPProber struct {
	opts Options
}

var _ Prober = (*ICMPProber)(nil)

// NewICMPProber returns an icmp prober using opts.
func NewICMPProber(opts Options) *ICMPProber { return &ICMPProber{opts: withLogger(opts)} }

// Probe runs one icmp probe of c. It never panics and returns by ctx's
// deadline.
func (p *ICMPProber) Probe(ctx context.Context, c *config.Check) (r Result) {
	r.Start = time.Now()
	defer guard(p.opts.logger(), c, &r)
	if c == nil {
		return configResult("nil check")
	}
	ctx, cancel := p.opts.withDeadline(ctx)
	defer cancel()
	avg, err := p.probe(ctx, c, &r)
	if err != nil {
		r.fail(err)
		avg = time.Since(r.Start)
	}
	finish(&r, c, avg)
	p.opts.logger().Debug("checker: icmp probe", "check", c.Name, "ok", r.OK, "code", r.Code,
		"msg", r.Message, "latency", r.Latency)
	return r
}

func (p *ICMPProber) probe(ctx context.Context, c *config.Check, r *Result) (time.Duration, error) {
	host := c.Target
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	t0 := time.Now()
	addrs, looked, err := p.opts.resolve(ctx, host, c.IP)
	if looked {
		r.Phases.DNS = time.Since(t0)
	}
	if err != nil {
		return 0, err
	}
	count := c.Count
	if count <= 0 {
		count = DefaultICMPCount
	}
	if count > MaxICMPCount {
		count = MaxICMPCount
	}
	// Try the addresses in order; move on only when we could not send at
	// all (no socket for that family, no route). Lost replies are an answer.
	var firstErr, permErr error
	for _, a := range addrs {
		rtts, err := p.ping(ctx, a, count)
		if err != nil {
			var pe *probeError
			if errors.As(err, &pe) && pe.code == CodeICMPPermission && permErr == nil {
				permErr = err
			}
			if firstErr == nil {
				firstErr = err
			}
			if ctx.Err() != nil {
				break
			}
			continue
		}
		r.RemoteAddr = a.String()
		lost := count - len(rtts)
		loss := 100 * float64(lost) / float64(count)
		if len(rtts) == 0 {
			return 0, perr(CodeICMPLoss, "no echo reply from %s (%d sent)", a, count)
		}
		var sum time.Duration
		for _, d := range rtts {
			sum += d
		}
		avg := sum / time.Duration(len(rtts))
		if loss > c.MaxLoss {
			return avg, perr(CodeICMPLoss, "%d of %d echo replies from %s lost (%.0f%% > max_loss %g%%)", lost, count, a, loss, c.MaxLoss)
		}
		return avg, nil
	}
	if permErr != nil {
		return 0, permErr
	}
	return 0, firstErr
}

func isPermission(err error) bool {
	return err != nil && errors.Is(err, os.ErrPermission)
}

// listen opens a datagram ICMP socket, or a raw one if that fails.
func (p *ICMPProber) listen(v6 bool) (conn net.PacketConn, raw bool, err error) {
	listen := p.opts.ICMPListen
	if listen == nil {
		listen = func(network, address string) (net.PacketConn, error) {
			c, err := icmp.ListenPacket(network, address)
			if err != nil {
				return nil, err
			}
			return c, nil
		}
	}
	dgram, rawNet, wildcard := "udp4", "ip4:icmp", "0.0.0.0"
	if v6 {
		dgram, rawNet, wildcard = "udp6", "ip6:ipv6-icmp", "::"
	}
	conn, err1 := listen(dgram, wildcard)
	if err1 == nil {
		return conn, false, nil
	}
	conn, err2 := listen(rawNet, wildcard)
	if err2 == nil {
		return conn, true, nil
	}
	if isPermission(err1) || isPermission(err2) {
		return nil, false, perr(CodeICMPPermission, "no permission to open an ICMP socket: %s", icmpPermissionFix)
	}
	return nil, false, perr(CodeConnect, "cannot open ICMP socket (%s: %s; %s: %s)", dgram, shortErr(err1), rawNet, shortErr(err2))
}

type echoReply struct {
	idx int
	at  time.Time
}

// ping sends count echo requests to dst and returns the round trips of the
// replies received before ctx's deadline.
func (p *ICMPProber) ping(ctx context.Context, dst netip.Addr, count int) ([]time.Duration, error) {
	v6 := dst.Is6()
	conn, raw, err := p.listen(v6)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var (
		dstAddr net.Addr
		proto   int
		reqType icmp.Type
		repType icmp.Type
	)
	if raw {
		dstAddr = &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	} else {
		dstAddr = &net.UDPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	}
	if v6 {
		proto, reqType, repType = 58, ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	} else {
		proto, reqType, repType = 1, ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	}
	id := int(rand.N[uint32](1 << 16))
	seqBase := uint16(rand.N[uint32](1 << 16))
	token := make([]byte, 16)
	binary.BigEndian.PutUint64(token, rand.Uint64())
	binary.BigEndian.PutUint64(token[8:], rand.Uint64())

	replies := make(chan echoReply, count)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		seen := make([]bool, count)
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return // closed, deadline, or a socket error: what is missing is lost
			}
			at := time.Now()
			m, err := icmp.ParseMessage(proto, buf[:n])
			if err != nil || m.Type != repType {
				continue
			}
			echo, ok := m.Body.(*icmp.Echo)
			if !ok || (raw && echo.ID != id) || !bytes.Equal(echo.Data, token) {
				continue
			}
			if raw && !sameIP(from, dst) {
				continue
			}
			idx := int(uint16(echo.Seq) - seqBase)
			if idx < 0 || idx >= count || seen[idx] {
				continue
			}
			seen[idx] = true
			replies <- echoReply{idx, at} // never blocks: at most count distinct replies
		}
	}()
	defer func() {
		conn.Close()
		<-readerDone
	}()

	interval := p.opts.ICMPInterval
	if interval <= 0 {
		interval = DefaultICMPInterval
	}
	if dl, ok := ctx.Deadline(); ok && count > 1 {
		// Leave at least half the budget for the last reply.
		if limit := time.Until(dl) / 2 / time.Duration(count-1); interval > limit {
			interval = limit
		}
	}

	sent := make([]time.Time, count)
	var rtts []time.Duration
	collect := func(rep echoReply) {
		if !sent[rep.idx].IsZero() {
			rtts = append(rtts, rep.at.Sub(sent[rep.idx]))
		}
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	var sendErr error
	nsent := 0
sending:
	for i := 0; i < count; i++ {
		if i > 0 {
			timer.Reset(interval)
		wait:
			for {
				select {
				case <-timer.C:
					break wait
				case rep := <-replies:
					collect(rep)
				case <-ctx.Done():
					break sending
				}
			}
		}
		msg := icmp.Message{Type: reqType, Body: &icmp.Echo{ID: id, Seq: int(seqBase + uint16(i)), Data: token}}
		b, err := msg.Marshal(nil)
		if err != nil {
			return nil, perr(CodeInternal, "marshal echo request: %v", err)
		}
		sent[i] = time.Now()
		if _, err := conn.WriteTo(b, dstAddr); err != nil {
			sent[i] = time.Time{}
			if sendErr == nil {
				sendErr = err
			}
			continue
		}
		nsent++
	}
	if nsent == 0 {
		if sendErr == nil || ctx.Err() != nil {
			return nil, perr(CodeTimeout, "ping %s: no echo request sent before the deadline", dst)
		}
		return nil, classifySend(dst, sendErr)
	}
	for len(rtts) < nsent {
		select {
		case rep := <-replies:
			collect(rep)
		case <-ctx.Done():
			// Replies that arrived just before the deadline.
			for {
				select {
				case rep := <-replies:
					collect(rep)
				default:
					return rtts, nil
				}
			}
		}
	}
	return rtts, nil
}

func sameIP(a net.Addr, want netip.Addr) bool {
	var ip net.IP
	switch a := a.(type) {
	case *net.IPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	default:
		return true
	}
	got, ok := netip.AddrFromSlice(ip)
	return ok && got.Unmap() == want.WithZone("")
}

func classifySend(dst netip.Addr, err error) error {
	pe := classifyConnect(dst.String(), err)
	pe.msg = fmt.Sprintf("ping %s: %s", dst, shortErr(err))
	if isPermission(err) {
		pe.code = CodeConnect
	}
	return pe
}
