package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/simclr-go/simclr/npy"
)

type embedFlags struct {
	model     modelFlags
	data      dataFlags
	layer     string
	imageSize int
	batch     int
	workers   int
	out       string
	quiet     bool
}

func embedCmd(g *globalFlags) *cobra.Command {
	f := embedFlags{layer: "h", batch: 256}
	c := &cobra.Command{
		Use:   "embed",
		Short: "Write a trained encoder's features of a dataset as NumPy arrays",
		Long: `Compute features of every image of a dataset with a trained model, in eval
mode (batch norm with running statistics) on the centre view of each image
(the central square, resized to --image-size, no augmentation), and write

  OUT.features.npy   float32 [N, D]
  OUT.labels.npy     int64 [N], -1 for unlabelled images
  OUT.files.txt      one sample name per line (file path, archive member,
                     or dataset/split/index), in the arrays' order

Read them in Python with numpy.load.

--layer: ` + layerHelp + `

` + modelHelp + `

` + datasetHelp,
		Example: `  simclr embed --checkpoint runs/cifar/checkpoint.safetensors --data cifar10 --split test --out runs/cifar/test
  simclr embed --checkpoint runs/cifar/checkpoint.safetensors --data photos/ --layer 1 --out photos-proj1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runEmbed(cmd, g, f) },
	}
	fl := c.Flags()
	f.model.register(fl, "checkpoint", "model file to embed with (see below)")
	fl.StringVar(&f.data.Data, "data", "", "dataset to embed (see below)")
	fl.StringVar(&f.data.Split, "split", "train", "dataset split: train or test (STL-10 also unlabeled, train+unlabeled)")
	fl.BoolVar(&f.data.SkipBad, "skip-bad", false, "skip unreadable images (counted) instead of stopping")
	fl.BoolVar(&f.data.Unlabeled, "unlabeled", false, unlabeledHelp)
	fl.IntVar(&f.data.Limit, "limit", 0, limitHelp)
	fl.StringVar(&f.layer, "layer", f.layer, "features to write: h, a head layer number, or z")
	fl.IntVar(&f.imageSize, "image-size", 0, "view side in pixels (0: the training size recorded in the model, else the images' side if <= 64, else 224)")
	fl.IntVar(&f.batch, "batch", f.batch, "images per forward pass")
	fl.IntVar(&f.workers, "workers", 0, "data loading goroutines (0: one per CPU)")
	fl.StringVar(&f.out, "out", "", "output prefix: writes OUT.features.npy, OUT.labels.npy, OUT.files.txt")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress bar")
	return c
}

func runEmbed(cmd *cobra.Command, g *globalFlags, f embedFlags) error {
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
	ds, err := f.data.open()
	if err != nil {
		return err
	}
	size, err := viewSide(f.imageSize, l, ds)
	if err != nil {
		return err
	}
	be, err := g.open()
	if err != nil {
		return err
	}
	e, err := newEmbedder(be, l, layer, size, f.batch, f.workers, f.quiet)
	if err != nil {
		return err
	}
	if dir := filepath.Dir(f.out); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	feats, names, err := e.embed("embedding", ds, nil, 0, true)
	if err != nil {
		return err
	}
	labels := make([]int64, feats.Rows)
	for i, y := range feats.Labels {
		labels[i] = int64(y)
	}
	fp, lp, np := f.out+".features.npy", f.out+".labels.npy", f.out+".files.txt"
	if err := npy.WriteFile(fp, func(w io.Writer) error { return npy.WriteFloat32(w, feats.Data, feats.Rows, feats.Dim) }); err != nil {
		return err
	}
	if err := npy.WriteFile(lp, func(w io.Writer) error { return npy.WriteInt64(w, labels, feats.Rows) }); err != nil {
		return err
	}
	if err := npy.WriteFile(np, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		for _, n := range names {
			// One name a line: a newline inside a name would shift the rest.
			bw.WriteString(strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(n))
			bw.WriteByte('\n')
		}
		return bw.Flush()
	}); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "embedded %d images of %dpx (%s, %d features, backend %s): wrote %s, %s, %s\n",
		feats.Rows, size, layerName(layer), feats.Dim, be.Name(), fp, lp, np)
	return nil
}
