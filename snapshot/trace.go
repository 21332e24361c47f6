package snapshot

import "time"

// Hop is one TTL of a traceroute.
type Hop struct {
	TTL     int     `json:"ttl"`
	Addr    string  `json:"addr,omitempty"` // "" when nothing answered ("*")
	RTTMS   float64 `json:"rtt_ms,omitempty"`
	Reached bool    `json:"reached,omitempty"` // the target itself answered
	Error   string  `json:"error,omitempty"`   // unreachable, prohibited, refused...
}

func ms(d time.Duration) float64 {
	return float64(d.Round(10*time.Microsecond)) / float64(time.Millisecond)
}
