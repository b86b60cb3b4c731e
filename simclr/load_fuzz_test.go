package simclr

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/simclr-go/simclr/checkpoint"
	"github.com/simclr-go/simclr/internal/fuzzcheck"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/tensor"
)

// loadAllocPerByte bounds what loading may allocate per byte of file: the
// model is allocated before it is loaded and checkFits lets it be a
// multiple of the file (see TestCheckFitsBoundsModel), plus the decoded
// tensors and the parameters' gradients.
const loadAllocPerByte = 512

// FuzzLoadModel writes arbitrary bytes to a file and loads it as a model:
// an encoder file, a pretraining checkpoint or a torchvision state dict.
// Nothing may panic; an error must name the file; a small file must not
// make the loader build a huge model because its metadata claims one; and
// a model accepted must survive SaveEncoder and LoadModel unchanged.
func FuzzLoadModel(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		path := fuzzcheck.WriteTemp(t, "model.safetensors", raw)
		var l *Loaded
		var err error
		fuzzcheck.LimitAlloc(t, raw, loadAllocPerByte, func() { l, err = LoadModel(path, LoadOptions{}) })
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		out := filepath.Join(t.TempDir(), "encoder.safetensors")
		if err := l.SaveEncoder(out, nil); err != nil {
			t.Fatalf("saving an accepted model's encoder: %v", err)
		}
		back, err := LoadModel(out, LoadOptions{})
		if err != nil {
			t.Fatalf("loading the encoder SaveEncoder wrote: %v", err)
		}
		if back.Config.Encoder != l.Config.Encoder || back.ImageSize != max(l.ImageSize, 0) ||
			!sameBits(back.InputMean, l.InputMean) || !sameBits(back.InputStd, l.InputStd) {
			t.Fatalf("encoder %+v size %d norm %v %v came back as %+v size %d norm %v %v",
				l.Config.Encoder, l.ImageSize, l.InputMean, l.InputStd,
				back.Config.Encoder, back.ImageSize, back.InputMean, back.InputStd)
		}
		if l.FC != nil {
			sameClassifier(t, l)
		}
		encoderOnly := func(name string) bool { return !strings.HasPrefix(name, "head.") }
		want, got := l.Model.Params.State(), back.Model.Params.State()
		for name, x := range want {
			if !encoderOnly(name) {
				continue
			}
			y, ok := got[name]
			if !ok || !slices.Equal(x.Shape, y.Shape) || !sameBits(x.Data, y.Data) {
				t.Fatalf("tensor %s did not come back unchanged", name)
			}
		}
	})
}

// sameClassifier checks that a classifier survives SaveClassifier and
// LoadModel: its layer, class names and weights.
func sameClassifier(t *testing.T, l *Loaded) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "classifier.safetensors")
	if err := l.SaveClassifier(out); err != nil {
		t.Fatalf("saving an accepted classifier: %v", err)
	}
	back, err := LoadModel(out, LoadOptions{})
	if err != nil {
		t.Fatalf("loading the classifier SaveClassifier wrote: %v", err)
	}
	if back.FC == nil || back.Selector != l.Selector || !slices.Equal(back.ClassNames, l.ClassNames) ||
		!sameBits(back.FC.Weight.Value.Data, l.FC.Weight.Value.Data) || !sameBits(back.FC.Bias.Value.Data, l.FC.Bias.Value.Data) {
		t.Fatalf("classifier on layer %d, classes %q came back on layer %d, classes %q, or with other weights",
			l.Selector, l.ClassNames, back.Selector, back.ClassNames)
	}
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestCheckFitsBoundsModel: the file checkFits demands is within a small
// factor of the model it lets the loader build, for every depth, with and
// without selective kernels and a head, and a file holding the whole
// model passes.
func TestCheckFitsBoundsModel(t *testing.T) {
	for _, depth := range resnet.Depths() {
		for _, sk := range []float64{0, 0.0625} {
			cfg := ModelConfig{Encoder: resnet.Config{Depth: depth, Width: 4, CIFARStem: true, SKRatio: sk}, ProjHidden: []int{16}, ProjOut: 8}
			m, err := NewModel(cfg, 1)
			if err != nil {
				t.Fatal(err)
			}
			f := checkpoint.New()
			m.Params.SaveState(f, "")
			if err := checkFits(cfg, true, f); err != nil {
				t.Fatalf("depth %d sk %g: the model's own state refused: %v", depth, sk, err)
			}
			// Keep only the values checkFits demands, spread over one
			// tensor: the model must not be much larger.
			need := 0
			for n := 1; ; n *= 2 {
				g := checkpoint.New()
				g.Floats["x"] = tensor.New(n)
				if checkFits(cfg, true, g) == nil {
					need = n
					break
				}
			}
			if ratio := float64(m.Params.NumParams()) / float64(need); ratio > 64 {
				t.Errorf("depth %d sk %g: %d parameters from a file of %d values (%.0fx)", depth, sk, m.Params.NumParams(), need, ratio)
			}
		}
	}
	huge := ModelConfig{Encoder: resnet.Config{Depth: 152, Width: 1 << 16}, ProjOut: 128}
	if err := checkFits(huge, true, checkpoint.New()); err == nil || !strings.Contains(err.Error(), "cannot hold") {
		t.Errorf("a huge model from an empty file: %v", err)
	}
	for _, bad := range []ModelConfig{
		{Encoder: resnet.Config{Depth: 18, Width: 1 << 30}, ProjOut: 1},
		{Encoder: resnet.Config{Depth: 18, Width: 2}, ProjHidden: []int{-1}, ProjOut: 1},
		{Encoder: resnet.Config{Depth: 18, Width: 2, SKRatio: 0.1, SKMinDim: 1 << 40}, ProjOut: 1},
	} {
		if err := checkFits(bad, true, checkpoint.New()); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
