package nn

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/checkpoint"
)

func smallNet(seed uint64, out int) *Registry {
	r := NewRegistry(seed)
	NewConv2d(r.Sub("conv1"), 3, 4, 3, autograd.ConvOpts{Pad: 1}, false)
	NewBatchNorm(r.Sub("bn1"), 4, false)
	NewLinear(r.Sub("fc"), 4, out, true)
	return r
}

func TestStateRoundTrip(t *testing.T) {
	a := smallNet(1, 5)
	a.Counters()[0].Value = 9
	a.Buffers()[0].Tensor.Data[2] = 0.5
	f := checkpoint.New()
	a.SaveState(f, "")
	path := filepath.Join(t.TempDir(), "s.safetensors")
	if err := checkpoint.Save(path, f); err != nil {
		t.Fatal(err)
	}
	g, err := checkpoint.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	b := smallNet(2, 5)
	if b.Params()[0].Value.Data[0] == a.Params()[0].Value.Data[0] {
		t.Fatal("different seeds gave the same initialisation")
	}
	unused, err := b.LoadState(g, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(unused) != 0 {
		t.Errorf("unused: %v", unused)
	}
	for name, ta := range a.State() {
		tb := b.State()[name]
		for i := range ta.Data {
			if ta.Data[i] != tb.Data[i] {
				t.Fatalf("%s[%d]: %g after load, want %g", name, i, tb.Data[i], ta.Data[i])
			}
		}
	}
	if b.Counters()[0].Value != 9 {
		t.Errorf("counter %d after load, want 9", b.Counters()[0].Value)
	}
}

func TestStateMismatch(t *testing.T) {
	f := checkpoint.New()
	smallNet(1, 5).SaveState(f, "")
	if _, err := smallNet(1, 6).LoadState(f, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "fc.weight") {
		t.Errorf("shape mismatch: %v", err)
	}
	delete(f.Floats, "bn1.running_var")
	if _, err := smallNet(1, 5).LoadState(f, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "bn1.running_var") {
		t.Errorf("missing tensor: %v", err)
	}
	if _, err := smallNet(1, 5).LoadState(f, LoadOptions{AllowMissing: true}); err != nil {
		t.Errorf("AllowMissing: %v", err)
	}
}
