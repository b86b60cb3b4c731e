package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// corruptJPEG writes a file that starts like a JPEG and then is noise: it
// is listed as an image and fails to decode.
func corruptJPEG(t *testing.T, path string) {
	t.Helper()
	b := append([]byte{0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0}, []byte(strings.Repeat("not an image ", 20))...)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestEvalJSON: with --json, stdout of every evaluation command is one
// JSON object of the shared schema, even when images were skipped (that
// is said on stderr).
func TestEvalJSON(t *testing.T) {
	dir, imgs, ckpt := fixture(t)
	corruptJPEG(t, filepath.Join(imgs, "dark", "broken.jpg"))
	base := []string{"--backend", "purego", "--threads", "1"}
	data := []string{"--data", imgs, "--val", "6", "--skip-bad", "--quiet", "--json"}
	teacher := filepath.Join(dir, "teacher.safetensors")
	for _, tc := range []struct {
		command string
		args    []string
		metrics []string
	}{
		{"knn", []string{"--checkpoint", ckpt, "--k", "3"}, []string{"top1"}},
		{"linear-eval", []string{"--checkpoint", ckpt, "--l2", "1e-3"}, []string{"top1", "top2", "train_top1"}},
		{"finetune", []string{"--checkpoint", ckpt, "--fraction", "0.5", "--epochs", "1", "--batch", "4", "--out", teacher}, []string{"top1"}},
		{"distill", []string{"--teacher", teacher, "--epochs", "1", "--batch", "4"}, []string{"top1", "teacher_top1"}},
		{"semi", []string{"--checkpoint", ckpt, "--fractions", "0.5", "--ft-epochs", "1", "--ft-batch", "4", "--distill-epochs", "1",
			"--distill-batch", "4", "--no-baseline", "--out", filepath.Join(dir, "semi")}, []string{"teacher_top1@0.5", "student_top1@0.5"}},
	} {
		args := append(append(append([]string{tc.command}, base...), tc.args...), data...)
		status, stdout, stderr := runMain(t, args...)
		if status != 0 {
			t.Fatalf("simclr %s: status %d:\n%s", strings.Join(args, " "), status, stderr)
		}
		r := decodeResult(t, tc.command, stdout)
		for _, m := range tc.metrics {
			if _, ok := r.Metrics[m]; !ok {
				t.Errorf("%s --json: no metric %s in %v", tc.command, m, r.Metrics)
			}
		}
		if tc.command != "semi" && (r.Dataset.Train != 14 || r.Dataset.Test != 6 || r.Dataset.Classes != 2) {
			t.Errorf("%s --json: dataset %+v, want 14 training and 6 test images of 2 classes", tc.command, r.Dataset)
		}
	}
	// semi has an output folder: it lists the skipped image there.
	listed, err := os.ReadFile(filepath.Join(dir, "semi", skippedName))
	if want := filepath.Join(imgs, "dark", "broken.jpg") + "\n"; err != nil || string(listed) != want {
		t.Errorf("semi's %s: %q, %v; want %q", skippedName, listed, err, want)
	}
}

// TestSkipBad: a corrupt image stops a run with its name and the ways
// on; with --skip-bad a run folder lists it in skipped.txt.
func TestSkipBad(t *testing.T) {
	dir, imgs, ckpt := fixture(t)
	bad := filepath.Join(imgs, "bright", "broken.jpg")
	corruptJPEG(t, bad)
	status, _, stderr := runMain(t, "embed", "--backend", "purego", "--threads", "1", "--checkpoint", ckpt, "--data", imgs,
		"--out", filepath.Join(dir, "emb"), "--quiet")
	if status != exitFailure || !strings.Contains(stderr, bad) || !strings.Contains(stderr, "--skip-bad") || strings.Contains(stderr, "--resume") {
		t.Errorf("embed over a corrupt image: status %d, %q; want %d, the file and --skip-bad (no --resume: embed has none)", status, stderr, exitFailure)
	}
	// A folder small enough that the grid of views shows every image.
	small := filepath.Join(dir, "small")
	os.MkdirAll(small, 0o755)
	for i := 0; i < 3; i++ {
		b, err := os.ReadFile(filepath.Join(imgs, "dark", strconv.Itoa(i)+".png"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(small, strconv.Itoa(i)+".png"), b, 0o644)
	}
	bad = filepath.Join(small, "broken.jpg")
	corruptJPEG(t, bad)
	run := filepath.Join(dir, "run")
	pretrain := []string{"pretrain", "--backend", "purego", "--threads", "1", "--data", small, "--depth", "18", "--width", "2",
		"--batch", "2", "--steps", "1", "--grid-only", "--quiet", "--out", run}
	status, _, stderr = runMain(t, pretrain...)
	if status != exitFailure || !strings.Contains(stderr, bad) || !strings.Contains(stderr, "--skip-bad") || !strings.Contains(stderr, "--resume") {
		t.Errorf("pretrain over a corrupt image: status %d, %q; want %d, the file, --skip-bad and --resume", status, stderr, exitFailure)
	}
	status, _, stderr = runMain(t, append(pretrain, "--skip-bad")...)
	if status != 0 {
		t.Fatalf("pretrain --skip-bad: status %d: %s", status, stderr)
	}
	listed, err := os.ReadFile(filepath.Join(run, skippedName))
	if err != nil || string(listed) != bad+"\n" {
		t.Errorf("%s: %q, %v; want %q", skippedName, listed, err, bad+"\n")
	}
}

// TestDecodeErrorThenResume: a corrupt image met during training stops the
// run after its last checkpoint, naming the file; replaced by a readable
// image, --resume finishes the run.
func TestDecodeErrorThenResume(t *testing.T) {
	dir, imgs, _ := fixture(t)
	folder := filepath.Join(dir, "flat")
	os.MkdirAll(folder, 0o755)
	for i := 0; i < 40; i++ {
		b, err := os.ReadFile(filepath.Join(imgs, []string{"dark", "bright"}[i%2], strconv.Itoa(i/4)+".png"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(folder, fmt.Sprintf("f%02d.png", i)), b, 0o644)
	}
	// Sorted seventh of 41: not among the images of the grid of views
	// (every fifth), met in the second step with this seed.
	bad := filepath.Join(folder, "f05x.jpg")
	corruptJPEG(t, bad)
	run := filepath.Join(dir, "run")
	pretrain := []string{"pretrain", "--backend", "purego", "--threads", "1", "--data", folder, "--depth", "18", "--width", "2",
		"--batch", "8", "--steps", "6", "--checkpoint-every", "1", "--seed", "1", "--quiet", "--out", run}
	status, _, stderr := runMain(t, pretrain...)
	if status != exitFailure || !strings.Contains(stderr, bad) || !strings.Contains(stderr, "--skip-bad") || !strings.Contains(stderr, "--resume") {
		t.Fatalf("pretrain over a corrupt image: status %d, %q; want %d, the file, --skip-bad and --resume", status, stderr, exitFailure)
	}
	good, err := os.ReadFile(filepath.Join(folder, "f00.png"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(bad, good, 0o644)
	if status, _, stderr = runMain(t, append(pretrain, "--resume")...); status != 0 || !strings.Contains(stderr, "resumed from") {
		t.Errorf("--resume after replacing the image: status %d: %s", status, stderr)
	}
}
