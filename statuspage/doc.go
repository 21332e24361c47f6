package statuspage

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// doc is one rendered response held in memory: the body, its gzip form and
// the validators, with header values prepared so serving allocates little.
type doc struct {
	body, gz  []byte
	parts     [][]byte  // a large document's body, joined into body on first use (plain)
	join      sync.Once // of parts
	sum       string    // hex digest of body
	mod       time.Time
	ctype     []string
	cache     []string
	etag      []string // `"sum"`
	etagGz    []string // `"sum-gz"`
	modHeader []string
	lenPlain  []string
	lenGz     []string
	vary      []string // Vary, when not only Accept-Encoding (of a gzip form)
}

var (
	hdrVary     = []string{"Accept-Encoding"}
	hdrVaryAuth = []string{"Accept-Encoding, Authorization"}
	hdrGzip     = []string{"gzip"}
	hdrNoSniff  = []string{"nosniff"}
)

// gzipLevel is the compression of the documents' gzip forms: compressed
// once per render and served many times, and with pooled writers best
// compression costs little more than the default (BenchmarkNewDoc: the
// 152 KB index of 20 checks 0.71 ms for 3,008 bytes, default 0.67 ms for
// 3,031). Documents under gzipSmall (badges) use the fastest level: a
// pooled writer's reset at the other levels clears 640 KB of match tables,
// which costs more than compressing a badge (29 µs against 12 µs, for 294
// bytes instead of 281).
// Documents over gzipLarge compressed whole (GET /api/v1/status of
// hundreds of checks, encoded once per Status, which with steady probing
// is about once a second) use chunkLevel, as the chunks of the large pages
// do: on the status of 1,000 checks best compression costs 6 to 8 times
// the default for 6 % less (BenchmarkNewDoc, doc=status-1000).
const (
	gzipLevel = gzip.BestCompression
	gzipSmall = 4 << 10
	gzipLarge = 256 << 10
)

// gzipPools hold gzip writers by level: a writer's state is about 1 MB, so
// making one per document was most of a render's allocations.
var gzipPools [gzip.BestCompression + 1]sync.Pool

// gzipBytes compresses body at level (1 to 9) with a pooled writer.
func gzipBytes(body []byte, level int) []byte {
	b := bytes.NewBuffer(make([]byte, 0, len(body)/4+64))
	p := &gzipPools[level]
	zw, _ := p.Get().(*gzip.Writer)
	if zw == nil {
		zw, _ = gzip.NewWriterLevel(b, level)
	} else {
		zw.Reset(b)
	}
	_, _ = zw.Write(body)
	_ = zw.Close()
	zw.Reset(io.Discard) // drop the reference to b
	p.Put(zw)
	return b.Bytes()
}

// newDoc renders a doc; if prev has the same body, prev is returned so the
// validators (and Last-Modified) stay stable across identical re-renders.
func newDoc(body []byte, ctype, cache string, mod time.Time, prev *doc) *doc {
	return newDocWith(body, ctype, cache, mod, prev, gzipDoc)
}

// gzipDoc is the gzip form of a document.
func gzipDoc(body []byte) []byte {
	switch {
	case len(body) < gzipSmall:
		return gzipBytes(body, gzip.BestSpeed)
	case len(body) > gzipLarge:
		return gzipBytes(body, chunkLevel)
	}
	return gzipBytes(body, gzipLevel)
}

// newDocWith is newDoc compressing with compress.
func newDocWith(body []byte, ctype, cache string, mod time.Time, prev *doc, compress func([]byte) []byte) *doc {
	h := sha256.Sum256(body)
	sum := hex.EncodeToString(h[:12])
	if prev != nil && prev.sum == sum && prev.ctype[0] == ctype && prev.cache[0] == cache {
		return prev
	}
	var gz []byte
	if len(body) > 256 {
		gz = compress(body)
	}
	return makeDoc(assembly{body: body, size: len(body), gz: gz, sum: sum}, ctype, cache, mod)
}

// makeDoc is the doc of an assembled body (its gzip form is dropped unless
// smaller).
func makeDoc(a assembly, ctype, cache string, mod time.Time) *doc {
	d := &doc{body: a.body, parts: a.parts, sum: a.sum, mod: mod.UTC().Truncate(time.Second)}
	if len(a.gz) < a.size {
		d.gz = a.gz
	}
	d.ctype = []string{ctype}
	d.cache = []string{cache}
	d.etag = []string{`"` + a.sum + `"`}
	d.etagGz = []string{`"` + a.sum + `-gz"`}
	d.modHeader = []string{d.mod.Format(http.TimeFormat)}
	d.lenPlain = []string{strconv.Itoa(a.size)}
	if d.gz != nil {
		d.lenGz = []string{strconv.Itoa(len(d.gz))}
	}
	return d
}

// serve writes d, honouring If-None-Match, If-Modified-Since, HEAD and
// Accept-Encoding: gzip.
func (d *doc) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	useGz := d.gz != nil && acceptsGzip(r.Header["Accept-Encoding"])
	h["Content-Type"] = d.ctype
	h["Cache-Control"] = d.cache
	h["Last-Modified"] = d.modHeader
	if d.vary != nil {
		h["Vary"] = d.vary
	} else if d.gz != nil {
		h["Vary"] = hdrVary
	}
	if useGz {
		h["Etag"] = d.etagGz
	} else {
		h["Etag"] = d.etag
	}
	if d.notModified(r) {
		delete(h, "Content-Type")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if useGz {
		h["Content-Encoding"] = hdrGzip
		h["Content-Length"] = d.lenGz
	} else {
		h["Content-Length"] = d.lenPlain
	}
	w.WriteHeader(http.StatusOK)
	switch {
	case r.Method == http.MethodHead:
	case useGz:
		_, _ = w.Write(d.gz)
	default:
		_, _ = w.Write(d.plain())
	}
}

// plain is the body, joined from its parts on first use.
func (d *doc) plain() []byte {
	if d.parts != nil {
		d.join.Do(func() {
			d.body = bytes.Join(d.parts, nil)
		})
	}
	return d.body
}

func (d *doc) notModified(r *http.Request) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for inm != "" {
			var t string
			t, inm, _ = strings.Cut(inm, ",")
			t = strings.TrimSpace(t)
			t = strings.TrimPrefix(t, "W/")
			if t == "*" || t == d.etag[0] || t == d.etagGz[0] {
				return true
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		if t, err := http.ParseTime(ims); err == nil && !d.mod.After(t) {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether the Accept-Encoding values allow gzip (not
// with q=0). It allocates nothing for the usual values.
func acceptsGzip(vals []string) bool {
	for _, v := range vals {
		for v != "" {
			var part string
			part, v, _ = strings.Cut(v, ",")
			part = strings.TrimSpace(part)
			name, params, _ := strings.Cut(part, ";")
			name = strings.TrimSpace(name)
			if !strings.EqualFold(name, "gzip") && name != "*" {
				continue
			}
			params = strings.ReplaceAll(params, " ", "")
			if strings.HasPrefix(params, "q=0") && strings.Trim(strings.TrimPrefix(params, "q="), "0.") == "" {
				return false
			}
			return true
		}
	}
	return false
}
