package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/train"
)

// pretrainRecord is what OUT/run.yaml holds for a pretraining run: every
// setting, the automatic ones resolved (image size, steps), the backend,
// threads and the dataset's identity.
func pretrainRecord(cmd *cobra.Command, f pretrainFlags, s *pretrainSetup, be backend.Backend) (map[string]string, runContext) {
	resolved := map[string]string{
		"image_size": strconv.Itoa(s.cfg.ImageSize),
		"steps":      strconv.Itoa(s.cfg.Steps),
		// A global flag, recorded so that --config reruns and --resume
		// continues in the run's arithmetic rather than the default.
		"precision": be.Precision().String(),
	}
	if f.warmupFraction > 0 {
		resolved["warmup_epochs"] = strconv.FormatFloat(s.warmupEpochs, 'g', -1, 64)
	}
	settings := settingsOf(cmd, resolved)
	rc := runContext{Backend: be.Name(), Threads: be.Threads(),
		Dataset: []datasetIdentity{identify("pretraining", f.Data, f.Split, f.Limit, s.all)}}
	return settings, rc
}

// resumeMayChange are the settings a resumed run may change: how it is
// run, watched and saved, and its length (a longer run extends it).
var resumeMayChange = map[string]bool{
	"resume": true, "quiet": true, "workers": true, "out": true, "grid_only": true, "checkpoint_every": true,
	"knn_every": true, "knn_k": true, "time_budget": true, "eval_view": true,
	"steps": true, "epochs": true,
}

// resumePretrain checks the settings against those OUT/run.yaml recorded,
// then resumes p from OUT's checkpoint. A refusal names every setting that
// differs with both values.
func resumePretrain(p *train.Pretrainer, dir string, settings map[string]string, rc runContext) error {
	var diffs []string
	if p.IsRoot() {
		saved, savedRC, err := readRunFile(filepath.Join(dir, runFileName))
		switch {
		case err == nil:
			diffs = append(settingsDiff(saved, settings, resumeMayChange), datasetDiff(savedRC.Dataset, rc.Dataset)...)
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
	}
	ckpt := filepath.Join(dir, train.CheckpointName)
	err := p.Resume(ckpt)
	var me *train.ConfigMismatchError
	if errors.As(err, &me) {
		fromRunFile := len(diffs) > 0 // then they name every setting already
		for _, d := range me.Diffs {
			switch {
			case d.Key == "steps":
				diffs = append(diffs, fmt.Sprintf("--steps/--epochs: checkpoint %s steps, now %s (a resumed run may only grow)", d.Saved, d.Now))
			case !fromRunFile:
				diffs = append(diffs, fmt.Sprintf("%s: checkpoint %s, now %s", configFlag(d.Key), d.Saved, d.Now))
			}
		}
		err = nil
	}
	if err != nil {
		return err
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%s was written with other settings:\n  %s\n(use the same settings to continue it, all of them with --config %s --resume, or another --out for a new run)",
			ckpt, strings.Join(dedupe(diffs), "\n  "), filepath.Join(dir, runFileName))
	}
	return nil
}

// configFlag names the flag behind a key of train.Config.
func configFlag(key string) string {
	switch key {
	case "model.Encoder.Depth":
		return "--depth"
	case "model.Encoder.Width":
		return "--width"
	case "model.Encoder.CIFARStem":
		return "--cifar-stem"
	case "model.Encoder.SKRatio":
		return "--sk-ratio"
	case "model.ProjHidden":
		return "--proj-layers/--proj-hidden"
	case "model.ProjOut":
		return "--proj-out"
	case "base_lr":
		return "--lr"
	case "warmup_steps":
		return "--warmup-epochs (in steps)"
	case "model.Encoder.ZeroInitResidual":
		return "--zero-init-residual"
	case "model.HeadStyle":
		return "--head-style"
	case "model.Init":
		return "--init"
	}
	return "--" + strings.ReplaceAll(key, "_", "-")
}

// dedupe drops repeated lines, keeping the first.
func dedupe(lines []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lines {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}
