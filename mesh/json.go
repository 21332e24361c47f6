package mesh

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// The smaller tables travel as JSON: a format byte, then an array of
// entries. A broadcast carries the entries it changes, a full state all of
// the table's.
const fmtJSON byte = 1

// maxJSONEntries bounds the entries of one JSON message.
const maxJSONEntries = 100_000

func encodeEntries[V any](vs []V) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(fmtJSON)
	if err := json.NewEncoder(&buf).Encode(vs); err != nil {
		return nil, fmt.Errorf("mesh: encode: %w", err)
	}
	return buf.Bytes(), nil
}

// broadcastEntries gossips entries under name.
func broadcastEntries[V any](b Broadcaster, name string, vs ...V) error {
	msg, err := encodeEntries(vs)
	if err != nil {
		return err
	}
	return b.Broadcast(name, msg)
}

func decodeEntries[V any](b []byte) ([]V, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] != fmtJSON {
		return nil, fmt.Errorf("mesh: unknown format %d", b[0])
	}
	var vs []V
	dec := json.NewDecoder(bytes.NewReader(b[1:]))
	if err := dec.Decode(&vs); err != nil {
		return nil, fmt.Errorf("mesh: decode: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("mesh: trailing data")
	}
	if len(vs) > maxJSONEntries {
		return nil, fmt.Errorf("mesh: %d entries in one message", len(vs))
	}
	return vs, nil
}

// invalid collects how many entries of one message failed validation and
// the first reason.
type invalid struct {
	n     int
	first error
}

func (iv *invalid) add(err error) {
	if iv.n == 0 {
		iv.first = err
	}
	iv.n++
}

func (iv *invalid) err(what, from string) error {
	if iv.n == 0 {
		return nil
	}
	return fmt.Errorf("mesh: %d invalid %s from %s, first: %w", iv.n, what, from, iv.first)
}

// retain drops from m, a table keyed by check, the checks not in keep, and
// returns the set of checks to accept from now on.
func retain[V any](m map[string]V, keep map[string]bool) map[string]bool {
	k := make(map[string]bool, len(keep))
	for c, ok := range keep {
		if ok {
			k[c] = true
		}
	}
	for c := range m {
		if !k[c] {
			delete(m, c)
		}
	}
	return k
}
