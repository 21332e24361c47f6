package checker

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
)

func tcpCheck(target string) *config.Check {
	return &config.Check{Name: "t", Type: config.TypeTCP, Target: target}
}

func TestTCPConnect(t *testing.T) {
	addr := serve(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	r, _ := runProbe(t, NewTCPProber(Options{}), tcpCheck(addr), 5*time.Second)
	wantOK(t, r)
	if r.RemoteAddr != addr {
		t.Errorf("RemoteAddr %q, want %q", r.RemoteAddr, addr)
	}
	if r.Phases.Connect <= 0 || r.Phases.DNS != 0 || r.Phases.FirstByte != 0 {
		t.Errorf("phases %+v", r.Phases)
	}
}

// pingServer answers "PONG <line>" to each line, after a greeting.
func pingServer(t *testing.T) string {
	return serve(t, func(c net.Conn) {
		io.WriteString(c, "220 ready\r\n")
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			io.WriteString(c, "PONG "+sc.Text()+"\r\n")
		}
	})
}

func TestTCPSendBanner(t *testing.T) {
	addr := pingServer(t)
	p := NewTCPProber(Options{})

	c := tcpCheck(addr)
	c.Expect.Banner = "220 ready"
	r, _ := runProbe(t, p, c, 5*time.Second)
	wantOK(t, r)
	if r.Phases.FirstByte <= 0 {
		t.Errorf("first byte phase %v", r.Phases.FirstByte)
	}

	c = tcpCheck(addr)
	c.Send = "hello\n"
	c.Expect.Banner = "PONG hello"
	r, _ = runProbe(t, p, c, 5*time.Second)
	wantOK(t, r)

	// body_contains applies to the tcp reply too; both must be seen.
	c.Expect.BodyContains = "220"
	r, _ = runProbe(t, p, c, 5*time.Second)
	wantOK(t, r)
}

func TestTCPBannerMismatch(t *testing.T) {
	addr := serve(t, func(c net.Conn) { io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n") })
	c := tcpCheck(addr)
	c.Expect.Banner = "220 "
	r, _ := runProbe(t, NewTCPProber(Options{}), c, 5*time.Second)
	wantCode(t, r, CodeBodyMismatch, "closed the connection without sending", "SSH-2.0")
}

func TestTCPBannerNeverComes(t *testing.T) {
	h := newHungListener(t, "tcp4", "127.0.0.1:0")
	c := tcpCheck(h.Addr())
	c.Send = "PING\r\n"
	c.Expect.Banner = "+PONG"
	const timeout = 400 * time.Millisecond
	r, d := runProbe(t, NewTCPProber(Options{}), c, timeout)
	wantCode(t, r, CodeTimeout, `did not send "+PONG" within`, "received nothing")
	if d < timeout || d > timeout+2*time.Second {
		t.Errorf("took %v with timeout %v", d, timeout)
	}
}

func TestTCPBannerCap(t *testing.T) {
	var wrote atomic.Int64
	addr := serve(t, func(c net.Conn) {
		chunk := []byte(strings.Repeat("x", 1024))
		for i := 0; i < 200; i++ {
			n, err := c.Write(chunk)
			wrote.Add(int64(n))
			if err != nil {
				return
			}
		}
		time.Sleep(2 * time.Second) // keep the connection open: only the cap ends the read
	})
	c := tcpCheck(addr)
	c.Expect.Banner = "never"
	r, d := runProbe(t, NewTCPProber(Options{}), c, 5*time.Second)
	wantCode(t, r, CodeBodyMismatch, "first 64 KiB")
	if d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestTCPRefused(t *testing.T) {
	addr := freePort(t)
	r, _ := runProbe(t, NewTCPProber(Options{}), tcpCheck(addr), 5*time.Second)
	wantCode(t, r, CodeConnectRefused, "connect "+addr+": connection refused")
}

func TestTCPBadInput(t *testing.T) {
	p := NewTCPProber(Options{})
	for _, c := range []*config.Check{
		nil,
		{Type: config.TypeTCP},
		{Type: config.TypeTCP, Target: "no-port"},
		{Type: config.TypeTCP, Target: "127.0.0.1:notaport"},
		{Type: config.TypeTCP, Target: "127.0.0.1:70000"},
		{Type: config.TypeTCP, Target: ":80"},
	} {
		r, _ := runProbe(t, p, c, 2*time.Second)
		if r.OK || r.Code != CodeConfig {
			t.Errorf("%+v: got %+v, want code config", c, r)
		}
	}
}

func TestIPFamily(t *testing.T) {
	ln4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln4.Close()
	go func() {
		for {
			c, err := ln4.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln4.Addr().String())

	t.Run("6-to-ipv4-literal", func(t *testing.T) {
		c := tcpCheck(ln4.Addr().String())
		c.IP = "6"
		r, _ := runProbe(t, NewTCPProber(Options{}), c, 2*time.Second)
		wantCode(t, r, CodeConfig, `127.0.0.1 is not an IPv6 address (ip: "6")`)
	})
	t.Run("4-to-ipv4-literal", func(t *testing.T) {
		c := tcpCheck(ln4.Addr().String())
		c.IP = "4"
		r, _ := runProbe(t, NewTCPProber(Options{}), c, 2*time.Second)
		wantOK(t, r)
	})
	t.Run("any-falls-back-to-ipv4", func(t *testing.T) {
		// The name resolves to ::1 first, where nothing listens on that port
		// (refused, or unreachable without IPv6): the IPv4 attempt must win.
		res := mapResolver{"dual.test": {"::1", "127.0.0.1"}}
		for _, delay := range []time.Duration{-1, 0} { // sequential, Happy Eyeballs
			c := tcpCheck("dual.test:" + port)
			c.IP = "any"
			r, _ := runProbe(t, NewTCPProber(Options{Resolver: res, FallbackDelay: delay}), c, 5*time.Second)
			wantOK(t, r)
			if r.RemoteAddr != ln4.Addr().String() {
				t.Errorf("RemoteAddr %q", r.RemoteAddr)
			}
			if r.Phases.DNS <= 0 {
				t.Errorf("DNS phase %v", r.Phases.DNS)
			}
		}
	})
	t.Run("any-ipv6-blackholed", func(t *testing.T) {
		// The IPv6 attempt hangs (as a filtered address does); after the
		// fallback delay IPv4 is tried in parallel and wins.
		var v6tried atomic.Bool
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			if strings.HasPrefix(addr, "[") {
				v6tried.Store(true)
				<-ctx.Done()
				return nil, ctx.Err()
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
		base := goroutines()
		p := NewTCPProber(Options{Resolver: mapResolver{"dual.test": {"::1", "127.0.0.1"}}, DialContext: dial, FallbackDelay: 50 * time.Millisecond})
		r, d := runProbe(t, p, tcpCheck("dual.test:"+port), 5*time.Second)
		wantOK(t, r)
		if !v6tried.Load() {
			t.Error("IPv6 was not tried first")
		}
		if d > 2*time.Second {
			t.Errorf("took %v: fallback did not race", d)
		}
		checkNoLeak(t, base, 0)
	})
	t.Run("all-fail-reports-first", func(t *testing.T) {
		free := freePort(t)
		_, fport, _ := net.SplitHostPort(free)
		p := NewTCPProber(Options{Resolver: mapResolver{"dual.test": {"::1", "127.0.0.1"}}})
		r, _ := runProbe(t, p, tcpCheck("dual.test:"+fport), 5*time.Second)
		if r.OK || (r.Code != CodeConnectRefused && r.Code != CodeUnreachable) {
			t.Errorf("got %+v", r)
		}
		if !strings.Contains(r.Message, "[::1]:"+fport) {
			t.Errorf("message %q should name the first address tried", r.Message)
		}
	})
	t.Run("4-skips-ipv6", func(t *testing.T) {
		c := tcpCheck("dual.test:" + port)
		c.IP = "4"
		var dialed []string
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialed = append(dialed, addr)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
		p := NewTCPProber(Options{Resolver: mapResolver{"dual.test": {"::1", "127.0.0.1"}}, DialContext: dial})
		r, _ := runProbe(t, p, c, 5*time.Second)
		wantOK(t, r)
		if len(dialed) != 1 || dialed[0] != ln4.Addr().String() {
			t.Errorf("dialed %v", dialed)
		}
	})
	t.Run("6-over-ipv6-loopback", func(t *testing.T) {
		if !hasIPv6Loopback() {
			t.Skip("no IPv6 loopback (::1) in this environment; skipping the IPv6 connect test")
		}
		ln6, err := net.Listen("tcp6", "[::1]:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln6.Close()
		go func() {
			for {
				c, err := ln6.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		_, p6, _ := net.SplitHostPort(ln6.Addr().String())
		p := NewTCPProber(Options{Resolver: mapResolver{"dual.test": {"127.0.0.1", "::1"}}})
		c := tcpCheck("dual.test:" + p6)
		c.IP = "6"
		r, _ := runProbe(t, p, c, 5*time.Second)
		wantOK(t, r)
		if r.RemoteAddr != ln6.Addr().String() {
			t.Errorf("RemoteAddr %q", r.RemoteAddr)
		}
		c = tcpCheck(ln6.Addr().String())
		c.IP = "4"
		r, _ = runProbe(t, p, c, 5*time.Second)
		wantCode(t, r, CodeConfig, "not an IPv4 address")
	})
}
