package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/npy"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/tensor"
	"github.com/simclr-go/simclr/train"
)

// runCLI runs the evaluation commands with args on the pure-Go backend and
// returns their stdout.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := execute(append([]string{"--backend", "purego", "--threads", "1"}, args...), embedCmd, linearEvalCmd, exportCmd, importCmd)
	return string(out), err
}

// fixture writes a two-class image folder (dark and bright 8x8 images)
// and a pretraining checkpoint of a tiny model.
func fixture(t *testing.T) (dir, imgs, ckpt string) {
	dir = t.TempDir()
	imgs = filepath.Join(dir, "images")
	rng := tensor.NewRNG(1, "cli-test")
	for c, class := range []string{"dark", "bright"} {
		os.MkdirAll(filepath.Join(imgs, class), 0o755)
		for i := 0; i < 10; i++ {
			m := image.NewRGBA(image.Rect(0, 0, 8, 8))
			for p := 0; p < 64; p++ {
				v := uint8(40 + 150*c + rng.IntN(60))
				m.Set(p%8, p/8, color.RGBA{v, uint8(rng.IntN(255)), v, 255})
			}
			var b bytes.Buffer
			png.Encode(&b, m)
			os.WriteFile(filepath.Join(imgs, class, fmt.Sprintf("%d.png", i)), b.Bytes(), 0o644)
		}
	}
	cfg := train.Config{
		Model: simclr.ModelConfig{Encoder: resnet.Config{Depth: 18, Width: 2, CIFARStem: true}, ProjHidden: []int{12}, ProjOut: 8},
		Batch: 2, ImageSize: 8, Steps: 1, Optimizer: "sgd", BaseLR: 0.1, LRScaling: "linear", Momentum: 0.9, Temperature: 0.5,
	}
	p, err := train.NewPretrainer(cfg, purego.New(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	ckpt = filepath.Join(dir, "checkpoint.safetensors")
	if err := p.Save(ckpt); err != nil {
		t.Fatal(err)
	}
	return dir, imgs, ckpt
}

func readEmbedding(t *testing.T, prefix string) (*npy.Array, *npy.Array, []string) {
	t.Helper()
	f, err := npy.ReadFile(prefix + ".features.npy")
	if err != nil {
		t.Fatal(err)
	}
	l, err := npy.ReadFile(prefix + ".labels.npy")
	if err != nil {
		t.Fatal(err)
	}
	names, err := os.ReadFile(prefix + ".files.txt")
	if err != nil {
		t.Fatal(err)
	}
	return f, l, strings.Split(strings.TrimSuffix(string(names), "\n"), "\n")
}

func TestEvalCommands(t *testing.T) {
	dir, imgs, ckpt := fixture(t)
	a := filepath.Join(dir, "out", "a")
	if _, err := runCLI(t, "embed", "--checkpoint", ckpt, "--data", imgs, "--out", a, "--quiet"); err != nil {
		t.Fatal(err)
	}
	feats, labels, names := readEmbedding(t, a)
	if !slices.Equal(feats.Shape, []int{20, 16}) || !slices.Equal(labels.Shape, []int{20}) || len(names) != 20 {
		t.Fatalf("embed wrote features %v, labels %v, %d names", feats.Shape, labels.Shape, len(names))
	}
	if labels.Int64[0] != 0 || labels.Int64[19] != 1 || !strings.Contains(names[0], "bright") && !strings.Contains(names[0], "dark") {
		t.Errorf("labels %v, names %v", labels.Int64, names)
	}
	for layer, dim := range map[string]int{"1": 12, "z": 8} {
		b := filepath.Join(dir, "layer"+layer)
		if _, err := runCLI(t, "embed", "--checkpoint", ckpt, "--data", imgs, "--out", b, "--layer", layer, "--quiet"); err != nil {
			t.Fatal(err)
		}
		if f, _, _ := readEmbedding(t, b); !slices.Equal(f.Shape, []int{20, dim}) {
			t.Errorf("--layer %s: shape %v", layer, f.Shape)
		}
	}
	if _, err := runCLI(t, "embed", "--checkpoint", ckpt, "--data", imgs, "--out", a, "--layer", "2"); err == nil {
		t.Error("--layer 2 of a one-layer head accepted")
	}

	// Linear evaluation, as JSON.
	out, err := runCLI(t, "linear-eval", "--checkpoint", ckpt, "--data", imgs, "--val", "6", "--augment", "1", "--json", "--quiet")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		evalResult
		Details linearDetails `json:"details"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json printed %q: %v", out, err)
	}
	if rep.Dataset.Train != 14 || rep.Dataset.Test != 6 || rep.Details.Result == nil || len(rep.Details.Result.Trials) != 5 || rep.Metrics["top1"] < 0.8 {
		t.Errorf("linear-eval: %s", out)
	}
	out, err = runCLI(t, "linear-eval", "--checkpoint", ckpt, "--data", imgs, "--val", "6", "--l2", "1e-3", "--quiet")
	if err != nil || !strings.Contains(out, "test top-1") {
		t.Errorf("linear-eval table: %q, %v", out, err)
	}

	// export, import, embed again: the same features.
	enc, enc2 := filepath.Join(dir, "enc.safetensors"), filepath.Join(dir, "enc2.safetensors")
	if _, err := runCLI(t, "export", "--checkpoint", ckpt, "--out", enc); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "import", "--in", enc, "--out", enc2); err != nil {
		t.Fatal(err)
	}
	c := filepath.Join(dir, "c")
	if _, err := runCLI(t, "embed", "--checkpoint", enc2, "--data", imgs, "--out", c, "--quiet"); err != nil {
		t.Fatal(err)
	}
	if f, _, _ := readEmbedding(t, c); !slices.Equal(f.Float32, feats.Float32) {
		t.Error("features of the exported and re-imported encoder differ")
	}
	if _, err := runCLI(t, "embed", "--checkpoint", enc2, "--data", imgs, "--out", c, "--layer", "1"); err == nil {
		t.Error("--layer 1 accepted for an encoder-only file")
	}
	// import --as pretrain: a pretraining checkpoint with a fresh head.
	ck2 := filepath.Join(dir, "imported.safetensors")
	if _, err := runCLI(t, "import", "--in", enc, "--out", ck2, "--as", "pretrain", "--proj-layers", "3"); err != nil {
		t.Fatal(err)
	}
	l, err := simclr.LoadModel(ck2, simclr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Format != simclr.PretrainFormat || l.Model.Layers() != 2 || l.ImageSize != 8 {
		t.Errorf("import --as pretrain wrote %s with %d head layers, image size %d", l.Format, l.Model.Layers(), l.ImageSize)
	}
	if _, err := runCLI(t, "export", "--checkpoint", ckpt); err == nil || !strings.Contains(err.Error(), "--out") {
		t.Errorf("export without --out: %v", err)
	}
}
