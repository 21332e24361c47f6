package main

import (
	"runtime/debug"
	"testing"
)

func TestGCDefault(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "GOGC" {
				return v
			}
			return ""
		}
	}
	if got := gcDefault(env("")); got != gcPercent {
		t.Fatalf("without GOGC: %d, want %d", got, gcPercent)
	}
	if now := debug.SetGCPercent(100); now != gcPercent {
		t.Fatalf("collector target without GOGC: %d, want %d", now, gcPercent)
	}
	// With GOGC set, the runtime has applied it; gcDefault leaves it.
	debug.SetGCPercent(80)
	if got := gcDefault(env("80")); got != 80 {
		t.Fatalf("with GOGC=80: %d, want 80", got)
	}
	if now := debug.SetGCPercent(100); now != 80 {
		t.Fatalf("collector target with GOGC set: %d, want 80 (untouched)", now)
	}
}
