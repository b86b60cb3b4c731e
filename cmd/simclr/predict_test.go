package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/backend/auto"
	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/data"
	"github.com/simclr-go/simclr/eval"
	"github.com/simclr-go/simclr/simclr"
)

// runPredictCLI runs simclr commands and returns their stdout and stderr.
func runPredictCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := &cobra.Command{Use: "simclr", SilenceUsage: true, SilenceErrors: true}
	var g globalFlags
	g.register(root)
	for _, c := range []func(*globalFlags) *cobra.Command{predictCmd, finetuneCmd, distillCmd, knnCmd, linearEvalCmd, embedCmd, exportCmd, importCmd} {
		root.AddCommand(c(&g))
	}
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"--threads", "1"}, args...))
	err = root.Execute()
	return out.String(), errOut.String(), err
}

// readPredictions parses predict's CSV: the rows by file name.
func readPredictions(t *testing.T, text string, k int) map[string][]string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		t.Fatalf("predict wrote CSV that does not parse: %v\n%s", err, text)
	}
	header := []string{"file"}
	for i := 1; i <= k; i++ {
		header = append(header, "class"+strconv.Itoa(i), "prob"+strconv.Itoa(i))
	}
	if len(rows) == 0 || !slices.Equal(rows[0], header) {
		t.Fatalf("CSV header %v, want %v", rows[:min(1, len(rows))], header)
	}
	byFile := map[string][]string{}
	for _, r := range rows[1:] {
		byFile[r[0]] = r[1:]
	}
	return byFile
}

// TestPredict fine-tunes a tiny classifier on two classes of images, checks
// that every command reading an encoder reads it, and runs predict on it:
// CSV and JSON, labelled and unlabelled folders, both backends.
func TestPredict(t *testing.T) {
	dir, imgs, ckpt := fixture(t)
	cls := filepath.Join(dir, "classifier.safetensors")
	must := func(args ...string) (string, string) {
		t.Helper()
		out, errOut, err := runPredictCLI(t, args...)
		if err != nil {
			t.Fatalf("simclr %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out, errOut
	}
	must("--backend", "purego", "finetune", "--checkpoint", ckpt, "--data", imgs, "--val", "6", "--fraction", "1",
		"--ft-proj-selector", "1", "--epochs", "10", "--batch", "8", "--lr", "1", "--out", cls, "--quiet")
	l, err := simclr.LoadModel(cls, simclr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Format != simclr.ClassifierFormat || l.Selector != 1 || !slices.Equal(l.ClassNames, []string{"bright", "dark"}) {
		t.Fatalf("finetune --out wrote %s on head layer %d, classes %v", l.Format, l.Selector, l.ClassNames)
	}

	// Every command that reads an encoder reads the classifier's.
	out, _ := must("--backend", "purego", "knn", "--checkpoint", cls, "--data", imgs, "--val", "6", "--k", "5", "--json")
	if !strings.Contains(out, `"top1"`) {
		t.Errorf("knn on a classifier printed %q", out)
	}
	must("--backend", "purego", "linear-eval", "--checkpoint", cls, "--data", imgs, "--val", "6", "--json", "--quiet")
	must("--backend", "purego", "embed", "--checkpoint", cls, "--data", imgs, "--layer", "1", "--out", filepath.Join(dir, "emb"), "--quiet")
	enc := filepath.Join(dir, "enc.safetensors")
	must("--backend", "purego", "export", "--checkpoint", cls, "--out", enc)
	if e, err := simclr.LoadModel(enc, simclr.LoadOptions{}); err != nil || e.FC != nil || e.Format != simclr.EncoderFormat {
		t.Errorf("export of a classifier: %v", err)
	}
	imported := filepath.Join(dir, "imported.safetensors")
	must("--backend", "purego", "import", "--in", cls, "--out", imported)
	if e, err := simclr.LoadModel(imported, simclr.LoadOptions{}); err != nil || e.Format != simclr.EncoderFormat {
		t.Errorf("import of a classifier: %v", err)
	}
	must("--backend", "purego", "finetune", "--checkpoint", cls, "--data", imgs, "--val", "6", "--fraction", "1",
		"--ft-proj-selector", "1", "--epochs", "1", "--batch", "8", "--quiet")
	student := filepath.Join(dir, "student.safetensors")
	must("--backend", "purego", "distill", "--teacher", cls, "--student-init", cls, "--data", imgs, "--val", "6",
		"--epochs", "1", "--batch", "8", "--out", student, "--quiet")
	if s, err := simclr.LoadModel(student, simclr.LoadOptions{}); err != nil || !slices.Equal(s.ClassNames, l.ClassNames) {
		t.Errorf("distill --out: class names %v, %v", s.ClassNames, err)
	}

	// Our logits, in the order of the files.
	ds, err := data.OpenImageFolder(imgs, data.FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fwd, err := l.Logits()
	if err != nil {
		t.Fatal(err)
	}
	logits, files, err := eval.EmbedWith(autograd.NewTape(purego.New(1)), fwd, ds, eval.EmbedOptions{Size: 8, Names: true})
	if err != nil {
		t.Fatal(err)
	}

	correct := 0
	for i, y := range logits.Labels {
		z := logits.Data[2*i : 2*i+2]
		if (z[1] > z[0]) == (y == 1) {
			correct++
		}
	}
	top1 := float64(correct) / float64(logits.Rows)

	backends := []string{"purego"}
	if slices.Contains(auto.Names(), "onednn") {
		backends = append(backends, "onednn")
	} else {
		t.Log("onednn not built in (CGO_ENABLED=0): predict checked on purego alone")
	}
	var results []map[string][]string
	for _, be := range backends {
		csvPath := filepath.Join(dir, "pred-"+be+".csv")
		_, errOut := must("--backend", be, "predict", "--model", cls, "--data", imgs, "--out", csvPath, "--batch", "7", "--quiet")
		if !strings.Contains(errOut, "images/s") || !strings.Contains(errOut, fmt.Sprintf("top-1 %.2f%% on the 20 labelled images", 100*top1)) {
			t.Errorf("%s: predict's stderr lacks the speed or top-1 %.2f%%: %q", be, 100*top1, errOut)
		}
		text, err := os.ReadFile(csvPath)
		if err != nil {
			t.Fatal(err)
		}
		preds := readPredictions(t, string(text), 2) // --top-k 5, two classes
		if len(preds) != len(files) {
			t.Fatalf("%s: %d rows for %d images", be, len(preds), len(files))
		}
		for i, file := range files {
			row, ok := preds[file]
			if !ok {
				t.Fatalf("%s: no row for %s", be, file)
			}
			p1, err1 := strconv.ParseFloat(row[1], 64)
			p2, err2 := strconv.ParseFloat(row[3], 64)
			if err1 != nil || err2 != nil || math.Abs(p1+p2-1) > 1e-5 || p1 < p2 {
				t.Errorf("%s: %s: probabilities %s, %s", be, file, row[1], row[3])
			}
			z := logits.Data[2*i : 2*i+2]
			best := 0
			if z[1] > z[0] {
				best = 1
			}
			if row[0] != l.ClassNames[best] || row[2] != l.ClassNames[1-best] {
				t.Errorf("%s: %s: top classes %s, %s; our logits %v", be, file, row[0], row[2], z)
			}
		}
		results = append(results, preds)
	}
	if len(results) == 2 {
		for file, a := range results[0] {
			b := results[1][file]
			pa, _ := strconv.ParseFloat(a[1], 64)
			pb, _ := strconv.ParseFloat(b[1], 64)
			if math.Abs(pa-pb) > 1e-4 || (a[0] != b[0] && math.Abs(pa-0.5) > 1e-4) {
				t.Errorf("%s: purego says %v, onednn %v", file, a, b)
			}
		}
	}

	// JSON lines on stdout, top-1 only, with the true labels.
	out, _ = must("--backend", "purego", "predict", "--model", cls, "--data", imgs, "--json", "--top-k", "1", "--quiet")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(files) {
		t.Fatalf("--json printed %d lines for %d images", len(lines), len(files))
	}
	for _, line := range lines {
		var p jsonPrediction
		if err := json.Unmarshal([]byte(line), &p); err != nil || p.Label == nil || len(p.Top) != 1 ||
			p.Top[0].Class != results[0][p.File][0] || !strings.Contains(p.File, *p.Label) {
			t.Errorf("--json line %s (%v)", line, err)
		}
	}

	// A folder without class sub-folders: predictions, no accuracy.
	flat := filepath.Join(dir, "flat")
	os.MkdirAll(flat, 0o755)
	for i, file := range files[:5] {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(flat, strconv.Itoa(i)+".png"), b, 0o644)
	}
	out, errOut := must("--backend", "purego", "predict", "--model", cls, "--data", flat, "--quiet")
	if preds := readPredictions(t, out, 2); len(preds) != 5 || strings.Contains(errOut, "top-1") {
		t.Errorf("unlabelled folder: %d rows, stderr %q", len(preds), errOut)
	}

	// An encoder is no classifier; --top-k must be positive.
	if _, _, err := runPredictCLI(t, "--backend", "purego", "predict", "--model", enc, "--data", imgs); err == nil || !strings.Contains(err.Error(), "not a classifier") {
		t.Errorf("predict with an encoder: %v", err)
	}
	if _, _, err := runPredictCLI(t, "--backend", "purego", "predict", "--model", cls, "--data", imgs, "--top-k", "0"); err == nil || !strings.Contains(err.Error(), "--top-k") {
		t.Errorf("predict --top-k 0: %v", err)
	}
}
