package train

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/simclr-go/simclr/checkpoint"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/tensor"
)

// Fine-tuning and distillation save their state (the classifier being
// trained, the optimiser's momentum, the step and the settings) when
// interrupted, so that a resumed run continues bit-exactly.
const (
	stateFormat   = "simclr-go/train-state/1"
	stateVelocity = "optimizer.velocity."
	stateFC       = "classifier.fc."
)

// loopState is what a fine-tuning or distillation loop saves.
type loopState struct {
	kind     string // "fine-tuning" or "distillation"
	settings any    // compared on resume
	c        *Classifier
	velocity [][]float32 // in c.Params order
}

// save writes the state at step to path atomically.
func (s loopState) save(path string, step int) error {
	f := checkpoint.New()
	s.c.Model.Params.SaveState(f, "")
	f.Floats[stateFC+"weight"] = s.c.FC.Weight.Value.Clone()
	f.Floats[stateFC+"bias"] = s.c.FC.Bias.Value.Clone()
	for i, v := range s.velocity {
		f.Floats[stateVelocity+strconv.Itoa(i)] = tensor.FromSlice(append([]float32(nil), v...), len(v))
	}
	settings, err := json.Marshal(s.settings)
	if err != nil {
		return err
	}
	f.Meta[formatKey] = stateFormat
	f.Meta["kind"] = s.kind
	f.Meta[stepKey] = strconv.Itoa(step)
	f.Meta[configKey] = string(settings)
	return checkpoint.Save(path, f)
}

// load restores a state saved by save for the same kind and settings and
// returns its step.
func (s loopState) load(path string, steps int) (int, error) {
	f, err := checkpoint.Load(path)
	if err != nil {
		return 0, err
	}
	if f.Meta[formatKey] != stateFormat || f.Meta["kind"] != s.kind {
		return 0, fmt.Errorf("%s is not the state of an interrupted %s run", path, s.kind)
	}
	now, err := json.Marshal(s.settings)
	if err != nil {
		return 0, err
	}
	if diffs := diffJSON([]byte(f.Meta[configKey]), now); len(diffs) > 0 {
		return 0, &ConfigMismatchError{Path: path, Diffs: diffs}
	}
	step, err := strconv.Atoi(f.Meta[stepKey])
	if err != nil || step < 0 || step > steps {
		return 0, fmt.Errorf("%s: bad step %q", path, f.Meta[stepKey])
	}
	if _, err := s.c.Model.Params.LoadState(f, nn.LoadOptions{}); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	for name, p := range map[string]*nn.Param{"weight": s.c.FC.Weight, "bias": s.c.FC.Bias} {
		t, ok := f.Floats[stateFC+name]
		if !ok || t.Len() != p.Value.Len() {
			return 0, fmt.Errorf("%s: missing or misshapen %s%s", path, stateFC, name)
		}
		copy(p.Value.Data, t.Data)
	}
	for i, v := range s.velocity {
		t, ok := f.Floats[stateVelocity+strconv.Itoa(i)]
		if !ok || t.Len() != len(v) {
			return 0, fmt.Errorf("%s: no optimiser state for parameter %d", path, i)
		}
		copy(v, t.Data)
	}
	return step, nil
}

// interrupted ends a loop stopped by ctx at step: the state is saved at
// path (when set) and the error says so.
func (s loopState) interrupted(ctx context.Context, path string, step int) error {
	if path != "" {
		if err := s.save(path, step); err != nil {
			return fmt.Errorf("%v; saving the state: %w", context.Cause(ctx), err)
		}
	}
	return &InterruptedError{Step: step, Checkpoint: path, Cause: context.Cause(ctx)}
}
