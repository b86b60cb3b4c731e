package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/simclr-go/simclr/internal/atomicfile"
)

// RunOptions say where a pretraining run writes, how often, and when it
// ends early.
type RunOptions struct {
	// Dir receives checkpoint.safetensors and metrics.jsonl.
	Dir string
	// CheckpointEvery saves every that many steps (0: only at the end).
	CheckpointEvery int
	// EvalEvery calls Eval every that many steps (0: never); its metrics
	// join the step's record. Eval should give up when its context is
	// done (an interruption or the deadline): the step's record then goes
	// without them.
	EvalEvery int
	Eval      func(ctx context.Context, step int) (map[string]float64, error)
	// Progress, if set, sees every step.
	Progress func(StepStats)
	// Saved, if set, is called on the process that writes after each
	// checkpoint, with its step: a report can be refreshed there.
	Saved func(step int)
	// Stop, if set and true after a step, ends the run early with a
	// checkpoint.
	Stop func(StepStats) bool
	// Deadline, if not zero, ends the run with a checkpoint at the first
	// step boundary past it (a time budget). An evaluation running at the
	// deadline is abandoned.
	Deadline time.Time
}

// CheckpointName is the file name of the latest checkpoint in a run
// directory.
const CheckpointName = "checkpoint.safetensors"

// MetricsName is the file name of the JSON-lines metrics log.
const MetricsName = "metrics.jsonl"

// InterruptedError is Run's error when its context was cancelled (a
// signal, say): the run stopped at a step boundary and saved a checkpoint
// from which Resume continues.
type InterruptedError struct {
	// Step is the number of steps done, and the checkpoint's step.
	Step int
	// Checkpoint is the file written (on the process that writes).
	Checkpoint string
	// Cause is context.Cause of the cancelled context, or
	// ErrInterruptedElsewhere on a process whose own context was not
	// cancelled.
	Cause error
}

func (e *InterruptedError) Error() string {
	if e.Checkpoint == "" {
		return fmt.Sprintf("%v: stopped after step %d; nothing was saved", e.Cause, e.Step)
	}
	return fmt.Sprintf("%v: stopped after step %d with a checkpoint in %s", e.Cause, e.Step, e.Checkpoint)
}

func (e *InterruptedError) Unwrap() error { return e.Cause }

// ErrInterruptedElsewhere is the cause of an InterruptedError on a process
// of a data-parallel run that stopped because another process was
// interrupted.
var ErrInterruptedElsewhere = errors.New("another process of the run was interrupted")

// Run trains until the configured number of steps, logging one JSON line
// per step to Dir/metrics.jsonl and saving checkpoints atomically. The log
// first loses the rows of steps past p.Step (written after the checkpoint
// a resumed run starts from), so that it holds every step once.
//
// Cancelling ctx stops the run at the next step boundary: the step under
// way finishes (unless it is still waiting for its images, when it is
// abandoned), a running evaluation is abandoned, a checkpoint is saved and
// Run returns an *InterruptedError. A non-finite loss ends the run with an
// error that names the last good checkpoint.
//
// In data-parallel training every process calls Run; rank 0 alone writes
// the log and the checkpoints and runs Eval. At every step boundary the
// processes agree, in one small all-reduce, whether any of them was
// interrupted, passed the deadline or was told to Stop, so all of them
// stop after the same step.
func Run(ctx context.Context, p *Pretrainer, o RunOptions) (err error) {
	root := p.IsRoot()
	var logf *os.File
	if root {
		if err := os.MkdirAll(o.Dir, 0o755); err != nil {
			return err
		}
		metrics := filepath.Join(o.Dir, MetricsName)
		if _, err := TrimMetrics(metrics, p.Step); err != nil {
			return err
		}
		logf, err = os.OpenFile(metrics, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := logf.Close(); err == nil {
				err = cerr
			}
		}()
	}
	evalCtx := ctx
	if !o.Deadline.IsZero() {
		var cancel context.CancelFunc
		evalCtx, cancel = context.WithDeadline(ctx, o.Deadline)
		defer cancel()
	}
	ckpt := filepath.Join(o.Dir, CheckpointName)
	lastSaved := -1
	save := func() error {
		if p.Step == lastSaved {
			return nil
		}
		if root {
			if err := p.Save(ckpt); err != nil {
				return err
			}
			if o.Saved != nil {
				o.Saved(p.Step)
			}
		}
		lastSaved = p.Step
		return nil
	}
	start := time.Now()
	var last *StepStats
	for {
		finish := p.Done() || (!o.Deadline.IsZero() && !time.Now().Before(o.Deadline)) ||
			(last != nil && o.Stop != nil && o.Stop(*last))
		finish, interrupted, err := p.agreeStop(finish, ctx.Err() != nil)
		if err != nil {
			return err
		}
		if interrupted {
			if err := save(); err != nil {
				return err
			}
			cause := context.Cause(ctx)
			if cause == nil {
				cause = ErrInterruptedElsewhere
			}
			return &InterruptedError{Step: p.Step, Checkpoint: ckpt, Cause: cause}
		}
		if finish {
			break
		}
		st, err := p.TrainStepContext(ctx)
		if err != nil {
			if ctx.Err() != nil {
				continue // abandoned while loading its images: nothing changed
			}
			var nf *ErrNonFinite
			if errors.As(err, &nf) {
				if lastSaved >= 0 || fileExists(ckpt) {
					return fmt.Errorf("%w; the last good checkpoint is %s", err, ckpt)
				}
				return fmt.Errorf("%w; no checkpoint was written yet", err)
			}
			return err
		}
		last = &st
		rec := map[string]any{
			"step": st.Step, "epoch": st.Epoch, "loss": st.Loss, "contrast_acc": st.ContrastAcc,
			"contrast_entropy": st.Entropy, "lr": st.LR, "images_per_s": st.ImagesPerS,
			"elapsed_s": time.Since(start).Seconds(),
		}
		if root && o.EvalEvery > 0 && o.Eval != nil && (p.Step%o.EvalEvery == 0 || p.Done()) {
			m, err := o.Eval(evalCtx, p.Step)
			switch {
			case err != nil && evalCtx.Err() != nil:
				// Abandoned: interrupted or out of time; the next
				// boundary stops the run.
			case err != nil:
				return fmt.Errorf("evaluation at step %d: %w", p.Step, err)
			default:
				for k, v := range m {
					rec[k] = v
				}
			}
		}
		if root {
			if err := writeJSONLine(logf, rec); err != nil {
				return err
			}
		}
		if o.Progress != nil {
			o.Progress(st)
		}
		if o.CheckpointEvery > 0 && p.Step%o.CheckpointEvery == 0 {
			if err := save(); err != nil {
				return err
			}
		}
	}
	return save()
}

// TrimMetrics rewrites the metrics log at path without the rows of steps
// at or past step (and without lines that are not JSON objects with a step,
// such as a line cut short by a crash), so that a run resumed from a
// checkpoint of step step logs every step once. The file is replaced
// atomically, and only when something is dropped; a missing file is no
// error. It returns the number of lines dropped.
func TrimMetrics(path string, step int) (int, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var kept bytes.Buffer
	dropped := 0
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var rec struct {
			Step *int `json:"step"`
		}
		if json.Unmarshal(line, &rec) != nil || rec.Step == nil || *rec.Step >= step {
			dropped++
			continue
		}
		kept.Write(line)
		kept.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if dropped == 0 && kept.Len() == len(raw) {
		return 0, nil
	}
	return dropped, atomicfile.Write(path, kept.Bytes(), 0o644)
}

func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
