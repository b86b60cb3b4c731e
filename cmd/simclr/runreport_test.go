package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simclr-go/simclr/report"
	"github.com/simclr-go/simclr/report/tfevents"
	"github.com/simclr-go/simclr/train"
)

// checkRunReport checks that dir/report.html mentions each of mentions and
// shows only images that exist, at least those of want.
func checkRunReport(t *testing.T, dir string, want []string, mentions ...string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, report.PageName))
	if err != nil {
		t.Fatalf("no report: %v", err)
	}
	html := string(raw)
	for _, m := range mentions {
		if !strings.Contains(html, m) {
			t.Errorf("%s does not mention %q", dir, m)
		}
	}
	shown := map[string]bool{}
	for _, m := range regexp.MustCompile(`<img src="([^"]+)"`).FindAllStringSubmatch(html, -1) {
		shown[m[1]] = true
		if _, err := os.Stat(filepath.Join(dir, m[1])); err != nil {
			t.Errorf("the report shows a missing image: %v", err)
		}
	}
	for _, w := range want {
		if !shown[w] {
			t.Errorf("%s does not show %s (shows %v)", dir, w, shown)
		}
	}
	if strings.Contains(html, `http-equiv="refresh"`) {
		t.Errorf("the report of a finished run still reloads itself")
	}
}

// checkEvents reads dir's event files with their checksums checked and
// compares them with dir/metrics.jsonl: every row's step once, in one of
// files event files, each metric a scalar of the row's value.
func checkEvents(t *testing.T, dir string, files int) {
	t.Helper()
	paths, err := tfevents.Files(dir)
	if err != nil || len(paths) != files {
		t.Fatalf("%d event files (%v), want %d", len(paths), err, files)
	}
	got := map[int64]map[string]float32{}
	for _, p := range paths {
		events, err := tfevents.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) == 0 || events[0].FileVersion != tfevents.FileVersion {
			t.Fatalf("%s: no file version event first", p)
		}
		for _, ev := range events[1:] {
			if got[ev.Step] != nil {
				t.Errorf("step %d recorded twice", ev.Step)
			}
			got[ev.Step] = map[string]float32{}
			for _, s := range ev.Scalars {
				got[ev.Step][s.Tag] = s.Value
			}
		}
	}
	rows, err := report.ReadMetrics(filepath.Join(dir, report.MetricsName))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 || len(got) != len(rows) {
		t.Fatalf("%d steps in the events, %d in the log", len(got), len(rows))
	}
	for _, r := range rows {
		ev := got[int64(r.Step())]
		for k, v := range r {
			if w, ok := ev[k]; k != "step" && (!ok || w != float32(v)) {
				t.Errorf("step %d: %s = %v in the events, %v in the log", r.Step(), k, w, v)
			}
		}
	}
}

// A pretraining run leaves a report of its metrics and views, and
// TensorBoard events that hold the log; resumed, a second event file
// continues the first.
func TestPretrainReport(t *testing.T) {
	data := imageFolder(t, 24)
	run := filepath.Join(t.TempDir(), "run")
	more := []string{"--val", "8", "--knn-every", "2", "--checkpoint-every", "2"}
	if out, err := execute(tinyPretrain(data, run, 4, more...), pretrainCmd); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	checkRunReport(t, run, []string{"plot_loss.png", "plot_lr.png", "plot_contrast_acc.png", "plot_knn_top1.png", "views.png"},
		"learning rate", "contrastive accuracy", "kNN top-1", "<td>knn_every</td><td>2</td>", "4 steps logged")
	checkEvents(t, run, 1)
	if out, err := execute(tinyPretrain(data, run, 6, append(more, "--resume")...), pretrainCmd); err != nil {
		t.Fatalf("--resume: %v\n%s", err, out)
	}
	checkRunReport(t, run, []string{"plot_loss.png", "plot_knn_top1.png"}, "6 steps logged")
	checkEvents(t, run, 2)
}

// Fine-tuning and distillation writing X.safetensors report in X.report/;
// semi links its stages' reports.
func TestFinetuneDistillSemiReports(t *testing.T) {
	data := imageFolder(t, 32)
	dir := t.TempDir()
	pre := filepath.Join(dir, "pre")
	if out, err := execute(tinyPretrain(data, pre, 1), pretrainCmd); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	ckpt := filepath.Join(pre, train.CheckpointName)
	common := []string{"--data", data, "--val", "8", "--batch", "4", "--epochs", "2", "--workers", "1",
		"--backend", "purego", "--threads", "1", "--quiet"}
	teacher := filepath.Join(dir, "teacher.safetensors")
	args := append([]string{"finetune", "--checkpoint", ckpt, "--fraction", "1", "--image-size", "8", "--out", teacher}, common...)
	if out, err := execute(args, finetuneCmd); err != nil {
		t.Fatalf("finetune: %v\n%s", err, out)
	}
	tdir := filepath.Join(dir, "teacher.report")
	checkRunReport(t, tdir, []string{"plot_loss.png"}, "Fine-tuning", "test top-1 (8 images)", "<td>fraction</td><td>1</td>", "12 steps logged")
	checkEvents(t, tdir, 1)

	student := filepath.Join(dir, "student.safetensors")
	args = append([]string{"distill", "--teacher", teacher, "--out", student}, common...)
	if out, err := execute(args, distillCmd); err != nil {
		t.Fatalf("distill: %v\n%s", err, out)
	}
	sdir := filepath.Join(dir, "student.report")
	checkRunReport(t, sdir, []string{"plot_loss.png"}, "Distillation", "test top-1, student", "test top-1, teacher", "12 steps logged")
	checkEvents(t, sdir, 1)

	semi := filepath.Join(dir, "semi")
	args = []string{"semi", "--data", data, "--val", "8", "--checkpoint", ckpt, "--fractions", "0.5", "--ft-epochs", "1",
		"--ft-batch", "4", "--distill-epochs", "1", "--distill-batch", "8", "--no-baseline", "--out", semi,
		"--backend", "purego", "--threads", "1", "--quiet"}
	if out, err := execute(args, semiCmd); err != nil {
		t.Fatalf("semi: %v\n%s", err, out)
	}
	checkRunReport(t, semi, nil, `href="teacher-0.5.report/report.html"`, `href="student-0.5.report/report.html"`, "distilled student", "<td>fractions</td><td>0.5</td>")
	checkEvents(t, filepath.Join(semi, "teacher-0.5.report"), 1)
}

// A running pretraining can be watched: the page appears at its first
// checkpoint, reloading itself, before the run ends; stopped by SIGTERM,
// the run leaves a final page and events that hold every logged step.
func TestPretrainReportWhileRunning(t *testing.T) {
	data := imageFolder(t, 24)
	run := filepath.Join(t.TempDir(), "run")
	c, stderr := startChild(t, tinyPretrain(data, run, 100000, "--checkpoint-every", "3")...)
	page := filepath.Join(run, report.PageName)
	var live string
	for start := time.Now(); time.Since(start) < time.Minute; time.Sleep(10 * time.Millisecond) {
		if raw, err := os.ReadFile(page); err == nil {
			live = string(raw)
			break
		}
	}
	if live == "" {
		c.Process.Kill()
		t.Fatalf("no %s within a minute\n%s", page, stderr)
	}
	if err := c.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := c.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 143 {
		t.Fatalf("child ended with %v, want exit status 143\n%s", err, stderr)
	}
	if !strings.Contains(live, `http-equiv="refresh"`) || !strings.Contains(live, "plot_loss.png") {
		t.Errorf("the page of the running job does not reload itself or lacks the loss plot:\n%s", live)
	}
	rows, err := report.ReadMetrics(filepath.Join(run, report.MetricsName))
	if err != nil {
		t.Fatal(err)
	}
	checkRunReport(t, run, []string{"plot_loss.png", "views.png"}, fmt.Sprintf("%d steps logged", len(rows)))
	checkEvents(t, run, 1)
}
