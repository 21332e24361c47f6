package mesh

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"
)

// Bounds of what a peer may send.
const (
	// MaxNameLen bounds node and check names, as the cluster does.
	MaxNameLen = 253
	// MaxRegionLen bounds region names.
	MaxRegionLen = 64
	maxCodeLen   = 128
	maxReasonLen = 512
	maxIDLen     = 64
	maxNotifiers = 64
	// maxEntries bounds the entries one full state may carry.
	maxEntries = 1 << 20
)

var errShort = errors.New("mesh: truncated message")

// checkName is the config's rule for check names.
var checkName = regexp.MustCompile(`^[a-z0-9._-]+$`)

func validCheck(s string) bool { return len(s) > 0 && len(s) <= MaxNameLen && checkName.MatchString(s) }

func validNode(s string) bool { return len(s) > 0 && len(s) <= MaxNameLen }

// Times outside these years are malformed, whoever's clock made them.
var (
	minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

func validTime(t time.Time) bool { return !t.Before(minTime) && t.Before(maxTime) }

// validOptTime accepts the zero time too.
func validOptTime(t time.Time) bool { return t.IsZero() || validTime(t) }

func validMS(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) && f >= 0 && f <= 1e9 }

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
func (w *writer) f64(f float64)    { w.b = binary.LittleEndian.AppendUint64(w.b, math.Float64bits(f)) }

// time writes t as unix milliseconds, 0 for the zero time.
func (w *writer) time(t time.Time) {
	var ms int64
	if !t.IsZero() {
		ms = t.UnixMilli()
	}
	w.varint(ms)
}

func (w *writer) bool(b bool) {
	if b {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errShort)
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
		r.fail(errShort)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// str reads a string of at most max bytes.
func (r *reader) str(max int) string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.fail(errShort)
		return ""
	}
	if n > uint64(max) {
		r.fail(fmt.Errorf("mesh: string of %d bytes, at most %d allowed", n, max))
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) f64() float64 { return math.Float64frombits(r.u64()) }

func (r *reader) time() time.Time {
	ms := r.varint()
	if r.err != nil || ms == 0 {
		return time.Time{}
	}
	if ms < minTime.UnixMilli() || ms >= maxTime.UnixMilli() {
		r.fail(fmt.Errorf("mesh: time %d ms out of range", ms))
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func (r *reader) bool() bool {
	if r.err != nil {
		return false
	}
	if len(r.b) < 1 {
		r.fail(errShort)
		return false
	}
	v := r.b[0]
	r.b = r.b[1:]
	if v > 1 {
		r.fail(fmt.Errorf("mesh: bool byte %d", v))
	}
	return v == 1
}

// count reads an entry count, refusing one the remaining bytes cannot
// hold (every entry takes at least min bytes).
func (r *reader) count(min int) int {
	n := r.uvarint()
	if r.err != nil {
		return 0
	}
	if n > maxEntries || n*uint64(min) > uint64(len(r.b)) {
		r.fail(fmt.Errorf("mesh: %d entries claimed in %d bytes", n, len(r.b)))
		return 0
	}
	return int(n)
}

// version checks the format byte that starts every encoding.
func (r *reader) version(want byte) {
	if r.err != nil {
		return
	}
	if len(r.b) == 0 {
		r.fail(errShort)
		return
	}
	if r.b[0] != want {
		r.fail(fmt.Errorf("mesh: format version %d, want %d", r.b[0], want))
		return
	}
	r.b = r.b[1:]
}

// end reports trailing bytes as an error.
func (r *reader) end() error {
	if r.err == nil && len(r.b) > 0 {
		r.fail(fmt.Errorf("mesh: %d trailing bytes", len(r.b)))
	}
	return r.err
}
