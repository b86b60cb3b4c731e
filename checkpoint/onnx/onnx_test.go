package onnx

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/simclr"
)

// TestGraphIsWellFormed decodes the files written for every depth and
// checks what any runtime relies on: every node input is the graph input,
// an initializer or an earlier node's output; every parameter and
// running statistic of the model is an initializer under its torchvision
// name with its shape; the batch dimension is dynamic.
func TestGraphIsWellFormed(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  resnet.Config
	}{
		{"resnet18-cifar", resnet.Config{Depth: 18, Width: 4, CIFARStem: true}},
		{"resnet34", resnet.Config{Depth: 34, Width: 2}},
		{"resnet50", resnet.Config{Depth: 50, Width: 2}},
		{"resnet101", resnet.Config{Depth: 101, Width: 2}},
		{"resnet152-cifar", resnet.Config{Depth: 152, Width: 2, CIFARStem: true}},
		{"sk-resnet50", resnet.Config{Depth: 50, Width: 4, SKRatio: 0.0625, SKMinDim: 4}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := testModel(t, simclr.ModelConfig{Encoder: c.cfg, ProjHidden: []int{8}, ProjOut: 4}, true)
			data, err := Marshal(Spec{Model: m, Layer: simclr.LayerZ, ImageSize: 32, Meta: map[string]string{"source": "x.safetensors"}})
			if err != nil {
				t.Fatal(err)
			}
			d, err := decode(data)
			if err != nil {
				t.Fatal(err)
			}
			if d.irVersion != irVersion || d.opset != opset {
				t.Errorf("IR %d, opset %d; want %d, %d", d.irVersion, d.opset, irVersion, opset)
			}
			defined := map[string]bool{InputName: true}
			for name := range d.initializers {
				defined[name] = true
			}
			for i, n := range d.nodes {
				for _, in := range n.inputs {
					if !defined[in] {
						t.Fatalf("node %d (%s) reads %q before anything defines it", i, n.op, in)
					}
				}
				for _, out := range n.outputs {
					if defined[out] {
						t.Fatalf("node %d (%s) redefines %q", i, n.op, out)
					}
					defined[out] = true
				}
			}
			for name, v := range m.Params.State() {
				dims, ok := d.initializers[name]
				if !ok {
					t.Errorf("no initializer %s", name)
					continue
				}
				if !slices.Equal(dims, int64s(v.Shape)) {
					t.Errorf("%s: dims %v, want %v", name, dims, v.Shape)
				}
			}
			if got := d.inputs[InputName]; !slices.Equal(got, []string{"batch", "3", "32", "32"}) {
				t.Errorf("input dims %v", got)
			}
			if got := d.outputs[ProjectionName]; !slices.Equal(got, []string{"batch", "4"}) {
				t.Errorf("output dims %v (outputs %v)", got, d.outputs)
			}
			if d.meta["depth"] != strconv.Itoa(c.cfg.Depth) || d.meta["source"] != "x.safetensors" || d.meta["output"] != ProjectionName {
				t.Errorf("metadata %v", d.meta)
			}
		})
	}
}

func TestDynamicSize(t *testing.T) {
	m := testModel(t, simclr.ModelConfig{Encoder: resnet.Config{Depth: 18, Width: 2, CIFARStem: true}}, false)
	data, err := Marshal(Spec{Model: m})
	if err != nil {
		t.Fatal(err)
	}
	d, err := decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.inputs[InputName]; !slices.Equal(got, []string{"batch", "3", "height", "width"}) {
		t.Errorf("input dims %v, want batch, 3, height, width", got)
	}
	if got := d.outputs[FeaturesName]; !slices.Equal(got, []string{"batch", "16"}) {
		t.Errorf("output dims %v (outputs %v)", got, d.outputs)
	}
}

func TestBadSpecs(t *testing.T) {
	enc := testModel(t, simclr.ModelConfig{Encoder: resnet.Config{Depth: 18, Width: 2, CIFARStem: true}}, false)
	full := testModel(t, simclr.ModelConfig{Encoder: resnet.Config{Depth: 18, Width: 2, CIFARStem: true}, ProjHidden: []int{8}, ProjOut: 4}, true)
	fc := nn.NewLinear(nn.NewRegistry(1).Sub("fc"), 7, 3, true)
	for _, c := range []struct {
		name string
		spec Spec
		want string
	}{
		{"no model", Spec{}, "no model"},
		{"head of an encoder", Spec{Model: enc, Layer: simclr.LayerZ}, "projection head"},
		{"layer past the head", Spec{Model: full, Layer: 2}, "hidden layers 1 to 1"},
		{"classifier of the wrong size", Spec{Model: enc, FC: fc}, "takes 7 features, the network gives 16"},
		{"half a normalisation", Spec{Model: enc, InputMean: []float32{0, 0, 0}}, "three means"},
		{"negative size", Spec{Model: enc, ImageSize: -1}, "image size -1"},
	} {
		_, err := Marshal(c.spec)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
	}
}

// TestSaveKeepsOldFileOnError checks that a failed export leaves an
// existing file as it was and no temporary file behind.
func TestSaveKeepsOldFileOnError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	enc := testModel(t, simclr.ModelConfig{Encoder: resnet.Config{Depth: 18, Width: 2, CIFARStem: true}}, false)
	if err := Save(path, Spec{Model: enc, Layer: simclr.LayerZ}); err == nil {
		t.Fatal("no error for a head the model lacks")
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("file now holds %q", b)
	}
	if err := Save(path, Spec{Model: enc}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries, want the model alone", len(entries))
	}
	if b, _ := os.ReadFile(path); string(b) == "old" {
		t.Error("file not replaced")
	}
}

// BenchmarkMarshalResNet50 encodes a ResNet-50 (width 64) with SimCLRv2's
// head: about 120 MB of weights.
func BenchmarkMarshalResNet50(b *testing.B) {
	m, err := simclr.NewModel(simclr.ModelConfig{Encoder: resnet.Config{Depth: 50, Width: 64}, ProjHidden: []int{2048, 2048}, ProjOut: 128}, 1)
	if err != nil {
		b.Fatal(err)
	}
	s := Spec{Model: m, Layer: simclr.LayerZ, ImageSize: 224}
	b.ReportAllocs()
	for b.Loop() {
		data, err := Marshal(s)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
	}
}

// TestFromLoaded checks how model files map to networks: a classifier to
// its logits with its class names in the metadata, --head only for a
// model with a projection.
func TestFromLoaded(t *testing.T) {
	cfg := simclr.ModelConfig{Encoder: resnet.Config{Depth: 18, Width: 2, CIFARStem: true}, ProjHidden: []int{8}, ProjOut: 4}
	full := &simclr.Loaded{Model: testModel(t, cfg, true), Config: cfg, Format: simclr.PretrainFormat, ImageSize: 16}
	s, err := FromLoaded(full, true)
	if err != nil || s.Layer != simclr.LayerZ || s.ImageSize != 16 || s.FC != nil {
		t.Errorf("pretraining checkpoint with head: %+v, %v", s, err)
	}
	enc := &simclr.Loaded{Model: testModel(t, simclr.ModelConfig{Encoder: cfg.Encoder}, false), Format: simclr.EncoderFormat}
	if _, err := FromLoaded(enc, true); err == nil || !strings.Contains(err.Error(), "encoder alone") {
		t.Errorf("head of an encoder file: %v", err)
	}
	clf := *full
	clf.FC, clf.Selector, clf.ClassNames = nn.NewLinear(nn.NewRegistry(1).Sub("fc"), 8, 2, true), 1, []string{"cat", "dog"}
	if _, err := FromLoaded(&clf, true); err == nil || !strings.Contains(err.Error(), "classifier") {
		t.Errorf("head of a classifier: %v", err)
	}
	s, err = FromLoaded(&clf, false)
	if err != nil {
		t.Fatal(err)
	}
	data, err := Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	d, err := decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if d.meta["class_names"] != `["cat","dog"]` || d.meta["classes"] != "2" || d.meta["selector"] != "1" || d.meta["output"] != LogitsName {
		t.Errorf("classifier metadata %v", d.meta)
	}
	if got := d.outputs[LogitsName]; !slices.Equal(got, []string{"batch", "2"}) {
		t.Errorf("outputs %v", d.outputs)
	}
}
