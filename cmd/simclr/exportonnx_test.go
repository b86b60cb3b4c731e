package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/internal/onnxcheck"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/tensor"
)

// TestExportONNX exports a pretraining checkpoint's encoder, its encoder
// with the projection head, and a classifier file through the command,
// runs them in onnxruntime and compares with the engine reading the same
// files.
func TestExportONNX(t *testing.T) {
	dir, _, ckpt := fixture(t)
	l, err := simclr.LoadModel(ckpt, simclr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	clf := filepath.Join(dir, "classifier.safetensors")
	l.FC, l.Selector, l.ClassNames = nn.NewLinear(nn.NewRegistry(9).Sub("fc"), 12, 2, true), 1, []string{"dark", "bright"}
	if err := l.SaveClassifier(clf); err != nil {
		t.Fatal(err)
	}

	// Errors first: they need no runtime.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--checkpoint", clf, "--head", "--out", filepath.Join(dir, "x.onnx")}, "classifier"},
		{[]string{"--checkpoint", ckpt, "--head", "--out", filepath.Join(dir, "x.safetensors")}, "--head needs --format onnx"},
		{[]string{"--checkpoint", ckpt, "--format", "tflite", "--out", filepath.Join(dir, "x.onnx")}, `--format "tflite"`},
	} {
		if _, err := runCLI(t, append([]string{"export"}, c.args...)...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("export %v: error %v, want one saying %q", c.args, err, c.want)
		}
	}

	ort := onnxcheck.New(t)
	for _, c := range []struct {
		name, model string
		args        []string
		layer       int
		logits      bool
	}{
		{"encoder", ckpt, nil, 0, false},
		{"head", ckpt, []string{"--head"}, simclr.LayerZ, false},
		{"classifier", clf, nil, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, c.name+".onnx")
			msg, err := runCLI(t, append([]string{"export", "--checkpoint", c.model, "--out", out}, c.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			t.Log(strings.TrimSpace(msg))
			if !strings.Contains(msg, "[batch, 3, 8, 8]") {
				t.Errorf("export printed %q, want the input's shape", msg)
			}
			onnxcheck.CheckModel(t, out)
			m, err := simclr.LoadModel(c.model, simclr.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			fwd, err := m.Forward(c.layer)
			if c.logits {
				fwd, err = m.Logits()
			}
			if err != nil {
				t.Fatal(err)
			}
			inputs := []*tensor.Tensor{tensor.New(1, 3, 8, 8), tensor.New(3, 3, 8, 8)}
			for i, x := range inputs {
				tensor.NewRNG(uint64(i), "export-onnx").FillUniform(x, 0, 1)
			}
			got := ort.Run(t, out, inputs...)
			for i, x := range inputs {
				tape := autograd.NewTape(purego.New(1))
				tape.Train, tape.NoGrad = false, true
				want := fwd(tape, tape.Input(tensor.NCHWToNHWC(x))).Value
				if e := onnxcheck.RelErr(got[i].Data, want.Data); len(got[i].Data) != len(want.Data) || e > 1e-4 {
					t.Errorf("batch %d: onnxruntime gives %v, the engine %v; relative error %.2g", x.Shape[0], got[i].Shape, want.Shape, e)
				}
			}
		})
	}
}
