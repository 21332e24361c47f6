package cluster

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// A State broadcast whose envelope would exceed MaxMessageSize travels as
// chunks: envelopes of kind kindChunk, with an empty name, all with the
// same stamp (the message's), each carrying in its payload:
//
//	version  1 byte    chunkVersion
//	digest   16 bytes  SHA-256 prefix of the whole message
//	index    uvarint   0 <= index < count
//	count    uvarint   1 <= count <= maxChunks
//	key      string    the state's key
//	name     string    the broadcast's name
//	data     []byte    the rest: this chunk's part of the message
//
// A receiver gathers the chunks of one message, identified by origin,
// stamp, key, name and digest, and checks the digest before handing the
// message to the state's Merge.

// Chunking and reassembly bounds.
const (
	// maxChunks bounds the chunks of one message. The worst-case chunk
	// carries 575 bytes of data (253-byte node name, 32-byte key,
	// MaxStateNameLen-byte name), so MaxStateMessage needs at most 57.
	maxChunks = 64
	// maxPartials bounds the incomplete messages kept per state; the oldest
	// is evicted for a new one.
	maxPartials = 64
	// partialTTL is how long an incomplete message's chunks are kept.
	partialTTL = 2 * time.Minute
	// doneTTL is how long a reassembled message is remembered, so that late
	// copies of its chunks are ignored; maxDone bounds how many are.
	doneTTL = 10 * time.Minute
	maxDone = 1024
)

const digestLen = 16

// chunk is a decoded chunk payload.
type chunk struct {
	digest       [digestLen]byte
	index, count int
	key, name    string
	data         []byte
}

func messageDigest(b []byte) [digestLen]byte {
	sum := sha256.Sum256(b)
	return [digestLen]byte(sum[:digestLen])
}

func appendChunkHeader(b []byte, digest [digestLen]byte, index, count int, key, name string) []byte {
	w := writer{b: append(b, chunkVersion)}
	w.b = append(w.b, digest[:]...)
	w.uvarint(uint64(index))
	w.uvarint(uint64(count))
	w.str(key, maxStateKeyLen)
	w.str(name, MaxStateNameLen)
	return w.b
}

func uvarintLen(v uint64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], v)
}

// chunkDataSize is the most data bytes one chunk of a message from origin
// can carry within MaxMessageSize (the stamp counted at its largest).
func chunkDataSize(origin, key, name string) int {
	env := 1 + uvarintLen(uint64(len(origin))) + len(origin) + uvarintLen(0) + binary.MaxVarintLen64
	hdr := 1 + digestLen + uvarintLen(maxChunks) + uvarintLen(maxChunks) +
		uvarintLen(uint64(len(key))) + len(key) + uvarintLen(uint64(len(name))) + len(name)
	return MaxMessageSize - env - hdr
}

// encodeChunks cuts a state message into chunk envelopes, each within
// MaxMessageSize.
func encodeChunks(origin string, stamp uint64, key, name string, b []byte) ([][]byte, error) {
	size := chunkDataSize(origin, key, name)
	if size <= 0 {
		return nil, fmt.Errorf("cluster: no room for data in a chunk of %q/%q from %q", key, name, origin)
	}
	count := max(1, (len(b)+size-1)/size)
	if count > maxChunks {
		return nil, fmt.Errorf("cluster: message of %d bytes needs %d chunks (max %d)", len(b), count, maxChunks)
	}
	digest := messageDigest(b)
	out := make([][]byte, 0, count)
	for i := range count {
		part := b[i*size : min(len(b), (i+1)*size)]
		payload := appendChunkHeader(make([]byte, 0, 64+len(key)+len(name)+len(part)), digest, i, count, key, name)
		payload = append(payload, part...)
		msg := encodeEnvelope(kindChunk, origin, "", stamp, payload)
		if len(msg) > MaxMessageSize { // cannot happen: chunkDataSize counts the worst case
			return nil, fmt.Errorf("cluster: chunk of %d bytes exceeds %d", len(msg), MaxMessageSize)
		}
		out = append(out, msg)
	}
	return out, nil
}

// decodeChunk decodes and validates a chunk payload. The data aliases p.
func decodeChunk(p []byte) (chunk, error) {
	if len(p) < 1+digestLen {
		return chunk{}, errShort
	}
	if p[0] != chunkVersion {
		return chunk{}, fmt.Errorf("cluster: unknown chunk version %d", p[0])
	}
	var c chunk
	copy(c.digest[:], p[1:1+digestLen])
	r := reader{b: p[1+digestLen:]}
	index, count := r.uvarint(), r.uvarint()
	c.key, c.name = r.str(), r.str()
	if r.err != nil {
		return chunk{}, r.err
	}
	if count < 1 || count > maxChunks {
		return chunk{}, fmt.Errorf("cluster: chunk count %d (want 1..%d)", count, maxChunks)
	}
	if index >= count {
		return chunk{}, fmt.Errorf("cluster: chunk index %d of %d", index, count)
	}
	if err := validKey(c.key); err != nil {
		return chunk{}, err
	}
	if err := validStateName(c.name); err != nil {
		return chunk{}, err
	}
	if len(r.b) > MaxMessageSize {
		return chunk{}, fmt.Errorf("cluster: chunk of %d data bytes", len(r.b))
	}
	c.index, c.count, c.data = int(index), int(count), r.b
	return c, nil
}

// messageID identifies one chunked message.
type messageID struct {
	origin    string
	stamp     uint64
	key, name string
	digest    [digestLen]byte
}

type partial struct {
	parts [][]byte
	got   int // chunks received
	size  int // data bytes received
	first time.Time
}

type doneEntry struct {
	id messageID
	at time.Time
}

// reassembler gathers chunks into messages. It is not safe for concurrent
// use: each state's delivery goroutine owns one.
type reassembler struct {
	partials map[messageID]*partial
	done     map[messageID]time.Time
	doneFIFO []doneEntry // in completion order
}

var errDigest = errors.New("cluster: reassembled message does not match its digest")

// add files one chunk of a message from origin with the given envelope
// stamp. It returns the message and true when this chunk completes it;
// nil and false while chunks are missing or for a duplicate chunk.
func (r *reassembler) add(origin string, stamp uint64, c chunk, now time.Time) ([]byte, bool, error) {
	if c.count < 1 || c.count > maxChunks || c.index < 0 || c.index >= c.count {
		return nil, false, fmt.Errorf("cluster: chunk %d of %d", c.index, c.count)
	}
	if r.partials == nil {
		r.partials = map[messageID]*partial{}
		r.done = map[messageID]time.Time{}
	}
	r.expire(now)
	id := messageID{origin: origin, stamp: stamp, key: c.key, name: c.name, digest: c.digest}
	if _, ok := r.done[id]; ok {
		return nil, false, nil // a late copy of a message already delivered
	}
	p := r.partials[id]
	if p == nil {
		if len(r.partials) >= maxPartials {
			r.evictOldest()
		}
		p = &partial{parts: make([][]byte, c.count), first: now}
		r.partials[id] = p
	}
	if len(p.parts) != c.count {
		return nil, false, fmt.Errorf("cluster: chunk %d claims %d chunks, earlier ones %d", c.index, c.count, len(p.parts))
	}
	if p.parts[c.index] != nil {
		return nil, false, nil // duplicate
	}
	if p.size+len(c.data) > MaxStateMessage {
		delete(r.partials, id)
		return nil, false, fmt.Errorf("cluster: chunked message exceeds %d bytes", MaxStateMessage)
	}
	p.parts[c.index] = append(make([]byte, 0, max(1, len(c.data))), c.data...) // non-nil even when empty
	p.got++
	p.size += len(c.data)
	if p.got < len(p.parts) {
		return nil, false, nil
	}
	delete(r.partials, id)
	msg := bytes.Join(p.parts, nil)
	if msg == nil {
		msg = []byte{}
	}
	if messageDigest(msg) != c.digest {
		return nil, false, errDigest
	}
	if len(r.doneFIFO) >= maxDone {
		r.forgetOldestDone()
	}
	r.done[id] = now
	r.doneFIFO = append(r.doneFIFO, doneEntry{id: id, at: now})
	return msg, true, nil
}

// expire drops incomplete messages older than partialTTL and forgets
// messages completed more than doneTTL ago.
func (r *reassembler) expire(now time.Time) {
	for id, p := range r.partials {
		if now.Sub(p.first) > partialTTL {
			delete(r.partials, id)
		}
	}
	for len(r.doneFIFO) > 0 && now.Sub(r.doneFIFO[0].at) > doneTTL {
		r.forgetOldestDone()
	}
}

func (r *reassembler) forgetOldestDone() {
	delete(r.done, r.doneFIFO[0].id)
	r.doneFIFO[0] = doneEntry{}
	r.doneFIFO = r.doneFIFO[1:]
	if len(r.doneFIFO) == 0 {
		r.doneFIFO = nil // let the backing array go
	}
}

func (r *reassembler) evictOldest() {
	var oldest messageID
	var at time.Time
	found := false
	for id, p := range r.partials {
		if !found || p.first.Before(at) {
			oldest, at, found = id, p.first, true
		}
	}
	if found {
		delete(r.partials, oldest)
	}
}
