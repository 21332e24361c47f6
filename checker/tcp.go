package checker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/vantage-dev/vantage/config"
)

// MaxBannerBytes is how much a tcp probe reads while looking for the banner.
const MaxBannerBytes = 64 << 10

// TCPProber connects to HOST:PORT, optionally writes c.Send and, when the
// check expects a banner (expect.banner and/or expect.body_contains), reads
// until every expected string has been seen.
type TCPProber struct {
	opts Options
}

var _ Prober = (*TCPProber)(nil)

// NewTCPProber returns a tcp prober using opts.
func NewTCPProber(opts Options) *TCPProber { return &TCPProber{opts: withLogger(opts)} }

// Probe runs one tcp probe of c. It never panics and returns by ctx's
// deadline.
func (p *TCPProber) Probe(ctx context.Context, c *config.Check) (r Result) {
	r.Start = time.Now()
	defer guard(p.opts.logger(), c, &r)
	if c == nil {
		return configResult("nil check")
	}
	ctx, cancel := p.opts.withDeadline(ctx)
	defer cancel()
	if err := p.probe(ctx, c, &r); err != nil {
		r.fail(err)
	}
	finish(&r, c, time.Since(r.Start))
	p.opts.logger().Debug("checker: tcp probe", "check", c.Name, "ok", r.OK, "code", r.Code,
		"msg", r.Message, "latency", r.Latency)
	return r
}

func (p *TCPProber) probe(ctx context.Context, c *config.Check, r *Result) error {
	conn, err := p.opts.connect(ctx, c.Target, c.IP, &r.Phases)
	if err != nil {
		return err
	}
	defer conn.Close()
	addr := conn.RemoteAddr().String()
	r.RemoteAddr = addr
	t0 := time.Now()
	if c.Send != "" {
		if _, err := io.WriteString(conn, c.Send); err != nil {
			if isTimeout(err) || ctx.Err() != nil {
				return perr(CodeTimeout, "send to %s: timed out", addr)
			}
			return perr(CodeProtocol, "send to %s: %s", addr, shortErr(err))
		}
	}
	var want [][]byte
	for _, s := range []string{c.Expect.Banner, c.Expect.BodyContains} {
		if s != "" {
			want = append(want, []byte(s))
		}
	}
	if len(want) == 0 {
		return nil
	}
	missing := func(buf []byte) []byte {
		for _, w := range want {
			if !bytes.Contains(buf, w) {
				return w
			}
		}
		return nil
	}
	buf := make([]byte, 0, 512)
	tmp := make([]byte, 4096)
	for {
		n, err := conn.Read(tmp)
		if n > 0 {
			if r.Phases.FirstByte == 0 {
				r.Phases.FirstByte = time.Since(t0)
			}
			if room := MaxBannerBytes - len(buf); n > room {
				n = room
			}
			buf = append(buf, tmp[:n]...)
			w := missing(buf)
			if w == nil {
				return nil
			}
			if len(buf) >= MaxBannerBytes {
				return perr(CodeBodyMismatch, "%s not found in the first %d KiB from %s", quoteShort(string(w)), MaxBannerBytes>>10, addr)
			}
		}
		if err == nil {
			continue
		}
		w := missing(buf)
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
			return perr(CodeBodyMismatch, "%s closed the connection without sending %s%s", addr, quoteShort(string(w)), got(buf))
		case isTimeout(err), ctx.Err() != nil, errors.Is(err, net.ErrClosed):
			return perr(CodeTimeout, "%s did not send %s within %s%s", addr, quoteShort(string(w)), budget(ctx, r.Start), got(buf))
		}
		return perr(CodeProtocol, "reading from %s: %s", addr, shortErr(err))
	}
}

// got describes what was received so far, for messages.
func got(buf []byte) string {
	if len(buf) == 0 {
		return " (received nothing)"
	}
	const tail = 64
	if len(buf) > tail {
		return fmt.Sprintf(" (received %d bytes, ending %q)", len(buf), buf[len(buf)-tail:])
	}
	return fmt.Sprintf(" (received %q)", buf)
}
