//go:build !linux

package snapshot

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

const traceMethod = "tcp-syn"

func traceTCP(context.Context, netip.AddrPort, int, time.Duration) ([]Hop, error) {
	return nil, errors.New("the TCP traceroute needs Linux (IP_RECVERR)")
}
