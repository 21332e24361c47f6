package statuspage

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// doc is one rendered response held in memory: the body, its gzip form and
// the validators, with header values prepared so serving allocates little.
type doc struct {
	body, gz  []byte
	sum       string // hex digest of body
	mod       time.Time
	ctype     []string
	cache     []string
	etag      []string // `"sum"`
	etagGz    []string // `"sum-gz"`
	modHeader []string
	lenPlain  []string
	lenGz     []string
}

var (
	hdrVary    = []string{"Accept-Encoding"}
	hdrGzip    = []string{"gzip"}
	hdrNoSniff = []string{"nosniff"}
)

// newDoc renders a doc; if prev has the same body, prev is returned so the
// validators (and Last-Modified) stay stable across identical re-renders.
func newDoc(body []byte, ctype, cache string, mod time.Time, prev *doc) *doc {
	h := sha256.Sum256(body)
	sum := hex.EncodeToString(h[:12])
	if prev != nil && prev.sum == sum && prev.ctype[0] == ctype && prev.cache[0] == cache {
		return prev
	}
	d := &doc{body: body, sum: sum, mod: mod.UTC().Truncate(time.Second)}
	if len(body) > 256 {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		_, _ = zw.Write(body)
		_ = zw.Close()
		if b.Len() < len(body) {
			d.gz = b.Bytes()
		}
	}
	d.ctype = []string{ctype}
	d.cache = []string{cache}
	d.etag = []string{`"` + sum + `"`}
	d.etagGz = []string{`"` + sum + `-gz"`}
	d.modHeader = []string{d.mod.Format(http.TimeFormat)}
	d.lenPlain = []string{strconv.Itoa(len(body))}
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
	if d.gz != nil {
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
	body := d.body
	if useGz {
		h["Content-Encoding"] = hdrGzip
		h["Content-Length"] = d.lenGz
		body = d.gz
	} else {
		h["Content-Length"] = d.lenPlain
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func (d *doc) notModified(r *http.Request) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for _, t := range strings.Split(inm, ",") {
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
// with q=0).
func acceptsGzip(vals []string) bool {
	for _, v := range vals {
		for _, part := range strings.Split(v, ",") {
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
