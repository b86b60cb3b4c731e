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
	"github.com/simclr-go/simclr/optim"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/tensor"
)

// SaveClassifier writes c to path atomically, in the classifier format
// every command reads (simclr.ClassifierFormat), with the image size it
// was trained at.
func SaveClassifier(path string, c *Classifier, imageSize int) error {
	l := &simclr.Loaded{Model: c.Model, Config: c.Model.Config, ImageSize: imageSize, FC: c.FC, Selector: c.Selector, ClassNames: c.ClassNames}
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
	c.ClassNames = l.ClassNames
	return c, l.ImageSize, nil
}

// DistillConfig is SimCLRv2's distillation: the student learns the
// teacher's probabilities softened by Temperature on unlabelled images,
// with the fine-tuning recipe's optimiser and augmentation. With Labelled
// set, Alpha weighs the supervised cross-entropy on it against the
// distillation loss (loss = (1-Alpha)*distill + Alpha*supervised).
type DistillConfig struct {
	FineTuneConfig
	Temperature float64
	Labelled    data.Dataset
	Alpha       float64
}

// Distill trains student on unlabelled images from teacher's predictions.
// The teacher runs in eval mode on the same augmented views the student
// sees. Cancelling ctx, cfg.StatePath and cfg.Resume work as in FineTune.
func Distill(ctx context.Context, be backend.Backend, teacher, student *Classifier, unlabelled data.Dataset, cfg DistillConfig, progress func(step, steps int, loss float64)) error {
	if cfg.Temperature <= 0 {
		return fmt.Errorf("distillation temperature %g must be positive", cfg.Temperature)
	}
	if cfg.Labelled != nil && (cfg.Alpha < 0 || cfg.Alpha > 1) {
		return fmt.Errorf("supervised weight %g outside [0, 1]", cfg.Alpha)
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
	peak, _ := optim.ScaledLR(cfg.BaseLR, batch, optim.Linear)
	sched := optim.WarmupCosine{Peak: peak, Total: steps}
	opt := optim.NewSGD(student.Params, float32(cfg.Momentum), float32(cfg.WeightDecay))
	opt.Nesterov, opt.SkipNoDecay = true, true
	tape, teacherTape := autograd.NewTape(be), autograd.NewTape(be)
	teacherTape.Train, teacherTape.NoGrad = false, true
	targets := tensor.New(batch, classes)
	inv := float32(1 / cfg.Temperature)
	labelled := 0
	if cfg.Labelled != nil {
		labelled = cfg.Labelled.Len()
	}
	state := loopState{kind: "distillation", c: student, velocity: opt.Velocity(),
		settings: struct {
			FineTuneConfig
			Temperature, Alpha        float64
			Images, Labelled, Classes int
		}{cfg.FineTuneConfig, cfg.Temperature, cfg.Alpha, unlabelled.Len(), labelled, classes}}
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
			loss = tape.Add(tape.Scale(loss, float32(1-cfg.Alpha)), tape.Scale(supLoss, float32(cfg.Alpha)))
		}
		l := float64(loss.Value.Data[0])
		if math.IsNaN(l) || math.IsInf(l, 0) {
			return &ErrNonFinite{Step: step, Loss: l}
		}
		if err := tape.Backward(loss); err != nil {
			return err
		}
		opt.Step(float32(sched.At(step)), func(p *nn.Param) bool { return p.HasGrad(tape) })
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
