package store

import (
	"testing"
	"unsafe"
)

// TestOpIsSmall: the write queue's buffer is allocated at its bound
// (QueueSize ops, 8,192 by default), so every byte of an op counts 8 KB
// of a node's memory; a result travels by pointer, the rarer ops'
// arguments behind one.
func TestOpIsSmall(t *testing.T) {
	if n := unsafe.Sizeof(op{}); n > 24 {
		t.Fatalf("op is %d bytes, want at most 24", n)
	}
}
