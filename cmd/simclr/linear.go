package main

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/simclr-go/simclr/data"
	"github.com/simclr-go/simclr/eval"
)

type linearFlags struct {
	model     modelFlags
	data      dataFlags
	testData  string
	testSplit string
	val       float64
	layer     string
	imageSize int
	batch     int
	workers   int
	l2        string
	holdOut   float64
	maxIter   int
	augment   int
	seed      uint64
	asJSON    bool
	quiet     bool
}

// linearDetails are the details of linear-eval's --json result: the fit,
// the L2 search included.
type linearDetails struct {
	Features  int                `json:"features"`
	ImageSize int                `json:"image_size"`
	Augment   int                `json:"augmented_copies"`
	Result    *eval.LinearResult `json:"fit"`
}

func linearEvalCmd(g *globalFlags) *cobra.Command {
	f := linearFlags{testSplit: "test", layer: "h", batch: 256, l2: "1e-5,1e-4,1e-3,1e-2,1e-1", holdOut: 0.1, maxIter: 500}
	f.data.Split = "train"
	c := &cobra.Command{
		Use:   "linear-eval",
		Short: "Linear evaluation: logistic regression on frozen features, top-1/top-5 on a test split",
		Long: `The linear evaluation protocol on frozen features: embed the training and test
images once (centre view, eval mode), standardize each feature with the
training set's mean and deviation, fit a multinomial logistic regression
(L-BFGS, mean cross-entropy + L2/2 |W|^2) for each --l2 value on 1 - --hold-out
of the training images, pick the value with the best top-1 on the held-out
images (ties: lower cross-entropy), refit on all training images with it, and
report top-1 and top-5 on the test images.

The test images come from --test-data (default: --data) with --test-split, or,
for datasets without a test split, from --val images held out of --data.
--augment K adds K augmented copies (random resized crop and flip) of every
training image to the fits, as in the SimCLR paper's protocol; held-out
images are scored on their centre views only.

--layer: ` + layerHelp + `

` + modelHelp + `

` + datasetHelp,
		Example: `  simclr linear-eval --checkpoint runs/fmnist/checkpoint.safetensors --data fashion-mnist
  simclr linear-eval --checkpoint runs/cifar/checkpoint.safetensors --data cifar10:cifar-10.tar.gz --val 10000 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runLinearEval(cmd, g, f) },
	}
	fl := c.Flags()
	f.model.register(fl, "checkpoint", "model file to evaluate (see below)")
	fl.StringVar(&f.data.Data, "data", "", "labelled dataset to train the classifier on (see below)")
	fl.StringVar(&f.data.Split, "split", f.data.Split, "split of --data to train on")
	fl.StringVar(&f.testData, "test-data", "", "dataset to test on (default: --data)")
	fl.StringVar(&f.testSplit, "test-split", f.testSplit, "split of the test dataset")
	fl.Float64Var(&f.val, "val", 0, "test on this many images (or this fraction, if < 1) held out of --data instead (for datasets without a test split)")
	fl.BoolVar(&f.data.SkipBad, "skip-bad", false, "skip unreadable images (counted) instead of stopping")
	fl.IntVar(&f.data.Limit, "limit", 0, limitHelp)
	fl.StringVar(&f.layer, "layer", f.layer, "features to classify: h, a head layer number, or z")
	fl.IntVar(&f.imageSize, "image-size", 0, "view side in pixels (0: the training size recorded in the model, else the images' side if <= 64, else 224)")
	fl.IntVar(&f.batch, "batch", f.batch, "images per forward pass when embedding")
	fl.IntVar(&f.workers, "workers", 0, "data loading goroutines (0: one per CPU)")
	fl.StringVar(&f.l2, "l2", f.l2, "candidate L2 penalties on the mean loss, comma-separated (one value: no search)")
	fl.Float64Var(&f.holdOut, "hold-out", f.holdOut, "fraction of the training images that chooses the L2 penalty")
	fl.IntVar(&f.maxIter, "max-iter", f.maxIter, "L-BFGS iterations per fit, at most")
	fl.IntVar(&f.augment, "augment", 0, "augmented copies (crop + flip) of each training image to add")
	fl.Uint64Var(&f.seed, "seed", 0, "random seed (held-out images, --val split, augmentations)")
	fl.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress output")
	return c
}

// linearSets opens the training and test sets the flags describe.
func linearSets(f linearFlags) (trainSet, testSet data.Dataset, err error) {
	return trainTestSets(f.data, f.testData, f.testSplit, f.val, f.seed)
}

func runLinearEval(cmd *cobra.Command, g *globalFlags, f linearFlags) error {
	began := time.Now()
	if err := f.validate(); err != nil {
		return err
	}
	layer, err := parseLayer(f.layer)
	if err != nil {
		return err
	}
	l2s, err := parseL2s(f.l2)
	if err != nil {
		return err
	}
	l, err := f.model.load("checkpoint")
	if err != nil {
		return err
	}
	if _, err := l.Forward(layer); err != nil {
		return err
	}
	trainSet, testSet, err := linearSets(f)
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
	quiet := f.quiet || f.asJSON
	e, err := newEmbedder(be, l, layer, size, f.batch, f.workers, f.quiet)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) {
		if !quiet {
			fmt.Fprintf(os.Stderr, format, a...)
		}
	}
	classes := len(trainSet.Classes())
	logf("linear evaluation of %s (%s) on %d training and %d test images of %dpx, %d classes, backend %s\n",
		f.model.checkpoint, layerName(layer), trainSet.Len(), testSet.Len(), size, classes, be.Name())
	d := eval.LinearData{Classes: classes}
	if d.Train, _, err = e.embed("train features", trainSet, nil, 0, false); err != nil {
		return err
	}
	if f.augment > 0 {
		tf, err := eval.CropFlipView(size, f.seed)
		if err != nil {
			return err
		}
		for k := 1; k <= f.augment; k++ {
			a, _, err := e.embed(fmt.Sprintf("augmented copy %d", k), trainSet, tf, k, false)
			if err != nil {
				return err
			}
			d.Aug = append(d.Aug, a)
		}
	}
	if d.Test, _, err = e.embed("test features", testSet, nil, 0, false); err != nil {
		return err
	}
	fitStart := time.Now()
	res, err := eval.LinearEval(be, d, eval.LinearOptions{
		L2s: l2s, HoldOut: f.holdOut, Seed: f.seed, MaxIter: f.maxIter,
		Progress: func(stage string, l2 float64, iters int) {
			logf("  %s fit, L2 %g: %d iterations (%.0fs)\n", stage, l2, iters, time.Since(fitStart).Seconds())
		},
	})
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if f.asJSON {
		ds := datasetInfo{Data: f.data.Data, Split: f.data.Split, TestData: f.testData, Val: f.val, Limit: f.data.Limit,
			Classes: classes, Train: trainSet.Len(), Labelled: trainSet.Len(), Test: testSet.Len()}
		if f.val == 0 {
			ds.TestSplit = f.testSplit
		}
		return evalResult{
			Command: "linear-eval",
			Model:   modelInfo{Checkpoint: f.model.checkpoint, Layer: layerName(layer)},
			Dataset: ds,
			Metrics: map[string]float64{"top1": res.Top1, fmt.Sprintf("top%d", res.K): res.TopK, "train_top1": res.TrainTop1},
			Details: linearDetails{Features: d.Train.Dim, ImageSize: size, Augment: f.augment, Result: res},
		}.print(out, began)
	}
	fmt.Fprintf(out, "linear evaluation: %s, %s (%d features), %d classes\n", f.model.checkpoint, layerName(layer), d.Train.Dim, classes)
	fmt.Fprintf(out, "training images %d (+%d augmented copies each), test images %d\n", trainSet.Len(), f.augment, testSet.Len())
	if len(res.Trials) > 0 {
		fmt.Fprintf(out, "\nL2 search on %d held-out training images:\n", res.HeldOut)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "L2\tval top-1\tval loss\titerations\t")
		for _, t := range res.Trials {
			mark := ""
			if t.L2 == res.L2 {
				mark = "<- chosen"
			}
			fmt.Fprintf(tw, "%g\t%.2f%%\t%.4f\t%d\t  %s\n", t.L2, 100*t.ValTop1, t.ValLoss, t.Iters, mark)
		}
		tw.Flush()
	}
	fmt.Fprintf(out, "\nL2 %g, refit on %d rows (%d iterations): train top-1 %.2f%%\n", res.L2, res.TrainRows, res.Iters, 100*res.TrainTop1)
	fmt.Fprintf(out, "test top-1 %.2f%%  top-%d %.2f%%  (%.0fs)\n", 100*res.Top1, res.K, 100*res.TopK, time.Since(began).Seconds())
	return nil
}
