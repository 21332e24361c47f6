package cluster

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Traffic is the gossip traffic of a node since it started, in bytes, as
// memberlist hands it to and takes it from the network: UDP packet payloads
// (probes, acks, gossip with the states' broadcasts piggybacked on it) and
// TCP stream bytes (joins, push-pull state syncs, fallback probes, reliable
// sends), after encryption, so these are the bytes on the wire without the
// IP, UDP and TCP headers. Every field only grows.
type Traffic struct {
	UDPIn, UDPOut uint64
	TCPIn, TCPOut uint64
}

// In is the total received.
func (t Traffic) In() uint64 { return t.UDPIn + t.TCPIn }

// Out is the total sent.
func (t Traffic) Out() uint64 { return t.UDPOut + t.TCPOut }

// Traffic returns this node's gossip byte counters.
func (c *Cluster) Traffic() Traffic { return c.tr.traffic() }

// countingTransport wraps memberlist's transport and counts the bytes of
// every packet written and received and of every stream read and written.
// Received packets and accepted streams pass through a forwarding goroutine
// each (memberlist's transport API hands them over on channels); the packet
// timestamps memberlist uses for round-trip times are taken by the inner
// transport, so the extra hop does not skew them.
type countingTransport struct {
	inner   memberlist.NodeAwareTransport
	packets chan *memberlist.Packet
	streams chan net.Conn

	udpIn, udpOut, tcpIn, tcpOut atomic.Uint64

	stopOnce sync.Once
	stopping chan struct{} // Shutdown began: drop what arrives
	stopped  chan struct{} // the inner transport is down: forwarders exit
	wg       sync.WaitGroup
	err      error
}

var _ memberlist.NodeAwareTransport = (*countingTransport)(nil)

func newCountingTransport(inner memberlist.NodeAwareTransport) *countingTransport {
	t := &countingTransport{
		inner:    inner,
		packets:  make(chan *memberlist.Packet),
		streams:  make(chan net.Conn),
		stopping: make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	t.wg.Add(2)
	go t.forwardPackets()
	go t.forwardStreams()
	return t
}

// newNetTransport binds memberlist's UDP and TCP transport as
// memberlist.Create would (retrying a dynamic port that turns out to be taken
// on one protocol), wrapped to count bytes, and sets mlc.Transport. With bind
// port 0 it sets mlc.BindPort and mlc.AdvertisePort to the port bound, as
// memberlist does for its own transport.
func newNetTransport(mlc *memberlist.Config) (*countingTransport, error) {
	nc := &memberlist.NetTransportConfig{
		BindAddrs:    []string{mlc.BindAddr},
		BindPort:     mlc.BindPort,
		Logger:       mlc.Logger,
		MetricLabels: mlc.MetricLabels,
	}
	tries := 1
	if mlc.BindPort == 0 {
		tries = 10
	}
	var nt *memberlist.NetTransport
	var err error
	for range tries {
		if nt, err = memberlist.NewNetTransport(nc); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("could not set up network transport: %w", err)
	}
	if mlc.BindPort == 0 {
		mlc.BindPort = nt.GetAutoBindPort()
		mlc.AdvertisePort = mlc.BindPort
	}
	t := newCountingTransport(nt)
	mlc.Transport = t
	return t, nil
}

func (t *countingTransport) traffic() Traffic {
	if t == nil {
		return Traffic{}
	}
	return Traffic{UDPIn: t.udpIn.Load(), UDPOut: t.udpOut.Load(), TCPIn: t.tcpIn.Load(), TCPOut: t.tcpOut.Load()}
}

func (t *countingTransport) forwardPackets() {
	defer t.wg.Done()
	for {
		select {
		case p := <-t.inner.PacketCh():
			t.udpIn.Add(uint64(len(p.Buf)))
			select {
			case t.packets <- p:
			case <-t.stopping:
			}
		case <-t.stopped:
			return
		}
	}
}

func (t *countingTransport) forwardStreams() {
	defer t.wg.Done()
	for {
		select {
		case c := <-t.inner.StreamCh():
			select {
			case t.streams <- &countingConn{Conn: c, in: &t.tcpIn, out: &t.tcpOut}:
			case <-t.stopping:
				_ = c.Close()
			}
		case <-t.stopped:
			return
		}
	}
}

func (t *countingTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.inner.FinalAdvertiseAddr(ip, port)
}

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	ts, err := t.inner.WriteTo(b, addr)
	if err == nil {
		t.udpOut.Add(uint64(len(b)))
	}
	return ts, err
}

func (t *countingTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	ts, err := t.inner.WriteToAddress(b, addr)
	if err == nil {
		t.udpOut.Add(uint64(len(b)))
	}
	return ts, err
}

func (t *countingTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := t.inner.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, in: &t.tcpIn, out: &t.tcpOut}, nil
}

func (t *countingTransport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	c, err := t.inner.DialAddressTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, in: &t.tcpIn, out: &t.tcpOut}, nil
}

func (t *countingTransport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown stops the inner transport, then the forwarders. They keep
// draining the inner transport's channels meanwhile (its listeners may be
// blocked handing over a packet), dropping what arrives. Safe to call more
// than once.
func (t *countingTransport) Shutdown() error {
	t.stopOnce.Do(func() {
		close(t.stopping)
		t.err = t.inner.Shutdown()
		close(t.stopped)
		t.wg.Wait()
	})
	return t.err
}

// countingConn counts the bytes read from and written to a stream.
type countingConn struct {
	net.Conn
	in, out *atomic.Uint64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.Add(uint64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out.Add(uint64(n))
	return n, err
}
