package cluster

import (
	"bytes"
	crand "crypto/rand"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := crand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// splitChunks cuts b into chunk envelopes and decodes them back, as a
// receiver's NotifyMsg does.
func splitChunks(t testing.TB, origin string, stamp uint64, key, name string, b []byte) []chunk {
	t.Helper()
	msgs, err := encodeChunks(origin, stamp, key, name, b)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]chunk, 0, len(msgs))
	for _, m := range msgs {
		if len(m) > MaxMessageSize {
			t.Fatalf("chunk envelope of %d bytes", len(m))
		}
		e, err := decodeEnvelope(m)
		if err != nil {
			t.Fatal(err)
		}
		if e.kind != kindChunk || e.origin != origin || e.stamp != stamp || e.name != "" {
			t.Fatalf("chunk envelope %+v", e)
		}
		c, err := decodeChunk(e.payload)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// feed adds chunks in order; it returns the messages completed.
func feed(t testing.TB, r *reassembler, origin string, stamp uint64, cs []chunk, now time.Time) [][]byte {
	t.Helper()
	var out [][]byte
	for _, c := range cs {
		msg, ok, err := r.add(origin, stamp, c, now)
		if err != nil {
			t.Fatalf("chunk %d: %v", c.index, err)
		}
		if ok {
			out = append(out, msg)
		}
	}
	return out
}

func TestChunkRoundTrip(t *testing.T) {
	now := time.Now()
	for _, size := range []int{0, 1, 500, 900, 5000, 20000, MaxStateMessage} {
		b := randBytes(t, size)
		cs := splitChunks(t, "node-a", 42, "alerts", "msg-1", b)
		if size > 0 && len(cs) != (size+chunkDataSize("node-a", "alerts", "msg-1")-1)/chunkDataSize("node-a", "alerts", "msg-1") {
			t.Errorf("%d bytes: %d chunks", size, len(cs))
		}
		var r reassembler
		got := feed(t, &r, "node-a", 42, cs, now)
		if len(got) != 1 || !bytes.Equal(got[0], b) {
			t.Fatalf("%d bytes: reassembled %d messages", size, len(got))
		}
		if len(r.partials) != 0 || len(r.done) != 1 {
			t.Errorf("%d bytes: %d partials, %d done", size, len(r.partials), len(r.done))
		}
	}
}

func TestChunkSingle(t *testing.T) {
	b := []byte("one small message")
	cs := splitChunks(t, "a", 1, "k", "n", b)
	if len(cs) != 1 || cs[0].count != 1 || cs[0].index != 0 {
		t.Fatalf("chunks %+v", cs)
	}
	var r reassembler
	msg, ok, err := r.add("a", 1, cs[0], time.Now())
	if err != nil || !ok || !bytes.Equal(msg, b) {
		t.Fatalf("%q %v %v", msg, ok, err)
	}
}

func TestChunkOutOfOrderAndDuplicates(t *testing.T) {
	now := time.Now()
	b := randBytes(t, 20000)
	cs := splitChunks(t, "a", 7, "alerts", "big", b)
	if len(cs) < 20 {
		t.Fatalf("only %d chunks", len(cs))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	// Every chunk twice, shuffled: the message completes exactly once.
	all := append(append([]chunk(nil), cs...), cs...)
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	var r reassembler
	got := feed(t, &r, "a", 7, all, now)
	if len(got) != 1 || !bytes.Equal(got[0], b) {
		t.Fatalf("%d messages", len(got))
	}
	// Late copies, after completion, are ignored.
	if got := feed(t, &r, "a", 7, cs, now.Add(time.Minute)); len(got) != 0 {
		t.Errorf("late copies delivered %d messages", len(got))
	}
	// The same content sent again later (a new stamp) is a new message.
	cs2 := splitChunks(t, "a", 8, "alerts", "big", b)
	if got := feed(t, &r, "a", 8, cs2, now.Add(time.Minute)); len(got) != 1 {
		t.Errorf("a resend delivered %d messages", len(got))
	}
	// Chunks from two origins, or for two keys, never mix.
	var r2 reassembler
	other := splitChunks(t, "b", 7, "alerts", "big", b)
	otherKey := splitChunks(t, "a", 7, "silences", "big", b)
	n := 0
	for i := range cs {
		for _, x := range []struct {
			origin string
			c      chunk
		}{{"a", cs[i]}, {"b", other[i]}, {"a", otherKey[i]}} {
			_, ok, err := r2.add(x.origin, 7, x.c, now)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				n++
			}
		}
	}
	if n != 3 || len(r2.partials) != 0 {
		t.Errorf("%d messages, %d partials", n, len(r2.partials))
	}
}

func TestChunkCorruptDigest(t *testing.T) {
	b := randBytes(t, 3000)
	cs := splitChunks(t, "a", 1, "k", "n", b)
	cs[1].data = bytes.Clone(cs[1].data)
	cs[1].data[0] ^= 1
	var r reassembler
	var err error
	for _, c := range cs {
		var ok bool
		if _, ok, err = r.add("a", 1, c, time.Now()); ok {
			t.Fatal("a corrupted message was delivered")
		}
	}
	if !errors.Is(err, errDigest) {
		t.Errorf("last chunk: %v", err)
	}
	if len(r.partials) != 0 || len(r.done) != 0 {
		t.Errorf("%d partials, %d done after a bad digest", len(r.partials), len(r.done))
	}
}

func TestChunkLimits(t *testing.T) {
	// Too many chunks: the encoder refuses, the decoder rejects.
	if _, err := encodeChunks("a", 1, "k", "n", make([]byte, 64*MaxMessageSize)); err == nil {
		t.Error("encoded a message needing more than maxChunks chunks")
	}
	hdr := func(index, count int) []byte {
		return appendChunkHeader(nil, [digestLen]byte{1}, index, count, "k", "n")
	}
	if _, err := decodeChunk(hdr(0, maxChunks+1)); err == nil {
		t.Error("decoded a chunk of a message with too many chunks")
	}
	if _, err := decodeChunk(hdr(3, 3)); err == nil {
		t.Error("decoded a chunk whose index is its count")
	}
	if _, err := decodeChunk(hdr(0, 0)); err == nil {
		t.Error("decoded a chunk of zero chunks")
	}
	if _, err := decodeChunk(appendChunkHeader(nil, [digestLen]byte{}, 0, 2, "Bad_Key", "n")); err == nil {
		t.Error("decoded a chunk with a bad key")
	}
	if _, err := decodeChunk(appendChunkHeader(nil, [digestLen]byte{}, 0, 2, "k", "")); err == nil {
		t.Error("decoded a chunk with an empty name")
	}
	if _, err := decodeChunk(append(hdr(0, 2), make([]byte, MaxMessageSize+1)...)); err == nil {
		t.Error("decoded an oversized chunk")
	}
	bad := hdr(0, 2)
	bad[0] = 9
	if _, err := decodeChunk(bad); err == nil {
		t.Error("decoded an unknown chunk version")
	}
	for i := range len(hdr(1, 2)) {
		if _, err := decodeChunk(hdr(1, 2)[:i]); err == nil {
			t.Errorf("decoded a chunk truncated to %d bytes", i)
		}
	}
	// A chunk whose count disagrees with its message's earlier chunks.
	var r reassembler
	cs := splitChunks(t, "a", 1, "k", "n", randBytes(t, 3000))
	if _, _, err := r.add("a", 1, cs[0], time.Now()); err != nil {
		t.Fatal(err)
	}
	c := cs[1]
	c.count++
	if _, _, err := r.add("a", 1, c, time.Now()); err == nil {
		t.Error("accepted a chunk whose count disagrees")
	}
	// The reassembler checks what it is given too.
	c.index = c.count
	if _, _, err := r.add("a", 1, c, time.Now()); err == nil {
		t.Error("reassembler accepted an index out of range")
	}
	// A message that grows past MaxStateMessage is dropped.
	var r2 reassembler
	big := chunk{key: "k", name: "n", count: maxChunks, data: make([]byte, MaxMessageSize)}
	var err error
	for i := range maxChunks {
		big.index = i
		if _, _, err = r2.add("a", 1, big, time.Now()); err != nil {
			break
		}
	}
	if err == nil || len(r2.partials) != 0 {
		t.Errorf("oversized message: %v, %d partials", err, len(r2.partials))
	}

	// The worst case fits maxChunks.
	long := strings.Repeat("n", MaxNameLen)
	size := chunkDataSize(long, strings.Repeat("k", maxStateKeyLen), strings.Repeat("x", MaxStateNameLen))
	if n := (MaxStateMessage + size - 1) / size; n > maxChunks {
		t.Errorf("worst case needs %d chunks of %d bytes", n, size)
	}
	cs = splitChunks(t, long, 1<<63, strings.Repeat("k", maxStateKeyLen), strings.Repeat("x", MaxStateNameLen), randBytes(t, MaxStateMessage))
	t.Logf("worst case: %d chunks of %d data bytes", len(cs), size)
}

func TestChunkPartialsBoundedAndExpire(t *testing.T) {
	now := time.Now()
	var r reassembler
	// Many incomplete messages: at most maxPartials kept, the oldest evicted.
	first := splitChunks(t, "a", 1, "k", "n", randBytes(t, 3000))
	if _, _, err := r.add("a", 1, first[0], now); err != nil {
		t.Fatal(err)
	}
	for i := range 3 * maxPartials {
		cs := splitChunks(t, "a", uint64(100+i), "k", "n", randBytes(t, 3000))
		if _, _, err := r.add("a", uint64(100+i), cs[0], now.Add(time.Duration(i+1)*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if len(r.partials) > maxPartials {
			t.Fatalf("%d partials", len(r.partials))
		}
	}
	// The first message's partial was evicted: its remaining chunks do not
	// complete it.
	if got := feed(t, &r, "a", 1, first[1:], now.Add(time.Second)); len(got) != 0 {
		t.Error("an evicted message completed")
	}
	// Partials expire after partialTTL.
	cs := splitChunks(t, "a", 2, "k", "n", randBytes(t, 3000))
	if _, _, err := r.add("a", 2, cs[0], now); err != nil {
		t.Fatal(err)
	}
	later := now.Add(partialTTL + time.Second)
	if got := feed(t, &r, "a", 2, cs[1:], later); len(got) != 0 {
		t.Error("an expired message completed")
	}
	for _, p := range r.partials {
		if later.Sub(p.first) > partialTTL {
			t.Error("an expired partial is still kept")
		}
	}
	// Completed messages are remembered at most maxDone, for doneTTL.
	var r2 reassembler
	for i := range maxDone + 10 {
		cs := splitChunks(t, "a", uint64(i), "k", "n", []byte{byte(i)})
		feed(t, &r2, "a", uint64(i), cs, now)
	}
	if len(r2.done) != maxDone || len(r2.doneFIFO) != maxDone {
		t.Errorf("%d done, %d in FIFO", len(r2.done), len(r2.doneFIFO))
	}
	cs = splitChunks(t, "a", 1<<40, "k", "n", []byte("x"))
	feed(t, &r2, "a", 1<<40, cs, now.Add(doneTTL+time.Second))
	if len(r2.done) != 1 {
		t.Errorf("%d done after doneTTL", len(r2.done))
	}
}

// FuzzChunkReassembly feeds arbitrary chunk payloads to the decoder and
// the reassembler: nothing panics, bounds hold, and whatever completes
// matches its digest.
func FuzzChunkReassembly(f *testing.F) {
	for _, size := range []int{0, 10, 2000} {
		msgs, err := encodeChunks("a", 1, "k", "n", bytes.Repeat([]byte{7}, size))
		if err != nil {
			f.Fatal(err)
		}
		var all []byte
		for _, m := range msgs {
			e, _ := decodeEnvelope(m)
			f.Add(e.payload)
			all = append(all, byte(len(e.payload)>>8), byte(len(e.payload)))
			all = append(all, e.payload...)
		}
		f.Add(all)
	}
	f.Add([]byte{})
	f.Add([]byte{chunkVersion})
	f.Add(appendChunkHeader(nil, [digestLen]byte{}, 0, 1, "k", "n"))
	f.Add(appendChunkHeader(nil, messageDigest(nil), 0, 1, "k", "n"))
	f.Add(appendChunkHeader(nil, [digestLen]byte{}, 63, 64, "k", "n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var r reassembler
		now := time.Unix(1e9, 0)
		// The input as one chunk, then as a sequence of length-prefixed
		// chunks (of one message or several).
		inputs := [][]byte{in}
		for rest := in; len(rest) >= 2; {
			n := int(rest[0])<<8 | int(rest[1])
			rest = rest[2:]
			n = min(n, len(rest))
			inputs = append(inputs, rest[:n])
			rest = rest[n:]
		}
		for i, p := range inputs {
			c, err := decodeChunk(p)
			if err != nil {
				continue
			}
			if c.count < 1 || c.count > maxChunks || c.index >= c.count || len(c.data) > MaxMessageSize {
				t.Fatalf("decoded an invalid chunk %+v", c)
			}
			msg, ok, err := r.add("a", 1, c, now.Add(time.Duration(i)*time.Second))
			if ok && (err != nil || messageDigest(msg) != c.digest || len(msg) > MaxStateMessage) {
				t.Fatalf("delivered %d bytes not matching the digest (err %v)", len(msg), err)
			}
			if len(r.partials) > maxPartials || len(r.done) > maxDone {
				t.Fatalf("%d partials, %d done", len(r.partials), len(r.done))
			}
			for _, p := range r.partials {
				if len(p.parts) > maxChunks || p.size > MaxStateMessage {
					t.Fatalf("partial of %d parts, %d bytes", len(p.parts), p.size)
				}
			}
		}
	})
}
