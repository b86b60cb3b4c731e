package simclr

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/checkpoint"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/npy"
	"github.com/simclr-go/simclr/tensor"
)

// classifier builds a seeded model with a head of the given hidden widths
// and random batch-norm state, and a classifier on its head layer
// selector.
func classifier(t testing.TB, enc resnet.Config, hidden []int, selector, classes int, names []string) *Loaded {
	t.Helper()
	cfg := ModelConfig{Encoder: enc, ProjHidden: hidden, ProjOut: 8}
	m, err := NewModel(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	randomizeBN(m.Params, 2)
	in := m.Encoder.OutDim
	if selector > 0 {
		in = hidden[selector-1]
	}
	fc := nn.NewLinear(nn.NewRegistry(5).Sub("fc"), in, classes, true)
	tensor.NewRNG(6, "test-fc-bias").FillUniform(fc.Bias.Value, -1, 1)
	return &Loaded{Model: m, Config: cfg, Format: PretrainFormat, ImageSize: 16, FC: fc, Selector: selector, ClassNames: names}
}

// logits runs l's classifier in eval mode on x.
func logits(t testing.TB, l *Loaded, x *tensor.Tensor) *tensor.Tensor {
	t.Helper()
	tape := autograd.NewTape(purego.New(2))
	tape.Train, tape.NoGrad = false, true
	fwd, err := l.Logits()
	if err != nil {
		t.Fatal(err)
	}
	return fwd(tape, tape.Input(x)).Value.Clone()
}

func TestClassifierRoundTrip(t *testing.T) {
	enc := resnet.Config{Depth: 18, Width: 2, CIFARStem: true}
	x := input(3, 8)
	for _, tc := range []struct {
		selector int
		names    []string
	}{{0, []string{"cat", "dog", "ship"}}, {1, nil}, {2, []string{"a", "b", "c"}}} {
		t.Run(fmt.Sprintf("selector%d", tc.selector), func(t *testing.T) {
			c := classifier(t, enc, []int{12, 10}, tc.selector, 3, tc.names)
			path := filepath.Join(t.TempDir(), "c.safetensors")
			if err := c.SaveClassifier(path); err != nil {
				t.Fatal(err)
			}
			f, err := checkpoint.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			// The head's kept layers and nothing of the rest.
			var head []string
			for _, n := range f.Names() {
				if strings.HasPrefix(n, "head.") {
					head = append(head, n)
				}
			}
			var want []string
			for i := 0; i < tc.selector; i++ {
				want = append(want, fmt.Sprintf("head.%d.bias", 3*i), fmt.Sprintf("head.%d.weight", 3*i))
				for _, s := range []string{"bias", "running_mean", "running_var", "weight"} {
					want = append(want, fmt.Sprintf("head.%d.%s", 3*i+1, s))
				}
			}
			slices.Sort(want)
			if !slices.Equal(head, want) {
				t.Errorf("head tensors %v, want %v", head, want)
			}
			if f.Floats["fc.weight"] == nil || f.Floats["fc.bias"] == nil || f.Meta[MetaFormat] != ClassifierFormat {
				t.Fatalf("file lacks fc.* or the format: %v", f.Meta)
			}

			l, err := LoadModel(path, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if l.Format != ClassifierFormat || l.Selector != tc.selector || l.Classes() != 3 || l.ImageSize != 16 ||
				!slices.Equal(l.ClassNames, tc.names) || len(l.Unused) != 0 || l.Model.Layers() != tc.selector {
				t.Errorf("loaded %s, selector %d, %d classes %v, size %d, unused %v, %d head layers",
					l.Format, l.Selector, l.Classes(), l.ClassNames, l.ImageSize, l.Unused, l.Model.Layers())
			}
			if got, want := logits(t, l, x), logits(t, c, x); !slices.Equal(got.Data, want.Data) {
				t.Errorf("logits after reloading differ: %v, want %v", got.Data, want.Data)
			}
			if got, want := forward(t, l, x), forward(t, c, x); !slices.Equal(got.Data, want.Data) {
				t.Error("encoder features after reloading differ")
			}
			if _, err := l.Forward(LayerZ); err == nil {
				t.Error("a classifier's file gave the projection z, which it does not hold")
			}
			if got := l.ClassName(1); got != c.ClassName(1) || (tc.names == nil && got != "1") {
				t.Errorf("class 1 is named %q", got)
			}

			// Its encoder part is an encoder file like any other.
			enc := filepath.Join(t.TempDir(), "enc.safetensors")
			if err := l.SaveEncoder(enc, nil); err != nil {
				t.Fatal(err)
			}
			e, err := LoadModel(enc, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if e.FC != nil || e.Model.Head != nil || !slices.Equal(forward(t, e, x).Data, forward(t, c, x).Data) {
				t.Error("the encoder exported from a classifier differs")
			}
		})
	}
}

// TestClassifierV1 reads a file in the first classifier layout, as
// simclr finetune --out wrote it before.
func TestClassifierV1(t *testing.T) {
	c := classifier(t, resnet.Config{Depth: 18, Width: 2, CIFARStem: true}, []int{12}, 1, 2, nil)
	f := checkpoint.New()
	c.Model.Params.SaveState(f, "")
	f.Floats["fc.weight"] = c.FC.Weight.Value.Clone()
	f.Floats["fc.bias"] = c.FC.Bias.Value.Clone()
	cfg, err := json.Marshal(c.Model.Config)
	if err != nil {
		t.Fatal(err)
	}
	f.Meta = map[string]string{"format": ClassifierFormatV1, "model": string(cfg), "selector": "1", "classes": "2", "image_size": "16"}
	path := filepath.Join(t.TempDir(), "v1.safetensors")
	if err := checkpoint.Save(path, f); err != nil {
		t.Fatal(err)
	}
	l, err := LoadModel(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	x := input(2, 8)
	if l.Selector != 1 || l.Classes() != 2 || l.ImageSize != 16 || len(l.Unused) != 0 {
		t.Errorf("selector %d, %d classes, size %d, unused %v", l.Selector, l.Classes(), l.ImageSize, l.Unused)
	}
	if !slices.Equal(logits(t, l, x).Data, logits(t, c, x).Data) {
		t.Error("logits of the old-format file differ")
	}
	// Saved again, it is in the current format with the same logits.
	path2 := filepath.Join(t.TempDir(), "v2.safetensors")
	if err := l.SaveClassifier(path2); err != nil {
		t.Fatal(err)
	}
	l2, err := LoadModel(path2, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l2.Format != ClassifierFormat || !slices.Equal(logits(t, l2, x).Data, logits(t, c, x).Data) {
		t.Errorf("rewritten as %s: logits differ", l2.Format)
	}
}

func TestClassifierErrors(t *testing.T) {
	c := classifier(t, resnet.Config{Depth: 18, Width: 2, CIFARStem: true}, []int{12}, 1, 2, []string{"a", "b"})
	good, err := c.ClassifierFile()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name, want string
		edit       func(f *checkpoint.File)
	}{
		{"no fc", "fc.weight missing", func(f *checkpoint.File) { delete(f.Floats, "fc.weight") }},
		{"fc misshapen", "want [classes, 12]", func(f *checkpoint.File) { f.Floats["fc.weight"] = tensor.New(2, 5) }},
		{"names", "names 3 classes", func(f *checkpoint.File) { f.Meta[MetaClassNames] = `["a","b","c"]` }},
		{"classes", "but fc.weight has 2 rows", func(f *checkpoint.File) { f.Meta[MetaClasses] = "4" }},
		{"selector", `valid "selector"`, func(f *checkpoint.File) { f.Meta[MetaSelector] = "x" }},
		{"no head", "head.0.weight", func(f *checkpoint.File) { delete(f.Floats, "head.0.weight") }},
	} {
		f := checkpoint.New()
		for k, v := range good.Floats {
			f.Floats[k] = v
		}
		for k, v := range good.Ints {
			f.Ints[k] = v
		}
		for k, v := range good.Meta {
			f.Meta[k] = v
		}
		tc.edit(f)
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".safetensors")
		if err := checkpoint.Save(path, f); err != nil {
			t.Fatal(err)
		}
		_, err := LoadModel(path, LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming the file and saying %q", tc.name, err, tc.want)
		}
	}
	e := encoder(t, resnet.Config{Depth: 18, Width: 2, CIFARStem: true})
	if _, err := e.Logits(); err == nil {
		t.Error("an encoder gave logits")
	}
	if err := e.SaveClassifier(filepath.Join(dir, "x.safetensors")); err == nil {
		t.Error("an encoder saved as a classifier")
	}
	c.ClassNames = []string{"one"}
	if err := c.SaveClassifier(filepath.Join(dir, "y.safetensors")); err == nil {
		t.Error("saved 1 class name for 2 classes")
	}
}

// TestClassifierTorchvisionLive loads classifiers into the stock
// torchvision resnet18 with strict=True (the head's layer for selector 1,
// as ClassifierFormat documents) and compares the logits, when PyTorch is
// installed.
func TestClassifierTorchvisionLive(t *testing.T) {
	skipWithoutTorch(t)
	dir := t.TempDir()
	enc := resnet.Config{Depth: 18, Width: 64}
	x := input(2, 32)
	in := filepath.Join(dir, "in.npy")
	if err := npy.WriteFile(in, func(w io.Writer) error { return npy.WriteFloat32(w, x.Data, x.Shape...) }); err != nil {
		t.Fatal(err)
	}
	var args []string
	var cs []*Loaded
	for sel := range 2 {
		c := classifier(t, enc, []int{32}, sel, 5, []string{"a", "b", "c", "d", "e"})
		path := filepath.Join(dir, "c"+strconv.Itoa(sel)+".safetensors")
		if err := c.SaveClassifier(path); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
		args = append(args, path, in, filepath.Join(dir, "out"+strconv.Itoa(sel)+".npy"))
	}
	cmd := exec.Command(python, append([]string{"testdata/torchvision_classifier.py"}, args...)...)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1")
	msg, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("torchvision_classifier.py: %v\n%s", err, msg)
	}
	lines := strings.Split(strings.TrimSpace(string(msg)), "\n")
	if len(lines) < len(cs) {
		t.Fatalf("torchvision_classifier.py printed %q", msg)
	}
	lines = lines[len(lines)-len(cs):]
	for sel, c := range cs {
		if lines[sel] != `{"ok": true}` {
			t.Errorf("selector %d: torchvision's strict load: %s", sel, lines[sel])
			continue
		}
		want, err := npy.ReadFile(args[3*sel+2])
		if err != nil {
			t.Fatal(err)
		}
		got := logits(t, c, x)
		if !slices.Equal(want.Shape, got.Shape) {
			t.Fatalf("selector %d: logits %v, torchvision %v", sel, got.Shape, want.Shape)
		}
		e := relErr(got.Data, want.Float32)
		t.Logf("selector %d: relative error of the logits against torchvision %.2g", sel, e)
		if e > 1e-4 {
			t.Errorf("selector %d: logits differ from torchvision's: relative error %.2g", sel, e)
		}
	}
}
