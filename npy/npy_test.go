package npy

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	f := []float32{1, -2.5, 3e-8, 4, 5, 6}
	for _, shape := range [][]int{{6}, {2, 3}, {3, 2, 1}, {0, 4}} {
		data := f
		if len(shape) == 2 && shape[0] == 0 {
			data = nil
		}
		var b bytes.Buffer
		if err := WriteFloat32(&b, data, shape...); err != nil {
			t.Fatal(err)
		}
		if h := b.Len() - 4*len(data); h%64 != 0 {
			t.Errorf("shape %v: header of %d bytes, want a multiple of 64", shape, h)
		}
		a, err := Read(&b)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(a.Shape, shape) || !slices.Equal(a.Float32, data) {
			t.Errorf("read back shape %v values %v, wrote %v %v", a.Shape, a.Float32, shape, data)
		}
	}
	ints := []int64{-1, 0, 7, 1 << 40}
	var b bytes.Buffer
	if err := WriteInt64(&b, ints, 4); err != nil {
		t.Fatal(err)
	}
	a, err := Read(&b)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Shape, []int{4}) || !slices.Equal(a.Int64, ints) {
		t.Errorf("int64: read back %v %v", a.Shape, a.Int64)
	}
}

func TestErrors(t *testing.T) {
	if err := WriteFloat32(io.Discard, []float32{1, 2, 3}, 2, 2); err == nil {
		t.Error("3 values written as 2x2")
	}
	if _, err := Read(strings.NewReader("PK\x03\x04 not npy")); err == nil {
		t.Error("bad magic accepted")
	}
	var b bytes.Buffer
	WriteFloat32(&b, []float32{1, 2, 3, 4}, 2, 2)
	if _, err := Read(bytes.NewReader(b.Bytes()[:b.Len()-2])); err == nil {
		t.Error("truncated data accepted")
	}
}

// TestNumPy checks that numpy.load reads what we write, and that we read
// what numpy.save writes, when python3 with NumPy is installed.
func TestNumPy(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import numpy").Run(); err != nil {
		t.Skip("python3 with numpy not available")
	}
	dir := t.TempDir()
	data := []float32{0.5, -1, 2, 3.25, 1e-3, 6}
	in := filepath.Join(dir, "in.npy")
	if err := WriteFile(in, func(w io.Writer) error { return WriteFloat32(w, data, 2, 3) }); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.npy")
	script := `
import sys, numpy as np
a = np.load(sys.argv[1])
assert a.dtype == np.float32 and a.shape == (2, 3), (a.dtype, a.shape)
assert a[1, 0] == 3.25 and a[0, 1] == -1
np.save(sys.argv[2], (a * 2).astype(np.float32))
np.save(sys.argv[2] + ".i8.npy", np.arange(-1, 5, dtype=np.int64).reshape(3, 2))
`
	if msg, err := exec.Command(py, "-c", script, in, out).CombinedOutput(); err != nil {
		t.Fatalf("numpy: %v\n%s", err, msg)
	}
	a, err := ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range data {
		if a.Float32[i] != 2*v {
			t.Fatalf("value %d: numpy wrote %v, want %v", i, a.Float32[i], 2*v)
		}
	}
	if !slices.Equal(a.Shape, []int{2, 3}) {
		t.Errorf("shape %v", a.Shape)
	}
	b, err := ReadFile(out + ".i8.npy")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(b.Shape, []int{3, 2}) || !slices.Equal(b.Int64, []int64{-1, 0, 1, 2, 3, 4}) {
		t.Errorf("int64 from numpy: %v %v", b.Shape, b.Int64)
	}
	if _, err := os.Stat(in); err != nil {
		t.Error(err)
	}
}
