package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simclr-go/simclr/checkpoint"
	"github.com/simclr-go/simclr/train"
)

// childArgsEnv carries the command line of a simclr run in a child
// process: the test binary re-executed, running TestChildProcess.
const childArgsEnv = "SIMCLR_TEST_CHILD_ARGS"

// TestChildProcess is not a test: in a child started by startChild it runs
// simclr's main with the arguments of $SIMCLR_TEST_CHILD_ARGS (and exits
// with its status); otherwise it returns at once.
func TestChildProcess(t *testing.T) {
	args := os.Getenv(childArgsEnv)
	if args == "" {
		return
	}
	os.Args = append([]string{"simclr"}, strings.Split(args, "\x1f")...)
	main()
	os.Exit(0)
}

// startChild starts simclr args in a child process.
func startChild(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	c := exec.Command(os.Args[0], "-test.run=^TestChildProcess$")
	c.Env = append(os.Environ(), childArgsEnv+"="+strings.Join(args, "\x1f"))
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	return c, &stderr
}

// imageFolder writes n random 8x8 PNG images in two class folders.
func imageFolder(t *testing.T, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "images")
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; i++ {
		class := filepath.Join(dir, fmt.Sprintf("class%d", i%2))
		if err := os.MkdirAll(class, 0o755); err != nil {
			t.Fatal(err)
		}
		img := image.NewRGBA(image.Rect(0, 0, 8, 8))
		for p := 0; p < 64; p++ {
			img.Set(p%8, p/8, color.RGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(40 * (i % 2)), 255})
		}
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(class, fmt.Sprintf("%03d.png", i)), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// tinyPretrain is a pretraining command line that runs many small steps.
func tinyPretrain(data, out string, steps int, more ...string) []string {
	return append([]string{"pretrain", "--data", data, "--out", out, "--depth", "18", "--width", "4", "--image-size", "8",
		"--batch", "8", "--steps", fmt.Sprint(steps), "--proj-hidden", "8", "--proj-out", "8", "--temperature", "0.5",
		"--lr", "0.5", "--warmup-epochs", "1", "--workers", "1", "--backend", "purego", "--threads", "1", "--quiet"}, more...)
}

// losses reads the step and loss columns of OUT/metrics.jsonl.
func losses(t *testing.T, dir string) (steps []int, loss []float64) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, train.MetricsName))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var rec struct {
			Step int     `json:"step"`
			Loss float64 `json:"loss"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue // a line cut by a kill
		}
		steps, loss = append(steps, rec.Step), append(loss, rec.Loss)
	}
	return steps, loss
}

// waitForRows waits until OUT/metrics.jsonl holds n rows.
func waitForRows(t *testing.T, dir string, n int, c *exec.Cmd) {
	t.Helper()
	for start := time.Now(); time.Since(start) < time.Minute; time.Sleep(5 * time.Millisecond) {
		raw, _ := os.ReadFile(filepath.Join(dir, train.MetricsName))
		if bytes.Count(raw, []byte("\n")) >= n {
			return
		}
	}
	c.Process.Kill()
	t.Fatalf("no %d metrics rows within a minute", n)
}

// TestSIGTERMThenResume: SIGTERM makes pretraining finish its step, save a
// checkpoint and exit with 143 saying how to continue; --resume then
// writes the losses of an uninterrupted run, bit for bit, each step once.
func TestSIGTERMThenResume(t *testing.T) {
	const steps = 40
	data := imageFolder(t, 24)
	dir := t.TempDir()
	whole, cut := filepath.Join(dir, "whole"), filepath.Join(dir, "cut")
	if out, err := execute(tinyPretrain(data, whole, steps), pretrainCmd); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}
	_, want := losses(t, whole)

	c, stderr := startChild(t, tinyPretrain(data, cut, steps, "--checkpoint-every", "1000")...)
	waitForRows(t, cut, 3, c)
	if err := c.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := c.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 143 {
		t.Fatalf("child ended with %v, want exit status 143\n%s", err, stderr)
	}
	if !strings.Contains(stderr.String(), "--resume") || !strings.Contains(stderr.String(), "SIGTERM") {
		t.Errorf("stderr does not say how to continue:\n%s", stderr)
	}
	f, err := checkpoint.Load(filepath.Join(cut, train.CheckpointName))
	if err != nil {
		t.Fatalf("no checkpoint after SIGTERM: %v", err)
	}
	t.Logf("SIGTERM after step %s of %d", f.Meta["step"], steps)
	if f.Meta["step"] == fmt.Sprint(steps) {
		t.Fatal("the run finished before the signal: nothing was interrupted")
	}

	if out, err := execute(tinyPretrain(data, cut, steps, "--resume"), pretrainCmd); err != nil {
		t.Fatalf("--resume: %v\n%s", err, out)
	}
	gotSteps, got := losses(t, cut)
	if len(got) != steps {
		t.Fatalf("resumed log has %d rows (steps %v), want %d", len(got), gotSteps, steps)
	}
	for i := range want {
		if gotSteps[i] != i || got[i] != want[i] {
			t.Errorf("row %d: step %d loss %.9g, uninterrupted step %d loss %.9g", i, gotSteps[i], got[i], i, want[i])
		}
	}

	out, err := execute(tinyPretrain(data, cut, steps, "--resume"), pretrainCmd)
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("run already finished at step %d (of %d)", steps, steps)) {
		t.Errorf("resuming the finished run: %v\n%s", err, out)
	}
}

// TestSIGKILLLeavesCheckpoint kills a run that saves a checkpoint every
// step, at random moments (every fourth time during start-up, else while
// it trains), 20 times, resuming it after each kill: a
// loadable checkpoint is always left, its step never goes back, and the
// log holds every step before it once.
func TestSIGKILLLeavesCheckpoint(t *testing.T) {
	const cycles = 20
	data := imageFolder(t, 24)
	out := filepath.Join(t.TempDir(), "run")
	ckpt := filepath.Join(out, train.CheckpointName)
	rng := rand.New(rand.NewPCG(3, 4))
	last, written := -1, 0
	for cycle := 0; cycle < cycles; cycle++ {
		args := tinyPretrain(data, out, 100000, "--checkpoint-every", "1")
		if _, err := os.Stat(ckpt); err == nil {
			args = append(args, "--resume")
		}
		rows := 0
		if raw, err := os.ReadFile(filepath.Join(out, train.MetricsName)); err == nil {
			rows = bytes.Count(raw, []byte("\n"))
		}
		c, stderr := startChild(t, args...)
		if cycle%4 == 0 {
			// Now and then during start-up, before any step.
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		} else {
			// Otherwise at a random moment once this run is training.
			waitForRows(t, out, rows+1, c)
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		}
		if err := c.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := c.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("cycle %d: child ended with %v before the kill\n%s", cycle, err, stderr)
		}
		f, err := checkpoint.Load(ckpt)
		if errors.Is(err, os.ErrNotExist) && last < 0 {
			continue // killed before the first step
		}
		if err != nil {
			t.Fatalf("cycle %d: the checkpoint does not load: %v", cycle, err)
		}
		var step int
		fmt.Sscan(f.Meta["step"], &step)
		if step < last {
			t.Fatalf("cycle %d: checkpoint at step %d after one at %d", cycle, step, last)
		}
		if step > last {
			written++
		}
		last = step
	}
	if written < cycles/2 {
		t.Errorf("the checkpoint advanced in only %d of %d cycles: the kills came too early to test much", written, cycles)
	}
	t.Logf("%d kills; the checkpoint advanced in %d cycles, to step %d", cycles, written, last)
	if _, err := train.TrimMetrics(filepath.Join(out, train.MetricsName), last); err != nil {
		t.Fatal(err)
	}
	steps, _ := losses(t, out)
	if len(steps) != last {
		t.Fatalf("log up to the checkpoint has %d rows, want %d", len(steps), last)
	}
	for i, s := range steps {
		if s != i {
			t.Fatalf("log row %d is step %d", i, s)
		}
	}
}

// TestResumeSettings: run.yaml given to --config reruns the run's
// settings; --resume with another setting is refused naming the flag and
// both values; more steps extend the run, saying how the schedule changes.
func TestResumeSettings(t *testing.T) {
	data := imageFolder(t, 24)
	dir := t.TempDir()
	run, rerun := filepath.Join(dir, "run"), filepath.Join(dir, "rerun")
	if out, err := execute(tinyPretrain(data, run, 2), pretrainCmd); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := execute([]string{"pretrain", "--config", filepath.Join(run, runFileName), "--out", rerun, "--backend", "purego", "--threads", "1"}, pretrainCmd); err != nil {
		t.Fatalf("--config run.yaml: %v\n%s", err, out)
	}
	a, ra, err := readRunFile(filepath.Join(run, runFileName))
	if err != nil {
		t.Fatal(err)
	}
	b, rb, err := readRunFile(filepath.Join(rerun, runFileName))
	if err != nil {
		t.Fatal(err)
	}
	if a["out"] != run || b["out"] != rerun {
		t.Errorf("out: %q and %q", a["out"], b["out"])
	}
	delete(a, "out")
	delete(b, "out")
	if len(a) < 40 || fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("--config run.yaml ran other settings:\n%v\n%v", a, b)
	}
	if len(ra.Dataset) != 1 || len(rb.Dataset) != 1 || ra.Dataset[0] != rb.Dataset[0] || ra.Dataset[0].Images != 24 || len(ra.Dataset[0].SHA256) != 64 {
		t.Errorf("dataset identities %+v and %+v", ra.Dataset, rb.Dataset)
	}
	_, wantLoss := losses(t, run)
	_, gotLoss := losses(t, rerun)
	if fmt.Sprint(gotLoss) != fmt.Sprint(wantLoss) || len(gotLoss) != 2 {
		t.Errorf("rerun losses %v, want %v", gotLoss, wantLoss)
	}

	_, err = execute(tinyPretrain(data, run, 2, "--resume", "--temperature", "0.2", "--batch", "6"), pretrainCmd)
	if err == nil || !strings.Contains(err.Error(), "--temperature: checkpoint 0.5, now 0.2") || !strings.Contains(err.Error(), "--batch: checkpoint 8, now 6") ||
		!strings.Contains(err.Error(), "--config "+filepath.Join(run, runFileName)+" --resume") {
		t.Errorf("resume with other settings: %v", err)
	}
	// The precision, a global flag, is a setting of the run too.
	_, err = execute(tinyPretrain(data, run, 2, "--resume", "--precision", "bf16"), pretrainCmd)
	if err == nil || !strings.Contains(err.Error(), "--precision: checkpoint fp32, now bf16") {
		t.Errorf("resume in another precision: %v", err)
	}
	out, err := execute(tinyPretrain(data, run, 4, "--resume"), pretrainCmd)
	if err != nil || !strings.Contains(string(out), "extending the run from 2 to 4 steps: from step 2 on") {
		t.Errorf("extending: %v\n%s", err, out)
	}
	if steps, _ := losses(t, run); len(steps) != 4 {
		t.Errorf("extended run logged steps %v, want 0..3", steps)
	}
}

// TestSecondSignalStopsAtOnce: SIGINT twice ends the run at once with
// status 130, without waiting for a step or a checkpoint.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	data := imageFolder(t, 24)
	out := filepath.Join(t.TempDir(), "run")
	// Steps of a few hundred milliseconds: the second signal comes while
	// the first one's step is still running.
	c, stderr := startChild(t, tinyPretrain(data, out, 100000, "--width", "16", "--image-size", "32", "--batch", "16")...)
	waitForRows(t, out, 1, c)
	for i := 0; i < 2; i++ {
		if err := c.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	err := c.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("child ended with %v, want exit status 130\n%s", err, stderr)
	}
	if !strings.Contains(stderr.String(), "SIGINT again: stopping now") {
		t.Errorf("stderr does not say it stopped at once:\n%s", stderr)
	}
}

// TestFineTuneSIGINTThenResume: SIGINT stops fine-tuning with its state
// beside --out and status 130; --resume then writes the classifier an
// uninterrupted run writes, byte for byte, and removes the state.
func TestFineTuneSIGINTThenResume(t *testing.T) {
	data := imageFolder(t, 64)
	dir := t.TempDir()
	pre := filepath.Join(dir, "pre")
	if out, err := execute(tinyPretrain(data, pre, 1), pretrainCmd); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	ft := func(out string, more ...string) []string {
		return append([]string{"finetune", "--checkpoint", filepath.Join(pre, train.CheckpointName), "--data", data, "--val", "16",
			"--fraction", "1", "--batch", "4", "--epochs", "100", "--image-size", "8", "--workers", "1",
			"--backend", "purego", "--threads", "1", "--quiet", "--out", out}, more...)
	}
	whole, cut := filepath.Join(dir, "whole.safetensors"), filepath.Join(dir, "cut.safetensors")
	began := time.Now()
	if out, err := execute(ft(whole), finetuneCmd); err != nil {
		t.Fatalf("uninterrupted fine-tuning: %v\n%s", err, out)
	}
	took := time.Since(began)
	c, stderr := startChild(t, ft(cut)...)
	time.Sleep(took / 5) // early in the 1,200 steps, even if the child runs faster

	if err := c.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := c.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("child ended with %v, want exit status 130\n%s", err, stderr)
	}
	if !strings.Contains(stderr.String(), "--resume") {
		t.Errorf("stderr does not say how to continue:\n%s", stderr)
	}
	if _, err := os.Stat(cut + stateSuffix); err != nil {
		t.Fatalf("no state kept: %v", err)
	}
	if out, err := execute(ft(cut, "--resume"), finetuneCmd); err != nil {
		t.Fatalf("--resume: %v\n%s", err, out)
	}
	a, _ := os.ReadFile(whole)
	b, _ := os.ReadFile(cut)
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Error("the resumed classifier differs from the uninterrupted one")
	}
	if _, err := os.Stat(cut + stateSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state left after the run finished: %v", err)
	}
}

// TestSemiSIGTERMThenRerun: SIGTERM during semi's pretraining stage stops
// it with a checkpoint and status 143, naming the semi command to rerun;
// rerunning it resumes the pretraining and the report states the steps
// and images used.
func TestSemiSIGTERMThenRerun(t *testing.T) {
	data := imageFolder(t, 48)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "pre.yaml")
	yaml := "depth: 18\nwidth: 4\nimage_size: 8\nbatch: 8\nsteps: 60\nproj_hidden: 8\nproj_out: 8\ntemperature: 0.5\nlr: 0.5\nwarmup_epochs: 1\nworkers: 1\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "semi")
	args := []string{"semi", "--data", data, "--val", "8", "--pretrain-config", cfg, "--fractions", "0.5", "--ft-epochs", "1",
		"--ft-batch", "4", "--distill-epochs", "1", "--distill-batch", "8", "--no-baseline", "--out", out,
		"--backend", "purego", "--threads", "1", "--quiet"}
	c, stderr := startChild(t, args...)
	waitForRows(t, filepath.Join(out, "pretrain"), 3, c)
	if err := c.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := c.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 143 || !strings.Contains(stderr.String(), "to continue") || !strings.Contains(stderr.String(), "simclr semi") {
		t.Fatalf("child ended with %v, want exit status 143 and the semi command to rerun\n%s", err, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, runFileName)); err != nil {
		t.Errorf("semi wrote no run.yaml: %v", err)
	}
	res, err := execute(append(args, "--json"), semiCmd)
	if err != nil {
		t.Fatalf("rerun: %v\n%s", err, res)
	}
	var rep struct {
		Details semiReport `json:"details"`
	}
	decodeJSON(t, string(res), &rep)
	if r := rep.Details; r.PretrainSteps != 60 || r.TrainImages != 40 || r.TestImages != 8 {
		t.Errorf("report: %d pretraining steps, %d training and %d test images; want 60, 40, 8", r.PretrainSteps, r.TrainImages, r.TestImages)
	}
	if steps, _ := losses(t, filepath.Join(out, "pretrain")); len(steps) != 60 {
		t.Errorf("the resumed pretraining logged %d rows, want 60", len(steps))
	}
}
