package npy

import (
	"bytes"
	"math"
	"slices"
	"testing"

	"github.com/simclr-go/simclr/internal/fuzzcheck"
)

// FuzzRead feeds arbitrary bytes to the .npy reader. It must refuse what
// it cannot read without panicking, allocate in proportion to the input (a
// header may claim any shape), and whatever it accepts must come back
// unchanged through the writers.
func FuzzRead(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		var a *Array
		var err error
		fuzzcheck.LimitAlloc(t, raw, 8, func() { a, err = Read(bytes.NewReader(raw)) })
		if err != nil {
			return
		}
		var buf bytes.Buffer
		switch {
		case a.Float32 != nil:
			err = WriteFloat32(&buf, a.Float32, a.Shape...)
		case a.Int64 != nil:
			err = WriteInt64(&buf, a.Int64, a.Shape...)
		default:
			t.Fatalf("accepted an array of shape %v with no values slice", a.Shape)
		}
		if err != nil {
			t.Fatalf("writing an accepted array of shape %v: %v", a.Shape, err)
		}
		b, err := Read(&buf)
		if err != nil {
			t.Fatalf("reading what the writer wrote: %v", err)
		}
		if !slices.Equal(a.Shape, b.Shape) || !slices.Equal(a.Int64, b.Int64) || len(a.Float32) != len(b.Float32) {
			t.Fatalf("shape %v became %v", a.Shape, b.Shape)
		}
		for i, v := range a.Float32 {
			if math.Float32bits(v) != math.Float32bits(b.Float32[i]) {
				t.Fatalf("value %d: %g became %g", i, v, b.Float32[i])
			}
		}
	})
}
