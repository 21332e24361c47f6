package statuspage

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"io"
	"sync"
)

// A large document (the index page of thousands of checks: 8 KB a check)
// is assembled from parts, most of them cached fragments of unchanged
// checks, and its gzip form from independently compressed chunks of
// consecutive parts: a render recompresses only the chunks whose parts
// changed (or the 32 KB before them). Each chunk is a raw deflate stream
// ended by a sync flush, so it ends on a byte boundary, compressed with
// the 32 KB of the body before it as its history (as pigz does: the
// decompressor has them in its window), so that chunks compress about as
// well as the whole body would; their concatenation, a final empty block,
// and the gzip header and trailer (CRC-32 and length of the whole body)
// are one valid gzip stream. A document smaller than chunkMin (the page of
// tens of checks) is compressed whole, as newDoc does.

// chunkMin is the size from which documents are compressed in chunks, and
// chunkTarget about how much plain text a chunk holds: recompressing one
// of the index page of thousands of checks costs about 1 ms at chunkLevel,
// plus a quarter for its window. Variables for tests.
var chunkMin, chunkTarget = 256 << 10, 128 << 10

// chunkLevel is the compression of chunks. On the pages of thousands of
// checks best compression is 3 (index) to 10 (summary.json) times slower
// than the default for a sixth less: a 128 KB chunk of the index 1.0 ms
// for 3.4 KB against 3.3 ms for 2.8 KB (BenchmarkChunkLevel).
const chunkLevel = 6

// window is deflate's window: how far back a chunk may refer.
const window = 32 << 10

// part is a piece of a document.
type part struct {
	// id, if not 0, identifies the bytes: a cached fragment has the same
	// id for as long as its bytes stay the same, and a new one when they
	// change. Parts without an id are compared by content.
	id uint64
	b  []byte
}

// assembler builds one document across renders, keeping the compressed
// chunks of the previous one. Not safe for concurrent use (renders are
// serialised).
type assembler struct {
	per    int // parts per chunk, fixed while the number of parts stays
	nparts int
	chunks []chunk
	dict   []byte // scratch
}

type chunk struct {
	key  []part // ids, or the bytes of parts without one
	size int    // of the plain text
	gz   []byte // raw deflate, ending with a sync flush
	sum  [sha256.Size]byte
	dict [sha256.Size]byte // of the window before the chunk
	crc  uint32            // CRC-32 of the plain text
	xlen uint32            // x^(8 size) mod the CRC-32 polynomial
}

// assembly is an assembled document: its body, whole or in parts (to be
// joined when a client wants it uncompressed), the gzip form and digest.
type assembly struct {
	body  []byte
	parts [][]byte
	size  int
	gz    []byte
	sum   string
}

// assemble joins parts into a document, recompressing only the chunks
// that changed since the last call.
func (a *assembler) assemble(parts []part) assembly {
	total := 0
	for _, p := range parts {
		total += len(p.b)
	}
	if len(parts) == 0 || total < chunkMin {
		// Compressed whole, like any document.
		a.per, a.nparts, a.chunks = 0, 0, nil
		body := make([]byte, 0, total)
		for _, p := range parts {
			body = append(body, p.b...)
		}
		h := sha256.Sum256(body)
		var gz []byte
		if len(body) > 256 {
			gz = gzipDoc(body)
		}
		return assembly{body: body, size: total, gz: gz, sum: hex.EncodeToString(h[:12])}
	}
	if a.per == 0 || a.nparts != len(parts) {
		a.per = max(1, chunkTarget/max(1, total/len(parts)))
		a.nparts = len(parts)
		a.chunks = nil
	}
	n := (len(parts) + a.per - 1) / a.per
	chunks := make([]chunk, n)
	size := 10 + 2 + 8 // header, final block, trailer
	prevSame := false  // whether the previous chunk's text is as before
	for i := range chunks {
		first := i * a.per
		ps := parts[first:min(first+a.per, len(parts))]
		same := i < len(a.chunks) && sameParts(a.chunks[i].key, ps)
		switch {
		case !same:
		case i == 0 || prevSame && a.chunks[i-1].size >= window:
			chunks[i] = a.chunks[i] // the same text after the same window
		case sha256.Sum256(a.window(parts[:first])) == a.chunks[i].dict:
			chunks[i] = a.chunks[i]
		}
		if chunks[i].gz == nil {
			chunks[i] = newChunk(a.window(parts[:first]), ps)
		}
		prevSame = same
		size += len(chunks[i].gz)
	}
	a.chunks = chunks

	gz := make([]byte, 0, size)
	gz = append(gz, 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255) // gzip, deflate, no flags or time, unknown OS
	h := sha256.New()
	var crc uint32
	for _, c := range chunks {
		gz = append(gz, c.gz...)
		h.Write(c.sum[:])
		crc = crc32Combine(crc, c.crc, c.xlen)
	}
	gz = append(gz, 3, 0) // a final, empty, fixed-Huffman block
	gz = binary.LittleEndian.AppendUint32(gz, crc)
	gz = binary.LittleEndian.AppendUint32(gz, uint32(total))
	bs := make([][]byte, len(parts))
	for i, p := range parts {
		bs[i] = p.b
	}
	return assembly{parts: bs, size: total, gz: gz, sum: hex.EncodeToString(h.Sum(nil)[:12])}
}

// window returns the last 32 KB of parts, in a.dict.
func (a *assembler) window(parts []part) []byte {
	n, i := 0, len(parts)
	for i > 0 && n < window {
		i--
		n += len(parts[i].b)
	}
	d := a.dict[:0]
	for _, p := range parts[i:] {
		d = append(d, p.b...)
	}
	a.dict = d
	return d[max(0, len(d)-window):]
}

// newChunk compresses ps after dict, the text before them.
func newChunk(dict []byte, ps []part) chunk {
	c := chunk{key: make([]part, len(ps)), dict: sha256.Sum256(dict)}
	h := sha256.New()
	for j, p := range ps {
		c.key[j].id = p.id
		if p.id == 0 {
			c.key[j].b = bytes.Clone(p.b)
		}
		h.Write(p.b)
		c.crc = crc32.Update(c.crc, crc32.IEEETable, p.b)
		c.size += len(p.b)
	}
	h.Sum(c.sum[:0])
	c.xlen = crc32Shift(c.size)
	c.gz = deflateChunk(dict, ps)
	return c
}

func sameParts(key, ps []part) bool {
	if len(key) != len(ps) {
		return false
	}
	for i, p := range ps {
		if key[i].id != p.id || p.id == 0 && !bytes.Equal(key[i].b, p.b) {
			return false
		}
	}
	return true
}

// chunkWriter is a deflate writer whose output can be switched: a chunk's
// window is compressed into io.Discard, then the chunk into its buffer.
type chunkWriter struct {
	zw  *flate.Writer
	out switchWriter
}

type switchWriter struct{ w io.Writer }

func (s *switchWriter) Write(p []byte) (int, error) { return s.w.Write(p) }

// chunkWriters are pooled by level: a writer's state is about 1 MB.
var chunkWriters [flate.BestCompression + 1]sync.Pool

// deflateChunk compresses ps as a raw deflate stream that ends with a sync
// flush, after dict, the text before them, which it may refer to.
func deflateChunk(dict []byte, ps []part) []byte { return deflateChunkAt(chunkLevel, dict, ps) }

// deflateChunkAt is deflateChunk at level (1 to 9).
func deflateChunkAt(level int, dict []byte, ps []part) []byte {
	pool := &chunkWriters[level]
	cw, _ := pool.Get().(*chunkWriter)
	if cw == nil {
		cw = &chunkWriter{}
		cw.zw, _ = flate.NewWriter(&cw.out, level)
	} else {
		cw.zw.Reset(&cw.out)
	}
	if len(dict) > 0 {
		// The compressor has dict in its window after this, and the
		// flush leaves nothing of it pending.
		cw.out.w = io.Discard
		_, _ = cw.zw.Write(dict)
		_ = cw.zw.Flush()
	}
	n := 0
	for _, p := range ps {
		n += len(p.b)
	}
	b := bytes.NewBuffer(make([]byte, 0, n/8+64))
	cw.out.w = b
	for _, p := range ps {
		_, _ = cw.zw.Write(p.b)
	}
	_ = cw.zw.Flush()
	cw.out.w = nil
	pool.Put(cw)
	return b.Bytes()
}

// CRC-32 of a concatenation from the parts' (zlib's crc32_combine):
// crc(A B) = crc(A) x^(8 len(B)) + crc(B), modulo the polynomial, in the
// reflected bit order of crc32.IEEE.

// crc32Mul multiplies a and b modulo the polynomial.
func crc32Mul(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ crc32.IEEE
		} else {
			b >>= 1
		}
	}
	return p
}

// crc32Pow2 holds x^(2^k) modulo the polynomial.
var crc32Pow2 = func() (t [64]uint32) {
	t[0] = 1 << 30 // x
	for k := 1; k < len(t); k++ {
		t[k] = crc32Mul(t[k-1], t[k-1])
	}
	return t
}()

// crc32Shift is x^(8 n) modulo the polynomial.
func crc32Shift(n int) uint32 {
	p := uint32(1) << 31 // 1
	for k := 3; n > 0; n, k = n>>1, k+1 {
		if n&1 != 0 {
			p = crc32Mul(crc32Pow2[k], p)
		}
	}
	return p
}

// crc32Combine is the CRC-32 of A then B from crcA, crcB and
// crc32Shift(len(B)).
func crc32Combine(crcA, crcB, shiftB uint32) uint32 {
	return crc32Mul(shiftB, crcA) ^ crcB
}
