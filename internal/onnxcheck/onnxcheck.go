// Package onnxcheck runs ONNX models in onnxruntime (npm's
// onnxruntime-node under Node.js, through scripts/onnx-check/run.js) and in
// onnx.checker (Python's onnx package), for tests that compare exported
// models with the engine.
//
// `make onnx-deps` installs both. Without them the tests skip, unless
// SIMCLR_ONNX_REQUIRED is set (make test sets it): then they fail, so the
// parity checks cannot silently stop running.
package onnxcheck

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
	"sync"
	"testing"

	"github.com/simclr-go/simclr/tensor"
)

// RequiredEnv, when set, turns a missing runtime from a skip into a
// failure.
const RequiredEnv = "SIMCLR_ONNX_REQUIRED"

// Runtime runs models in onnxruntime.
type Runtime struct {
	node, script string
}

// New finds Node.js and scripts/onnx-check's onnxruntime-node, and skips
// the test when either is missing (fails it under RequiredEnv).
func New(t testing.TB) *Runtime {
	t.Helper()
	missing := func(what string) {
		msg := what + ": run `make onnx-deps` (Debian's nodejs and npm, then npm install in scripts/onnx-check)"
		if os.Getenv(RequiredEnv) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir, err := checkerDir()
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("Node.js is not installed")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "onnxruntime-node", "package.json")); err != nil {
		missing("onnxruntime-node is not installed in " + dir)
	}
	return &Runtime{node: node, script: filepath.Join(dir, "run.js")}
}

// checkerDir finds scripts/onnx-check above the working directory (a
// package's folder under go test).
func checkerDir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "scripts", "onnx-check"), nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("onnxcheck: no go.mod above %s", wd)
		}
	}
}

// Run runs model on each of inputs (NCHW float32, fed to its one input)
// and returns its first output for each.
func (r *Runtime) Run(t testing.TB, model string, inputs ...*tensor.Tensor) []*tensor.Tensor {
	t.Helper()
	dir := t.TempDir()
	args := []string{r.script, model}
	var files []string
	for i, x := range inputs {
		f := filepath.Join(dir, fmt.Sprintf("input%d.f32", i))
		if err := os.WriteFile(f, float32Bytes(x.Data), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		arg := f + ":"
		for j, d := range x.Shape {
			if j > 0 {
				arg += ","
			}
			arg += fmt.Sprint(d)
		}
		args = append(args, arg)
	}
	var stderr bytes.Buffer
	c := exec.Command(r.node, args...)
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("onnxruntime on %s: %v\n%s", model, err, stderr.Bytes())
	}
	var results []*tensor.Tensor
	sc := bufio.NewScanner(bytes.NewReader(out))
	for i := 0; sc.Scan(); i++ {
		var res struct {
			Output string
			Dims   []int
		}
		if err := json.Unmarshal(sc.Bytes(), &res); err != nil || i >= len(files) {
			t.Fatalf("onnxruntime printed %q (%v)", sc.Text(), err)
		}
		raw, err := os.ReadFile(files[i] + ".out")
		if err != nil {
			t.Fatal(err)
		}
		y := tensor.New(res.Dims...)
		if len(raw) != 4*y.Len() {
			t.Fatalf("output %s: %d bytes for dims %v", res.Output, len(raw), res.Dims)
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

// CheckModel runs onnx.checker.check_model with full_check (shape
// inference included) when a Python with the onnx package is installed
// (Debian: python3-onnx), and logs that it did not otherwise.
func CheckModel(t testing.TB, model string) {
	t.Helper()
	py := onnxPython()
	if py == "" {
		t.Log("onnx.checker not run: no Python with the onnx package (Debian: python3-onnx)")
		return
	}
	out, err := exec.Command(py, "-c",
		"import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)", model).CombinedOutput()
	if err != nil {
		t.Errorf("onnx.checker on %s: %v\n%s", model, err, out)
	}
}

// onnxPython is the first Python that imports onnx, "" if none: Debian's
// python3-onnx is for /usr/bin/python3, which may not be the python3 first
// on PATH.
var onnxPython = sync.OnceValue(func() string {
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(py, "-c", "import onnx").Run() == nil {
			return py
		}
	}
	return ""
})

// RelErr is |a-b| / |b| over whole tensors: per-element comparisons mean
// little for values that cancel to near zero.
func RelErr(a, b []float32) float64 {
	var d, n float64
	for i := range a {
		d += (float64(a[i]) - float64(b[i])) * (float64(a[i]) - float64(b[i]))
		n += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(d / math.Max(n, 1e-30))
}
