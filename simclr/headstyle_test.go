package simclr

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/checkpoint"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/tensor"
)

// TestOfficialHeadNames: the official layout's tensors are those of a
// torch nn.Sequential of Linear(bias=False), BatchNorm1d, ReLU, ...,
// Linear(bias=False), BatchNorm1d (whose bias is saved, at zero), so that
// torch loads them by name; a classifier fine-tuned from its first layer
// saves and reloads without biases and gives the same logits.
func TestOfficialHeadNames(t *testing.T) {
	cfg := ModelConfig{Encoder: resnet.Config{Depth: 18, Width: 2, CIFARStem: true}, ProjHidden: []int{12, 10}, ProjOut: 8, HeadStyle: HeadOfficial}
	m, err := NewModel(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	randomizeBN(m.Params, 2)
	var head []string
	for name := range m.Params.State() {
		if len(name) > 5 && name[:5] == "head." {
			head = append(head, name)
		}
	}
	slices.Sort(head)
	want := []string{"head.0.weight", "head.1.bias", "head.1.running_mean", "head.1.running_var", "head.1.weight",
		"head.3.weight", "head.4.bias", "head.4.running_mean", "head.4.running_var", "head.4.weight",
		"head.6.weight", "head.7.bias", "head.7.running_mean", "head.7.running_var", "head.7.weight"}
	if !slices.Equal(head, want) {
		t.Errorf("head tensors %v, want %v", head, want)
	}
	x := input(3, 8)
	tape := autograd.NewTape(purego.New(1))
	tape.Train, tape.NoGrad = false, true
	z := m.Head.Forward(tape, m.Encoder.Forward(tape, tape.Input(x)))
	if z.Value.Dim(1) != 8 {
		t.Fatalf("z has shape %v", z.Value.Shape)
	}

	fc := nn.NewLinear(nn.NewRegistry(5).Sub("fc"), 12, 3, true)
	tensor.NewRNG(6, "test-fc-bias").FillUniform(fc.Bias.Value, -1, 1)
	c := &Loaded{Model: m, Config: cfg, Format: PretrainFormat, ImageSize: 8, FC: fc, Selector: 1, Recipe: RecipeV2}
	path := filepath.Join(t.TempDir(), "c.safetensors")
	if err := c.SaveClassifier(path); err != nil {
		t.Fatal(err)
	}
	f, err := checkpoint.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Floats["head.0.bias"]; ok || f.Meta[MetaRecipe] != RecipeV2 {
		t.Errorf("classifier file: head.0.bias present %v, recipe %q", ok, f.Meta[MetaRecipe])
	}
	l, err := LoadModel(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Model.Head.Linears[0].Bias != nil || l.Recipe != RecipeV2 || len(l.Unused) != 0 {
		t.Errorf("reloaded: bias %v, recipe %q, unused %v", l.Model.Head.Linears[0].Bias != nil, l.Recipe, l.Unused)
	}
	if got, want := logits(t, l, x), logits(t, c, x); !slices.Equal(got.Data, want.Data) {
		t.Error("logits after reloading differ")
	}
}
