package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/simclr-go/simclr/internal/atomicfile"
	"github.com/simclr-go/simclr/selection/study"
)

type benchSelectFlags struct {
	model     modelFlags
	split     splitFlags
	layer     string
	imageSize int
	batch     int
	workers   int
	methods   string
	budgets   string
	seeds     int
	l2        float64
	picksDir  string
	asJSON    bool
	quiet     bool
}

func benchSelectCmd(g *globalFlags) *cobra.Command {
	f := benchSelectFlags{layer: "h", batch: 256, methods: strings.Join(study.Methods, ","), budgets: "10,20,50,100,200", seeds: 3, l2: 1e-2}
	c := &cobra.Command{
		Use:   "select",
		Short: "Compare the ways select chooses images to label, on a labelled dataset",
		Long: `Measure how well the images each selection method picks train a classifier.
The training images of --data are the pool (its labels stand for the person who
would label the picks); the test images are scored. For every method, budget
and seed: the picks are chosen from the pool's features alone (as simclr select
does), a logistic regression (L2 --l2, the same for every method) is fitted to
the picked images' features and labels, and its top-1 on the test images is
reported, with the number of classes the picks cover. "balanced" draws the
same number of images of every class at random: a reference that needs the
labels. Prints a table of the mean, spread and range over the seeds.

--picks-dir DIR writes each trial's picks (METHOD-BUDGET-seedS.txt, image
names, the format finetune --labels-file reads), to fine-tune on them.

--layer: ` + layerHelp + `

` + modelHelp + `

` + datasetHelp,
		Example: `  simclr bench select --checkpoint runs/cifar/checkpoint.safetensors --data cifar10-train.tar.gz --val 5000
  simclr bench select --checkpoint enc.safetensors --data cifar10 --budgets 10,20 --methods typiclust,random --seeds 5 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBenchSelect(cmd, g, f) },
	}
	f.model.register(c.Flags(), "checkpoint", "model file whose features decide (see below)")
	f.split.register(c, "labelled dataset whose training images are the pool")
	fl := c.Flags()
	fl.StringVar(&f.methods, "methods", f.methods, "methods to compare, comma-separated: "+orList(study.Methods))
	fl.StringVar(&f.budgets, "budgets", f.budgets, "numbers of images to pick, comma-separated")
	fl.IntVar(&f.seeds, "seeds", f.seeds, "repetitions of each method and budget, with seeds --seed, --seed+1, ...")
	fl.Float64Var(&f.l2, "l2", f.l2, "L2 penalty of the logistic regression on the picks")
	fl.StringVar(&f.layer, "layer", f.layer, "features to compare and classify: h, a head layer number, or z")
	fl.IntVar(&f.imageSize, "image-size", 0, "view side in pixels (0: the training size recorded in the model, else the images' side if <= 64, else 224)")
	fl.IntVar(&f.batch, "batch", f.batch, "images per forward pass")
	fl.IntVar(&f.workers, "workers", 0, "data loading goroutines (0: one per CPU)")
	fl.StringVar(&f.picksDir, "picks-dir", "", "folder to write each trial's picks to (image names, one per line)")
	fl.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress output")
	return c
}

func (f *benchSelectFlags) validate() error {
	var c checks
	f.model.check(&c, "checkpoint")
	f.split.check(&c)
	c.layer(f.layer)
	c.imageSide("image-size", f.imageSize)
	c.intIn("batch", f.batch, 1, maxBatch)
	c.workers("workers", f.workers)
	c.intIn("seeds", f.seeds, 1, 1000)
	c.floatIn("l2", f.l2, 0, 1e6, "[]")
	if _, err := parseMethods(f.methods); err != nil {
		c.add(err)
	}
	if _, err := parseBudgets(f.budgets); err != nil {
		c.add(err)
	}
	if f.picksDir != "" {
		c.outputDir("picks-dir", f.picksDir, false, []input{{"checkpoint", f.model.checkpoint}}, f.split.datasets()...)
	}
	return c.err()
}

func parseMethods(s string) ([]string, error) {
	var ms []string
	for _, m := range strings.Split(s, ",") {
		m = strings.TrimSpace(m)
		if !slices.Contains(study.Methods, m) {
			return nil, usagef("--methods %q: %q is not a method: want %s", s, m, orList(study.Methods))
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func parseBudgets(s string) ([]int, error) {
	var bs []int
	for _, v := range strings.Split(s, ",") {
		b, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || b < 1 || b > maxCount {
			return nil, usagef("--budgets %q: want comma-separated counts from 1 to %d, e.g. 10,20,50", s, maxCount)
		}
		bs = append(bs, b)
	}
	return bs, nil
}

func runBenchSelect(cmd *cobra.Command, g *globalFlags, f benchSelectFlags) error {
	began := time.Now()
	if err := f.validate(); err != nil {
		return err
	}
	methods, _ := parseMethods(f.methods)
	budgets, _ := parseBudgets(f.budgets)
	layer, err := parseLayer(f.layer)
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
	poolSet, testSet, err := f.split.sets()
	if err != nil {
		return err
	}
	for _, b := range budgets {
		if b > poolSet.Len() {
			return usagef("--budgets %s: %d is more than the pool's %d images", f.budgets, b, poolSet.Len())
		}
	}
	names, err := sampleNames(poolSet)
	if err != nil {
		return err
	}
	size, err := viewSide(f.imageSize, l, poolSet)
	if err != nil {
		return err
	}
	be, err := g.open()
	if err != nil {
		return err
	}
	quiet := f.quiet || f.asJSON
	e, err := newEmbedder(be, l, layer, size, f.batch, f.workers, quiet)
	if err != nil {
		return err
	}
	pool, test, err := e.embedSplit("pool features", poolSet, testSet)
	if err != nil {
		return err
	}
	classes := len(poolSet.Classes())
	seeds := make([]uint64, f.seeds)
	for i := range seeds {
		seeds[i] = f.split.seed + uint64(i)
	}
	if f.picksDir != "" {
		if err := os.MkdirAll(f.picksDir, 0o755); err != nil {
			return err
		}
	}
	var writeErr error
	trials, err := study.Run(be, pool, test, classes, study.Config{Methods: methods, Budgets: budgets, Seeds: seeds, L2: f.l2, Gemm: be.Gemm},
		func(t study.Trial) {
			if !quiet {
				fmt.Fprintf(os.Stderr, "%-9s budget %4d seed %d: top-1 %6.2f%%, %d classes (%.0fs)\n",
					t.Method, t.Budget, t.Seed, 100*t.Top1, t.Classes, time.Since(began).Seconds())
			}
			if f.picksDir != "" && writeErr == nil {
				writeErr = writePicks(filepath.Join(f.picksDir, fmt.Sprintf("%s-%d-seed%d.txt", t.Method, t.Budget, t.Seed)), names, t)
			}
		})
	if err != nil {
		return err
	}
	if writeErr != nil {
		return writeErr
	}
	sum := study.Summarize(trials)
	out := cmd.OutOrStdout()
	if f.asJSON {
		ds := f.split.datasetInfo()
		ds.Classes, ds.Train, ds.Test = classes, poolSet.Len(), testSet.Len()
		metrics := map[string]float64{}
		for _, s := range sum {
			metrics[fmt.Sprintf("top1@%s-%d", s.Method, s.Budget)] = s.Mean
		}
		return evalResult{
			Command: "bench select",
			Model:   modelInfo{Checkpoint: f.model.checkpoint, Layer: layerName(layer)},
			Dataset: ds,
			Metrics: metrics,
			Details: map[string]any{"summary": sum, "trials": trials, "l2": f.l2, "features": pool.Dim},
		}.print(out, began)
	}
	fmt.Fprintf(out, "selection methods on %s: pool %d images, test %d, %d classes; %s (%d features), L2 %g, %d seeds\n\n",
		f.split.data.Data, poolSet.Len(), testSet.Len(), classes, layerName(layer), pool.Dim, f.l2, f.seeds)
	fmt.Fprintln(out, "| method | budget | top-1 mean ± std | range | classes covered |")
	fmt.Fprintln(out, "|---|---|---|---|---|")
	for _, s := range sum {
		fmt.Fprintf(out, "| %s | %d | %.1f ± %.1f | %.1f–%.1f | %.1f |\n", s.Method, s.Budget, 100*s.Mean, 100*s.Std, 100*s.Min, 100*s.Max, s.Classes)
	}
	return nil
}

// writePicks writes a trial's picks as image names, the format of
// finetune --labels-file.
func writePicks(path string, names []string, t study.Trial) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %d images chosen by %s, seed %d\n", t.Budget, t.Method, t.Seed)
	for _, i := range t.Picks {
		b.WriteString(names[i])
		b.WriteByte('\n')
	}
	return atomicfile.Write(path, b.Bytes(), 0o644)
}
