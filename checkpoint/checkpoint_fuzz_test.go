package checkpoint

import (
	"bytes"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/simclr-go/simclr/internal/fuzzcheck"
)

// FuzzParse feeds arbitrary bytes to the safetensors reader. It must
// refuse what it cannot read without panicking, allocate in proportion to
// the input (a header may claim any shape), and whatever it accepts must
// survive Save and Load unchanged.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		var got *File
		var err error
		// F16 and BF16 values double in size as float32: 2 bytes per
		// input byte, plus the maps' and slices' overhead.
		fuzzcheck.LimitAlloc(t, raw, 16, func() { got, err = parse(raw) })
		if err != nil {
			return
		}
		path := filepath.Join(t.TempDir(), "round.safetensors")
		if err := Save(path, got); err != nil {
			t.Fatalf("saving an accepted file: %v", err)
		}
		again, err := Load(path)
		if err != nil {
			t.Fatalf("loading what Save wrote: %v", err)
		}
		sameFile(t, got, again)
	})
}

// sameFile fails t unless a and b hold the same tensors, bit for bit, and
// the same metadata.
func sameFile(t *testing.T, a, b *File) {
	t.Helper()
	if len(a.Floats) != len(b.Floats) || len(a.Ints) != len(b.Ints) || len(a.Meta) != len(b.Meta) {
		t.Fatalf("%d/%d/%d float/int/metadata entries became %d/%d/%d",
			len(a.Floats), len(a.Ints), len(a.Meta), len(b.Floats), len(b.Ints), len(b.Meta))
	}
	for name, x := range a.Floats {
		y, ok := b.Floats[name]
		if !ok || !slices.Equal(x.Shape, y.Shape) || len(x.Data) != len(y.Data) {
			t.Fatalf("tensor %q: shape %v became %v", name, x.Shape, y)
		}
		for i := range x.Data {
			if math.Float32bits(x.Data[i]) != math.Float32bits(y.Data[i]) {
				t.Fatalf("tensor %q value %d: %g became %g", name, i, x.Data[i], y.Data[i])
			}
		}
	}
	for name, x := range a.Ints {
		if y, ok := b.Ints[name]; !ok || !slices.Equal(x, y) {
			t.Fatalf("int tensor %q: %v became %v", name, x, y)
		}
	}
	for k, v := range a.Meta {
		if b.Meta[k] != v {
			t.Fatalf("metadata %q: %q became %q", k, v, b.Meta[k])
		}
	}
}

// TestParseRefusesHugeShapes: a header may claim any shape; the reader
// must compare it with the bytes present before allocating.
func TestParseRefusesHugeShapes(t *testing.T) {
	for _, hdr := range []string{
		`{"w":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,4]}}`,
		`{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`,
		`{"w":{"dtype":"F32","shape":[-1,-1],"data_offsets":[0,4]}}`,
		`{"w":{"dtype":"F32","shape":[-1],"data_offsets":[4,0]}}`,
		`{"w":{"dtype":"I64","shape":[3],"data_offsets":[8,-16]}}`,
	} {
		var b bytes.Buffer
		n := len(hdr)
		b.Write([]byte{byte(n), byte(n >> 8), 0, 0, 0, 0, 0, 0})
		b.WriteString(hdr)
		b.Write(make([]byte, 8))
		if _, err := parse(b.Bytes()); err == nil {
			t.Errorf("%s: accepted", hdr)
		}
	}
}
