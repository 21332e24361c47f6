package cluster

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// With the longest node name, key and broadcast name, every message a
// state broadcast puts on the wire, whole or in chunks, fits MaxMessageSize,
// and MaxMessageSize leaves room in memberlist's packet for its overheads.
func TestBroadcastEnvelopeFitsMaxMessageSize(t *testing.T) {
	if MaxMessageSize+100 > 1400 {
		t.Fatalf("MaxMessageSize %d leaves too little of a 1,400-byte packet", MaxMessageSize)
	}
	origin := strings.Repeat("n", MaxNameLen)
	key := strings.Repeat("k", maxStateKeyLen)
	name := strings.Repeat("x", MaxStateNameLen)
	c, err := Create(Config{Name: origin, Region: strings.Repeat("r", MaxRegionLen), Bind: "127.0.0.1:0",
		Profile: ProfileLocal, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	ch, err := c.AddState(key, &testState{})
	if err != nil {
		t.Fatal(err)
	}
	// The most a single message carries, counting the stamp at its largest.
	single := MaxMessageSize - len(encodeEnvelope(kindState, origin, key+"/"+name, math.MaxUint64, nil))
	t.Logf("longest names: one message carries %d bytes, a chunk %d", single, chunkDataSize(origin, key, name))
	for _, size := range []int{0, 1, single, single + 2, 5000, MaxStateMessage} {
		b := randBytes(t, size)
		// Never started: the messages wait in the transmit queue.
		c.queue.Reset()
		if err := ch.Broadcast(name, b); err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		msgs := c.queue.GetBroadcasts(0, math.MaxInt32)
		wantChunks := size > single
		if !wantChunks && len(msgs) != 1 {
			t.Fatalf("%d bytes: %d messages", size, len(msgs))
		}
		var asm reassembler
		var got []byte
		for _, m := range msgs {
			if len(m) > MaxMessageSize {
				t.Fatalf("%d bytes: a message of %d bytes", size, len(m))
			}
			e, err := decodeEnvelope(m)
			if err != nil || e.origin != origin {
				t.Fatalf("%d bytes: envelope from %.10q: %v", size, e.origin, err)
			}
			switch {
			case e.kind == kindState && !wantChunks:
				if e.name != key+"/"+name {
					t.Fatalf("name %.20q", e.name)
				}
				got = e.payload
			case e.kind == kindChunk && wantChunks:
				chk, err := decodeChunk(e.payload)
				if err != nil || chk.key != key || chk.name != name {
					t.Fatalf("%d bytes: chunk %v", size, err)
				}
				if msg, done, err := asm.add(e.origin, e.stamp, chk, time.Now()); err != nil {
					t.Fatal(err)
				} else if done {
					got = msg
				}
			default:
				t.Fatalf("%d bytes: message of kind %#x", size, e.kind)
			}
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("%d bytes: got %d bytes back", size, len(got))
		}
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	msg := encodeEnvelope(kindState, "node-1", "kv/name", 1763805600123456789, []byte("payload"))
	e, err := decodeEnvelope(msg)
	if err != nil || e.kind != kindState || e.origin != "node-1" || e.name != "kv/name" ||
		e.stamp != 1763805600123456789 || string(e.payload) != "payload" {
		t.Fatalf("%+v %v", e, err)
	}
	for i := range len(msg) - len("payload") {
		if _, err := decodeEnvelope(msg[:i]); err == nil {
			t.Errorf("truncated to %d bytes: decoded", i)
		}
	}
	if _, err := decodeEnvelope(nil); !errors.Is(err, errShort) {
		t.Error("empty envelope decoded")
	}
	bad := map[string][]byte{
		"no origin":   {kindState, 0, 0, 1},
		"long origin": append(append([]byte{kindState, 0xfe, 0x01}, strings.Repeat("o", MaxNameLen+1)...), 0, 1),
		"long name":   append(append([]byte{kindState, 1, 'a', 0xa2, 0x01}, strings.Repeat("n", maxEnvelopeName+1)...), 1),
		"length past": {kindState, 1, 'a', 9, 'x', 1},
	}
	for what, b := range bad {
		if _, err := decodeEnvelope(b); err == nil {
			t.Errorf("%s: decoded", what)
		}
	}
}

func TestMetaRoundTrip(t *testing.T) {
	m := nodeMeta{Region: "eu-west", Version: "v1.2.3", ConfigHash: strings.Repeat("f", 64)}
	b := encodeMeta(m, memberlist.MetaMaxSize)
	if len(b) >= memberlist.MetaMaxSize {
		t.Errorf("meta %d bytes", len(b))
	}
	if got, err := decodeMeta(b); err != nil || got != m {
		t.Errorf("meta: %+v %v", got, err)
	}
	// Later fields are ignored.
	if got, err := decodeMeta(append(bytes.Clone(b), 3, 'n', 'e', 'w')); err != nil || got != m {
		t.Errorf("meta with a later field: %+v %v", got, err)
	}
	huge := nodeMeta{Region: strings.Repeat("r", 1000), Version: strings.Repeat("v", 1000), ConfigHash: strings.Repeat("h", 1000)}
	hb := encodeMeta(huge, memberlist.MetaMaxSize)
	if len(hb) >= memberlist.MetaMaxSize {
		t.Errorf("huge meta %d bytes", len(hb))
	}
	if got, err := decodeMeta(hb); err != nil || len(got.Region) != MaxRegionLen || len(got.Version) != maxVersionLen ||
		len(got.ConfigHash) != maxConfigHashLen {
		t.Errorf("huge meta decoded to %d, %d, %d bytes: %v", len(got.Region), len(got.Version), len(got.ConfigHash), err)
	}
	bad := map[string][]byte{
		"empty":       nil,
		"version":     {2, 0, 0, 0},
		"truncated":   {metaVersion, 2, 'e'},
		"no hash":     {metaVersion, 0, 0},
		"long region": append(append([]byte{metaVersion, MaxRegionLen + 1}, strings.Repeat("r", MaxRegionLen+1)...), 0, 0),
		"huge length": {metaVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	}
	for what, b := range bad {
		if _, err := decodeMeta(b); err == nil {
			t.Errorf("%s: decoded", what)
		}
	}
}

// FuzzDecodeEnvelope: the decoder never panics, returns no more bytes than
// it was given, enforces the name limits, and what it accepts encodes back
// to the same envelope.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(encodeEnvelope(kindLeave, "node-1", "leave", 1, nil))
	f.Add(encodeEnvelope(kindState, "b", "kv/name", 1763805600123456789, []byte("delta")))
	msgs, _ := encodeChunks(strings.Repeat("n", MaxNameLen), math.MaxUint64, "k", "n", bytes.Repeat([]byte("z"), 1500))
	for _, m := range msgs {
		f.Add(m)
	}
	f.Add(encodeEnvelope(0x01, "b", "retired", 1, []byte("old")))
	f.Add([]byte{kindState})
	f.Add([]byte{kindState, 0, 0, 1})
	f.Add([]byte{kindState, 0xff, 0xff, 0xff, 0xff, 0x0f, 'a'})
	f.Add([]byte{kindState, 1, 'a', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := decodeEnvelope(in)
		if err != nil {
			return
		}
		if e.origin == "" || len(e.origin) > MaxNameLen || len(e.name) > maxEnvelopeName {
			t.Fatalf("accepted origin of %d bytes, name of %d", len(e.origin), len(e.name))
		}
		if n := 1 + len(e.origin) + len(e.name) + len(e.payload); n > len(in) {
			t.Fatalf("%d bytes decoded from %d", n, len(in))
		}
		if !bytes.HasSuffix(in, e.payload) {
			t.Fatal("payload is not the input's tail")
		}
		e2, err := decodeEnvelope(encodeEnvelope(e.kind, e.origin, e.name, e.stamp, e.payload))
		if err != nil || e2.kind != e.kind || e2.origin != e.origin || e2.name != e.name || e2.stamp != e.stamp ||
			!bytes.Equal(e2.payload, e.payload) {
			t.Fatalf("re-encoding: %+v %v, want %+v", e2, err, e)
		}
	})
}

// FuzzDecodeMeta: the decoder never panics, returns fields within their
// limits and no larger than its input, and what it accepts encodes back to
// the same metadata.
func FuzzDecodeMeta(f *testing.F) {
	f.Add(encodeMeta(nodeMeta{Region: "eu-west", Version: "v1.2.3", ConfigHash: strings.Repeat("f", 64)}, memberlist.MetaMaxSize))
	f.Add(encodeMeta(nodeMeta{}, memberlist.MetaMaxSize))
	f.Add(encodeMeta(nodeMeta{Region: strings.Repeat("r", 1000), Version: strings.Repeat("v", 1000),
		ConfigHash: strings.Repeat("h", 1000)}, memberlist.MetaMaxSize))
	f.Add([]byte{metaVersion})
	f.Add([]byte{metaVersion, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := decodeMeta(in)
		if err != nil {
			return
		}
		if len(m.Region) > MaxRegionLen || len(m.Version) > maxVersionLen || len(m.ConfigHash) > maxConfigHashLen {
			t.Fatalf("accepted fields of %d, %d, %d bytes", len(m.Region), len(m.Version), len(m.ConfigHash))
		}
		if n := 1 + len(m.Region) + len(m.Version) + len(m.ConfigHash); n > len(in) {
			t.Fatalf("%d bytes decoded from %d", n, len(in))
		}
		b := encodeMeta(m, memberlist.MetaMaxSize)
		if len(b) >= memberlist.MetaMaxSize {
			t.Fatalf("re-encoded to %d bytes", len(b))
		}
		if m2, err := decodeMeta(b); err != nil || m2 != m {
			t.Fatalf("re-encoding: %+v %v, want %+v", m2, err, m)
		}
	})
}
