package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func idxBytes(dims []uint32, data []byte, gz bool) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 8, byte(len(dims))})
	binary.Write(&b, binary.BigEndian, dims)
	b.Write(data)
	if !gz {
		return b.Bytes()
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(b.Bytes())
	zw.Close()
	return z.Bytes()
}

func TestIDX(t *testing.T) {
	// Three 2x3 images; pixel (y, x) of image n is 10n + 3y + x.
	var pix []byte
	for n := 0; n < 3; n++ {
		for p := 0; p < 6; p++ {
			pix = append(pix, byte(10*n+p))
		}
	}
	for _, gz := range []bool{false, true} {
		dir := t.TempDir()
		ext := ""
		if gz {
			ext = ".gz"
		}
		writeFiles(t, dir, map[string][]byte{
			"t10k-images-idx3-ubyte" + ext: idxBytes([]uint32{3, 2, 3}, pix, gz),
			"t10k-labels-idx1-ubyte" + ext: idxBytes([]uint32{3}, []byte{4, 0, 9}, gz),
		})
		ds, err := MNIST(dir, "test")
		if err != nil {
			t.Fatal(err)
		}
		if ds.Len() != 3 || len(ds.Classes()) != 10 {
			t.Fatalf("len %d classes %v", ds.Len(), ds.Classes())
		}
		s, err := ds.Get(2)
		if err != nil {
			t.Fatal(err)
		}
		if s.W != 3 || s.H != 2 || s.Label != 9 || s.Name != "mnist/test/2" {
			t.Fatalf("%dx%d label %d name %s", s.W, s.H, s.Label, s.Name)
		}
		want := []byte{20, 20, 20, 21, 21, 21, 22, 22, 22, 23, 23, 23, 24, 24, 24, 25, 25, 25}
		if !bytes.Equal(s.RGB, want) {
			t.Fatalf("gray to RGB: %v", s.RGB)
		}
		if _, err := MNIST(dir, "train"); err == nil || !strings.Contains(err.Error(), "train-images") {
			t.Errorf("missing train files: %v", err)
		}
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{
		"im":  idxBytes([]uint32{3, 2, 3}, pix[:10], false),
		"lb":  idxBytes([]uint32{2}, []byte{1, 2}, false),
		"im3": idxBytes([]uint32{3, 2, 3}, pix, false),
		"f32": {0, 0, 0x0d, 1, 0, 0, 0, 0},
	})
	for _, c := range [][2]string{{"im", ""}, {"im3", "lb"}, {"f32", ""}, {"none", ""}} {
		if _, err := ReadIDX("x", filepath.Join(dir, c[0]), filepath.Join(dir, c[1]), nil); err == nil {
			t.Errorf("ReadIDX(%s, %s): no error", c[0], c[1])
		}
	}
	ds, err := ReadIDX("x", filepath.Join(dir, "im3"), "", nil)
	if err != nil || ds.Classes() != nil || ds.Label(0) != -1 {
		t.Errorf("unlabeled IDX: %v", err)
	}
}

func TestFashionMNISTInstalled(t *testing.T) {
	if _, err := os.Stat(FashionMNISTDir); err != nil {
		t.Skip("Fashion-MNIST not installed (Debian package dataset-fashion-mnist)")
	}
	ds, err := FashionMNIST("", "test")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ds.Get(0)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 10000 || s.W != 28 || s.H != 28 || ds.Classes()[s.Label] != "Ankle boot" {
		t.Errorf("len %d, %dx%d, first label %d", ds.Len(), s.W, s.H, s.Label)
	}
}

// stlImage encodes image n in STL-10's layout: per channel, column-major.
// The value at (x, y, c) is n + 2x + 5y + 50c (mod 256).
func stlImage(n int) []byte {
	b := make([]byte, 3*96*96)
	for c := 0; c < 3; c++ {
		for x := 0; x < 96; x++ {
			for y := 0; y < 96; y++ {
				b[c*96*96+x*96+y] = byte(n + 2*x + 5*y + 50*c)
			}
		}
	}
	return b
}

func TestSTL10(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{
		"stl10_binary/train_X.bin":     append(stlImage(0), stlImage(1)...),
		"stl10_binary/train_y.bin":     {10, 1},
		"stl10_binary/test_X.bin":      stlImage(2),
		"stl10_binary/test_y.bin":      {3, 4},
		"stl10_binary/unlabeled_X.bin": append(append(stlImage(3), stlImage(4)...), stlImage(5)...),
	})
	ds, err := STL10(dir, "train+unlabeled")
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	if ds.Len() != 5 || len(ds.Classes()) != 10 {
		t.Fatalf("len %d", ds.Len())
	}
	wantLabel := []int{9, 0, -1, -1, -1}
	wantN := []int{0, 1, 3, 4, 5}
	wantName := []string{"stl10/train/0", "stl10/train/1", "stl10/unlabeled/0", "stl10/unlabeled/1", "stl10/unlabeled/2"}
	for i := range wantLabel {
		s, err := ds.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		if s.Label != wantLabel[i] || ds.Label(i) != wantLabel[i] || s.Name != wantName[i] || s.W != 96 || s.H != 96 {
			t.Fatalf("sample %d: label %d name %s", i, s.Label, s.Name)
		}
		for _, xy := range [][2]int{{0, 0}, {1, 0}, {0, 1}, {95, 3}, {7, 95}} {
			x, y := xy[0], xy[1]
			for c := 0; c < 3; c++ {
				if got, want := s.RGB[3*(y*96+x)+c], byte(wantN[i]+2*x+5*y+50*c); got != want {
					t.Fatalf("sample %d (x %d, y %d, c %d) = %d, want %d", i, x, y, c, got, want)
				}
			}
		}
	}
	un, err := STL10(filepath.Join(dir, "stl10_binary"), "unlabeled")
	if err != nil {
		t.Fatal(err)
	}
	if un.Classes() != nil || un.Len() != 3 {
		t.Errorf("unlabeled: classes %v len %d", un.Classes(), un.Len())
	}
	un.Close()
	if _, err := STL10(dir, "test"); err == nil || !strings.Contains(err.Error(), "test_y.bin") {
		t.Errorf("2 labels for 1 image: %v", err)
	}
	if _, err := STL10(t.TempDir(), "train"); err == nil || !strings.Contains(err.Error(), "train_X.bin") {
		t.Errorf("missing: %v", err)
	}
}
