package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/simclr-go/simclr/data"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/optim"
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
	recipe      string
	optimizer   string
	lrScaling   string
	weightDecay float64
	warmup      float64
	alphaOn     string
	tSquared    bool
	evalView    string
	settings    map[string]string // every flag, for the report
	flags       *pflag.FlagSet    // which settings the command line gave
}

func distillCmd(g *globalFlags) *cobra.Command {
	f := distillFlags{alpha: 0.5, batch: 256, epochs: 30, recipe: recipeAuto, evalView: "square"}
	c := &cobra.Command{
		Use:   "distill",
		Short: "Distil a fine-tuned teacher into a student on unlabelled images (SimCLRv2)",
		Long: `SimCLRv2's third stage: a teacher (a classifier written by simclr finetune
--out) labels the unlabelled images of --data with its probabilities softened
by --temperature, and a student learns them (cross-entropy to the soft
labels) with crop and flip as the only augmentation and cosine learning-rate
decay; the teacher runs in eval mode on the same views.
The student has the teacher's architecture (self-distillation) unless
--student-depth / --student-width choose another (e.g. big-to-small).
The student starts from a random initialisation, or with --student-init
from a pretrained encoder (the checkpoint the teacher was fine-tuned from,
say), which then also sets its architecture.
With --fraction > 0 the student also learns the true labels of that
class-balanced fraction of --data (or, with --labels-file, of the images
the file lists, such as simclr select writes), alpha weighing one of the two
terms (--alpha-on). Reports the test accuracy of teacher and student.

--recipe v1 distils with fine-tuning's optimiser (Nesterov momentum, --lr
0.05 x batch/256), alpha on the supervised term, temperature 1. --recipe v2
is SimCLRv2's: pretraining's optimiser (LARS, --lr 0.1 x sqrt(batch), weight
decay 1e-4, warmup over the first 5% of the steps), alpha on the
distillation term (the paper's equation 3), temperature 0.1 for a student
of the teacher's architecture, 1 otherwise, the distillation term times the
temperature squared (the official code's). auto (the default) takes v2 for
a teacher fine-tuned with the v2 recipe, else v1. Each flag given wins over
the recipe.

` + datasetHelp,
		Example: `  simclr finetune --checkpoint runs/cifar/checkpoint.safetensors --data cifar10 --fraction 0.1 --out teacher.safetensors
  simclr distill --teacher teacher.safetensors --data cifar10 --out student.safetensors`,
		Args: cobra.NoArgs,
		RunE: interruptible(func(cmd *cobra.Command, _ []string) error {
			f.settings, f.flags = settingsOf(cmd, nil), cmd.Flags()
			return resumeHint(cmd, runDistill(cmd.Context(), cmd.OutOrStdout(), g, f))
		}),
	}
	f.split.register(c, "images to distil on (their labels are not used, unless --fraction)")
	fl := c.Flags()
	fl.StringVar(&f.teacher, "teacher", "", "classifier written by simclr finetune --out")
	fl.IntVar(&f.depth, "student-depth", 0, "student ResNet depth (0: the teacher's)")
	fl.IntVar(&f.width, "student-width", 0, "student ResNet width (0: the teacher's)")
	fl.StringVar(&f.init, "student-init", "", "start the student's encoder from this pretraining checkpoint, encoder or classifier file (default: random)")
	fl.StringVar(&f.evalView, "eval-view", f.evalView, evalViewHelp)
	fl.StringVar(&f.recipe, "recipe", f.recipe, "distillation recipe: auto, v1 or v2 (SimCLRv2's); see above")
	fl.Float64Var(&f.temperature, "temperature", 0, "softening of the teacher's and student's logits (default: the recipe's)")
	fl.BoolVar(&f.tSquared, "temperature-squared", false, "multiply the distillation term by the temperature squared, as the official SimCLRv2 code does, so its steps keep their size at low temperatures (default: the recipe's, off in v1, on in v2)")
	fl.StringVar(&f.optimizer, "optimizer", "", "nesterov or lars (default: the recipe's)")
	fl.StringVar(&f.lrScaling, "lr-scaling", "", "linear (lr*batch/256) or sqrt (lr*sqrt(batch)) (default: the recipe's)")
	fl.Float64Var(&f.weightDecay, "weight-decay", 0, "weight decay, not on batch norm or biases (default: the recipe's, 0 in v1, 1e-4 in v2)")
	fl.Float64Var(&f.warmup, "warmup-fraction", 0, "fraction of the steps over which the learning rate warms up (default: the recipe's, 0 in v1, 0.05 in v2)")
	fl.StringVar(&f.alphaOn, "alpha-on", "", "the term --alpha weighs: supervised ((1-alpha) distillation + alpha supervised) or distillation (alpha distillation + (1-alpha) supervised, SimCLRv2's) (default: the recipe's)")
	fl.Float64Var(&f.fraction, "fraction", 0, "also train on the true labels of this class-balanced fraction (0: none)")
	fl.StringVar(&f.labels, "labels-file", "", "also train on the true labels of the images this file lists (as finetune --labels-file) instead of --fraction")
	fl.Float64Var(&f.alpha, "alpha", f.alpha, "weight of one loss term (--alpha-on) when --fraction > 0 or --labels-file is given")
	fl.IntVar(&f.batch, "batch", f.batch, "images per step")
	fl.IntVar(&f.epochs, "epochs", f.epochs, "passes over the unlabelled images")
	fl.Float64Var(&f.lr, "lr", 0, "base learning rate, scaled by --lr-scaling (default: the recipe's)")
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
	recipe := f.resolve(teacher.Recipe, sameArchitecture(scfg.Encoder, teacher.Model.Config.Encoder))
	if recipe == recipeV2 {
		student.Recipe = simclr.RecipeV2
	}
	be, err := g.open()
	if err != nil {
		return err
	}
	workers := f.workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	cfg := train.DistillConfig{FineTuneConfig: train.DefaultFineTune(f.batch, f.epochs, size), Temperature: f.temperature, Alpha: f.alpha, AlphaOn: f.alphaOn, TemperatureSquared: f.tSquared}
	cfg.BaseLR, cfg.Seed, cfg.Workers = f.lr, f.split.seed, workers
	cfg.Optimizer, cfg.LRScaling, cfg.WeightDecay, cfg.WarmupFraction = f.optimizer, optim.Scaling(f.lrScaling), f.weightDecay, f.warmup
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
	tAcc, err := train.AccuracyView(be, teacher, withContext(ctx, testSet), size, workers, evalView(f.evalView))
	if err != nil {
		return interruptedEvaluation(ctx, err, f.out, save)
	}
	sAcc, err := train.AccuracyView(be, student, withContext(ctx, testSet), size, workers, evalView(f.evalView))
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
				"temperature": f.temperature, "epochs": f.epochs, "batch": f.batch, "lr": f.lr,
				"recipe": recipe, "optimizer": f.optimizer, "lr_scaling": f.lrScaling, "weight_decay": f.weightDecay,
				"warmup_fraction": f.warmup, "alpha_on": f.alphaOn, "temperature_squared": f.tSquared},
		}.print(out, began)
	}
	fmt.Fprintf(out, "distilled %s into resnet%d width %d on %d images, %d epochs: test top-1 teacher %.2f%%, student %.2f%% (%.0fs)\n",
		f.teacher, scfg.Encoder.Depth, scfg.Encoder.Width, trainSet.Len(), f.epochs, 100*tAcc, 100*sAcc, time.Since(began).Seconds())
	return nil
}

// resolve fills the settings the command line did not give from the
// recipe (--recipe, or with auto the one the teacher records) and returns
// the recipe; selfDistill says the student has the teacher's encoder.
func (f *distillFlags) resolve(teacherRecipe string, selfDistill bool) string {
	recipe := pickRecipe(f.recipe, teacherRecipe)
	r := distillationRecipe(recipe, selfDistill)
	orDefault(&f.optimizer, r.optimizer)
	orDefault(&f.lrScaling, r.lrScaling)
	orDefault(&f.alphaOn, r.alphaOn)
	orDefault(&f.lr, r.lr)
	orDefault(&f.temperature, r.temperature)
	given := func(name string) bool { return f.flags != nil && f.flags.Changed(name) }
	if !given("weight-decay") {
		f.weightDecay = r.weightDecay
	}
	if !given("warmup-fraction") {
		f.warmup = r.warmup
	}
	if !given("temperature-squared") {
		f.tSquared = r.temperatureSquared
	}
	recordResolved(f.settings, "recipe", recipe, "optimizer", f.optimizer, "lr", f.lr, "lr_scaling", f.lrScaling,
		"alpha_on", f.alphaOn, "temperature", f.temperature, "temperature_squared", f.tSquared, "weight_decay", f.weightDecay, "warmup_fraction", f.warmup)
	return recipe
}

// sameArchitecture tells whether two encoders have the same layers, however
// they were first initialised.
func sameArchitecture(a, b resnet.Config) bool {
	a.ZeroInitResidual, b.ZeroInitResidual = false, false
	return a == b
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
