package snapshot

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// traceMethod names how the traceroute is made.
const traceMethod = "tcp-syn"

// traceStagger is the time between two TTLs' SYNs.
const traceStagger = 20 * time.Millisecond

// traceTCP sends one TCP SYN per TTL from 1 to maxHops toward dst,
// traceStagger apart and none past a TTL that reached the target, each on
// its own socket with IP_TTL set and IP_RECVERR on: the
// ICMP time-exceeded (or unreachable) answer a router sends back aborts that
// socket's connect, and the kernel queues the answer's source address on
// the socket's error queue, read with MSG_ERRQUEUE. No raw socket, so no
// CAP_NET_RAW. A SYN-ACK (connected) or a RST (refused) is the target.
func traceTCP(ctx context.Context, dst netip.AddrPort, maxHops int, budget time.Duration) ([]Hop, error) {
	deadline := time.Now().Add(budget)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	hops := make([]Hop, maxHops)
	errs := make([]error, maxHops)
	var (
		wg      sync.WaitGroup
		reached atomic.Int32 // the lowest TTL that reached the target so far; 0: none
	)
	sent := 0
	for i := range hops {
		// TTLs go out traceStagger apart, and none beyond one that already
		// reached the target: a target a few hops away sees a few SYNs.
		if r := reached.Load(); r != 0 && int(r) <= i {
			break
		}
		if i > 0 && ctx.Err() == nil {
			select {
			case <-time.After(traceStagger):
			case <-ctx.Done():
			}
		}
		if r := reached.Load(); (r != 0 && int(r) <= i) || time.Now().After(deadline) {
			break
		}
		sent++
		wg.Add(1)
		go func() {
			defer wg.Done()
			hops[i], errs[i] = synHop(dst, i+1, deadline)
			if hops[i].Reached {
				for {
					r := reached.Load()
					if (r != 0 && int(r) <= i+1) || reached.CompareAndSwap(r, int32(i+1)) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	hops = hops[:sent]
	for _, err := range errs {
		if err != nil {
			return nil, err // a socket error says the method does not work here
		}
	}
	// Keep hops up to the first that reached the target.
	for i := range hops {
		if hops[i].Reached {
			return hops[:i+1], nil
		}
	}
	// Drop the trailing silent hops past the last that answered.
	last := -1
	for i := range hops {
		if hops[i].Addr != "" {
			last = i
		}
	}
	return hops[:min(len(hops), last+2)], nil
}

// synHop sends one SYN with the given TTL and waits for what answers it.
func synHop(dst netip.AddrPort, ttl int, deadline time.Time) (Hop, error) {
	h := Hop{TTL: ttl}
	family, level, ttlOpt, errOpt := unix.AF_INET, unix.IPPROTO_IP, unix.IP_TTL, unix.IP_RECVERR
	var sa unix.Sockaddr
	addr := dst.Addr().Unmap()
	if addr.Is4() {
		sa = &unix.SockaddrInet4{Port: int(dst.Port()), Addr: addr.As4()}
	} else {
		family, level, ttlOpt, errOpt = unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, unix.IPV6_RECVERR
		sa = &unix.SockaddrInet6{Port: int(dst.Port()), Addr: addr.As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return h, err
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, level, ttlOpt, ttl); err != nil {
		return h, err
	}
	if err := unix.SetsockoptInt(fd, level, errOpt, 1); err != nil {
		return h, err
	}
	start := time.Now()
	if err := unix.Connect(fd, sa); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		h.Error = err.Error()
		return h, nil
	}
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return h, nil // no answer: "*"
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT | unix.POLLERR}}
		n, err := unix.Poll(pfd, int(left/time.Millisecond)+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return h, err
		}
		if n == 0 {
			continue
		}
		break
	}
	h.RTTMS = ms(time.Since(start))
	soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return h, err
	}
	switch unix.Errno(soerr) {
	case 0, unix.ECONNREFUSED:
		h.Addr, h.Reached = addr.String(), true
		if soerr != 0 {
			h.Error = "refused"
		}
		return h, nil
	}
	// An ICMP answer: its source is on the error queue.
	from, icmpType, ok := readErrQueue(fd, family)
	if !ok {
		h.Error = unix.Errno(soerr).Error()
		return h, nil
	}
	h.Addr = from.String()
	if from == addr {
		h.Reached = true
	}
	if !isTimeExceeded(family, icmpType) {
		h.Error = unix.Errno(soerr).Error() // unreachable, prohibited...
	}
	return h, nil
}

func isTimeExceeded(family int, t uint8) bool {
	if family == unix.AF_INET6 {
		return t == 3 // ICMPv6 time exceeded
	}
	return t == 11
}

// readErrQueue reads one message of fd's error queue and returns the
// address of the node that sent the ICMP error and its type.
func readErrQueue(fd, family int) (netip.Addr, uint8, bool) {
	var buf [64]byte
	oob := make([]byte, 512)
	_, oobn, _, _, err := unix.Recvmsg(fd, buf[:], oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
	if err != nil {
		return netip.Addr{}, 0, false
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return netip.Addr{}, 0, false
	}
	for _, m := range msgs {
		isErr := (m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR) ||
			(m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR)
		const eeSize = int(unsafe.Sizeof(unix.SockExtendedErr{}))
		if !isErr || len(m.Data) < eeSize {
			continue
		}
		ee := (*unix.SockExtendedErr)(unsafe.Pointer(&m.Data[0]))
		if ee.Origin != unix.SO_EE_ORIGIN_ICMP && ee.Origin != unix.SO_EE_ORIGIN_ICMP6 {
			continue
		}
		off := m.Data[eeSize:] // the offender's sockaddr
		switch {
		case len(off) >= unix.SizeofSockaddrInet4 && int(*(*uint16)(unsafe.Pointer(&off[0]))) == unix.AF_INET:
			sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&off[0]))
			return netip.AddrFrom4(sa.Addr), ee.Type, true
		case len(off) >= unix.SizeofSockaddrInet6 && int(*(*uint16)(unsafe.Pointer(&off[0]))) == unix.AF_INET6:
			sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&off[0]))
			return netip.AddrFrom16(sa.Addr).Unmap(), ee.Type, true
		}
	}
	return netip.Addr{}, 0, false
}
