package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// runMain runs a simclr command line in this process and returns its exit
// status, stdout and stderr; a panic fails the test.
func runMain(t *testing.T, args ...string) (status int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("simclr %s panicked: %v", strings.Join(args, " "), r)
			status = -1
		}
	}()
	status = run(args, &out, &errOut)
	return status, out.String(), errOut.String()
}

// badValues are the values every numeric flag is tried with, by pflag type.
var badValues = map[string][]string{
	"int":      {"0", "-1", "9223372036854775807"},
	"int64":    {"0", "-1", "9223372036854775807"},
	"uint64":   {"0", "-1", "9223372036854775807"},
	"float64":  {"0", "-1", "1e12", "NaN", "+Inf"},
	"duration": {"0s", "-1s", "876000h"},
}

// allowed lists the values of badValues a command legitimately accepts:
// "flag=value" for every command, "command flag=value" for one. Each says
// what the value means; the test skips them instead of weakening its
// assertion.
var allowed = map[string]string{
	"seed=0":                   "any 64-bit seed is valid",
	"seed=9223372036854775807": "any 64-bit seed is valid",
	"threads=0":                "$SIMCLR_THREADS, else all CPUs",
	"workers=0":                "one loader per CPU",
	"image-size=0":             "the size recorded in the model, or the images' own",
	"limit=0":                  "all images",
	"val=0":                    "no held-out images",

	"knn depth=0": "read from the file", "knn width=0": "read from the file",
	"linear-eval depth=0": "read from the file", "linear-eval width=0": "read from the file",
	"linear-eval augment=0": "no augmented copies",
	"finetune depth=0":      "read from the file", "finetune width=0": "read from the file",
	"finetune ft-proj-selector=0": "the classifier on the encoder's output",
	"embed depth=0":               "read from the file", "embed width=0": "read from the file",
	"export depth=0": "read from the file", "export width=0": "read from the file",
	"import depth=0": "read from the file", "import width=0": "read from the file",
	"import proj-hidden=0": "the encoder's feature size",
	"predict depth=0":      "read from the file", "predict width=0": "read from the file",
	"select depth=0": "read from the file", "select width=0": "read from the file",
	"bench select depth=0": "read from the file", "bench select width=0": "read from the file",
	"bench select l2=0": "no penalty",

	"distill student-depth=0": "the teacher's", "distill student-width=0": "the teacher's",
	"distill fraction=0": "no labelled images", "distill alpha=0": "distillation loss only",
	"distill lr=0": "the recipe's", "distill temperature=0": "the recipe's",
	"distill weight-decay=0": "no weight decay", "distill warmup-fraction=0": "no warmup",
	"finetune lr=0": "the recipe's", "semi temperature=0": "the recipe's",

	"semi ft-proj-selector=0": "the classifier on the encoder's output",
	"semi alpha=0":            "distillation loss only",
	"semi budget=0":           "no --select: labels by --fractions",

	"pretrain proj-hidden=0":      "the encoder's feature size",
	"pretrain sk-ratio=0":         "a plain ResNet",
	"pretrain steps=0":            "from --epochs",
	"pretrain weight-decay=0":     "no weight decay",
	"pretrain momentum=0":         "plain SGD",
	"pretrain warmup-epochs=0":    "no warmup",
	"pretrain memory-size=0":      "no memory",
	"pretrain memory-momentum=0":  "the momentum model copies the online one",
	"pretrain color-strength=0":   "automatic",
	"pretrain solarize=0":         "never solarize",
	"pretrain color-p=0":          "never distort colours",
	"pretrain gray-p=0":           "never grayscale",
	"pretrain flip-p=0":           "never flip",
	"pretrain checkpoint-every=0": "a checkpoint at the end only",
	"pretrain knn-every=0":        "no kNN probe",
	"pretrain time-budget=0s":     "no time limit",

	"bench step warmup=0": "no untimed steps",
}

// TestBadFlagValues runs every subcommand with each of its numeric flags
// at 0, -1 and an absurd value (and NaN, infinity for real numbers): each
// run must end at once with status 2 and a message naming the flag, in the
// user's terms. Validation happens before any data is opened: --data names
// a folder that does not exist, so a run that got past it fails with 1.
func TestBadFlagValues(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-data")
	model := filepath.Join(dir, "model.safetensors")
	// What each command needs besides the flag under test.
	needs := map[string][]string{
		"knn":          {"--checkpoint", model, "--data", missing},
		"linear-eval":  {"--checkpoint", model, "--data", missing},
		"finetune":     {"--checkpoint", model, "--data", missing},
		"distill":      {"--teacher", model, "--data", missing},
		"semi":         {"--checkpoint", model, "--data", missing, "--out", filepath.Join(dir, "semi")},
		"embed":        {"--checkpoint", model, "--data", missing, "--out", filepath.Join(dir, "emb")},
		"export":       {"--checkpoint", model, "--out", filepath.Join(dir, "enc.safetensors")},
		"import":       {"--in", model, "--out", filepath.Join(dir, "enc.safetensors")},
		"predict":      {"--model", model, "--data", missing},
		"pretrain":     {"--data", missing, "--out", filepath.Join(dir, "run")},
		"demo":         {"--fashion-dir", missing, "--out", filepath.Join(dir, "demo")},
		"bench select": {"--checkpoint", model, "--data", missing},
		"bench step": {"--backend", "purego", "--threads", "1", "--depth", "18", "--width", "2", "--batch", "2", "--image", "8",
			"--steps", "1", "--warmup", "0", "--proj-hidden", "4", "--proj-out", "4"},
	}
	internal := regexp.MustCompile(`main\.|strconv\.|%!|\{[A-Z][a-zA-Z]*:|\bdata: [A-Z]`)
	began, tried := time.Now(), 0
	for _, c := range runnable(newRootCmd()) {
		path := strings.TrimPrefix(c.CommandPath(), "simclr ")
		var flags []*pflag.Flag
		c.NonInheritedFlags().VisitAll(func(f *pflag.Flag) { flags = append(flags, f) })
		c.InheritedFlags().VisitAll(func(f *pflag.Flag) { flags = append(flags, f) })
		for _, f := range flags {
			for _, v := range badValues[f.Value.Type()] {
				if allowed[f.Name+"="+v] != "" || allowed[path+" "+f.Name+"="+v] != "" {
					continue
				}
				args := append(strings.Fields(path), needs[path]...)
				args = append(args, "--"+f.Name+"="+v)
				tried++
				status, _, stderr := runMain(t, args...)
				if status != exitUsage || !strings.Contains(stderr, "--"+f.Name) {
					t.Errorf("simclr %s: status %d, want %d, and a message naming --%s:\n%s", strings.Join(args, " "), status, exitUsage, f.Name, stderr)
				}
				if m := internal.FindString(stderr); m != "" {
					t.Errorf("simclr %s: message shows program internals (%q):\n%s", strings.Join(args, " "), m, stderr)
				}
			}
		}
	}
	if tried < 200 {
		t.Errorf("only %d flag values tried: are the commands registered?", tried)
	}
	t.Logf("%d bad flag values tried in %v", tried, time.Since(began).Round(time.Millisecond))
}

// runnable lists the commands under root that do something.
func runnable(root *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, c := range root.Commands() {
		if c.Runnable() && c.Name() != "help" && c.Name() != "completion" {
			out = append(out, c)
		}
		out = append(out, runnable(c)...)
	}
	return out
}

// TestExitStatus: mistakes in the command line exit with 2, failures of a
// run with 1; --version prints the version.
func TestExitStatus(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args    []string
		status  int
		message string
	}{
		{[]string{"--version"}, 0, ""},
		{[]string{"no-such-command"}, exitUsage, "no-such-command"},
		{[]string{"knn", "--no-such-flag"}, exitUsage, "--no-such-flag"},
		{[]string{"knn", "extra-argument"}, exitUsage, "extra-argument"},
		{[]string{"knn", "--k"}, exitUsage, "--k"},
		{[]string{"knn", "--k", "many"}, exitUsage, `--k "many": want a whole number`},
		{[]string{"knn", "--data", "x"}, exitUsage, "--checkpoint is missing"},
		{[]string{"pretrain", "--batch", "0", "--data", "x"}, exitUsage, "--batch 0: want 2 to"},
		{[]string{"pretrain", "--epochs", "-1", "--data", "x"}, exitUsage, "--epochs -1: want a value in (0, "},
		{[]string{"knn", "--k", "0", "--checkpoint", "m", "--data", "x"}, exitUsage, "--k 0: want 1 to"},
		{[]string{"--threads", "-1", "version"}, exitUsage, "--threads -1"},
		{[]string{"--backend", "cuda", "version"}, exitUsage, `--backend "cuda": want auto`},
		{[]string{"export", "--checkpoint", "m", "--out", filepath.Join(dir, "e"), "--format", "pickle"}, exitUsage, `--format "pickle"`},
		{[]string{"distill", "--teacher", "t", "--data", "x", "--student-init", "m", "--student-width", "8"}, exitUsage, "--student-init sets"},
		{[]string{"export", "--checkpoint", filepath.Join(dir, "missing.safetensors"), "--out", filepath.Join(dir, "e.safetensors")}, exitFailure, "missing.safetensors"},
	} {
		status, stdout, stderr := runMain(t, tc.args...)
		if status != tc.status || !strings.Contains(stderr, tc.message) {
			t.Errorf("simclr %s: status %d, stderr %q; want %d and %q", strings.Join(tc.args, " "), status, stderr, tc.status, tc.message)
		}
		if tc.status != 0 && stdout != "" {
			t.Errorf("simclr %s: failed with %q on stdout", strings.Join(tc.args, " "), stdout)
		}
	}
	status, stdout, _ := runMain(t, "--version")
	if status != 0 || !strings.HasPrefix(stdout, "simclr "+version) {
		t.Errorf("--version: status %d, %q; want simclr %s...", status, stdout, version)
	}
}

// TestConfigFileMessages: a bad YAML settings file is a usage error naming
// the file, the line and the key, in the flags' terms.
func TestConfigFileMessages(t *testing.T) {
	dir := t.TempDir()
	for body, want := range map[string]string{
		"depht: 18\n":           `line 1: unknown setting "depht"`,
		"depth: 18\nbatch: x\n": `line 2: batch "x": want a whole number`,
		"batch: 0\n":            "--batch 0: want 2 to",
		"- a\n- b\n":            "want one setting per line",
		"batch: [1, 2]\n":       "batch: want a single value",
		"depth: 18\n  width: 4": "yaml",
	} {
		cfg := filepath.Join(dir, "run.yaml")
		os.WriteFile(cfg, []byte(body), 0o644)
		status, _, stderr := runMain(t, "pretrain", "--config", cfg, "--data", filepath.Join(dir, "missing"), "--out", filepath.Join(dir, "run"))
		if status != exitUsage || !strings.Contains(stderr, want) || strings.Contains(stderr, "main.") {
			t.Errorf("config %q: status %d, %q; want %d and %q", body, status, stderr, exitUsage, want)
		}
	}
}

// TestOutputsOverInputs: no command writes over a file it reads or into
// the dataset it reads, whether the output exists yet or not.
func TestOutputsOverInputs(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "checkpoint.safetensors")
	imgs := filepath.Join(dir, "images")
	os.MkdirAll(filepath.Join(imgs, "cat"), 0o755)
	for _, p := range []string{ckpt, filepath.Join(imgs, "cat", "1.png")} {
		if err := os.WriteFile(p, []byte("precious"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link, hard := filepath.Join(dir, "link.safetensors"), filepath.Join(dir, "hard.safetensors")
	if err := os.Symlink(ckpt, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(ckpt, hard); err != nil {
		t.Fatal(err)
	}
	dotted := dir + string(filepath.Separator) + "." + string(filepath.Separator) + "checkpoint.safetensors"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "--checkpoint", ckpt, "--out", ckpt}, "is the --checkpoint file"},
		{[]string{"export", "--checkpoint", ckpt, "--out", dotted}, "is the --checkpoint file"},
		{[]string{"export", "--checkpoint", link, "--out", ckpt}, "is the --checkpoint file"},
		{[]string{"export", "--checkpoint", ckpt, "--out", hard}, "is the --checkpoint file"},
		{[]string{"import", "--in", ckpt, "--out", ckpt}, "is the --in file"},
		{[]string{"finetune", "--checkpoint", ckpt, "--data", imgs, "--out", ckpt}, "is the --checkpoint file"},
		{[]string{"finetune", "--checkpoint", ckpt, "--data", imgs, "--out", filepath.Join(imgs, "teacher.safetensors")}, "inside the dataset folder"},
		{[]string{"distill", "--teacher", ckpt, "--data", imgs, "--out", ckpt}, "is the --teacher file"},
		{[]string{"embed", "--checkpoint", ckpt, "--data", imgs, "--out", filepath.Join(imgs, "cat", "feats")}, "inside the dataset folder"},
		{[]string{"pretrain", "--data", imgs, "--out", imgs}, "inside the dataset folder"},
		{[]string{"pretrain", "--data", imgs, "--out", filepath.Join(imgs, "new", "run")}, "inside the dataset folder"},
		{[]string{"semi", "--checkpoint", ckpt, "--data", imgs, "--out", filepath.Join(imgs, "semi")}, "inside the dataset folder"},
		{[]string{"demo", "--fashion-dir", imgs, "--out", dir}, "holds the dataset"},
	} {
		status, _, stderr := runMain(t, tc.args...)
		if status != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("simclr %s: status %d, %q; want %d and %q", strings.Join(tc.args, " "), status, stderr, exitUsage, tc.want)
		}
	}
	for _, p := range []string{ckpt, filepath.Join(imgs, "cat", "1.png")} {
		if b, err := os.ReadFile(p); err != nil || string(b) != "precious" {
			t.Errorf("%s changed: %q, %v", p, b, err)
		}
	}
	if entries, _ := os.ReadDir(imgs); len(entries) != 1 {
		t.Errorf("the dataset folder holds %d entries, want 1 (cat)", len(entries))
	}
}

// TestWithin pins the path logic the refusals rest on.
func TestWithin(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	os.MkdirAll(a, 0o755)
	for _, tc := range []struct {
		p, dir string
		want   bool
	}{
		{filepath.Join(a, "x"), a, true},
		{filepath.Join(a, "new", "deeper"), a, true},
		{a, a, false},
		{filepath.Join(dir, "ab"), a, false},
		{filepath.Join(a, "..", "b"), a, false},
		{dir, a, false},
	} {
		if got := within(tc.p, tc.dir); got != tc.want {
			t.Errorf("within(%s, %s) = %v, want %v", tc.p, tc.dir, got, tc.want)
		}
	}
}

// TestProgressLines: off a terminal the progress display writes whole
// lines (no carriage returns), the first at once, then one per interval,
// and the last frame at the end.
func TestProgressLines(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	lw := newLineWriter(&buf, 30*time.Second, func() time.Time { return now })
	for i := 0; i <= 100; i++ { // a frame a second for 100 s
		fmt.Fprintf(lw, "\r%-20s\rstep %d/100", "", i)
		now = now.Add(time.Second)
	}
	lw.flush()
	want := "step 0/100\nstep 30/100\nstep 60/100\nstep 90/100\nstep 100/100\n"
	if buf.String() != want {
		t.Errorf("lines:\n%s\nwant:\n%s", buf.String(), want)
	}

	buf.Reset()
	bar := newBarTo(&buf, false, 50, "embedding")
	for i := 1; i <= 50; i++ {
		bar.Set(i)
	}
	bar.Finish()
	out := buf.String()
	if strings.ContainsAny(out, "\r\x1b") || !strings.Contains(out, "embedding") || !strings.Contains(out, "50/50") {
		t.Errorf("progress off a terminal wrote %q", out)
	}
}

// decodeResult parses a command's stdout as exactly one evalResult with
// no unknown fields.
func decodeResult(t *testing.T, what, stdout string) evalResult {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	var r evalResult
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("%s --json stdout %q: %v", what, stdout, err)
	}
	if err := dec.Decode(new(json.RawMessage)); err != io.EOF {
		t.Errorf("%s --json: stdout holds more than one JSON object: %q", what, stdout)
	}
	if r.Command != what || r.Version == "" || r.Model.Checkpoint == "" || r.Dataset.Data == "" || len(r.Metrics) == 0 || r.Seconds <= 0 {
		t.Errorf("%s --json: incomplete result %+v", what, r)
	}
	for k, v := range r.Metrics {
		if !(v >= 0 && v <= 1) {
			t.Errorf("%s --json: metric %s = %v, want a fraction", what, k, v)
		}
	}
	return r
}

// TestBenchStepJSON: bench step --json prints one JSON line alone on
// stdout; the human report goes to stderr.
func TestBenchStepJSON(t *testing.T) {
	status, stdout, stderr := runMain(t, "bench", "step", "--backend", "purego", "--threads", "1", "--depth", "18", "--width", "2",
		"--batch", "2", "--image", "8", "--steps", "1", "--warmup", "0", "--proj-hidden", "4", "--proj-out", "4", "--json")
	if status != 0 {
		t.Fatalf("status %d: %s", status, stderr)
	}
	var res map[string]any
	if strings.Count(stdout, "\n") != 1 || json.Unmarshal([]byte(stdout), &res) != nil || res["images_per_s"] == nil {
		t.Errorf("stdout %q: want one JSON line with images_per_s", stdout)
	}
	if !strings.Contains(stderr, "images/sec") {
		t.Errorf("stderr %q: want the report", stderr)
	}
}

// TestPseudoVersion: made-up versions of untagged commits give way to the
// revision; tags are kept.
func TestPseudoVersion(t *testing.T) {
	for v, pseudo := range map[string]bool{
		"v0.0.0-20261203205557-7dac2be4e293+dirty": true,
		"v0.0.0-20261203205557-7dac2be4e293":       true,
		"v1.2.4-0.20261203205557-7dac2be4e293":     true,
		"v1.2.3":                                   false,
		"v1.2.3-rc.1":                              false,
	} {
		if got := pseudoVersion.MatchString(v); got != pseudo {
			t.Errorf("%s: pseudo-version %v, want %v", v, got, pseudo)
		}
	}
}
