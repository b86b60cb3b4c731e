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
	"github.com/simclr-go/simclr/optim"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/train"
)

type finetuneFlags struct {
	model     modelFlags
	split     splitFlags
	fraction  float64
	labels    string
	selector  int
	batch     int
	epochs    int
	lr        float64
	imageSize int
	workers   int
	random    bool
	out       string
	asJSON    bool
	quiet     bool
	resume    bool
	recipe    string
	optimizer string
	lrScaling string
	fcInit    string
	evalView  string
	settings  map[string]string // every flag, for the report
	flags     *pflag.FlagSet    // which settings the command line gave
}

func finetuneCmd(g *globalFlags) *cobra.Command {
	f := finetuneFlags{fraction: 0.1, batch: 256, epochs: 30, recipe: recipeAuto, evalView: "square"}
	c := &cobra.Command{
		Use:   "finetune",
		Short: "Fine-tune a pretrained encoder on a fraction of the labels, report test accuracy",
		Long: `Semi-supervised fine-tuning as in SimCLRv2: take a class-balanced fraction of
the labelled images (deterministic by --seed; 1% and 10% are the standard
settings), put a linear classifier on the encoder (or on the projection head's
--ft-proj-selector-th hidden layer), and train the whole network with cosine
learning-rate decay, no weight decay, random crop and flip as the only
augmentation. Reports top-1 on the test images. --random starts from a
random initialisation instead: the supervised baseline on the same labels.

--recipe v1 is SimCLR's fine-tuning: Nesterov momentum 0.9, --lr 0.05 x
batch/256, the new layer initialised as torch.nn.Linear, on the encoder's h.
--recipe v2 is SimCLRv2's: LARS, --lr 0.005 x sqrt(batch) (0.002 for width
over 64 or selective kernels), a zero-initialised new layer, from the head's
first hidden layer. auto (the default) takes v2 for a model pretrained with
--v2, else v1. Each flag given wins over the recipe.

` + modelHelp + `

` + datasetHelp,
		Example: `  simclr finetune --checkpoint runs/cifar/checkpoint.safetensors --data cifar10 --fraction 0.01 --epochs 60`,
		Args:    cobra.NoArgs,
		RunE: interruptible(func(cmd *cobra.Command, _ []string) error {
			f.settings, f.flags = settingsOf(cmd, nil), cmd.Flags()
			return resumeHint(cmd, runFinetune(cmd.Context(), cmd.OutOrStdout(), g, f))
		}),
	}
	f.model.register(c.Flags(), "checkpoint", "model file to start from (see below)")
	f.split.register(c, "labelled images (a --fraction of them is used)")
	fl := c.Flags()
	fl.Float64Var(&f.fraction, "fraction", f.fraction, "fraction of the labels to train on, per class (0.01, 0.1, or 1)")
	fl.StringVar(&f.labels, "labels-file", "", "file listing the labelled samples instead of --fraction: indices or names, one per line")
	fl.StringVar(&f.evalView, "eval-view", f.evalView, evalViewHelp)
	fl.StringVar(&f.recipe, "recipe", f.recipe, "fine-tuning recipe: auto, v1 (SimCLR's) or v2 (SimCLRv2's); see above")
	fl.IntVar(&f.selector, "ft-proj-selector", 0, "classifier on the head's hidden layer n (0: on the encoder's h; default: the recipe's, v2 uses 1)")
	fl.StringVar(&f.optimizer, "optimizer", "", "nesterov or lars (default: the recipe's)")
	fl.StringVar(&f.lrScaling, "lr-scaling", "", "linear (lr*batch/256) or sqrt (lr*sqrt(batch)) (default: the recipe's)")
	fl.StringVar(&f.fcInit, "fc-init", "", "new classifier layer: torch (torch.nn.Linear's uniform) or zero (the official code's) (default: the recipe's)")
	fl.IntVar(&f.batch, "batch", f.batch, "images per step")
	fl.IntVar(&f.epochs, "epochs", f.epochs, "passes over the labelled images")
	fl.Float64Var(&f.lr, "lr", 0, "base learning rate, scaled by --lr-scaling (default: the recipe's)")
	fl.IntVar(&f.imageSize, "image-size", 0, "view side in pixels (0: the training size recorded in the model, else the images' side if <= 64, else 224)")
	fl.IntVar(&f.workers, "workers", 0, "data loading goroutines (0: one per CPU)")
	fl.BoolVar(&f.random, "random", false, "start from a random initialisation (supervised baseline)")
	fl.StringVar(&f.out, "out", "", "write the fine-tuned classifier here (safetensors), e.g. as a teacher for simclr distill; X.safetensors gets its report and TensorBoard events in X.report/")
	fl.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress bar")
	fl.BoolVar(&f.resume, "resume", false, "continue a run a signal stopped, from the state it saved beside --out (OUT"+stateSuffix+")")
	return c
}

// resolve fills the settings the command line did not give from the
// recipe (--recipe, or with auto the one the model records) and returns
// the recipe.
func (f *finetuneFlags) resolve(l *simclr.Loaded) string {
	recipe := pickRecipe(f.recipe, l.Recipe)
	r := fineTuneRecipe(recipe, l.Model)
	orDefault(&f.optimizer, r.optimizer)
	orDefault(&f.lrScaling, r.lrScaling)
	orDefault(&f.fcInit, r.fcInit)
	orDefault(&f.lr, r.lr)
	if f.flags == nil || !f.flags.Changed("ft-proj-selector") {
		f.selector = r.selector
	}
	recordResolved(f.settings, "recipe", recipe, "optimizer", f.optimizer, "lr", f.lr, "lr_scaling", f.lrScaling,
		"fc_init", f.fcInit, "ft_proj_selector", f.selector)
	return recipe
}

func runFinetune(ctx context.Context, out io.Writer, g *globalFlags, f finetuneFlags) error {
	began := time.Now()
	if err := f.validate(); err != nil {
		return err
	}
	l, err := f.model.load("checkpoint")
	if err != nil {
		return err
	}
	if f.random {
		if l.Model, err = simclr.NewModel(l.Config, f.split.seed); err != nil {
			return err
		}
	}
	recipe := f.resolve(l)
	if f.selector > 0 && l.Model.Head == nil {
		return usagef("--ft-proj-selector %d needs a pretraining checkpoint, which holds the head", f.selector)
	}
	trainSet, testSet, err := f.split.sets()
	if err != nil {
		return err
	}
	var labelled data.Dataset
	if f.labels != "" {
		labelled, err = labelledSubset(trainSet, f.labels)
	} else {
		labelled, err = data.BalancedFraction(trainSet, f.fraction, f.split.seed)
	}
	if err != nil {
		return err
	}
	size, err := viewSide(f.imageSize, l, trainSet)
	if err != nil {
		return err
	}
	be, err := g.open()
	if err != nil {
		return err
	}
	classes := len(trainSet.Classes())
	c, err := train.NewClassifier(l.Model, f.selector, classes, f.split.seed)
	if err != nil {
		return err
	}
	c.ClassNames = trainSet.Classes()
	if f.fcInit == "zero" {
		c.ZeroFC()
	}
	if recipe == recipeV2 {
		c.Recipe = simclr.RecipeV2
	}
	workers := f.workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	cfg := train.DefaultFineTune(f.batch, f.epochs, size)
	cfg.BaseLR, cfg.Seed, cfg.Workers = f.lr, f.split.seed, workers
	cfg.Optimizer, cfg.LRScaling = f.optimizer, optim.Scaling(f.lrScaling)
	if cfg.StatePath, cfg.Resume, err = statePath(f.out, f.resume); err != nil {
		return err
	}
	var progress func(step, steps int, loss float64)
	if !f.quiet && !f.asJSON {
		bar := newBar(0, "fine-tuning")
		progress = func(step, steps int, loss float64) {
			bar.ChangeMax(steps)
			bar.Describe(fmt.Sprintf("fine-tuning: loss %.3f", loss))
			bar.Set(step)
		}
		defer bar.Finish()
	}
	rep := logRun(f.out, "Fine-tuning", f.settings, os.Stderr, f.quiet)
	defer rep.finish()
	if err := train.FineTune(ctx, be, c, labelled, cfg, rep.wrap(progress, f.epochs)); err != nil {
		return err
	}
	acc, err := train.AccuracyView(be, c, withContext(ctx, testSet), size, workers, evalView(f.evalView))
	if err != nil {
		return interruptedEvaluation(ctx, err, f.out, func() error { return train.SaveClassifier(f.out, c, size) })
	}
	rep.result(fmt.Sprintf("test top-1 (%d images)", testSet.Len()), fmt.Sprintf("%.2f%%", 100*acc))
	if f.out != "" {
		if err := train.SaveClassifier(f.out, c, size); err != nil {
			return err
		}
		removeState(cfg.StatePath)
	}
	start := "pretrained " + f.model.checkpoint
	if f.random {
		start = "random initialisation"
	}
	if f.asJSON {
		ds := f.split.datasetInfo()
		ds.Classes, ds.Train, ds.Labelled, ds.Test = classes, trainSet.Len(), labelled.Len(), testSet.Len()
		return evalResult{
			Command: "finetune",
			Model:   modelInfo{Checkpoint: f.model.checkpoint, Random: f.random, Layer: layerName(f.selector), Out: f.out},
			Dataset: ds,
			Metrics: map[string]float64{"top1": acc},
			Details: map[string]any{"fraction": f.fraction, "labels_file": f.labels, "epochs": f.epochs, "batch": f.batch, "lr": f.lr,
				"recipe": recipe, "optimizer": f.optimizer, "lr_scaling": f.lrScaling, "fc_init": f.fcInit},
		}.print(out, began)
	}
	fmt.Fprintf(out, "fine-tuned from %s on %d labelled images (%.0f%%), %d epochs: test top-1 %.2f%% on %d images (%.0fs)\n",
		start, labelled.Len(), 100*f.fraction, f.epochs, 100*acc, testSet.Len(), time.Since(began).Seconds())
	return nil
}
