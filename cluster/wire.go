package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Wire format. Every user message memberlist carries for us is an envelope:
//
//	kind    1 byte   KindVote, kindLeave, kindState, kindChunk, or a caller
//	                 kind >= MinUserKind
//	origin  string   name of the node that created the message
//	name    string   what the message is about (the check, for a vote;
//	                 key "/" name for a state message; empty for a chunk)
//	stamp   uvarint  origin's monotonic stamp (unix ns); newer wins
//	payload []byte   the rest of the packet
//
// A string is a uvarint length followed by its bytes. A chunk's payload is
// described in chunk.go, push-pull state in state.go.

// Message kinds below MinUserKind are reserved for the cluster package.
const (
	KindVote    byte = 0x01
	kindLeave   byte = 0x02
	kindState   byte = 0x03 // a State's broadcast that fits one message
	kindChunk   byte = 0x04 // one chunk of a larger State broadcast
	MinUserKind byte = 0x10
)

// MaxMessageSize bounds one encoded message (envelope included), well under
// memberlist's 1,400-byte packet once encryption, label and compound
// overheads are added.
const MaxMessageSize = 1024

// Length limits, so a message never outgrows a packet: node and check names
// longer than MaxNameLen or regions longer than MaxRegionLen are refused;
// an error code is cut to maxCodeLen.
const (
	MaxNameLen   = 253
	MaxRegionLen = 64
	maxCodeLen   = 128
)

const (
	stateVersion   byte = 1 // push-pull: the legacy Handler's state only
	stateVersion2  byte = 2 // push-pull: node name, then keyed states
	metaVersion    byte = 1
	chunkVersion   byte = 1
	legacyStateKey      = "_handler" // push-pull v2 key of the Handler's state
)

// VoteMsg is one region's vote on one check, as made by one node.
type VoteMsg struct {
	Node      string    // the node that voted (filled in by Broadcast)
	Region    string    // its region (filled in by Broadcast when empty)
	Check     string    // check name
	Vote      string    // up, down or abstain (quorum.Vote values)
	At        time.Time // when the vote was made; unix milliseconds on the wire
	Failures  int       // current run of consecutive failures
	Code      string    // error class or status code of the latest result
	LatencyMS float64   // latency of the latest result
	DownSince time.Time // when this node's vote turned down (zero unless Vote is down)
}

var errShort = errors.New("cluster: truncated message")

type writer struct{ b []byte }

func (w *writer) str(s string, max int) {
	if len(s) > max {
		s = s[:max]
	}
	w.b = binary.AppendUvarint(w.b, uint64(len(s)))
	w.b = append(w.b, s...)
}
func (w *writer) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *writer) varint(v int64)   { w.b = binary.AppendVarint(w.b, v) }

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.err = errShort
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) u64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.err = errShort
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// envelope is the decoded header of a gossiped message.
type envelope struct {
	kind    byte
	origin  string
	name    string
	stamp   uint64
	payload []byte
}

func encodeEnvelope(kind byte, origin, name string, stamp uint64, payload []byte) []byte {
	w := writer{b: make([]byte, 0, 16+len(origin)+len(name)+len(payload))}
	w.b = append(w.b, kind)
	w.str(origin, MaxNameLen)
	w.str(name, 2*MaxNameLen)
	w.uvarint(stamp)
	w.b = append(w.b, payload...)
	return w.b
}

func decodeEnvelope(b []byte) (envelope, error) {
	if len(b) == 0 {
		return envelope{}, errShort
	}
	r := reader{b: b[1:]}
	e := envelope{kind: b[0]}
	e.origin = r.str()
	e.name = r.str()
	e.stamp = r.uvarint()
	if r.err != nil {
		return envelope{}, r.err
	}
	e.payload = r.b
	return e, nil
}

// appendVote encodes v; on the wire (full false) without Node and Check,
// which the envelope's origin and name carry.
func appendVote(b []byte, v VoteMsg, full bool) []byte {
	w := writer{b: b}
	if full {
		w.str(v.Node, MaxNameLen)
	}
	w.str(v.Region, MaxRegionLen)
	if full {
		w.str(v.Check, MaxNameLen)
	}
	w.str(v.Vote, 16)
	var at int64
	if !v.At.IsZero() {
		at = v.At.UnixMilli()
	}
	w.varint(at)
	f := v.Failures
	if f < 0 {
		f = 0
	}
	w.uvarint(uint64(f))
	w.str(v.Code, maxCodeLen)
	w.b = binary.LittleEndian.AppendUint64(w.b, math.Float64bits(v.LatencyMS))
	var since int64
	if !v.DownSince.IsZero() {
		since = v.DownSince.UnixMilli()
	}
	w.varint(since)
	return w.b
}

func readVote(r *reader, full bool) VoteMsg {
	var v VoteMsg
	if full {
		v.Node = r.str()
	}
	v.Region = r.str()
	if full {
		v.Check = r.str()
	}
	v.Vote = r.str()
	if at := r.varint(); at != 0 {
		v.At = time.UnixMilli(at)
	}
	v.Failures = int(min(r.uvarint(), math.MaxInt32))
	v.Code = r.str()
	v.LatencyMS = math.Float64frombits(r.u64())
	if since := r.varint(); since != 0 {
		v.DownSince = time.UnixMilli(since)
	}
	return v
}

// EncodeVote encodes one vote (with its node name) in the compact binary
// form used on the wire.
func EncodeVote(v VoteMsg) []byte { return appendVote(nil, v, true) }

// DecodeVote decodes what EncodeVote produced.
func DecodeVote(b []byte) (VoteMsg, error) {
	r := reader{b: b}
	v := readVote(&r, true)
	if r.err != nil {
		return VoteMsg{}, r.err
	}
	return v, nil
}

// EncodeVotes encodes a vote table, for example as a Handler's LocalState
// for push-pull anti-entropy.
func EncodeVotes(vs []VoteMsg) []byte {
	b := binary.AppendUvarint(nil, uint64(len(vs)))
	for _, v := range vs {
		b = appendVote(b, v, true)
	}
	return b
}

// DecodeVotes decodes what EncodeVotes produced.
func DecodeVotes(b []byte) ([]VoteMsg, error) {
	if len(b) == 0 {
		return nil, nil
	}
	r := reader{b: b}
	n := r.uvarint()
	if r.err != nil {
		return nil, r.err
	}
	if n > uint64(len(b)) { // every vote takes more than one byte
		return nil, fmt.Errorf("cluster: vote table claims %d votes in %d bytes", n, len(b))
	}
	vs := make([]VoteMsg, 0, n)
	for range n {
		v := readVote(&r, true)
		if r.err != nil {
			return nil, r.err
		}
		vs = append(vs, v)
	}
	return vs, nil
}

// nodeMeta is what every node advertises about itself in memberlist's
// node metadata (limited to memberlist.MetaMaxSize, 512 bytes).
type nodeMeta struct {
	Region, Version, ConfigHash string
}

func encodeMeta(m nodeMeta, limit int) []byte {
	w := writer{b: []byte{metaVersion}}
	w.str(m.Region, MaxRegionLen)
	w.str(m.Version, 64)
	w.str(m.ConfigHash, 128)
	if len(w.b) > limit { // cannot happen with the caps above and limit 512
		return w.b[:1]
	}
	return w.b
}

func decodeMeta(b []byte) (nodeMeta, error) {
	if len(b) == 0 {
		return nodeMeta{}, errShort
	}
	if b[0] != metaVersion {
		return nodeMeta{}, fmt.Errorf("cluster: unknown node meta version %d", b[0])
	}
	r := reader{b: b[1:]}
	var m nodeMeta
	m.Region = r.str()
	m.Version = r.str()
	m.ConfigHash = r.str()
	return m, r.err
}
