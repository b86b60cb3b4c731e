package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// RunOptions say where a pretraining run writes and how often.
type RunOptions struct {
	// Dir receives checkpoint.safetensors and metrics.jsonl.
	Dir string
	// CheckpointEvery saves every that many steps (0: only at the end).
	CheckpointEvery int
	// EvalEvery calls Eval every that many steps (0: never); its metrics
	// join the step's record.
	EvalEvery int
	Eval      func(step int) (map[string]float64, error)
	// Progress, if set, sees every step.
	Progress func(StepStats)
	// Stop, if set and true after a step, ends the run early (a time
	// budget) with a checkpoint.
	Stop func(StepStats) bool
}

// CheckpointName is the file name of the latest checkpoint in a run
// directory.
const CheckpointName = "checkpoint.safetensors"

// MetricsName is the file name of the JSON-lines metrics log.
const MetricsName = "metrics.jsonl"

// Run trains until the configured number of steps, logging one JSON line
// per step to Dir/metrics.jsonl (appending, so resumed runs continue the
// log) and saving checkpoints atomically. A non-finite loss ends the run
// with an error that names the last good checkpoint. In data-parallel
// training every process calls Run; rank 0 alone writes the log and the
// checkpoints and runs Eval, and its Stop decides for all.
func Run(p *Pretrainer, o RunOptions) (err error) {
	root := p.IsRoot()
	var logf *os.File
	if root {
		if err := os.MkdirAll(o.Dir, 0o755); err != nil {
			return err
		}
		logf, err = os.OpenFile(filepath.Join(o.Dir, MetricsName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := logf.Close(); err == nil {
				err = cerr
			}
		}()
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
		}
		lastSaved = p.Step
		return nil
	}
	start := time.Now()
	for !p.Done() {
		st, err := p.TrainStep()
		if err != nil {
			var nf *ErrNonFinite
			if errors.As(err, &nf) {
				if lastSaved >= 0 || fileExists(ckpt) {
					return fmt.Errorf("%w; the last good checkpoint is %s", err, ckpt)
				}
				return fmt.Errorf("%w; no checkpoint was written yet", err)
			}
			return err
		}
		rec := map[string]any{
			"step": st.Step, "epoch": st.Epoch, "loss": st.Loss, "contrast_acc": st.ContrastAcc,
			"contrast_entropy": st.Entropy, "lr": st.LR, "images_per_s": st.ImagesPerS,
			"elapsed_s": time.Since(start).Seconds(),
		}
		if root && o.EvalEvery > 0 && o.Eval != nil && (p.Step%o.EvalEvery == 0 || p.Done()) {
			m, err := o.Eval(p.Step)
			if err != nil {
				return fmt.Errorf("evaluation at step %d: %w", p.Step, err)
			}
			for k, v := range m {
				rec[k] = v
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
		if o.Stop != nil {
			stop, err := p.agree(o.Stop(st))
			if err != nil {
				return err
			}
			if stop {
				break
			}
		}
	}
	return save()
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
