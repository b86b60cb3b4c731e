package resnet

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/tensor"
)

// TestTorchvisionNames checks that the encoders' parameters and buffers
// carry torchvision's names and shapes.
func TestTorchvisionNames(t *testing.T) {
	raw, err := os.ReadFile("testdata/torchvision_names.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string][][2]json.RawMessage
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	for arch, depth := range map[string]int{"resnet18": 18, "resnet50": 50} {
		r := nn.NewRegistry(1)
		if _, err := New(r, Config{Depth: depth, Width: 64}); err != nil {
			t.Fatal(err)
		}
		state := r.State()
		if len(state) != len(want[arch]) {
			t.Errorf("%s: %d tensors, torchvision has %d", arch, len(state), len(want[arch]))
		}
		for _, kv := range want[arch] {
			var name string
			var shape []int
			json.Unmarshal(kv[0], &name)
			json.Unmarshal(kv[1], &shape)
			got, ok := state[name]
			if !ok {
				t.Errorf("%s: missing %s", arch, name)
				continue
			}
			if !tensor.SameShape(got.Shape, shape) {
				t.Errorf("%s: %s has shape %v, torchvision %v", arch, name, got.Shape, shape)
			}
		}
	}
}

func TestBadConfig(t *testing.T) {
	if _, err := New(nn.NewRegistry(1), Config{Depth: 20, Width: 64}); err == nil {
		t.Error("depth 20 accepted")
	}
	if _, err := New(nn.NewRegistry(1), Config{Depth: 18}); err == nil {
		t.Error("width 0 accepted")
	}
}

func TestOutDim(t *testing.T) {
	for _, c := range []struct{ depth, width, out int }{{18, 64, 512}, {34, 16, 128}, {50, 64, 2048}, {101, 128, 4096}, {152, 8, 256}} {
		m, err := New(nn.NewRegistry(1), Config{Depth: c.depth, Width: c.width})
		if err != nil {
			t.Fatal(err)
		}
		if m.OutDim != c.out {
			t.Errorf("resnet%d width %d: out %d, want %d", c.depth, c.width, m.OutDim, c.out)
		}
	}
}
