package main

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simclr-go/simclr/data"
	"github.com/simclr-go/simclr/npy"
)

// runAll runs any simclr command on the default backend and returns its
// standard output.
func runAll(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := execute(args, pretrainCmd, knnCmd, linearEvalCmd, finetuneCmd, distillCmd, semiCmd, embedCmd, exportCmd)
	return string(out), err
}

// decodeJSON reads the last JSON document of a command's output.
func decodeJSON(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal(lastJSON([]byte(out)), v); err != nil {
		t.Fatalf("reading %q: %v", out, err)
	}
}

// TestCommandsOnFashionMNIST runs every stage a user runs, through the
// command line, on 1,200 real images: pretrain (with the kNN probe), knn
// (pretrained and random), linear-eval, finetune on 10% of the labels,
// distill from that teacher into a student started from the pretrained
// encoder, semi (the three stages from a YAML config), embed and export. Budgets are tiny, so accuracies are only
// checked to be far above chance (10%); TestPretrainingLearns in package
// train checks that pretraining beats a random encoder.
func TestCommandsOnFashionMNIST(t *testing.T) {
	if _, err := os.Stat(data.FashionMNISTDir); err != nil {
		t.Skipf("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist): %v", err)
	}
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	ckpt := filepath.Join(run, "checkpoint.safetensors")
	subset := []string{"--data", "fashion-mnist", "--limit", "1200", "--val", "200"}
	must := func(args ...string) string {
		t.Helper()
		out, err := runAll(t, append(args, "--threads", "2")...)
		if err != nil {
			t.Fatalf("simclr %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	must(append([]string{"pretrain", "--depth", "18", "--width", "4", "--image-size", "16", "--batch", "32", "--steps", "30",
		"--optimizer", "sgd", "--lr", "0.5", "--weight-decay", "5e-4", "--temperature", "0.5", "--crop-min-scale", "0.5",
		"--proj-hidden", "32", "--proj-out", "16", "--warmup-epochs", "0.1", "--knn-every", "30", "--knn-k", "20",
		// The plain choices, as the demo's SGD recipe: at 30 steps the
		// official ones (zero-init residuals above all) leave too little
		// learnt for these checks, and the sum doubles SGD's step.
		"--zero-init-residual=false", "--head-style", "plain", "--init", "torchvision", "--loss-reduction", "mean",
		"--out", run, "--quiet"}, subset...)...)
	for _, f := range []string{"checkpoint.safetensors", "metrics.jsonl", "views.png"} {
		if _, err := os.Stat(filepath.Join(run, f)); err != nil {
			t.Errorf("pretrain did not write %s: %v", f, err)
		}
	}
	trainingKNN := lastMetric(t, filepath.Join(run, "metrics.jsonl"), "knn_top1")

	// The knn command on the same images must reproduce the probe run
	// during pretraining: same split, same features.
	var knn, random evalResult
	decodeJSON(t, must(append([]string{"knn", "--checkpoint", ckpt, "--k", "20", "--json"}, subset...)...), &knn)
	decodeJSON(t, must(append([]string{"knn", "--checkpoint", ckpt, "--k", "20", "--json", "--random"}, subset...)...), &random)
	if knn.Dataset.Train != 1000 || knn.Dataset.Test != 200 {
		t.Errorf("knn used %d bank and %d test images, want 1000 and 200", knn.Dataset.Train, knn.Dataset.Test)
	}
	if math.Abs(knn.Metrics["top1"]-trainingKNN) > 1e-9 {
		t.Errorf("knn command %.4f, pretraining's probe %.4f on the same images", knn.Metrics["top1"], trainingKNN)
	}
	if knn.Metrics["top1"] < 0.4 || random.Metrics["top1"] < 0.4 {
		t.Errorf("kNN top-1 pretrained %.3f, random %.3f: want far above chance", knn.Metrics["top1"], random.Metrics["top1"])
	}

	var lin evalResult
	decodeJSON(t, must(append([]string{"linear-eval", "--checkpoint", ckpt, "--json", "--quiet"}, subset...)...), &lin)
	if lin.Metrics["top1"] < 0.4 || lin.Dataset.Train != 1000 || lin.Dataset.Test != 200 {
		t.Errorf("linear-eval: %+v", lin)
	}

	teacher := filepath.Join(dir, "teacher.safetensors")
	var ft evalResult
	decodeJSON(t, must(append([]string{"finetune", "--checkpoint", ckpt, "--fraction", "0.1", "--epochs", "30", "--batch", "32",
		"--out", teacher, "--json", "--quiet"}, subset...)...), &ft)
	if ft.Metrics["top1"] < 0.3 {
		t.Errorf("finetune on 10%% of the labels: top-1 %.3f", ft.Metrics["top1"])
	}

	var st evalResult
	student := filepath.Join(dir, "student.safetensors")
	decodeJSON(t, must(append([]string{"distill", "--teacher", teacher, "--student-init", ckpt, "--epochs", "6", "--batch", "64",
		"--fraction", "0.1", "--out", student, "--json", "--quiet"}, subset...)...), &st)
	if math.Abs(st.Metrics["teacher_top1"]-ft.Metrics["top1"]) > 1e-9 || st.Metrics["top1"] < 0.3 {
		t.Errorf("distill: teacher %.3f (finetune said %.3f), student %.3f", st.Metrics["teacher_top1"], ft.Metrics["top1"], st.Metrics["top1"])
	}
	if _, err := os.Stat(student); err != nil {
		t.Errorf("distill --out: %v", err)
	}
	if _, err := runAll(t, append([]string{"distill", "--teacher", teacher, "--student-init", ckpt, "--student-width", "8"}, subset...)...); err == nil ||
		!strings.Contains(err.Error(), "--student-init") {
		t.Errorf("distill --student-init with --student-width: %v", err)
	}

	// semi runs the same stages from a YAML pretraining config: with the
	// pretraining settings above it must reproduce the same teacher.
	cfg := filepath.Join(dir, "pretrain.yaml")
	os.WriteFile(cfg, []byte(`depth: 18
width: 4
image_size: 16
batch: 32
steps: 30
optimizer: sgd
lr: 0.5
weight_decay: 5e-4
temperature: 0.5
crop_min_scale: 0.5
proj_hidden: 32
proj_out: 16
warmup_epochs: 0.1
zero_init_residual: false
head_style: plain
init: torchvision
loss_reduction: mean
`), 0o644)
	semiDir := filepath.Join(dir, "semi")
	var res struct {
		Rep semiReport `json:"details"`
	}
	decodeJSON(t, must(append([]string{"semi", "--pretrain-config", cfg, "--fractions", "0.1", "--ft-epochs", "30", "--ft-batch", "32",
		"--distill-epochs", "1", "--distill-batch", "64", "--out", semiDir, "--json", "--quiet"}, subset...)...), &res)
	rep := res.Rep
	if len(rep.Rows) != 1 || rep.Rows[0].Supervised == nil || rep.Rows[0].Labelled != ft.Dataset.Labelled {
		t.Fatalf("semi report %+v", rep)
	}
	if r := rep.Rows[0]; math.Abs(r.Teacher-ft.Metrics["top1"]) > 1e-9 || r.Student < 0.1 || *r.Supervised < 0.1 {
		t.Errorf("semi: teacher %.3f (finetune of the same pretraining gave %.3f), student %.3f, supervised %.3f", r.Teacher, ft.Metrics["top1"], r.Student, *r.Supervised)
	}
	for _, f := range []string{"semi.json", "report.md", "teacher-0.1.safetensors", "student-0.1.safetensors", "pretrain/checkpoint.safetensors"} {
		if _, err := os.Stat(filepath.Join(semiDir, f)); err != nil {
			t.Errorf("semi did not write %s: %v", f, err)
		}
	}

	emb := filepath.Join(dir, "emb")
	must("embed", "--checkpoint", ckpt, "--data", "fashion-mnist", "--limit", "300", "--out", emb, "--quiet")
	feats, err := npy.ReadFile(emb + ".features.npy")
	if err != nil {
		t.Fatal(err)
	}
	labels, err := npy.ReadFile(emb + ".labels.npy")
	if err != nil {
		t.Fatal(err)
	}
	if len(feats.Shape) != 2 || feats.Shape[0] != 300 || feats.Shape[1] != 32 || len(labels.Shape) != 1 || labels.Shape[0] != 300 {
		t.Errorf("embed: features %v, labels %v; want [300 32] and [300]", feats.Shape, labels.Shape)
	}

	must("export", "--checkpoint", ckpt, "--out", filepath.Join(dir, "encoder.safetensors"))
	if _, err := runAll(t, "knn", "--checkpoint", ckpt, "--data", "fashion-mnist", "--limit", "-5", "--val", "10"); err == nil ||
		!strings.Contains(err.Error(), "--limit -5") {
		t.Errorf("knn --limit -5: %v", err)
	}
}

// lastMetric is the last value of key in a metrics.jsonl file.
func lastMetric(t *testing.T, path, key string) float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v := math.NaN()
	for s := bufio.NewScanner(f); s.Scan(); {
		var m map[string]any
		if err := json.Unmarshal(s.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if x, ok := m[key].(float64); ok {
			v = x
		}
	}
	if math.IsNaN(v) {
		t.Fatalf("%s has no %s", path, key)
	}
	return v
}

// TestDemoQuick runs the main job on a few hundred images for a few steps:
// the table, the plots and the HTML report must all be there, and an --out
// folder holding other files must be refused, not emptied.
func TestDemoQuick(t *testing.T) {
	if _, err := os.Stat(data.FashionMNISTDir); err != nil {
		t.Skipf("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist): %v", err)
	}
	dir := filepath.Join(t.TempDir(), "demo")
	args := []string{"demo", "--budget", "1s", "--limit", "600", "--width", "4", "--batch", "32", "--threads", "2", "--out", dir}
	out, err := execute(args, demoCmd)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"SimCLR ResNet-18", "random ResNet-18", "600 train / 600 test images", "report: "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	for _, f := range []string{"index.html", "loss.png", "lr.png", "knn.png", "views.png", "neighbours.png", "checkpoint.safetensors", "run.yaml"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("demo did not write %s: %v", f, err)
		}
	}
	// The report states the counts used, not the whole dataset's.
	html, _ := os.ReadFile(filepath.Join(dir, "index.html"))
	if !strings.Contains(string(html), "the 600 training images") || !strings.Contains(string(html), "the 600 test images") ||
		strings.Contains(string(html), "60,000") || strings.Contains(string(html), "10,000") {
		t.Errorf("the report does not state the 600 and 600 images used:\n%s", html)
	}
	// A second run replaces the first.
	if out, err := execute(args, demoCmd); err != nil {
		t.Fatalf("demo again: %v\n%s", err, out)
	}

	other := t.TempDir()
	keep := filepath.Join(other, "thesis.tex")
	os.WriteFile(keep, []byte("precious"), 0o644)
	if _, err := execute([]string{"demo", "--budget", "1s", "--limit", "100", "--out", other}, demoCmd); err == nil || !strings.Contains(err.Error(), "choose another folder") {
		t.Errorf("demo into a folder of other files: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("demo removed an unrelated file: %v", err)
	}
}
