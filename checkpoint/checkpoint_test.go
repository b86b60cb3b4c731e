package checkpoint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simclr-go/simclr/tensor"
)

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	f := New()
	f.Floats["conv1.weight"] = tensor.FromSlice([]float32{1, -2, 3.5, 1e-30, 7, 8}, 1, 2, 3, 1)
	f.Floats["bn1.bias"] = tensor.FromSlice([]float32{0.25}, 1)
	f.Ints["bn1.num_batches_tracked"] = []int64{42}
	f.Meta["step"] = "17"
	if err := Save(path, f); err != nil {
		t.Fatal(err)
	}
	g, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	w := g.Floats["conv1.weight"]
	if w == nil || !tensor.SameShape(w.Shape, []int{1, 2, 3, 1}) {
		t.Fatalf("conv1.weight = %v", w)
	}
	for i, v := range f.Floats["conv1.weight"].Data {
		if w.Data[i] != v {
			t.Errorf("value %d: %g, want %g", i, w.Data[i], v)
		}
	}
	if got := g.Ints["bn1.num_batches_tracked"]; len(got) != 1 || got[0] != 42 {
		t.Errorf("int tensor: %v", got)
	}
	if g.Meta["step"] != "17" {
		t.Errorf("metadata: %v", g.Meta)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestCorruptFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.safetensors")
	f := New()
	f.Floats["w"] = tensor.New(4, 4)
	if err := Save(path, f); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	os.WriteFile(path, raw[:len(raw)-10], 0o644) // truncated
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "bad.safetensors") {
		t.Errorf("truncated file: error %v, want one naming the file", err)
	}
}

// TestSaveKeepsOldOnFailure: a save that fails leaves the previous file.
func TestSaveKeepsOldOnFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ck.safetensors")
	f := New()
	f.Floats["w"] = tensor.FromSlice([]float32{1}, 1)
	if err := Save(path, f); err != nil {
		t.Fatal(err)
	}
	bad := New()
	bad.Floats["x"] = tensor.New(1)
	bad.Ints["x"] = []int64{1}
	if err := Save(path, bad); err == nil {
		t.Fatal("duplicate name accepted")
	}
	g, err := Load(path)
	if err != nil || g.Floats["w"] == nil {
		t.Fatalf("previous checkpoint lost: %v", err)
	}
}

func TestHalf(t *testing.T) {
	for _, c := range []struct {
		h    uint16
		want float32
	}{{0x3c00, 1}, {0xc000, -2}, {0x3555, 0.33325195}, {0x0001, 5.9604645e-08}, {0x7bff, 65504}} {
		if got := halfToFloat(c.h); got != c.want {
			t.Errorf("half %#x = %g, want %g", c.h, got, c.want)
		}
	}
}
