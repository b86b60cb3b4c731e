package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/simclr-go/simclr/data"
	"github.com/simclr-go/simclr/eval"
	"github.com/simclr-go/simclr/simclr"
)

// splitFlags choose labelled training images and the images to test on;
// linear-eval, knn and finetune share them.
type splitFlags struct {
	data      dataFlags
	testData  string
	testSplit string
	val       float64
	seed      uint64
}

func (s *splitFlags) register(c *cobra.Command, trainWhat string) {
	fl := c.Flags()
	s.data.Split, s.testSplit = "train", "test"
	fl.StringVar(&s.data.Data, "data", "", trainWhat+" (see below)")
	fl.StringVar(&s.data.Split, "split", s.data.Split, "split of --data")
	fl.StringVar(&s.testData, "test-data", "", "dataset to test on (default: --data)")
	fl.StringVar(&s.testSplit, "test-split", s.testSplit, "split of the test dataset")
	fl.Float64Var(&s.val, "val", 0, "test on this many images (or this fraction, if < 1) held out of --data instead (for datasets without a test split)")
	fl.BoolVar(&s.data.SkipBad, "skip-bad", false, "skip unreadable images (counted) instead of stopping")
	fl.IntVar(&s.data.Limit, "limit", 0, limitHelp)
	fl.Uint64Var(&s.seed, "seed", 0, "random seed (--val split, initialisation, augmentation)")
}

// sets opens the training and test images.
func (s *splitFlags) sets() (trainSet, testSet data.Dataset, err error) {
	return linearSets(linearFlags{data: s.data, testData: s.testData, testSplit: s.testSplit, val: s.val, seed: s.seed})
}

type knnFlags struct {
	model       modelFlags
	split       splitFlags
	layer       string
	k           int
	temperature float64
	imageSize   int
	batch       int
	workers     int
	random      bool
	asJSON      bool
	quiet       bool
}

func knnCmd(g *globalFlags) *cobra.Command {
	f := knnFlags{layer: "h", k: 200, temperature: 0.1, batch: 256}
	c := &cobra.Command{
		Use:   "knn",
		Short: "Weighted kNN accuracy of frozen features (k=200, cosine, temperature 0.1)",
		Long: `Classify each test image by its k most cosine-similar training images, each
voting for its class with weight exp(similarity / temperature), and report
top-1 accuracy. --random evaluates the same architecture at its random
initialisation instead, the baseline a pretrained encoder must beat.

--layer: ` + layerHelp + `

` + modelHelp + `

` + datasetHelp,
		Example: `  simclr knn --checkpoint runs/cifar/checkpoint.safetensors --data cifar10 --test-split test
  simclr knn --checkpoint runs/cifar/checkpoint.safetensors --data cifar10 --test-split test --random`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runKNN(cmd.OutOrStdout(), g, f) },
	}
	f.model.register(c.Flags(), "checkpoint", "model file to evaluate (see below)")
	f.split.register(c, "labelled images to search (the memory bank)")
	fl := c.Flags()
	fl.StringVar(&f.layer, "layer", f.layer, "features: h, a head layer number, or z")
	fl.IntVar(&f.k, "k", f.k, "neighbours that vote")
	fl.Float64Var(&f.temperature, "temperature", f.temperature, "vote weight exp(similarity/temperature)")
	fl.IntVar(&f.imageSize, "image-size", 0, "view side in pixels (0: the training size recorded in the model, else the images' side if <= 64, else 224)")
	fl.IntVar(&f.batch, "batch", f.batch, "images per forward pass")
	fl.IntVar(&f.workers, "workers", 0, "data loading goroutines (0: one per CPU)")
	fl.BoolVar(&f.random, "random", false, "evaluate the architecture at its random initialisation (seed --seed)")
	fl.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress output")
	return c
}

func runKNN(out io.Writer, g *globalFlags, f knnFlags) error {
	began := time.Now()
	if err := f.validate(); err != nil {
		return err
	}
	layer, err := parseLayer(f.layer)
	if err != nil {
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
	trainSet, testSet, err := f.split.sets()
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
	e, err := newEmbedder(be, l, layer, size, f.batch, f.workers, f.quiet || f.asJSON)
	if err != nil {
		return err
	}
	bank, query, err := e.embedSplit("bank features", trainSet, testSet)
	if err != nil {
		return err
	}
	classes := len(trainSet.Classes())
	res, err := eval.KNN(be, bank, query, eval.KNNOptions{K: f.k, Temperature: f.temperature, Classes: classes})
	if err != nil {
		return err
	}
	what := f.model.checkpoint
	if f.random {
		what += " (random initialisation)"
	}
	if f.asJSON {
		ds := f.split.datasetInfo()
		ds.Classes, ds.Train, ds.Labelled, ds.Test = classes, bank.Rows, bank.Rows, query.Rows
		return evalResult{
			Command: "knn",
			Model:   modelInfo{Checkpoint: f.model.checkpoint, Random: f.random, Layer: layerName(layer)},
			Dataset: ds,
			Metrics: map[string]float64{"top1": res.Top1},
			Details: map[string]any{"k": f.k, "temperature": f.temperature},
		}.print(out, began)
	}
	fmt.Fprintf(out, "kNN (k=%d, T=%g) of %s, %s features: top-1 %.2f%% on %d test images, bank of %d (%.0fs)\n",
		f.k, f.temperature, what, layerName(layer), 100*res.Top1, query.Rows, bank.Rows, time.Since(began).Seconds())
	return nil
}
