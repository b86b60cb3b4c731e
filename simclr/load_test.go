package simclr

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/checkpoint"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/npy"
	"github.com/simclr-go/simclr/tensor"
)

// randomizeBN gives every batch norm non-trivial parameters, statistics
// and counters, so an exported model tests more than convolutions.
func randomizeBN(r *nn.Registry, seed uint64) {
	rng := tensor.NewRNG(seed, "test-bn")
	for i, bn := range r.BatchNorms() {
		for j := range bn.Weight.Value.Data {
			bn.Weight.Value.Data[j] = float32(rng.Uniform(0.5, 1.5))
			bn.Bias.Value.Data[j] = float32(0.1 * rng.Normal())
			bn.Stats.Mean.Data[j] = float32(0.1 * rng.Normal())
			bn.Stats.Var.Data[j] = float32(rng.Uniform(0.5, 1.5))
		}
		bn.Tracked.Value = int64(7 + i)
	}
}

// encoder builds a seeded encoder with random batch-norm state.
func encoder(t testing.TB, cfg resnet.Config) *Loaded {
	r := nn.NewRegistry(1)
	enc, err := resnet.New(r, cfg)
	if err != nil {
		t.Fatal(err)
	}
	randomizeBN(r, 2)
	return &Loaded{Model: &Model{Params: r, Encoder: enc}, Config: ModelConfig{Encoder: cfg}, Format: EncoderFormat}
}

// forward runs l's encoder in eval mode on x [N, H, W, 3].
func forward(t testing.TB, l *Loaded, x *tensor.Tensor) *tensor.Tensor {
	tape := autograd.NewTape(purego.New(2))
	tape.Train, tape.NoGrad = false, true
	fwd, err := l.Forward(0)
	if err != nil {
		t.Fatal(err)
	}
	return fwd(tape, tape.Input(x)).Value.Clone()
}

func input(n, side int) *tensor.Tensor {
	x := tensor.New(n, side, side, 3)
	tensor.NewRNG(3, "test-input").FillUniform(x, 0, 1)
	return x
}

func relErr(a, b []float32) float64 {
	var d, n float64
	for i := range a {
		d += (float64(a[i]) - float64(b[i])) * (float64(a[i]) - float64(b[i]))
		n += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(d / math.Max(n, 1e-30))
}

func sameState(t *testing.T, a, b *nn.Registry) {
	t.Helper()
	sa, sb := a.State(), b.State()
	if len(sa) != len(sb) {
		t.Fatalf("%d tensors, want %d", len(sb), len(sa))
	}
	for name, x := range sa {
		y, ok := sb[name]
		if !ok || !slices.Equal(x.Shape, y.Shape) || !slices.Equal(x.Data, y.Data) {
			t.Errorf("%s differs after the round trip", name)
		}
	}
	ca, cb := a.Counters(), b.Counters()
	for i := range ca {
		if ca[i].Name != cb[i].Name || ca[i].Value != cb[i].Value {
			t.Errorf("counter %s = %d, want %d", cb[i].Name, cb[i].Value, ca[i].Value)
		}
	}
}

// TestExportImportRoundTrip: an exported encoder reads back with identical
// tensors and counters, with torchvision's names and types, and under a
// prefix and beside a classifier as other tools write them.
func TestExportImportRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, cfg := range []resnet.Config{{Depth: 18, Width: 4, CIFARStem: true}, {Depth: 50, Width: 2}} {
		l := encoder(t, cfg)
		l.ImageSize = 32
		l.InputMean, l.InputStd = []float32{0.485, 0.456, 0.406}, []float32{0.229, 0.224, 0.225}
		path := filepath.Join(dir, "enc.safetensors")
		if err := l.SaveEncoder(path, map[string]string{MetaSource: "test"}); err != nil {
			t.Fatal(err)
		}
		back, err := LoadModel(path, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if back.Config.Encoder != cfg || back.ImageSize != 32 || back.Model.Head != nil || back.Meta[MetaSource] != "test" ||
			!slices.Equal(back.InputStd, l.InputStd) || len(back.Unused) != 0 {
			t.Errorf("read back %+v", back)
		}
		sameState(t, l.Model.Params, back.Model.Params)

		// The file as torchvision sees it: float tensors, int64 scalars.
		f, err := checkpoint.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if v := f.Ints["layer1.0.bn1.num_batches_tracked"]; len(v) != 1 || v[0] == 0 {
			t.Errorf("num_batches_tracked = %v", v)
		}
		// A torchvision-style dict: no metadata, a prefix, a classifier.
		tv := checkpoint.New()
		for n, x := range f.Floats {
			tv.Floats["module."+n] = x
		}
		for n, x := range f.Ints {
			tv.Ints["module."+n] = x
		}
		tv.Floats["module.fc.weight"] = tensor.New(10, back.Model.Encoder.OutDim)
		tvPath := filepath.Join(dir, "tv.safetensors")
		if err := checkpoint.Save(tvPath, tv); err != nil {
			t.Fatal(err)
		}
		imp, err := LoadModel(tvPath, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if imp.Format != TorchvisionFormat || imp.Config.Encoder != cfg || len(imp.Unused) != 0 {
			t.Errorf("torchvision-style file read as %s %+v, unused %v", imp.Format, imp.Config.Encoder, imp.Unused)
		}
		sameState(t, l.Model.Params, imp.Model.Params)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	l := encoder(t, resnet.Config{Depth: 18, Width: 4, CIFARStem: true})
	f := l.EncoderFile(nil)
	f.Meta = map[string]string{}
	f.Floats["layer2.0.bn1.running_mean"] = tensor.New(5)
	path := filepath.Join(dir, "bad.safetensors")
	checkpoint.Save(path, f)
	if _, err := LoadModel(path, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "layer2.0.bn1.running_mean") {
		t.Errorf("shape mismatch: error %v should name the tensor", err)
	}
	// Options that contradict an encoder file's metadata.
	good := filepath.Join(dir, "good.safetensors")
	l.SaveEncoder(good, nil)
	if _, err := LoadModel(good, LoadOptions{Depth: 50}); err == nil {
		t.Error("depth 50 accepted for a resnet18 file")
	}
	// Forcing another architecture on a torchvision-style file.
	f = l.EncoderFile(nil)
	f.Meta = map[string]string{}
	checkpoint.Save(path, f)
	if _, err := LoadModel(path, LoadOptions{Depth: 34}); err == nil || !strings.Contains(err.Error(), "lacks") {
		t.Errorf("resnet34 from resnet18 tensors: %v", err)
	}
	if _, err := LoadModel(path, LoadOptions{Width: 8}); err == nil || !strings.Contains(err.Error(), "conv1.weight") {
		t.Errorf("width 8 from width 4 tensors: %v", err)
	}
}

// TestPretrainCheckpointLayers reads a pretraining checkpoint and selects
// each layer of its head.
func TestPretrainCheckpointLayers(t *testing.T) {
	cfg := ModelConfig{Encoder: resnet.Config{Depth: 18, Width: 2, CIFARStem: true}, ProjHidden: []int{6, 5}, ProjOut: 3}
	m, err := NewModel(cfg, 4)
	if err != nil {
		t.Fatal(err)
	}
	randomizeBN(m.Params, 5)
	f := checkpoint.New()
	m.Params.SaveState(f, "")
	f.Floats["optimizer.velocity.conv1.weight"] = tensor.New(2, 3, 3, 3)
	js, _ := json.Marshal(map[string]any{"model": cfg, "image_size": 8, "batch": 4})
	f.Meta = map[string]string{"format": PretrainFormat, "config": string(js), "step": "12"}
	path := filepath.Join(t.TempDir(), "ckpt.safetensors")
	if err := checkpoint.Save(path, f); err != nil {
		t.Fatal(err)
	}
	l, err := LoadModel(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Step != 12 || l.ImageSize != 8 || l.Model.Layers() != 2 || len(l.Unused) != 0 {
		t.Fatalf("loaded %+v", l)
	}
	sameState(t, m.Params, l.Model.Params)
	x := input(3, 8)
	tape := autograd.NewTape(purego.New(1))
	tape.Train, tape.NoGrad = false, true
	for layer, dim := range map[int]int{0: 16, 1: 6, 2: 5, LayerZ: 3} {
		fwd, err := l.Forward(layer)
		if err != nil {
			t.Fatal(err)
		}
		tape.Reset()
		if got := fwd(tape, tape.Input(x)).Value.Shape; !slices.Equal(got, []int{3, dim}) {
			t.Errorf("layer %d: shape %v, want [3 %d]", layer, got, dim)
		}
	}
	if _, err := l.Forward(3); err == nil {
		t.Error("layer 3 of a 2-layer head accepted")
	}
	// The exported encoder leaves the head out.
	enc := l.EncoderFile(nil)
	for n := range enc.Floats {
		if strings.HasPrefix(n, "head.") || strings.HasPrefix(n, "optimizer.") {
			t.Errorf("exported %s", n)
		}
	}
	if enc.Meta[MetaImageSize] != "8" || enc.Meta[MetaFeatures] != "16" {
		t.Errorf("metadata %v", enc.Meta)
	}
}

// TestInferEncoder reads every depth's architecture back from its names.
func TestInferEncoder(t *testing.T) {
	for _, depth := range resnet.Depths() {
		for _, stem := range []bool{false, true} {
			cfg := resnet.Config{Depth: depth, Width: 1, CIFARStem: stem}
			r := nn.NewRegistry(0)
			if _, err := resnet.New(r, cfg); err != nil {
				t.Fatal(err)
			}
			f := checkpoint.New()
			r.SaveState(f, "")
			got, err := InferEncoder(f, "")
			if err != nil || got != cfg {
				t.Errorf("inferred %+v, %v; want %+v", got, err, cfg)
			}
		}
	}
}

// storedConfig is the encoder of the stored PyTorch vectors.
var storedConfig = resnet.Config{Depth: 18, Width: 4, CIFARStem: true}

const storedPath = "testdata/resnet18_w4_cifar_torchvision.npy"

// TestTorchvisionStored compares our forward pass with torchvision's on
// the same weights, from features PyTorch computed once (regenerate with
// SIMCLR_WRITE_TESTDATA=1 go test -run TestTorchvisionStored ./simclr,
// which needs python3 with torch and torchvision).
func TestTorchvisionStored(t *testing.T) {
	l := encoder(t, storedConfig)
	x := input(2, 16)
	got := forward(t, l, x)
	if os.Getenv("SIMCLR_WRITE_TESTDATA") != "" {
		out := torchForward(t, []*Loaded{l}, []*tensor.Tensor{x})[0].out
		if err := npy.WriteFile(storedPath, func(w io.Writer) error { return npy.WriteFloat32(w, out.Float32, out.Shape...) }); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", storedPath)
	}
	want, err := npy.ReadFile(storedPath)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(want.Shape, got.Shape) {
		t.Fatalf("shape %v, torchvision %v", got.Shape, want.Shape)
	}
	if e := relErr(got.Data, want.Float32); e > 1e-5 {
		t.Errorf("features differ from torchvision's: relative error %.2g", e)
	}
}

var python = "/usr/bin/python3"

var haveTorch = sync.OnceValue(func() bool {
	return exec.Command(python, "-c", "import torch, torchvision, numpy").Run() == nil
})

// torchRequiredEnv, when set (make test sets it), turns a missing PyTorch
// from a skip into a failure, so the comparisons cannot silently stop
// running.
const torchRequiredEnv = "SIMCLR_TORCH_REQUIRED"

// skipWithoutTorch skips the test when python3 lacks torch, torchvision or
// numpy, or fails it under torchRequiredEnv.
func skipWithoutTorch(t *testing.T) {
	t.Helper()
	if haveTorch() {
		return
	}
	const msg = "python3 with torch, torchvision and numpy not available (Debian: python3-torch python3-torchvision)"
	if os.Getenv(torchRequiredEnv) != "" {
		t.Fatal(msg + "; " + torchRequiredEnv + " is set")
	}
	t.Skip(msg)
}

// torchResult is torchvision's features of one encoder and input, and the
// missing and unexpected keys of its load_state_dict.
type torchResult struct {
	out    *npy.Array
	report map[string][]string
}

// torchForward exports each encoder, runs testdata/torchvision_forward.py
// on them and their inputs, and returns torchvision's results.
func torchForward(t *testing.T, ls []*Loaded, xs []*tensor.Tensor) []torchResult {
	t.Helper()
	skipWithoutTorch(t)
	dir := t.TempDir()
	var args []string
	for i, l := range ls {
		enc := filepath.Join(dir, fmt.Sprintf("enc%d.safetensors", i))
		in, out := filepath.Join(dir, fmt.Sprintf("in%d.npy", i)), filepath.Join(dir, fmt.Sprintf("out%d.npy", i))
		if err := l.SaveEncoder(enc, nil); err != nil {
			t.Fatal(err)
		}
		x := xs[i]
		if err := npy.WriteFile(in, func(w io.Writer) error { return npy.WriteFloat32(w, x.Data, x.Shape...) }); err != nil {
			t.Fatal(err)
		}
		args = append(args, enc, in, out)
	}
	cmd := exec.Command(python, append([]string{"testdata/torchvision_forward.py"}, args...)...)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1")
	msg, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("torchvision_forward.py: %v\n%s", err, msg)
	}
	lines := strings.Split(strings.TrimSpace(string(msg)), "\n")
	if len(lines) < len(ls) {
		t.Fatalf("torchvision_forward.py printed %q", msg)
	}
	lines = lines[len(lines)-len(ls):]
	res := make([]torchResult, len(ls))
	for i := range res {
		if err := json.Unmarshal([]byte(lines[i]), &res[i].report); err != nil {
			t.Fatalf("torchvision_forward.py printed %q: %v", msg, err)
		}
		if res[i].out, err = npy.ReadFile(args[3*i+2]); err != nil {
			t.Fatal(err)
		}
	}
	return res
}

// TestTorchvisionLive exports encoders, loads them into torchvision (the
// stock resnet18/resnet50 at width 64, with strict=False missing only
// fc.*) and compares the features, when PyTorch is installed.
func TestTorchvisionLive(t *testing.T) {
	skipWithoutTorch(t)
	cases := []struct {
		cfg  resnet.Config
		side int
	}{
		{resnet.Config{Depth: 18, Width: 4, CIFARStem: true}, 16},
		{resnet.Config{Depth: 18, Width: 64}, 32},
		{resnet.Config{Depth: 50, Width: 64}, 32},
		{resnet.Config{Depth: 50, Width: 4, CIFARStem: true}, 16},
	}
	var ls []*Loaded
	var xs []*tensor.Tensor
	for _, c := range cases {
		ls = append(ls, encoder(t, c.cfg))
		xs = append(xs, input(2, c.side))
	}
	res := torchForward(t, ls, xs)
	for i, c := range cases {
		want, report := res[i].out, res[i].report
		got := forward(t, ls[i], xs[i])
		name := describe(c.cfg)
		if len(report["unexpected"]) != 0 || (c.cfg.Width == 64 && !slices.Equal(report["missing"], []string{"fc.bias", "fc.weight"})) {
			t.Errorf("%s: torchvision's load_state_dict reports %v", name, report)
		}
		if !slices.Equal(want.Shape, got.Shape) {
			t.Fatalf("%s: shape %v, torchvision %v", name, got.Shape, want.Shape)
		}
		if e := relErr(got.Data, want.Float32); e > 1e-5 {
			t.Errorf("%s: features differ from torchvision's: relative error %.2g", name, e)
		}
	}
}
