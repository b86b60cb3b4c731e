package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/simclr-go/simclr/augment"
	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/data"
	"github.com/simclr-go/simclr/eval"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/optim"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/train"
)

// pretrainFlags are pretrain's settings; the yaml names are the config
// file's keys (the flag names with underscores).
type pretrainFlags struct {
	dataFlags       `yaml:",inline"`
	Val             float64       `yaml:"val"`
	Depth           int           `yaml:"depth"`
	Width           int           `yaml:"width"`
	CIFARStem       string        `yaml:"cifar_stem"`
	ProjLayers      int           `yaml:"proj_layers"`
	SKRatio         float64       `yaml:"sk_ratio"`
	V2              bool          `yaml:"v2"`
	ZeroInitRes     bool          `yaml:"zero_init_residual"`
	HeadStyle       string        `yaml:"head_style"`
	Init            string        `yaml:"init"`
	LossReduction   string        `yaml:"loss_reduction"`
	ProjHidden      int           `yaml:"proj_hidden"`
	ProjOut         int           `yaml:"proj_out"`
	Batch           int           `yaml:"batch"`
	Epochs          float64       `yaml:"epochs"`
	Steps           int           `yaml:"steps"`
	Optimizer       string        `yaml:"optimizer"`
	LR              float64       `yaml:"lr"`
	LRScaling       string        `yaml:"lr_scaling"`
	WeightDecay     float64       `yaml:"weight_decay"`
	Momentum        float64       `yaml:"momentum"`
	WarmupEpochs    float64       `yaml:"warmup_epochs"`
	Temperature     float64       `yaml:"temperature"`
	MemorySize      int           `yaml:"memory_size"`
	MemoryMomentum  float64       `yaml:"memory_momentum"`
	MemoryPositives string        `yaml:"memory_positives"`
	ImageSize       int           `yaml:"image_size"`
	ColorStrength   float64       `yaml:"color_strength"`
	Blur            string        `yaml:"blur"`
	CropMinScale    float64       `yaml:"crop_min_scale"`
	ColorP          float64       `yaml:"color_p"`
	GrayP           float64       `yaml:"gray_p"`
	FlipP           float64       `yaml:"flip_p"`
	Bicubic         bool          `yaml:"bicubic"`
	Solarize        float64       `yaml:"solarize"`
	Seed            uint64        `yaml:"seed"`
	Workers         int           `yaml:"workers"`
	Out             string        `yaml:"out"`
	CheckpointEvery int           `yaml:"checkpoint_every"`
	Resume          bool          `yaml:"resume"`
	KNNEvery        int           `yaml:"knn_every"`
	KNNK            int           `yaml:"knn_k"`
	TimeBudget      time.Duration `yaml:"time_budget"`
	Quiet           bool          `yaml:"quiet"`
	GridOnly        bool          `yaml:"grid_only"`
	EvalView        string        `yaml:"eval_view"`

	// warmupFraction, when set (by --v2), makes the warmup this fraction
	// of the run's steps instead of --warmup-epochs.
	warmupFraction float64
}

func defaultPretrain() pretrainFlags {
	return pretrainFlags{
		dataFlags: dataFlags{Split: "train"},
		Depth:     50, Width: 64, CIFARStem: "auto", ProjLayers: 2, ProjOut: 128,
		Batch: 256, Epochs: 100, Optimizer: "lars", LR: 0.3, LRScaling: "linear",
		WeightDecay: 1e-6, Momentum: 0.9, WarmupEpochs: 10, Temperature: 0.1,
		Blur: "auto", Out: "runs/pretrain", CheckpointEvery: 500, KNNK: 200, MemoryMomentum: 0.999, MemoryPositives: "momentum",
		// The official code's choices, each measured no worse than the
		// plain one (BENCHMARKS.md, "Each official pretraining switch alone"); the
		// library's zero values keep the plain ones, so a model file
		// that records none means what it meant.
		ZeroInitRes: true, HeadStyle: "official", Init: "official", LossReduction: train.LossSum, EvalView: "square",
	}
}

// SimCLRv2's pretraining recipe (its "Settings and Implementation
// Details"): a 3-layer head, selective kernels, LARS at 0.1 x sqrt(batch),
// weight decay 1e-4, warmup over the first 5% of the run, then cosine
// decay.
const (
	v2ProjLayers     = 3
	v2SKRatio        = 0.0625
	v2LR             = 0.1
	v2LRScaling      = "sqrt"
	v2WeightDecay    = 1e-4
	v2WarmupFraction = 0.05
)

// applyV2 sets SimCLRv2's pretraining recipe on every setting the command
// line (or the --config file) did not give.
func applyV2(fl *pflag.FlagSet, f *pretrainFlags) {
	set := func(name string, apply func()) {
		if !fl.Changed(name) {
			apply()
		}
	}
	set("proj-layers", func() { f.ProjLayers = v2ProjLayers })
	set("sk-ratio", func() { f.SKRatio = v2SKRatio })
	set("lr", func() { f.LR = v2LR })
	set("lr-scaling", func() { f.LRScaling = v2LRScaling })
	set("weight-decay", func() { f.WeightDecay = v2WeightDecay })
	set("warmup-epochs", func() { f.warmupFraction = v2WarmupFraction })
}

func pretrainCmd(g *globalFlags) *cobra.Command {
	c, _ := newPretrainCmd(g)
	return c
}

// newPretrainCmd also returns the settings its flags write into.
func newPretrainCmd(g *globalFlags) (*cobra.Command, *pretrainFlags) {
	f := defaultPretrain()
	var configPath string
	c := &cobra.Command{
		Use:   "pretrain",
		Short: "Pretrain an encoder with SimCLR on unlabeled images",
		Long: `Pretrain a ResNet encoder with SimCLR: two augmented views of every image, a
projection head, the NT-Xent loss and LARS. Writes OUT/checkpoint.safetensors
(every --checkpoint-every steps and at the end; written atomically),
OUT/metrics.jsonl (one JSON line per step) and OUT/views.png (augmented views
of a few training images, to check the augmentations by eye); OUT/report.html
(plots of every metric, the views, the settings; redrawn at each checkpoint)
and TensorBoard event files (tensorboard --logdir OUT). --resume continues from OUT's
checkpoint and gives the same losses an uninterrupted run would; with more
--steps or --epochs than before it extends the run. OUT/run.yaml records every
setting (--config OUT/run.yaml reruns the run) and the dataset's identity.
On SIGINT or SIGTERM the run finishes its step, saves a checkpoint and exits
with status 130 or 143; a second signal stops it at once.

Settings may come from a YAML file (--config) whose keys are the flag names
with underscores; flags given on the command line win.

` + datasetHelp,
		Example: `  simclr pretrain --data cifar10 --depth 18 --width 16 --batch 256 --epochs 10 \
      --temperature 0.5 --lr 1.0 --val 5000 --knn-every 500 --out runs/cifar`,
		Args: cobra.NoArgs,
		RunE: interruptible(func(cmd *cobra.Command, _ []string) error {
			if err := applyConfigFile(cmd, configPath, &f); err != nil {
				return err
			}
			if f.V2 {
				applyV2(cmd.Flags(), &f)
				if err := keepV2Warmup(&f); err != nil {
					return err
				}
			}
			if err := f.validate(configPath); err != nil {
				return err
			}
			return runPretrain(cmd, g, f)
		}),
	}
	fl := c.Flags()
	fl.StringVar(&configPath, "config", "", "YAML file of settings (keys: flag names with underscores)")
	fl.StringVar(&f.Data, "data", "", "dataset to pretrain on (see below)")
	fl.StringVar(&f.Split, "split", f.Split, "dataset split")
	fl.BoolVar(&f.SkipBad, "skip-bad", false, "skip unreadable images (counted) instead of stopping")
	fl.BoolVar(&f.Unlabeled, "unlabeled", false, unlabeledHelp)
	fl.IntVar(&f.Limit, "limit", 0, limitHelp)
	fl.Float64Var(&f.Val, "val", 0, "hold out this many images (or this fraction, if < 1) for the kNN probe")
	fl.IntVar(&f.Depth, "depth", f.Depth, "ResNet depth: 18, 34, 50, 101, 152")
	fl.IntVar(&f.Width, "width", f.Width, "channels of the first stage (64 = 1x, 128 = 2x)")
	fl.StringVar(&f.CIFARStem, "cifar-stem", f.CIFARStem, "3x3 stem without max pool: auto (for images of 32 px or less), on, off")
	fl.IntVar(&f.ProjLayers, "proj-layers", f.ProjLayers, "projection head layers (2 in SimCLR v1, 3 in v2)")
	fl.Float64Var(&f.SKRatio, "sk-ratio", 0, "selective-kernel ResNet (SimCLRv2) with this attention ratio, e.g. 0.0625 (0: plain ResNet)")
	fl.BoolVar(&f.V2, "v2", false, "SimCLRv2's recipe: 3-layer head, SK ratio 0.0625, --lr 0.1 with sqrt scaling, weight decay 1e-4, warmup over the first 5% of the steps (each unless given); finetune and distill then default to SimCLRv2's recipes for this model")
	fl.BoolVar(&f.ZeroInitRes, "zero-init-residual", f.ZeroInitRes, "start each residual block's last batch-norm scale at 0, as the official code does (=false: at 1, as torchvision)")
	fl.StringVar(&f.HeadStyle, "head-style", f.HeadStyle, "projection head: official (no Linear bias; ends in a batch norm that scales, no shift) or plain (Linears with bias, ends in a Linear)")
	fl.StringVar(&f.Init, "init", f.Init, "initialisation: official (fan-in variance scaling, N(0, 0.01) head) or torchvision (Kaiming fan-out convolutions, uniform Linears)")
	fl.StringVar(&f.LossReduction, "loss-reduction", f.LossReduction, "NT-Xent over the 2N views: sum (the official code's sum of the two directions' means: 2x the mean) or mean")
	fl.IntVar(&f.ProjHidden, "proj-hidden", 0, "projection head hidden width (0: the encoder's feature size)")
	fl.IntVar(&f.ProjOut, "proj-out", f.ProjOut, "projection output size")
	fl.IntVar(&f.Batch, "batch", f.Batch, "images per step (2 views each)")
	fl.Float64Var(&f.Epochs, "epochs", f.Epochs, "passes over the data (ignored when --steps is set)")
	fl.IntVar(&f.Steps, "steps", 0, "training steps (overrides --epochs)")
	fl.StringVar(&f.Optimizer, "optimizer", f.Optimizer, "lars or sgd (momentum)")
	fl.Float64Var(&f.LR, "lr", f.LR, "base learning rate, scaled by --lr-scaling")
	fl.StringVar(&f.LRScaling, "lr-scaling", f.LRScaling, "linear (lr*batch/256) or sqrt (lr*sqrt(batch))")
	fl.Float64Var(&f.WeightDecay, "weight-decay", f.WeightDecay, "weight decay (not on batch norm or biases)")
	fl.Float64Var(&f.Momentum, "momentum", f.Momentum, "momentum")
	fl.Float64Var(&f.WarmupEpochs, "warmup-epochs", f.WarmupEpochs, "linear warmup, then cosine decay")
	fl.Float64Var(&f.Temperature, "temperature", f.Temperature, "NT-Xent temperature (0.5 suits CIFAR)")
	fl.IntVar(&f.MemorySize, "memory-size", 0, "SimCLRv2 memory: queue this many momentum-model projections as extra negatives (0: off; one process only). Experimental: below no memory at equal steps in every run measured (BENCHMARKS.md)")
	fl.StringVar(&f.MemoryPositives, "memory-positives", f.MemoryPositives, "with the memory, each view's positive: momentum (MoCo's: the momentum model's projection of the other view) or online (the online model's; lets training drift away from the queue, BENCHMARKS.md)")
	fl.Float64Var(&f.MemoryMomentum, "memory-momentum", f.MemoryMomentum, "momentum m of the memory's moving-average model (theta_m = m*theta_m + (1-m)*theta)")
	fl.IntVar(&f.ImageSize, "image-size", 0, "view side in pixels (0: the images' side if <= 64, else 224)")
	fl.Float64Var(&f.ColorStrength, "color-strength", 0, "colour distortion strength s (0: 0.5 for views of 32 px or less, else 1)")
	fl.StringVar(&f.Blur, "blur", f.Blur, "Gaussian blur: auto (for views over 32 px), on, off")
	fl.Float64Var(&f.Solarize, "solarize", 0, "solarize probability")
	fl.Float64Var(&f.CropMinScale, "crop-min-scale", 0.08, "smallest crop area, as a fraction of the image (random resized crop)")
	fl.Float64Var(&f.ColorP, "color-p", 0.8, "probability of the colour distortion")
	fl.Float64Var(&f.GrayP, "gray-p", 0.2, "probability of grayscale")
	fl.Float64Var(&f.FlipP, "flip-p", 0.5, "probability of a horizontal flip")
	fl.BoolVar(&f.Bicubic, "bicubic", false, "bicubic resize of crops (as the official TF code) instead of bilinear")
	fl.Uint64Var(&f.Seed, "seed", 0, "random seed (initialisation, shuffling, augmentation)")
	fl.IntVar(&f.Workers, "workers", 0, "data loading goroutines (0: one per CPU)")
	fl.StringVar(&f.Out, "out", f.Out, "run directory")
	fl.IntVar(&f.CheckpointEvery, "checkpoint-every", f.CheckpointEvery, "steps between checkpoints (0: only at the end)")
	fl.BoolVar(&f.Resume, "resume", false, "continue from OUT/checkpoint.safetensors")
	fl.IntVar(&f.KNNEvery, "knn-every", 0, "steps between kNN accuracy checks on the held-out images (needs --val and labels)")
	fl.IntVar(&f.KNNK, "knn-k", f.KNNK, "neighbours for the kNN probe")
	fl.StringVar(&f.EvalView, "eval-view", f.EvalView, evalViewHelp)
	fl.DurationVar(&f.TimeBudget, "time-budget", 0, "stop (with a checkpoint) after this long, e.g. 40m")
	fl.BoolVar(&f.Quiet, "quiet", false, "no progress bar")
	fl.BoolVar(&f.GridOnly, "grid-only", false, "write OUT/views.png (a grid of augmented views) and stop")
	return c, &f
}

// applyConfigFile sets the flags of cmd, which write into f, from the
// YAML file at path (if set); the command line wins over the file.
func applyConfigFile(cmd *cobra.Command, path string, _ *pretrainFlags) error {
	return configToFlags(cmd, path)
}

// keepV2Warmup makes a resumed --v2 run keep the warmup it started with
// (OUT/run.yaml's), rather than 5% of its new length when --resume
// extends it.
func keepV2Warmup(f *pretrainFlags) error {
	if !f.Resume || f.warmupFraction == 0 {
		return nil
	}
	saved, _, err := readRunFile(filepath.Join(f.Out, runFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if v, err := strconv.ParseFloat(saved["warmup_epochs"], 64); err == nil && v >= 0 {
		f.WarmupEpochs, f.warmupFraction = v, 0
	}
	return nil
}

// pretrainSetup is what runPretrain derives from the flags.
type pretrainSetup struct {
	all              data.Dataset // as opened, before --val
	trainSet, valSet data.Dataset
	pipe             *augment.Pipeline
	cfg              train.Config
	// warmupEpochs is the warmup as run, in epochs (--v2 sets it from the
	// run's length).
	warmupEpochs float64
}

func setupPretrain(f pretrainFlags) (*pretrainSetup, error) {
	ds, err := f.dataFlags.open()
	if err != nil {
		return nil, err
	}
	s := &pretrainSetup{all: ds, trainSet: ds}
	if f.Val > 0 {
		tr, va, err := data.SplitTrainVal(ds, f.Val, f.Seed)
		if err != nil {
			return nil, usagef("--val %v: %w", f.Val, err)
		}
		s.trainSet, s.valSet = tr, va
	}
	if s.trainSet.Len() < f.Batch {
		return nil, usagef("--batch %d: more than the %d training images; lower --batch", f.Batch, s.trainSet.Len())
	}
	first, err := s.trainSet.Get(0)
	if err != nil {
		return nil, err
	}
	size := f.ImageSize
	if size == 0 {
		size = 224
		if side := max(first.W, first.H); side <= 64 {
			size = side
		}
	}
	var acfg augment.Config
	if size <= 32 {
		acfg = augment.CIFARDefaults(size)
	} else {
		acfg = augment.ImageNetDefaults(size)
	}
	if f.ColorStrength > 0 {
		acfg.ColorStrength = f.ColorStrength
	}
	switch f.Blur {
	case "on":
		acfg.BlurP = 0.5
	case "off":
		acfg.BlurP = 0
	case "auto":
	default:
		return nil, fmt.Errorf("--blur %q: want auto, on or off", f.Blur)
	}
	acfg.SolarizeP = f.Solarize
	acfg.Scale[0], acfg.ColorP, acfg.GrayP, acfg.FlipP = f.CropMinScale, f.ColorP, f.GrayP, f.FlipP
	if f.Bicubic {
		acfg.Interp = augment.Bicubic
	}
	if s.pipe, err = augment.NewPipeline(acfg); err != nil {
		return nil, err
	}
	stem := size <= 32
	switch f.CIFARStem {
	case "on":
		stem = true
	case "off":
		stem = false
	case "auto":
	default:
		return nil, fmt.Errorf("--cifar-stem %q: want auto, on or off", f.CIFARStem)
	}
	if f.ProjLayers < 1 {
		return nil, fmt.Errorf("--proj-layers %d: need at least 1", f.ProjLayers)
	}
	probe, err := resnet.New(nn.NewRegistry(0), resnet.Config{Depth: f.Depth, Width: f.Width})
	if err != nil {
		return nil, err
	}
	hidden := make([]int, f.ProjLayers-1)
	for i := range hidden {
		hidden[i] = f.ProjHidden
		if hidden[i] == 0 {
			hidden[i] = probe.OutDim
		}
	}
	stepsPerEpoch := s.trainSet.Len() / f.Batch
	steps := f.Steps
	if steps == 0 {
		steps = int(math.Ceil(f.Epochs * float64(stepsPerEpoch)))
	}
	warmup := min(int(math.Round(f.WarmupEpochs*float64(stepsPerEpoch))), steps)
	if f.warmupFraction > 0 {
		warmup = int(math.Round(f.warmupFraction * float64(steps)))
	}
	s.warmupEpochs = float64(warmup) / float64(stepsPerEpoch)
	headStyle, err := simclr.ParseHeadStyle(f.HeadStyle)
	if err != nil {
		return nil, usagef("--head-style: %w", err)
	}
	initStyle, err := nn.ParseInit(f.Init)
	if err != nil {
		return nil, usagef("--init: %w", err)
	}
	s.cfg = train.Config{
		Model: simclr.ModelConfig{
			Encoder:    resnet.Config{Depth: f.Depth, Width: f.Width, CIFARStem: stem, SKRatio: f.SKRatio, ZeroInitResidual: f.ZeroInitRes},
			ProjHidden: hidden, ProjOut: f.ProjOut, HeadStyle: headStyle, Init: initStyle,
		},
		Batch: f.Batch, ImageSize: size, Steps: steps, Optimizer: f.Optimizer,
		BaseLR: f.LR, LRScaling: optim.Scaling(f.LRScaling), WeightDecay: f.WeightDecay,
		Momentum: f.Momentum, Warmup: warmup, Temperature: f.Temperature, Seed: f.Seed, V2: f.V2,
	}
	if f.LossReduction != train.LossMean {
		s.cfg.LossReduction = f.LossReduction // the mean is the default, stored as ""
	}
	if f.MemorySize > 0 {
		s.cfg.MemorySize, s.cfg.MemoryMomentum = f.MemorySize, f.MemoryMomentum
		if f.MemoryPositives != "online" {
			s.cfg.MemoryPositives = f.MemoryPositives // "online" is the default, stored as ""
		}
	}
	return s, s.cfg.Validate()
}

func runPretrain(cmd *cobra.Command, g *globalFlags, f pretrainFlags) (err error) {
	comm, finish, err := openComm(g)
	if err != nil {
		return err
	}
	defer finish(&err)
	defer reportWaitingOnSignal(comm, os.Stderr)()
	root := comm.Rank() == 0
	be, err := g.open()
	if err != nil {
		return err
	}
	s, err := setupPretrain(f)
	if err != nil {
		return err
	}
	workers := f.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	if err := os.MkdirAll(f.Out, 0o755); err != nil {
		return err
	}
	if root {
		if err := writeSkipped(f.Out, data.SkippedFiles(s.trainSet)); err != nil {
			return err
		}
	}
	gridPath := filepath.Join(f.Out, "views.png")
	if root {
		if err := writeViewGrid(gridPath, s.trainSet, s.pipe, f.Seed); err != nil {
			return fmt.Errorf("writing %s: %w", gridPath, err)
		}
	}
	if f.GridOnly {
		fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", gridPath)
		return nil
	}
	views, err := train.NewAugmentedViews(s.trainSet, s.pipe, train.ViewOptions{Batch: f.Batch, Seed: f.Seed, Workers: workers,
		Shard: data.Shard{Rank: comm.Rank(), Size: comm.Size()}})
	if err != nil {
		return err
	}
	defer views.Close()
	p, err := train.NewPretrainer(s.cfg, be, views)
	if err != nil {
		return err
	}
	if err := p.SetComm(comm, train.DistOptions{}); err != nil {
		return err
	}
	// Results on stdout, what the run is doing on stderr.
	out, info := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if !root {
		out, info = io.Discard, io.Discard
	}
	ckpt := filepath.Join(f.Out, train.CheckpointName)
	settings, rc := pretrainRecord(cmd, f, s, be)
	if f.Resume {
		if err := resumePretrain(p, f.Out, settings, rc); err != nil {
			return fmt.Errorf("--resume: %w", err)
		}
		if p.Done() {
			fmt.Fprintf(out, "run already finished at step %d (of %d); to train longer pass a larger --steps/--epochs\n", p.Step, s.cfg.Steps)
			return nil
		}
		fmt.Fprintf(info, "resumed from %s at step %d\n", ckpt, p.Step)
		if msg := p.ScheduleChange(); msg != "" {
			fmt.Fprintln(out, msg)
		}
	} else if _, err := os.Stat(ckpt); err == nil {
		return fmt.Errorf("%s exists: pass --resume to continue it, or choose another --out", ckpt)
	}
	if root {
		if err := writeRunFile(f.Out, cmd, settings, rc); err != nil {
			return err
		}
	}
	fmt.Fprintf(info, "pretraining resnet%d width %d (%d parameters) on %d images of %dpx; batch %d, %d steps (%d per epoch), backend %s with %d threads\n",
		f.Depth, f.Width, p.Model.Params.NumParams(), s.trainSet.Len(), s.cfg.ImageSize, f.Batch, s.cfg.Steps,
		views.StepsPerEpoch(), be.Name(), be.Threads())
	if comm.Size() > 1 {
		fmt.Fprintf(info, "data parallel over %d processes: %d images each per step, global batch norm, negatives from all\n",
			comm.Size(), f.Batch/comm.Size())
	}

	opts := train.RunOptions{Dir: f.Out, CheckpointEvery: f.CheckpointEvery}
	rep := followRun(root, f.Out, p.Step, info, f.Quiet)
	defer rep.finish()
	opts.Saved = rep.saved
	if f.KNNEvery > 0 {
		if s.valSet == nil || s.trainSet.Classes() == nil {
			return usagef("--knn-every needs labelled data and a held-out part (--val)")
		}
		evalTape := autograd.NewTape(be)
		classes := len(s.trainSet.Classes())
		opts.EvalEvery = f.KNNEvery
		opts.Eval = func(ctx context.Context, _ int) (map[string]float64, error) {
			acc, err := knnAccuracyView(ctx, evalTape, p.Model.Encoder.Forward, s.trainSet, s.valSet, s.cfg.ImageSize, workers,
				eval.KNNOptions{K: f.KNNK, Temperature: 0.1, Classes: classes}, evalView(f.EvalView))
			if err != nil {
				return nil, err
			}
			if !f.Quiet {
				fmt.Fprintf(os.Stderr, "\nstep %d: kNN top-1 %.2f%%\n", p.Step, 100*acc)
			}
			return map[string]float64{"knn_top1": acc}, nil
		}
	}
	var bar *progressbar.ProgressBar
	if !f.Quiet && root {
		bar = newBar(s.cfg.Steps, "pretraining")
		bar.Set(p.Step)
	}
	began := time.Now()
	var last train.StepStats
	opts.Progress = func(st train.StepStats) {
		last = st
		rep.step()
		if bar != nil {
			bar.Describe(fmt.Sprintf("epoch %.1f loss %.4f acc %.2f lr %.3g %.0f img/s", st.Epoch, st.Loss, st.ContrastAcc, st.LR, st.ImagesPerS))
			bar.Set(st.Step + 1)
		}
	}
	if f.TimeBudget > 0 {
		opts.Deadline = began.Add(f.TimeBudget)
	}
	if err := train.Run(cmd.Context(), p, opts); err != nil {
		return resumeHint(cmd, err)
	}
	if bar != nil {
		bar.Finish()
	}
	lastLoss := "no step run"
	if last.Seconds > 0 {
		lastLoss = fmt.Sprintf("last loss %.4f", last.Loss)
	}
	fmt.Fprintf(out, "done: step %d of %d, %s, %.1f min; checkpoint %s, metrics %s\n",
		p.Step, s.cfg.Steps, lastLoss, time.Since(began).Minutes(), ckpt, filepath.Join(f.Out, train.MetricsName))
	return nil
}

// knnAccuracy embeds both sets with enc and classifies val by kNN over
// trainSet. It gives up when ctx is done.
func knnAccuracy(ctx context.Context, t *autograd.Tape, enc eval.Encoder, trainSet, valSet data.Dataset, size, workers int, o eval.KNNOptions) (float64, error) {
	return knnAccuracyView(ctx, t, enc, trainSet, valSet, size, workers, o, eval.ViewSquare)
}

// knnAccuracyView is knnAccuracy on evaluation views of the given style.
func knnAccuracyView(ctx context.Context, t *autograd.Tape, enc eval.Encoder, trainSet, valSet data.Dataset, size, workers int, o eval.KNNOptions, view eval.ViewStyle) (float64, error) {
	eo := eval.EmbedOptions{Size: size, Workers: workers, Transform: eval.View(size, view)}
	bank, _, err := eval.EmbedWith(t, enc, withContext(ctx, trainSet), eo)
	if err != nil {
		return 0, err
	}
	q, _, err := eval.EmbedWith(t, enc, withContext(ctx, valSet), eo)
	if err != nil {
		return 0, err
	}
	res, err := eval.KNN(t.B, bank, q, o)
	return res.Top1, err
}

// writeViewGrid saves eight views of each of eight images spread over the
// dataset (so over its classes, when sorted by class).
func writeViewGrid(path string, ds data.Dataset, pipe *augment.Pipeline, seed uint64) error {
	var srcs []augment.Image
	n := min(8, ds.Len())
	for i := 0; i < n; i++ {
		s, err := ds.Get(i * ds.Len() / n)
		if err != nil {
			return err
		}
		srcs = append(srcs, augment.FromHWC(s.RGB, s.W, s.H, nil))
	}
	return augment.WriteGrid(path, pipe, srcs, 8, seed)
}
