package train

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simclr-go/simclr/backend/purego"
)

// metricsRows reads a metrics log's step and loss columns.
func metricsRows(t *testing.T, dir string) (steps []int, losses []float64) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, MetricsName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct {
			Step int     `json:"step"`
			Loss float64 `json:"loss"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%s: %q: %v", MetricsName, sc.Text(), err)
		}
		steps, losses = append(steps, rec.Step), append(losses, rec.Loss)
	}
	return steps, losses
}

// TestRunInterruptThenResume: cancelling Run's context stops it after the
// step under way with a checkpoint; rows a crash left past that step (and a
// half-written line) are dropped on resume, and the resumed run's log
// equals an uninterrupted run's, loss for loss.
func TestRunInterruptThenResume(t *testing.T) {
	be := purego.New(1)
	cfg := tinyConfig(6)
	whole := t.TempDir()
	p, _ := NewPretrainer(cfg, be, noiseSource{})
	if err := Run(context.Background(), p, RunOptions{Dir: whole}); err != nil {
		t.Fatal(err)
	}
	_, want := metricsRows(t, whole)

	dir := t.TempDir()
	ctx, cancel := context.WithCancelCause(context.Background())
	signal := errors.New("test signal")
	p, _ = NewPretrainer(cfg, be, noiseSource{})
	err := Run(ctx, p, RunOptions{Dir: dir, Progress: func(st StepStats) {
		if st.Step == 2 {
			cancel(signal)
		}
	}})
	var ie *InterruptedError
	if !errors.As(err, &ie) || !errors.Is(err, signal) || ie.Step != 3 || p.Step != 3 {
		t.Fatalf("Run gave %v after %d steps; want an interruption after 3", err, p.Step)
	}
	// What a crash after the checkpoint leaves: two more rows and a cut line.
	f, _ := os.OpenFile(filepath.Join(dir, MetricsName), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("{\"step\":3,\"loss\":9}\n{\"step\":4,\"loss\":9}\n{\"step\":5,\"lo")
	f.Close()

	q, _ := NewPretrainer(cfg, be, noiseSource{})
	if err := q.Resume(ie.Checkpoint); err != nil {
		t.Fatal(err)
	}
	if err := Run(context.Background(), q, RunOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	steps, got := metricsRows(t, dir)
	if len(got) != len(want) {
		t.Fatalf("resumed log has steps %v, want 0..5 once each", steps)
	}
	for i := range want {
		if steps[i] != i || got[i] != want[i] {
			t.Errorf("row %d: step %d loss %.9g, want step %d loss %.9g", i, steps[i], got[i], i, want[i])
		}
	}
}

// TestResumeExtendsOrRefuses: more steps than the checkpoint's run extend
// it (the schedule change is described); fewer steps or another setting
// are refused naming each setting with both values.
func TestResumeExtendsOrRefuses(t *testing.T) {
	be := purego.New(1)
	dir := t.TempDir()
	p, _ := NewPretrainer(tinyConfig(3), be, noiseSource{})
	if err := Run(context.Background(), p, RunOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, CheckpointName)

	same, _ := NewPretrainer(tinyConfig(3), be, noiseSource{})
	if err := same.Resume(ckpt); err != nil || !same.Done() || same.ScheduleChange() != "" {
		t.Errorf("resuming the finished run: %v, done %v, change %q; want no error, done, no change", err, same.Done(), same.ScheduleChange())
	}

	longer, _ := NewPretrainer(tinyConfig(5), be, noiseSource{})
	if err := longer.Resume(ckpt); err != nil {
		t.Fatalf("extending from 3 to 5 steps: %v", err)
	}
	if msg := longer.ScheduleChange(); !strings.Contains(msg, "from step 3") || !strings.Contains(msg, "instead of 3") {
		t.Errorf("schedule change %q: want it to say from which step and the old end", msg)
	}
	if err := Run(context.Background(), longer, RunOptions{Dir: dir}); err != nil || longer.Step != 5 {
		t.Fatalf("extended run: %v at step %d", err, longer.Step)
	}
	if steps, _ := metricsRows(t, dir); len(steps) != 5 {
		t.Errorf("log of the extended run has steps %v, want 0..4", steps)
	}

	other := tinyConfig(4)
	other.Temperature, other.Batch = 0.2, 6
	q, _ := NewPretrainer(other, be, noiseSource{})
	err := q.Resume(ckpt)
	var me *ConfigMismatchError
	if !errors.As(err, &me) {
		t.Fatalf("resume with fewer steps and other settings: %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"steps: checkpoint 5, now 4", "temperature: checkpoint 0.5, now 0.2", "batch: checkpoint 4, now 6"} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal %q does not say %q", msg, want)
		}
	}
	if len(me.Diffs) != 3 {
		t.Errorf("differences %v, want 3", me.Diffs)
	}
}

// TestRunDeadline: the deadline is checked at every step boundary and
// abandons an evaluation that is still running at it.
func TestRunDeadline(t *testing.T) {
	dir := t.TempDir()
	p, _ := NewPretrainer(tinyConfig(50), purego.New(1), noiseSource{})
	began := time.Now()
	err := Run(context.Background(), p, RunOptions{Dir: dir, Deadline: began.Add(300 * time.Millisecond), EvalEvery: 1,
		Eval: func(ctx context.Context, step int) (map[string]float64, error) {
			if step < 2 {
				return map[string]float64{"probe": 1}, nil
			}
			<-ctx.Done() // a probe slower than the budget
			return nil, ctx.Err()
		}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Step < 2 || p.Done() {
		t.Errorf("stopped after %d steps; want at least 2 and fewer than 50", p.Step)
	}
	if took := time.Since(began); took > 20*time.Second {
		t.Errorf("took %v for a budget of 300ms", took)
	}
	q, _ := NewPretrainer(tinyConfig(50), purego.New(1), noiseSource{})
	if err := q.Resume(filepath.Join(dir, CheckpointName)); err != nil || q.Step != p.Step {
		t.Errorf("checkpoint at step %d (%v), want %d", q.Step, err, p.Step)
	}
}

// TestRunInterruptAbandonsEval: a cancellation during an evaluation ends
// the evaluation and the run at once, with a checkpoint.
func TestRunInterruptAbandonsEval(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p, _ := NewPretrainer(tinyConfig(5), purego.New(1), noiseSource{})
	err := Run(ctx, p, RunOptions{Dir: t.TempDir(), EvalEvery: 2,
		Eval: func(ctx context.Context, step int) (map[string]float64, error) {
			cancel() // the signal arrives during the probe
			<-ctx.Done()
			return nil, ctx.Err()
		}})
	var ie *InterruptedError
	if !errors.As(err, &ie) || ie.Step != 2 || !fileExists(ie.Checkpoint) {
		t.Fatalf("Run: %v; want an interruption after step 2 with a checkpoint", err)
	}
}
