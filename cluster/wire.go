package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Wire format. Every message memberlist gossips for us is an envelope:
//
//	kind    1 byte   kindLeave, kindState or kindChunk
//	origin  string   name of the node that made the message, 1 to
//	                 MaxNameLen bytes
//	name    string   what the message is about, at most maxEnvelopeName
//	                 bytes: "leave" for a leave, key "/" name for a state
//	                 message, empty for a chunk
//	stamp   uvarint  origin's monotonic stamp (unix ns); newer wins
//	payload []byte   the rest of the packet
//
// A string is a uvarint length followed by its bytes. A chunk's payload is
// described in chunk.go, the push-pull state in state.go, the node
// metadata below.
//
// Kinds are never reused: 0x01 was a retired message kind, and kinds from
// 0x10 up were callers' own. Receivers drop a kind they do not know,
// without relaying it.
const (
	kindLeave byte = 0x02 // the origin leaves the cluster; no payload
	kindState byte = 0x03 // a State's broadcast that fits one message
	kindChunk byte = 0x04 // one chunk of a larger State broadcast
)

// MaxMessageSize bounds one encoded message (envelope included), well under
// memberlist's 1,400-byte packet once encryption, label and compound
// overheads are added.
const MaxMessageSize = 1024

// Length limits, so a message never outgrows a packet: node names longer
// than MaxNameLen or regions longer than MaxRegionLen are refused.
const (
	MaxNameLen   = 253
	MaxRegionLen = 64
	// maxEnvelopeName bounds an envelope's name: a state's key, "/" and
	// the broadcast's name.
	maxEnvelopeName = maxStateKeyLen + 1 + MaxStateNameLen
	// maxVersionLen and maxConfigHashLen bound the node metadata's
	// version and config hash.
	maxVersionLen    = 64
	maxConfigHashLen = 128
)

const (
	pushPullVersion byte = 2 // node name, then keyed states (1 was retired)
	metaVersion     byte = 1
	chunkVersion    byte = 1
)

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

// reader decodes what writer wrote. A string's length is checked against
// the bytes left before anything is allocated, so nothing a reader
// returns is larger than its input.
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

// envelope is the decoded header of a gossiped message.
type envelope struct {
	kind    byte
	origin  string
	name    string
	stamp   uint64
	payload []byte
}

// encodeEnvelope builds a message. The caller keeps origin and name within
// their limits (Create checks node names, Broadcast state names).
func encodeEnvelope(kind byte, origin, name string, stamp uint64, payload []byte) []byte {
	w := writer{b: make([]byte, 0, 16+len(origin)+len(name)+len(payload))}
	w.b = append(w.b, kind)
	w.str(origin, MaxNameLen)
	w.str(name, maxEnvelopeName)
	w.uvarint(stamp)
	w.b = append(w.b, payload...)
	return w.b
}

// decodeEnvelope decodes a message's header; the payload aliases b. It
// checks the origin and name lengths, not the kind.
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
	if e.origin == "" || len(e.origin) > MaxNameLen {
		return envelope{}, fmt.Errorf("cluster: message from a node name of %d bytes", len(e.origin))
	}
	if len(e.name) > maxEnvelopeName {
		return envelope{}, fmt.Errorf("cluster: message name of %d bytes", len(e.name))
	}
	e.payload = r.b
	return e, nil
}

// nodeMeta is what every node advertises about itself in memberlist's
// node metadata (limited to memberlist.MetaMaxSize, 512 bytes):
//
//	version     1 byte  metaVersion
//	region      string  at most MaxRegionLen bytes
//	version     string  at most maxVersionLen bytes
//	config hash string  at most maxConfigHashLen bytes
//
// Bytes after these are ignored (room for later fields).
type nodeMeta struct {
	Region, Version, ConfigHash string
}

func encodeMeta(m nodeMeta, limit int) []byte {
	w := writer{b: []byte{metaVersion}}
	w.str(m.Region, MaxRegionLen)
	w.str(m.Version, maxVersionLen)
	w.str(m.ConfigHash, maxConfigHashLen)
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
	if r.err != nil {
		return nodeMeta{}, r.err
	}
	if len(m.Region) > MaxRegionLen || len(m.Version) > maxVersionLen || len(m.ConfigHash) > maxConfigHashLen {
		return nodeMeta{}, fmt.Errorf("cluster: node meta field too long (region %d, version %d, config hash %d bytes)",
			len(m.Region), len(m.Version), len(m.ConfigHash))
	}
	return m, nil
}
