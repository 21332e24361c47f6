package main

import (
	"runtime"
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

func TestProfileDefault(t *testing.T) {
	before := runtime.MemProfileRate
	t.Cleanup(func() { runtime.MemProfileRate = before })
	runtime.MemProfileRate = 512 * 1024
	if got := profileDefault("127.0.0.1:6060"); got != 512*1024 {
		t.Fatalf("with --debug-addr: allocation sampling rate %d, want Go's 524288 kept", got)
	}
	if got := profileDefault(""); got != 0 || runtime.MemProfileRate != 0 {
		t.Fatalf("without --debug-addr: allocation sampling rate %d (runtime %d), want 0", got, runtime.MemProfileRate)
	}
}
