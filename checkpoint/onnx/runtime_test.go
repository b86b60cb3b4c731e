package onnx

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/tensor"
)

// checkerDir holds run.js and, once `make onnx-deps` ran, onnxruntime-node.
var checkerDir = filepath.Join("..", "..", "scripts", "onnx-check")

// requiredEnv, when set (make test sets it), turns a missing runtime from
// a skip into a failure, so the parity test cannot silently stop running.
const requiredEnv = "SIMCLR_ONNX_REQUIRED"

// onnxruntime returns the command running scripts/onnx-check/run.js, or
// skips the test when Node.js or onnxruntime-node is not installed.
func onnxruntime(t *testing.T) []string {
	t.Helper()
	missing := func(what string) {
		msg := what + ": run `make onnx-deps` (Debian nodejs and npm, then npm install in scripts/onnx-check)"
		if os.Getenv(requiredEnv) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("Node.js is not installed")
	}
	if _, err := os.Stat(filepath.Join(checkerDir, "node_modules", "onnxruntime-node", "package.json")); err != nil {
		missing("onnxruntime-node is not installed in " + checkerDir)
	}
	return []string{node, filepath.Join(checkerDir, "run.js")}
}

// runOnnx runs model in onnxruntime on each of inputs (NCHW) and returns
// the outputs.
func runOnnx(t *testing.T, cmd []string, model string, inputs ...*tensor.Tensor) []*tensor.Tensor {
	t.Helper()
	dir := filepath.Dir(model)
	args := append(cmd[1:], model)
	var files []string
	for i, x := range inputs {
		f := filepath.Join(dir, fmt.Sprintf("input%d.f32", i))
		if err := os.WriteFile(f, float32Bytes(x.Data), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		args = append(args, fmt.Sprintf("%s:%d,%d,%d,%d", f, x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]))
	}
	var stderr bytes.Buffer
	c := exec.Command(cmd[0], args...)
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("onnxruntime: %v\n%s", err, stderr.Bytes())
	}
	var results []*tensor.Tensor
	sc := bufio.NewScanner(bytes.NewReader(out))
	for i := 0; sc.Scan(); i++ {
		var r struct {
			Output string
			Dims   []int
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("onnxruntime printed %q: %v", sc.Text(), err)
		}
		raw, err := os.ReadFile(files[i] + ".out")
		if err != nil {
			t.Fatal(err)
		}
		y := tensor.New(r.Dims...)
		if len(raw) != 4*y.Len() {
			t.Fatalf("output %s: %d bytes for dims %v", r.Output, len(raw), r.Dims)
		}
		for j := range y.Data {
			y.Data[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
		}
		results = append(results, y)
	}
	if len(results) != len(inputs) {
		t.Fatalf("onnxruntime gave %d outputs for %d inputs:\n%s", len(results), len(inputs), out)
	}
	return results
}

func float32Bytes(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// checkModel runs onnx.checker.check_model (with shape inference) when a
// Python with the onnx package is installed (Debian: python3-onnx).
func checkModel(t *testing.T, model string) {
	t.Helper()
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(py, "-c", "import onnx").Run() != nil {
			continue
		}
		out, err := exec.Command(py, "-c",
			"import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)", model).CombinedOutput()
		if err != nil {
			t.Errorf("onnx.checker: %v\n%s", err, out)
		}
		return
	}
	t.Log("onnx.checker not run: no Python with the onnx package (Debian: python3-onnx)")
}

// TestOnnxRuntimeParity exports encoders, encoders with their projection
// heads and classifiers, runs them in onnxruntime on random images at
// batch sizes 1 and 3, and compares with the engine's eval-mode forward
// on the same images.
func TestOnnxRuntimeParity(t *testing.T) {
	ort := onnxruntime(t)
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
			checkModel(t, model)
			sides := []int{c.side, c.side}
			if c.sizes != nil {
				sides = c.sizes
			}
			inputs := []*tensor.Tensor{images(1, 1, sides[0]), images(2, 3, sides[1])}
			got := runOnnx(t, ort, model, inputs...)
			for i, x := range inputs {
				want := reference(t, s, x)
				if !slices.Equal(got[i].Shape, want.Shape) {
					t.Fatalf("batch %d: onnxruntime gives %v, the engine %v", x.Shape[0], got[i].Shape, want.Shape)
				}
				e := relErr(got[i].Data, want.Data)
				t.Logf("batch %d, %dx%d: relative error %.2g", x.Shape[0], x.Shape[2], x.Shape[3], e)
				if e > 1e-4 {
					t.Errorf("batch %d: onnxruntime and the engine differ: relative error %.2g", x.Shape[0], e)
				}
			}
		})
	}
}
