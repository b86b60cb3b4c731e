package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/simclr-go/simclr/data"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/train"
)

type distillFlags struct {
	split       splitFlags
	teacher     string
	depth       int
	width       int
	init        string
	temperature float64
	fraction    float64
	labels      string
	alpha       float64
	batch       int
	epochs      int
	lr          float64
	workers     int
	out         string
	asJSON      bool
	quiet       bool
	resume      bool
	settings    map[string]string // every flag, for the report
}

func distillCmd(g *globalFlags) *cobra.Command {
	f := distillFlags{temperature: 1, alpha: 0.5, batch: 256, epochs: 30, lr: 0.05}
	c := &cobra.Command{
		Use:   "distill",
		Short: "Distil a fine-tuned teacher into a student on unlabelled images (SimCLRv2)",
		Long: `SimCLRv2's third stage: a teacher (a classifier written by simclr finetune
--out) labels the unlabelled images of --data with its probabilities softened
by --temperature, and a student learns them (cross-entropy to the soft
labels) with fine-tuning's recipe: Nesterov momentum, lr --lr x batch/256,
cosine decay, crop and flip; the teacher runs in eval mode on the same views.
The student has the teacher's architecture (self-distillation) unless
--student-depth / --student-width choose another (e.g. big-to-small).
The student starts from a random initialisation, or with --student-init
from a pretrained encoder (the checkpoint the teacher was fine-tuned from,
say), which then also sets its architecture.
With --fraction > 0 the student also learns the true labels of that
class-balanced fraction of --data (or, with --labels-file, of the images
the file lists, such as simclr select writes): loss = (1-alpha) distillation + alpha
supervised. Reports the test accuracy of teacher and student.

` + datasetHelp,
		Example: `  simclr finetune --checkpoint runs/cifar/checkpoint.safetensors --data cifar10 --fraction 0.1 --out teacher.safetensors
  simclr distill --teacher teacher.safetensors --data cifar10 --out student.safetensors`,
		Args: cobra.NoArgs,
		RunE: interruptible(func(cmd *cobra.Command, _ []string) error {
			f.settings = settingsOf(cmd, nil)
			return resumeHint(cmd, runDistill(cmd.Context(), cmd.OutOrStdout(), g, f))
		}),
	}
	f.split.register(c, "images to distil on (their labels are not used, unless --fraction)")
	fl := c.Flags()
	fl.StringVar(&f.teacher, "teacher", "", "classifier written by simclr finetune --out")
	fl.IntVar(&f.depth, "student-depth", 0, "student ResNet depth (0: the teacher's)")
	fl.IntVar(&f.width, "student-width", 0, "student ResNet width (0: the teacher's)")
	fl.StringVar(&f.init, "student-init", "", "start the student's encoder from this pretraining checkpoint, encoder or classifier file (default: random)")
	fl.Float64Var(&f.temperature, "temperature", f.temperature, "softening of the teacher's and student's logits")
	fl.Float64Var(&f.fraction, "fraction", 0, "also train on the true labels of this class-balanced fraction (0: none)")
	fl.StringVar(&f.labels, "labels-file", "", "also train on the true labels of the images this file lists (as finetune --labels-file) instead of --fraction")
	fl.Float64Var(&f.alpha, "alpha", f.alpha, "weight of the supervised loss when --fraction > 0 or --labels-file is given")
	fl.IntVar(&f.batch, "batch", f.batch, "images per step")
	fl.IntVar(&f.epochs, "epochs", f.epochs, "passes over the unlabelled images")
	fl.Float64Var(&f.lr, "lr", f.lr, "base learning rate, times batch/256")
	fl.IntVar(&f.workers, "workers", 0, "data loading goroutines (0: one per CPU)")
	fl.StringVar(&f.out, "out", "", "write the student classifier here (safetensors); X.safetensors gets its report and TensorBoard events in X.report/")
	fl.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress bar")
	fl.BoolVar(&f.resume, "resume", false, "continue a run a signal stopped, from the state it saved beside --out (OUT"+stateSuffix+")")
	return c
}

func runDistill(ctx context.Context, out io.Writer, g *globalFlags, f distillFlags) error {
	began := time.Now()
	if err := f.validate(); err != nil {
		return err
	}
	teacher, size, err := train.LoadClassifier(f.teacher)
	if err != nil {
		return err
	}
	trainSet, testSet, err := f.split.sets()
	if err != nil {
		return err
	}
	classes := teacher.FC.Weight.Value.Dim(0)
	if n := len(trainSet.Classes()); n != classes {
		return fmt.Errorf("the teacher knows %d classes, --data has %d", classes, n)
	}
	student, err := newStudent(f, teacher.Model.Config, classes)
	if err != nil {
		return err
	}
	student.ClassNames = teacher.ClassNames
	scfg := student.Model.Config
	be, err := g.open()
	if err != nil {
		return err
	}
	workers := f.workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	cfg := train.DistillConfig{FineTuneConfig: train.DefaultFineTune(f.batch, f.epochs, size), Temperature: f.temperature, Alpha: f.alpha}
	cfg.BaseLR, cfg.Seed, cfg.Workers = f.lr, f.split.seed, workers
	if cfg.StatePath, cfg.Resume, err = statePath(f.out, f.resume); err != nil {
		return err
	}
	if f.fraction > 0 {
		if cfg.Labelled, err = data.BalancedFraction(trainSet, f.fraction, f.split.seed); err != nil {
			return err
		}
	} else if f.labels != "" {
		if cfg.Labelled, err = labelledSubset(trainSet, f.labels); err != nil {
			return err
		}
	}
	var progress func(step, steps int, loss float64)
	if !f.quiet && !f.asJSON {
		bar := newBar(0, "distilling")
		progress = func(step, steps int, loss float64) {
			bar.ChangeMax(steps)
			bar.Describe(fmt.Sprintf("distilling: loss %.3f", loss))
			bar.Set(step)
		}
		defer bar.Finish()
	}
	rep := logRun(f.out, "Distillation", f.settings, os.Stderr, f.quiet)
	defer rep.finish()
	if err := train.Distill(ctx, be, teacher, student, trainSet, cfg, rep.wrap(progress, f.epochs)); err != nil {
		return err
	}
	save := func() error { return train.SaveClassifier(f.out, student, size) }
	tAcc, err := train.Accuracy(be, teacher, withContext(ctx, testSet), size, workers)
	if err != nil {
		return interruptedEvaluation(ctx, err, f.out, save)
	}
	sAcc, err := train.Accuracy(be, student, withContext(ctx, testSet), size, workers)
	if err != nil {
		return interruptedEvaluation(ctx, err, f.out, save)
	}
	rep.result(fmt.Sprintf("test top-1, teacher (%d images)", testSet.Len()), fmt.Sprintf("%.2f%%", 100*tAcc))
	rep.result(fmt.Sprintf("test top-1, student (%d images)", testSet.Len()), fmt.Sprintf("%.2f%%", 100*sAcc))
	if f.out != "" {
		if err := train.SaveClassifier(f.out, student, size); err != nil {
			return err
		}
		removeState(cfg.StatePath)
	}
	if f.asJSON {
		ds := f.split.datasetInfo()
		ds.Classes, ds.Train, ds.Test = classes, trainSet.Len(), testSet.Len()
		if cfg.Labelled != nil {
			ds.Labelled = cfg.Labelled.Len()
		}
		return evalResult{
			Command: "distill",
			Model:   modelInfo{Checkpoint: f.teacher, Out: f.out},
			Dataset: ds,
			Metrics: map[string]float64{"top1": sAcc, "teacher_top1": tAcc},
			Details: map[string]any{"student": scfg.Encoder, "student_init": f.init, "fraction": f.fraction, "labels_file": f.labels, "alpha": f.alpha,
				"temperature": f.temperature, "epochs": f.epochs, "batch": f.batch, "lr": f.lr},
		}.print(out, began)
	}
	fmt.Fprintf(out, "distilled %s into resnet%d width %d on %d images, %d epochs: test top-1 teacher %.2f%%, student %.2f%% (%.0fs)\n",
		f.teacher, scfg.Encoder.Depth, scfg.Encoder.Width, trainSet.Len(), f.epochs, 100*tAcc, 100*sAcc, time.Since(began).Seconds())
	return nil
}

// newStudent builds the student classifier: the teacher's architecture, or
// the one --student-depth / --student-width ask for, randomly initialised;
// or the encoder of --student-init.
func newStudent(f distillFlags, teacher simclr.ModelConfig, classes int) (*train.Classifier, error) {
	if f.init != "" {
		if f.depth > 0 || f.width > 0 {
			return nil, usagef("--student-init sets the student's architecture: drop --student-depth / --student-width")
		}
		l, err := simclr.LoadModel(f.init, simclr.LoadOptions{})
		if err != nil {
			return nil, fmt.Errorf("--student-init: %w", err)
		}
		return train.NewClassifier(l.Model, 0, classes, f.split.seed)
	}
	scfg := simclr.ModelConfig{Encoder: teacher.Encoder}
	if f.depth > 0 {
		scfg.Encoder.Depth = f.depth
	}
	if f.width > 0 {
		scfg.Encoder.Width = f.width
	}
	reg := nn.NewRegistry(f.split.seed)
	enc, err := resnet.New(reg, scfg.Encoder)
	if err != nil {
		return nil, err
	}
	return train.NewClassifier(&simclr.Model{Config: scfg, Params: reg, Encoder: enc}, 0, classes, f.split.seed)
}
