package mesh

import (
	"fmt"
	"log/slog"
	"sync"
)

// Asks carries "probe this check now" requests (fast confirmation): a node
// whose probe just failed, or is hanging, asks every other node to probe
// the check at once. It holds no state: MarshalBinary shares nothing, and
// a request that is lost is only a slower confirmation.
type Asks struct {
	self  string
	onAsk func(check, from string)
	log   *slog.Logger

	mu sync.Mutex
	b  Broadcaster
}

// fmtAsk starts a request: the check's name follows.
const fmtAsk byte = 1

// NewAsks returns the request channel; onAsk (may be nil) gets peers'
// requests.
func NewAsks(self string, onAsk func(check, from string), log *slog.Logger) *Asks {
	if onAsk == nil {
		onAsk = func(string, string) {}
	}
	return &Asks{self: self, onAsk: onAsk, log: log, b: nopBroadcaster{}}
}

func (t *Asks) setBroadcaster(b Broadcaster) {
	t.mu.Lock()
	t.b = b
	t.mu.Unlock()
}

// Ask asks every other node to probe check now.
func (t *Asks) Ask(check string) error {
	if !validCheck(check) {
		return fmt.Errorf("mesh: ask: bad check name %q", check)
	}
	t.mu.Lock()
	b := t.b
	t.mu.Unlock()
	return b.Broadcast(broadcastName("ask", check), append([]byte{fmtAsk}, check...))
}

// MarshalBinary implements cluster.State: requests are not state.
func (t *Asks) MarshalBinary() ([]byte, error) { return nil, nil }

// Merge implements cluster.State: one request.
func (t *Asks) Merge(from string, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if b[0] != fmtAsk {
		return fmt.Errorf("mesh: ask from %s: unknown format %d", from, b[0])
	}
	check := string(b[1:])
	if !validCheck(check) {
		return fmt.Errorf("mesh: ask from %s: bad check name %q", from, check)
	}
	if from == t.self {
		return nil
	}
	t.onAsk(check, from)
	return nil
}
