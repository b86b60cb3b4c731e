package train

import (
	"context"
	"fmt"
	"math"

	"github.com/simclr-go/simclr/augment"
	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/data"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/tensor"
)

// SaveClassifier writes c to path atomically, in the classifier format
// every command reads (simclr.ClassifierFormat), with the image size it
// was trained at.
func SaveClassifier(path string, c *Classifier, imageSize int) error {
	l := &simclr.Loaded{Model: c.Model, Config: c.Model.Config, ImageSize: imageSize, FC: c.FC, Selector: c.Selector, ClassNames: c.ClassNames, Recipe: c.Recipe}
	return l.SaveClassifier(path)
}

// LoadClassifier reads a classifier file (simclr.LoadModel) and returns
// the classifier and the image size it was trained at.
func LoadClassifier(path string) (*Classifier, int, error) {
	l, err := simclr.LoadModel(path, simclr.LoadOptions{})
	if err != nil {
		return nil, 0, err
	}
	if l.FC == nil {
		return nil, 0, fmt.Errorf("%s is not a classifier (written by simclr finetune --out); its format is %q", path, l.Format)
	}
	if l.ImageSize <= 0 {
		return nil, 0, fmt.Errorf("%s: the classifier does not record the image size it was trained at", path)
	}
	c, err := NewClassifier(l.Model, l.Selector, l.Classes(), 0)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	copy(c.FC.Weight.Value.Data, l.FC.Weight.Value.Data)
	copy(c.FC.Bias.Value.Data, l.FC.Bias.Value.Data)
	c.ClassNames, c.Recipe = l.ClassNames, l.Recipe
	return c, l.ImageSize, nil
}

// DistillConfig is SimCLRv2's distillation: the student learns the
// teacher's probabilities softened by Temperature on unlabelled images,
// with FineTuneConfig's optimiser and schedule and fine-tuning's
// augmentation. With Labelled set, Alpha weighs the two losses: by
// default it weighs the supervised cross-entropy on Labelled (loss =
// (1-Alpha)*distill + Alpha*supervised); with AlphaOn AlphaDistill it
// weighs the distillation term, as the SimCLRv2 paper's equation 3 (loss =
// Alpha*distill + (1-Alpha)*supervised).
type DistillConfig struct {
	FineTuneConfig
	Temperature float64
	Labelled    data.Dataset
	Alpha       float64
	// AlphaOn is the term Alpha weighs: "" or AlphaSupervised, or
	// AlphaDistill.
	AlphaOn string
	// TemperatureSquared multiplies the distillation term by
	// Temperature², as Hinton et al. and the official SimCLRv2 colabs do:
	// the gradient of the softened cross-entropy grows as 1/Temperature,
	// so without the factor a temperature of 0.1 takes 10x larger steps
	// (and makes the logits 10x more sensitive), which throws a fresh
	// classifier layer far off in the first steps.
	TemperatureSquared bool
}

// The terms DistillConfig.Alpha may weigh.
const (
	AlphaSupervised = "supervised"
	AlphaDistill    = "distillation"
)

// Distill trains student on unlabelled images from teacher's predictions.
// The teacher runs in eval mode on the same augmented views the student
// sees. Cancelling ctx, cfg.StatePath and cfg.Resume work as in FineTune.
func Distill(ctx context.Context, be backend.Backend, teacher, student *Classifier, unlabelled data.Dataset, cfg DistillConfig, progress func(step, steps int, loss float64)) error {
	if cfg.Temperature <= 0 {
		return fmt.Errorf("distillation temperature %g must be positive", cfg.Temperature)
	}
	if cfg.Labelled != nil && (cfg.Alpha < 0 || cfg.Alpha > 1) {
		return fmt.Errorf("loss weight alpha %g outside [0, 1]", cfg.Alpha)
	}
	if cfg.AlphaOn != "" && cfg.AlphaOn != AlphaSupervised && cfg.AlphaOn != AlphaDistill {
		return fmt.Errorf("alpha weighs %q: want %s or %s", cfg.AlphaOn, AlphaSupervised, AlphaDistill)
	}
	if err := cfg.FineTuneConfig.validate(); err != nil {
		return fmt.Errorf("distillation: %w", err)
	}
	distW, supW := float32(1-cfg.Alpha), float32(cfg.Alpha)
	if cfg.AlphaOn == AlphaDistill {
		distW, supW = supW, distW
	}
	classes := teacher.FC.Weight.Value.Dim(0)
	if student.FC.Weight.Value.Dim(0) != classes {
		return fmt.Errorf("teacher has %d classes, student %d", classes, student.FC.Weight.Value.Dim(0))
	}
	batch := min(cfg.Batch, unlabelled.Len())
	pipe, err := cropFlip(cfg.ImageSize)
	if err != nil {
		return err
	}
	viewLen := pipe.ViewLen()
	loader, err := views1(ctx, unlabelled, pipe, batch, cfg.Seed, cfg.Workers)
	if err != nil {
		return err
	}
	var sup *data.Loader
	if cfg.Labelled != nil {
		if sup, err = views1(ctx, cfg.Labelled, pipe, min(batch, cfg.Labelled.Len()), cfg.Seed+1, cfg.Workers); err != nil {
			return err
		}
	}
	steps := cfg.Epochs * loader.Len()
	sched := cfg.schedule(batch, steps)
	update, velocity := cfg.optimizer(student)
	tape, teacherTape := autograd.NewTape(be), autograd.NewTape(be)
	teacherTape.Train, teacherTape.NoGrad = false, true
	targets := tensor.New(batch, classes)
	inv := float32(1 / cfg.Temperature)
	labelled := 0
	if cfg.Labelled != nil {
		labelled = cfg.Labelled.Len()
	}
	state := loopState{kind: "distillation", c: student, velocity: velocity,
		settings: struct {
			FineTuneConfig
			Temperature, Alpha        float64
			AlphaOn                   string `json:",omitempty"`
			TemperatureSquared        bool   `json:",omitempty"`
			Images, Labelled, Classes int
		}{cfg.FineTuneConfig, cfg.Temperature, cfg.Alpha, cfg.AlphaOn, cfg.TemperatureSquared, unlabelled.Len(), labelled, classes}}
	step := 0
	if cfg.Resume {
		if step, err = state.load(cfg.StatePath, steps); err != nil {
			return err
		}
	}
	batches := newStepBatches(loader, step)
	defer batches.close()
	var supBatches *stepBatches
	if sup != nil {
		supBatches = newStepBatches(sup, step) // one labelled batch a step
		defer supBatches.close()
	}
	labels := make([]int32, 0, batch)
	for ; step < steps; step++ {
		if ctx.Err() != nil {
			return state.interrupted(ctx, cfg.StatePath, step)
		}
		b, err := batches.next()
		if err != nil {
			if ctx.Err() != nil {
				return state.interrupted(ctx, cfg.StatePath, step)
			}
			return err
		}
		x := tensor.FromSlice(b.Data[:batch*viewLen], batch, cfg.ImageSize, cfg.ImageSize, 3)
		teacherTape.Reset()
		tl := teacherTape.Scale(teacher.Forward(teacherTape, teacherTape.Input(x)), inv)
		be.SoftmaxForward(batch, classes, tl.Value.Data, targets.Data)

		tape.Reset()
		logits := student.Forward(tape, tape.Input(x))
		loss := tape.SoftCrossEntropy(tape.Scale(logits, inv), targets)
		if cfg.TemperatureSquared {
			loss = tape.Scale(loss, float32(cfg.Temperature*cfg.Temperature))
		}
		if sup != nil {
			sb, err := supBatches.next()
			if err != nil {
				if ctx.Err() != nil {
					return state.interrupted(ctx, cfg.StatePath, step)
				}
				return fmt.Errorf("labelled images: %w", err)
			}
			n := len(sb.Indices)
			labels = labels[:0]
			for _, l := range sb.Labels {
				labels = append(labels, int32(l))
			}
			xs := tensor.FromSlice(sb.Data[:n*viewLen], n, cfg.ImageSize, cfg.ImageSize, 3)
			supLoss := tape.CrossEntropy(student.Forward(tape, tape.Input(xs)), labels)
			loss = tape.Add(tape.Scale(loss, distW), tape.Scale(supLoss, supW))
		}
		l := float64(loss.Value.Data[0])
		if math.IsNaN(l) || math.IsInf(l, 0) {
			return &ErrNonFinite{Step: step, Loss: l}
		}
		if err := tape.Backward(loss); err != nil {
			return err
		}
		update(float32(sched.At(step)), func(p *nn.Param) bool { return p.HasGrad(tape) })
		if progress != nil {
			progress(step+1, steps, l)
		}
	}
	return nil
}

// cropFlip is fine-tuning's augmentation: random resized crop and flip.
func cropFlip(size int) (*augment.Pipeline, error) {
	acfg := augment.CIFARDefaults(size)
	acfg.ColorP, acfg.GrayP, acfg.BlurP = 0, 0, 0
	if size > 32 {
		acfg.Interp = augment.Bicubic
	}
	return augment.NewPipeline(acfg)
}

// views1 loads one crop-and-flip view per image, shuffled, full batches;
// it stops loading when ctx is done.
func views1(ctx context.Context, ds data.Dataset, pipe *augment.Pipeline, batch int, seed uint64, workers int) (*data.Loader, error) {
	return data.NewLoader(ds, data.LoaderOptions{
		BatchSize: batch, Shuffle: true, Seed: seed, DropLast: true, Workers: max(workers, 1),
		Prefetch: 2, SampleFloats: pipe.ViewLen(),
		Transform: func(s data.Sample, epoch, index int, out []float32) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			pipe.Apply(augment.FromHWC(s.RGB, s.W, s.H, nil), out, seed, uint64(epoch), uint64(index), 0)
			return nil
		},
	})
}
