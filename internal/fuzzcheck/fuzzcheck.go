// Package fuzzcheck holds the checks the fuzz targets share: how much a
// parser allocates for an input, so that a header claiming a huge size is
// caught even when the machine has the memory to satisfy it.
package fuzzcheck

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Allocated runs fn and returns the bytes allocated on the heap meanwhile
// (by any goroutine, so callers allow some slack).
func Allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Slack is the allocation every parser may make whatever its input:
// buffers, maps and the runtime's own bookkeeping.
const Slack = 16 << 20

// LimitAlloc fails t when fn allocates more than perByte times len(input)
// plus Slack: a parser must size what it allocates by the bytes it has,
// not by what a header claims.
func LimitAlloc(t testing.TB, input []byte, perByte uint64, fn func()) {
	t.Helper()
	limit := perByte*uint64(len(input)) + Slack
	if got := Allocated(fn); got > limit {
		t.Fatalf("%d bytes of input made the parser allocate %d bytes (limit %d)", len(input), got, limit)
	}
}

// WriteTemp writes data to a file named name in a fresh temporary folder
// and returns its path.
func WriteTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
