package checker

import (
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/vantage-dev/vantage/config"
)

func icmpCheck(target string) *config.Check {
	return &config.Check{Name: "t", Type: config.TypeICMP, Target: target, Count: 3, MaxLoss: 50}
}

func skipIfNoICMP(t *testing.T, r Result) {
	t.Helper()
	if r.Code == CodeICMPPermission {
		t.Skipf("ICMP sockets not permitted here (%s)", r.Message)
	}
}

func TestICMPLoopback(t *testing.T) {
	c := icmpCheck("127.0.0.1")
	c.MaxLoss = 0
	r, _ := runProbe(t, NewICMPProber(Options{}), c, 5*time.Second)
	skipIfNoICMP(t, r)
	wantOK(t, r)
	if r.Latency <= 0 {
		t.Errorf("latency %v", r.Latency)
	}
	if r.RemoteAddr != "127.0.0.1" {
		t.Errorf("RemoteAddr %q", r.RemoteAddr)
	}
}

func TestICMPIPv6Loopback(t *testing.T) {
	if !hasIPv6Loopback() {
		t.Skip("no IPv6 loopback (::1) in this environment; skipping the ICMPv6 test")
	}
	c := icmpCheck("::1")
	c.MaxLoss = 0
	r, _ := runProbe(t, NewICMPProber(Options{}), c, 5*time.Second)
	skipIfNoICMP(t, r)
	wantOK(t, r)
	if r.Latency <= 0 {
		t.Errorf("latency %v", r.Latency)
	}
}

func TestICMPConcurrent(t *testing.T) {
	// Many probes at once on the same host: each must get exactly its own
	// three replies (raw sockets see every reply on the host).
	p := NewICMPProber(Options{ICMPInterval: 10 * time.Millisecond})
	const n = 30
	var wg sync.WaitGroup
	results := make([]Result, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := icmpCheck("127.0.0.1")
			c.MaxLoss = 0
			results[i], _ = runProbe(t, p, c, 5*time.Second)
		}()
	}
	wg.Wait()
	skipIfNoICMP(t, results[0])
	for i, r := range results {
		if !r.OK {
			t.Errorf("probe %d: %+v", i, r)
		}
	}
}

func TestICMPPermission(t *testing.T) {
	var tried []string
	listen := func(network, address string) (net.PacketConn, error) {
		tried = append(tried, network)
		errno := syscall.EACCES // ping_group_range excludes us
		if network == "ip4:icmp" {
			errno = syscall.EPERM // no CAP_NET_RAW
		}
		return nil, &net.OpError{Op: "listen", Net: network, Err: os.NewSyscallError("socket", errno)}
	}
	r, _ := runProbe(t, NewICMPProber(Options{ICMPListen: listen}), icmpCheck("127.0.0.1"), 2*time.Second)
	wantCode(t, r, CodeICMPPermission, `sysctl net.ipv4.ping_group_range="0 2147483647"`, "CAP_NET_RAW")
	if len(tried) != 2 || tried[0] != "udp4" || tried[1] != "ip4:icmp" {
		t.Errorf("tried %v, want datagram then raw", tried)
	}
}

func TestICMPFallsBackToRaw(t *testing.T) {
	var tried []string
	listen := func(network, address string) (net.PacketConn, error) {
		tried = append(tried, network)
		if network == "udp4" {
			return nil, os.NewSyscallError("socket", syscall.EACCES)
		}
		return newFakeICMP(nil, true), nil
	}
	r, _ := runProbe(t, NewICMPProber(Options{ICMPListen: listen}), icmpCheck("127.0.0.1"), 2*time.Second)
	wantOK(t, r)
	if len(tried) != 2 || tried[1] != "ip4:icmp" {
		t.Errorf("tried %v", tried)
	}
}

func TestICMPLoss(t *testing.T) {
	for _, tc := range []struct {
		name    string
		drop    map[int]bool // by index of the echo request
		maxLoss float64
		code    string
		msg     string
	}{
		{"none-lost", nil, 0, "", ""},
		{"one-of-three-within-50", map[int]bool{1: true}, 50, "", ""},
		{"one-of-three-over-10", map[int]bool{1: true}, 10, CodeICMPLoss, "1 of 3 echo replies from 127.0.0.1 lost"},
		{"two-of-three", map[int]bool{0: true, 2: true}, 50, CodeICMPLoss, "2 of 3"},
		{"all", map[int]bool{0: true, 1: true, 2: true}, 100, CodeICMPLoss, "no echo reply from 127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := goroutines()
			defer checkNoLeak(t, base, 0)
			fake := newFakeICMP(tc.drop, false)
			listen := func(network, address string) (net.PacketConn, error) { return fake, nil }
			c := icmpCheck("127.0.0.1")
			c.MaxLoss = tc.maxLoss
			timeout := 5 * time.Second // returns as soon as every reply is in
			if len(tc.drop) > 0 {
				timeout = 500 * time.Millisecond // waits for the lost ones until the deadline
			}
			r, d := runProbe(t, NewICMPProber(Options{ICMPListen: listen, ICMPInterval: 5 * time.Millisecond}), c, timeout)
			if tc.code == "" {
				wantOK(t, r)
				if r.Latency <= 0 || r.Latency > timeout {
					t.Errorf("latency %v", r.Latency)
				}
			} else {
				wantCode(t, r, tc.code, tc.msg)
			}
			if d > timeout+time.Second {
				t.Errorf("took %v", d)
			}
			if fake.sent() != 3 {
				t.Errorf("sent %d echo requests, want 3", fake.sent())
			}
		})
	}
}

func TestICMPBadInput(t *testing.T) {
	p := NewICMPProber(Options{})
	for _, c := range []*config.Check{
		nil,
		{Type: config.TypeICMP},
		{Type: config.TypeICMP, Target: "127.0.0.1", IP: "6"},
		{Type: config.TypeICMP, Target: "host.invalid"},
	} {
		r, _ := runProbe(t, p, c, 2*time.Second)
		if r.OK || r.Code == "" {
			t.Errorf("%+v: got %+v, want a failure", c, r)
		}
	}
	// A huge count is capped, and the probe still ends at the deadline.
	c := icmpCheck("127.0.0.1")
	c.Count = 1 << 30
	fake := newFakeICMP(nil, false)
	_, d := runProbe(t, NewICMPProber(Options{ICMPListen: func(string, string) (net.PacketConn, error) { return fake, nil }}), c, 300*time.Millisecond)
	if d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

// fakeICMP is an IPv4 ICMP socket whose "network" answers echo requests
// itself. Like a Linux datagram socket it rewrites the echo ID in replies
// (unless raw), and before each genuine reply it delivers a foreign one with
// the same sequence number but another payload, which must be ignored.
type fakeICMP struct {
	drop   map[int]bool
	raw    bool
	queue  chan []byte
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	n        int
	deadline time.Time
}

func newFakeICMP(drop map[int]bool, raw bool) *fakeICMP {
	return &fakeICMP{drop: drop, raw: raw, queue: make(chan []byte, 4096), closed: make(chan struct{})}
}

func (f *fakeICMP) sent() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *fakeICMP) WriteTo(b []byte, addr net.Addr) (int, error) {
	m, err := icmp.ParseMessage(1, b)
	if err != nil {
		return 0, err
	}
	echo, ok := m.Body.(*icmp.Echo)
	if !ok || m.Type != ipv4.ICMPTypeEcho {
		return 0, syscall.EINVAL
	}
	f.mu.Lock()
	i := f.n
	f.n++
	f.mu.Unlock()
	if f.drop[i] {
		return len(b), nil
	}
	id := echo.ID
	if !f.raw {
		id = 4242
	}
	foreign, _ := (&icmp.Message{Type: ipv4.ICMPTypeEchoReply, Body: &icmp.Echo{ID: id, Seq: echo.Seq, Data: []byte("someone else")}}).Marshal(nil)
	reply, _ := (&icmp.Message{Type: ipv4.ICMPTypeEchoReply, Body: &icmp.Echo{ID: id, Seq: echo.Seq, Data: echo.Data}}).Marshal(nil)
	f.queue <- foreign
	f.queue <- reply
	return len(b), nil
}

func (f *fakeICMP) ReadFrom(b []byte) (int, net.Addr, error) {
	f.mu.Lock()
	dl := f.deadline
	f.mu.Unlock()
	var timeout <-chan time.Time
	if !dl.IsZero() {
		tm := time.NewTimer(time.Until(dl))
		defer tm.Stop()
		timeout = tm.C
	}
	var from net.Addr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	if f.raw {
		from = &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)}
	}
	select {
	case p := <-f.queue:
		return copy(b, p), from, nil
	case <-f.closed:
		return 0, nil, net.ErrClosed
	case <-timeout:
		return 0, nil, os.ErrDeadlineExceeded
	}
}

func (f *fakeICMP) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakeICMP) LocalAddr() net.Addr { return &net.UDPAddr{IP: net.IPv4zero} }

func (f *fakeICMP) SetDeadline(t time.Time) error {
	f.mu.Lock()
	f.deadline = t
	f.mu.Unlock()
	return nil
}

func (f *fakeICMP) SetReadDeadline(t time.Time) error { return f.SetDeadline(t) }

func (f *fakeICMP) SetWriteDeadline(time.Time) error { return nil }
