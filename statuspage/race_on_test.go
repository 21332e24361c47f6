//go:build race

package statuspage

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts vary by one or two between runs.
const raceEnabled = true
