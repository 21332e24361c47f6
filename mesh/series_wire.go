package mesh

import (
	"encoding/binary"
	"fmt"

	"github.com/vantage-dev/vantage/store"
)

// Wire format of the series table. Every message starts with the format
// byte seriesFormat and a kind:
//
//	rows    to string ("" = every node), origin string, region string,
//	        step byte, count uvarint, then count rows:
//	          check   string  "" = the previous row's check
//	          unit    varint  start / step length, minus the previous row's
//	          count, failures, latencies  uvarint
//	          when latencies > 0: min, max - min, sum - latencies*min  uvarint (µs)
//	          bins    uvarint, then bins times: index byte, count uvarint
//	        then, optionally: padding uvarint n, n zero bytes (ignored)
//	digest  sender string, cutoff varint (unix ms), origins uvarint, each:
//	          origin string, blocks uvarint, each:
//	            step byte, block uvarint (start / block length),
//	            hash 8 bytes (little endian), buckets uvarint
//	want    to string, origin string, step byte, block uvarint, cutoff
//	        varint (unix ms), session 8 bytes, units uvarint, each:
//	          offset uvarint (units from the block's start), hash 8 bytes
//
// A want lists the units the asking node holds; the answer is rows
// messages addressed to it with the buckets of every unit of the block
// that ended by cutoff and whose hash differs.
const seriesFormat byte = 0x53

const (
	kindRows   byte = 1
	kindDigest byte = 2
	kindWant   byte = 3
)

// Bounds of what a peer may send about series.
const (
	// MaxOrigins bounds the nodes whose buckets this node keeps: buckets
	// of a new node beyond it are refused.
	MaxOrigins = 64
	// maxDigestBlocks bounds the blocks of one origin in a digest.
	maxDigestBlocks = 4096
	// maxBins bounds a row's histogram entries.
	maxBins = store.HistBuckets
	// maxFigure bounds a row's numbers before validation.
	maxFigure = 1 << 50
	// maxRowCount bounds a row's results (a day's of one node and check).
	maxRowCount = 1 << 25
	// seriesPage is the most bytes of one rows message (the cluster's
	// bound, 32 KiB, with room to spare).
	seriesPage = 30 << 10
)

// rowsMsg is a rows message's header.
type rowsMsg struct {
	To, Origin, Region string
	Step               store.Step
}

// rowsEncoder builds rows messages.
type rowsEncoder struct {
	w         writer
	hdr       rowsMsg
	countAt   int // offset of the count's placeholder
	n         int
	prevCheck string
	prevUnit  int64
}

// reset starts a message.
func (e *rowsEncoder) reset(h rowsMsg) {
	e.w.b = append(e.w.b[:0], seriesFormat, kindRows)
	e.w.str(h.To, MaxNameLen)
	e.w.str(h.Origin, MaxNameLen)
	e.w.str(h.Region, MaxRegionLen)
	e.w.b = append(e.w.b, byte(h.Step))
	e.countAt = len(e.w.b)
	e.hdr, e.n, e.prevCheck, e.prevUnit = h, 0, "", 0
}

func (e *rowsEncoder) size() int { return len(e.w.b) + binary.MaxVarintLen32 }

// add appends one bucket; its node, region and step are the header's.
func (e *rowsEncoder) add(b *store.Bucket) {
	if b.Check == e.prevCheck && e.n > 0 {
		e.w.str("", MaxNameLen)
	} else {
		e.w.str(b.Check, MaxNameLen)
	}
	unit := b.Start.UnixMilli() / int64(e.hdr.Step.Duration()/1e6)
	e.w.varint(unit - e.prevUnit)
	e.prevCheck, e.prevUnit = b.Check, unit
	a := &b.Agg
	e.w.uvarint(uint64(a.Count))
	e.w.uvarint(uint64(a.Failures))
	e.w.uvarint(uint64(a.LatCount))
	if a.LatCount > 0 {
		e.w.uvarint(uint64(a.LatMinUS))
		e.w.uvarint(uint64(a.LatMaxUS - a.LatMinUS))
		e.w.uvarint(uint64(a.LatSumUS - a.LatCount*a.LatMinUS))
	}
	bins := 0
	for _, c := range a.Hist {
		if c > 0 {
			bins++
		}
	}
	e.w.uvarint(uint64(bins))
	for i, c := range a.Hist {
		if c > 0 {
			e.w.b = append(e.w.b, byte(i))
			e.w.uvarint(c)
		}
	}
	e.n++
}

// bytes finishes the message: the count goes after the header.
func (e *rowsEncoder) bytes() []byte {
	out := make([]byte, 0, len(e.w.b)+binary.MaxVarintLen32)
	out = append(out, e.w.b[:e.countAt]...)
	out = binary.AppendUvarint(out, uint64(e.n))
	return append(out, e.w.b[e.countAt:]...)
}

// padded returns msg padded to at least size bytes (see the format).
func padded(msg []byte, size int) []byte {
	n := size - len(msg)
	if n <= 0 {
		return msg
	}
	msg = binary.AppendUvarint(msg, uint64(n))
	return append(msg, make([]byte, n)...)
}

// encodeRows encodes buckets of one origin, region and step as one
// message (tests and small messages).
func encodeRows(h rowsMsg, bs []store.Bucket) []byte {
	var e rowsEncoder
	e.reset(h)
	for i := range bs {
		e.add(&bs[i])
	}
	return e.bytes()
}

// decodeRows decodes a rows message (after its format and kind bytes).
// The buckets are decoded with bounds but not validated.
func decodeRows(r *reader) (rowsMsg, []store.Bucket) {
	var h rowsMsg
	h.To = r.str(MaxNameLen)
	h.Origin = r.str(MaxNameLen)
	h.Region = r.str(MaxRegionLen)
	h.Step = store.Step(r.byte())
	if r.err == nil && !h.Step.Valid() {
		r.fail(fmt.Errorf("mesh: step %d", h.Step))
	}
	n := r.count(6)
	if r.err != nil {
		return h, nil
	}
	stepMS := int64(h.Step.Duration() / 1e6)
	out := make([]store.Bucket, 0, n)
	check := ""
	var unit int64
	for range n {
		b := store.Bucket{Node: h.Origin, Region: h.Region, Step: h.Step}
		if c := r.str(MaxNameLen); c != "" {
			check = c
		}
		if check == "" {
			r.fail(fmt.Errorf("mesh: row without a check"))
		}
		d := r.varint()
		unit += d
		if d > 1<<40 || d < -(1<<40) || unit < minTime.UnixMilli()/stepMS || unit >= maxTime.UnixMilli()/stepMS {
			r.fail(fmt.Errorf("mesh: bucket start out of range"))
		}
		b.Check = check
		b.Start = msTimeUTC(unit * stepMS)
		a := &b.Agg
		a.Count = r.figure()
		a.Failures = r.figure()
		a.LatCount = r.figure()
		if a.LatCount > 0 {
			lo, span, extra := r.figure(), r.figure(), r.figure()
			if r.err == nil && (a.LatCount > maxRowCount || lo > store.MaxLatencyUS || span > store.MaxLatencyUS) {
				r.fail(fmt.Errorf("mesh: latency out of range"))
			}
			a.LatMinUS, a.LatMaxUS = lo, lo+span
			a.LatSumUS = a.LatCount*lo + extra
		}
		bins := r.uvarint()
		if bins > maxBins {
			r.fail(fmt.Errorf("mesh: %d histogram bins", bins))
		}
		for range int(min(bins, maxBins)) {
			i := int(r.byte())
			c := r.uvarint()
			if r.err != nil {
				break
			}
			if i >= store.HistBuckets || c == 0 || c > maxFigure || a.Hist[i] != 0 {
				r.fail(fmt.Errorf("mesh: bad histogram bin %d", i))
				break
			}
			a.Hist[i] = c
		}
		if r.err != nil {
			return h, nil
		}
		out = append(out, b)
	}
	if r.err == nil && len(r.b) > 0 {
		// padding
		pad := r.uvarint()
		if r.err == nil && pad != uint64(len(r.b)) {
			r.fail(fmt.Errorf("mesh: %d bytes of padding, %d left", pad, len(r.b)))
			return h, nil
		}
		for _, c := range r.b {
			if c != 0 {
				r.fail(fmt.Errorf("mesh: padding not zero"))
				return h, nil
			}
		}
		r.b = r.b[len(r.b):]
	}
	return h, out
}

// figure reads a bounded count or duration.
func (r *reader) figure() int64 {
	v := r.uvarint()
	if r.err == nil && v > maxFigure {
		r.fail(fmt.Errorf("mesh: figure %d out of range", v))
		return 0
	}
	return int64(v)
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.fail(errShort)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.fail(errShort)
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (w *writer) u64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v) }

// digestMsg is a node's block digests: what it holds of every origin's
// units that ended by Cutoff.
type digestMsg struct {
	Sender string
	Cutoff int64
	Blocks []store.BlockDigest // sorted by node
}

func encodeDigest(d digestMsg) []byte {
	w := writer{b: []byte{seriesFormat, kindDigest}}
	w.str(d.Sender, MaxNameLen)
	w.varint(d.Cutoff)
	var origins []string
	for i, b := range d.Blocks {
		if i == 0 || b.Node != d.Blocks[i-1].Node {
			origins = append(origins, b.Node)
		}
	}
	w.uvarint(uint64(len(origins)))
	i := 0
	for _, o := range origins {
		j := i
		for j < len(d.Blocks) && d.Blocks[j].Node == o {
			j++
		}
		w.str(o, MaxNameLen)
		w.uvarint(uint64(j - i))
		for _, b := range d.Blocks[i:j] {
			w.b = append(w.b, byte(b.Step))
			w.uvarint(uint64(b.Start / int64(b.Step.Block()/1e6)))
			w.u64(b.Hash)
			w.uvarint(uint64(b.Rows))
		}
		i = j
	}
	return w.b
}

func decodeDigest(r *reader) digestMsg {
	var d digestMsg
	d.Sender = r.str(MaxNameLen)
	d.Cutoff = r.varint()
	if r.err == nil && (d.Cutoff < minTime.UnixMilli() || d.Cutoff >= maxTime.UnixMilli()) {
		r.fail(fmt.Errorf("mesh: digest cutoff out of range"))
	}
	n := r.count(2)
	if n > MaxOrigins {
		r.fail(fmt.Errorf("mesh: digest of %d origins", n))
	}
	for range n {
		o := r.str(MaxNameLen)
		m := r.count(11)
		if m > maxDigestBlocks {
			r.fail(fmt.Errorf("mesh: digest of %d blocks", m))
		}
		if r.err != nil {
			return d
		}
		for range m {
			b := store.BlockDigest{Node: o, Step: store.Step(r.byte())}
			idx := r.uvarint()
			b.Hash = r.u64()
			rows := r.uvarint()
			if r.err != nil {
				return d
			}
			if !b.Step.Valid() || idx > uint64(maxTime.UnixMilli()) || rows > maxFigure {
				r.fail(fmt.Errorf("mesh: bad digest block"))
				return d
			}
			b.Start = int64(idx) * int64(b.Step.Block()/1e6)
			b.Rows = int64(rows)
			d.Blocks = append(d.Blocks, b)
		}
	}
	return d
}

// wantMsg asks To for the buckets of Origin's block of Step at Start that
// ended by Cutoff and that differ from Units (what the asker holds).
type wantMsg struct {
	To, Origin string
	Step       store.Step
	Start      int64 // unix ms, aligned to the block
	Cutoff     int64
	// Session identifies the asking process (random at its start): what
	// was sent to a previous run of the asker is not assumed held.
	Session uint64
	Units   []store.UnitDigest // Rows is not sent
}

func encodeWant(m wantMsg) []byte {
	w := writer{b: []byte{seriesFormat, kindWant}}
	w.str(m.To, MaxNameLen)
	w.str(m.Origin, MaxNameLen)
	w.b = append(w.b, byte(m.Step))
	w.uvarint(uint64(m.Start / int64(m.Step.Block()/1e6)))
	w.varint(m.Cutoff)
	w.u64(m.Session)
	w.uvarint(uint64(len(m.Units)))
	unit := int64(m.Step.Duration() / 1e6)
	for _, u := range m.Units {
		w.uvarint(uint64((u.Start - m.Start) / unit))
		w.u64(u.Hash)
	}
	return w.b
}

func decodeWant(r *reader) wantMsg {
	var m wantMsg
	m.To = r.str(MaxNameLen)
	m.Origin = r.str(MaxNameLen)
	m.Step = store.Step(r.byte())
	idx := r.uvarint()
	m.Cutoff = r.varint()
	m.Session = r.u64()
	if r.err != nil {
		return m
	}
	if !m.Step.Valid() || idx > uint64(maxTime.UnixMilli()) || m.Cutoff < minTime.UnixMilli() || m.Cutoff >= maxTime.UnixMilli() {
		r.fail(fmt.Errorf("mesh: bad want"))
		return m
	}
	block, unit := int64(m.Step.Block()/1e6), int64(m.Step.Duration()/1e6)
	m.Start = int64(idx) * block
	n := r.count(9)
	if int64(n) > block/unit {
		r.fail(fmt.Errorf("mesh: want of %d units", n))
		return m
	}
	for range n {
		off := r.uvarint()
		h := r.u64()
		if r.err != nil {
			return m
		}
		if off >= uint64(block/unit) {
			r.fail(fmt.Errorf("mesh: want unit out of its block"))
			return m
		}
		m.Units = append(m.Units, store.UnitDigest{Start: m.Start + int64(off)*unit, Hash: h})
	}
	return m
}
