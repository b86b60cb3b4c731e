package train

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// ConfigDiff is one setting that differs between a checkpoint's run and
// the run resuming it.
type ConfigDiff struct {
	// Key is the setting's JSON name in Config, dotted for nested ones
	// ("model.encoder.width").
	Key string
	// Saved and Now are its values, as JSON ("unset" when absent).
	Saved, Now string
}

// ConfigMismatchError is Resume's refusal of a checkpoint written by a run
// with other settings.
type ConfigMismatchError struct {
	Path  string
	Diffs []ConfigDiff
}

func (e *ConfigMismatchError) Error() string {
	parts := make([]string, len(e.Diffs))
	for i, d := range e.Diffs {
		parts[i] = fmt.Sprintf("%s: checkpoint %s, now %s", d.Key, d.Saved, d.Now)
	}
	return fmt.Sprintf("%s was written with other settings (%s)", e.Path, strings.Join(parts, "; "))
}

// compatible lists the settings of now that keep it from continuing a run
// saved with saved. More steps are allowed: the run is extended (and a
// warmup the saved run's length cut short may grow with it).
func compatible(saved, now Config) []ConfigDiff {
	if now.Steps > saved.Steps {
		if saved.Warmup == saved.Steps && now.Warmup > saved.Warmup {
			saved.Warmup = now.Warmup
		}
		saved.Steps = now.Steps
	}
	return DiffConfigs(saved, now)
}

// DiffConfigs lists the settings in which a and b differ, sorted by key.
func DiffConfigs(a, b Config) []ConfigDiff {
	ja, _ := json.Marshal(a) // a Config always marshals
	jb, _ := json.Marshal(b)
	return diffJSON(ja, jb)
}

// diffJSON lists the differences between two JSON objects, nested keys
// dotted, sorted by key.
func diffJSON(a, b []byte) []ConfigDiff {
	fa, fb := flatJSON(a), flatJSON(b)
	keys := map[string]bool{}
	for k := range fa {
		keys[k] = true
	}
	for k := range fb {
		keys[k] = true
	}
	var diffs []ConfigDiff
	for k := range keys {
		va, oka := fa[k]
		vb, okb := fb[k]
		if oka && okb && va == vb {
			continue
		}
		if !oka {
			va = "unset"
		}
		if !okb {
			vb = "unset"
		}
		diffs = append(diffs, ConfigDiff{Key: k, Saved: va, Now: vb})
	}
	sort.Slice(diffs, func(i, j int) bool { return diffs[i].Key < diffs[j].Key })
	return diffs
}

// flatJSON is a JSON object as dotted keys and JSON values (nil when raw
// is no object).
func flatJSON(raw []byte) map[string]string {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if obj, ok := v.(map[string]any); ok {
			for k, x := range obj {
				walk(prefix+k+".", x)
			}
			return
		}
		b, _ := json.Marshal(v)
		out[strings.TrimSuffix(prefix, ".")] = string(b)
	}
	walk("", m)
	return out
}

// ScheduleChange describes, after Resume of a checkpoint whose run was set
// for fewer steps, how the learning-rate schedule changes from the resumed
// step on; "" when the run is not extended.
func (p *Pretrainer) ScheduleChange() string {
	if p.SavedSteps == 0 || p.SavedSteps >= p.Config.Steps {
		return ""
	}
	old := p.sched
	old.Total, old.Warmup = p.SavedSteps, p.savedWarmup
	warmup := ""
	if old.Warmup != p.sched.Warmup {
		warmup = fmt.Sprintf(", the warmup at step %d instead of %d", p.sched.Warmup, old.Warmup)
	}
	return fmt.Sprintf("extending the run from %d to %d steps: from step %d on, the cosine learning-rate decay ends at step %d instead of %d%s (learning rate at step %d: %.4g, was %.4g)",
		p.SavedSteps, p.Config.Steps, p.Step, p.Config.Steps, p.SavedSteps, warmup, p.Step, p.sched.At(p.Step), old.At(p.Step))
}
