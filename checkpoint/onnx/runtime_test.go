package onnx

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/simclr-go/simclr/internal/onnxcheck"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/tensor"
)

// TestOnnxRuntimeParity exports encoders, encoders with their projection
// heads and classifiers, runs them in onnxruntime on random images at
// batch sizes 1 and 3, and compares with the engine's eval-mode forward
// on the same images.
func TestOnnxRuntimeParity(t *testing.T) {
	ort := onnxcheck.New(t)
	v1 := []int{16}     // SimCLR: one hidden layer
	v2 := []int{16, 16} // SimCLRv2: two hidden layers, three linear layers
	imagenet := [2][]float32{{0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}}
	cases := []struct {
		name  string
		cfg   simclr.ModelConfig
		head  bool
		layer int
		fc    int // classes; 0 for none
		side  int
		norm  bool
		sizes []int // input sides; the model is dynamic when they differ
	}{
		{name: "encoder-cifar", cfg: simclr.ModelConfig{Encoder: resnet.Config{Depth: 18, Width: 8, CIFARStem: true}}, side: 16},
		{name: "encoder-torchvision-normalised", cfg: simclr.ModelConfig{Encoder: resnet.Config{Depth: 50, Width: 4}}, side: 32, norm: true},
		{name: "v1-head-cifar", cfg: simclr.ModelConfig{Encoder: resnet.Config{Depth: 18, Width: 4, CIFARStem: true}, ProjHidden: v1, ProjOut: 8}, head: true, layer: simclr.LayerZ, side: 16},
		{name: "v2-head-torchvision", cfg: simclr.ModelConfig{Encoder: resnet.Config{Depth: 34, Width: 4}, ProjHidden: v2, ProjOut: 8}, head: true, layer: simclr.LayerZ, side: 32},
		{name: "official-head", cfg: simclr.ModelConfig{Encoder: resnet.Config{Depth: 18, Width: 4, CIFARStem: true}, ProjHidden: v2, ProjOut: 8, HeadStyle: simclr.HeadOfficial}, head: true, layer: simclr.LayerZ, side: 16},
		{name: "v2-hidden-layer", cfg: simclr.ModelConfig{Encoder: resnet.Config{Depth: 18, Width: 4, CIFARStem: true}, ProjHidden: v2, ProjOut: 8}, head: true, layer: 2, side: 16},
		{name: "classifier-on-encoder", cfg: simclr.ModelConfig{Encoder: resnet.Config{Depth: 18, Width: 4}}, fc: 10, side: 32},
		{name: "classifier-v2-selector-1", cfg: simclr.ModelConfig{Encoder: resnet.Config{Depth: 50, Width: 4, CIFARStem: true}, ProjHidden: v2, ProjOut: 8}, head: true, layer: 1, fc: 5, side: 16},
		{name: "sk-resnet50-deep-stem", cfg: simclr.ModelConfig{Encoder: resnet.Config{Depth: 50, Width: 4, SKRatio: 0.0625, SKMinDim: 4}, ProjHidden: v2, ProjOut: 8}, head: true, layer: simclr.LayerZ, side: 32},
		{name: "sk-resnet18-cifar-odd-size", cfg: simclr.ModelConfig{Encoder: resnet.Config{Depth: 18, Width: 4, CIFARStem: true, SKRatio: 0.0625, SKMinDim: 4}}, side: 15},
		{name: "resnet101", cfg: simclr.ModelConfig{Encoder: resnet.Config{Depth: 101, Width: 2, CIFARStem: true}}, side: 16},
		{name: "resnet152", cfg: simclr.ModelConfig{Encoder: resnet.Config{Depth: 152, Width: 2}}, side: 32},
		{name: "dynamic-size", cfg: simclr.ModelConfig{Encoder: resnet.Config{Depth: 18, Width: 4}}, sizes: []int{32, 40}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := testModel(t, c.cfg, c.head)
			s := Spec{Model: m, Layer: c.layer, ImageSize: c.side}
			if c.norm {
				s.InputMean, s.InputStd = imagenet[0], imagenet[1]
			}
			if c.fc > 0 {
				in := m.Encoder.OutDim
				if c.layer > 0 {
					in = c.cfg.ProjHidden[c.layer-1]
				}
				s.FC = nn.NewLinear(nn.NewRegistry(5).Sub("fc"), in, c.fc, true)
			}
			model := filepath.Join(t.TempDir(), "model.onnx")
			if err := Save(model, s); err != nil {
				t.Fatal(err)
			}
			onnxcheck.CheckModel(t, model)
			sides := []int{c.side, c.side}
			if c.sizes != nil {
				sides = c.sizes
			}
			inputs := []*tensor.Tensor{images(1, 1, sides[0]), images(2, 3, sides[1])}
			got := ort.Run(t, model, inputs...)
			for i, x := range inputs {
				want := reference(t, s, x)
				if !slices.Equal(got[i].Shape, want.Shape) {
					t.Fatalf("batch %d: onnxruntime gives %v, the engine %v", x.Shape[0], got[i].Shape, want.Shape)
				}
				e := onnxcheck.RelErr(got[i].Data, want.Data)
				t.Logf("batch %d, %dx%d: relative error %.2g", x.Shape[0], x.Shape[2], x.Shape[3], e)
				if e > 1e-4 {
					t.Errorf("batch %d: onnxruntime and the engine differ: relative error %.2g", x.Shape[0], e)
				}
			}
		})
	}
}
