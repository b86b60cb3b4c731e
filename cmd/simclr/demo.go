package main

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/simclr-go/simclr/augment"
	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/data"
	"github.com/simclr-go/simclr/eval"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/optim"
	"github.com/simclr-go/simclr/report"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/train"
)

// demoFlags are the demo's few settings.
type demoFlags struct {
	out     string
	dir     string
	budget  time.Duration
	width   int
	batch   int
	seed    uint64
	workers int
	limit   int
	// The official code's choices (docs/fidelity.md), as pretrain's flags.
	zeroInitRes                    bool
	headStyle, init, lossReduction string
}

func demoCmd(g *globalFlags) *cobra.Command {
	// The demo keeps the plain choices its SGD recipe was tuned and
	// measured with (BENCHMARKS.md): under SGD the loss sum would double
	// every step.
	f := demoFlags{out: "runs/demo", budget: 10 * time.Minute, width: 16, batch: 256,
		zeroInitRes: false, headStyle: "plain", init: "torchvision", lossReduction: train.LossMean}
	c := &cobra.Command{
		Use:   "demo",
		Short: "Pretrain on Fashion-MNIST, compare with a random encoder, write a report",
		Long: `The main job in one command: pretrain a CIFAR-stem ResNet-18 with SimCLR on
Fashion-MNIST's 60,000 training images (labels unused; --limit takes fewer) for
--budget, a deadline for the whole pretraining, then measure the encoder with a
linear probe and a kNN probe on the 10,000 test images, beside the same
network left at its random initialisation. The report states the counts used.
Writes OUT/run.yaml (every setting, the datasets' identity),
OUT/index.html (table, plots of loss, learning rate and kNN accuracy per
epoch, augmented views, nearest neighbours) and the checkpoint.

Needs Debian's dataset-fashion-mnist (make demo installs it).`,
		Args: cobra.NoArgs,
		RunE: interruptible(func(cmd *cobra.Command, _ []string) error { return runDemo(cmd, g, f) }),
	}
	fl := c.Flags()
	fl.StringVar(&f.out, "out", f.out, "run directory (replaced)")
	fl.StringVar(&f.dir, "fashion-dir", "", "Fashion-MNIST IDX folder (default "+data.FashionMNISTDir+")")
	fl.DurationVar(&f.budget, "budget", f.budget, "pretraining time")
	fl.IntVar(&f.width, "width", f.width, "ResNet-18 width")
	fl.IntVar(&f.batch, "batch", f.batch, "images per step")
	fl.Uint64Var(&f.seed, "seed", 0, "random seed")
	fl.IntVar(&f.workers, "workers", 0, "data loading goroutines (0: one per CPU)")
	fl.IntVar(&f.limit, "limit", 0, "use only this many training and test images, picked at random (0: all), for a quick look")
	fl.BoolVar(&f.zeroInitRes, "zero-init-residual", f.zeroInitRes, "start each residual block's last batch-norm scale at 0 (as simclr pretrain)")
	fl.StringVar(&f.headStyle, "head-style", f.headStyle, "projection head: plain or official (as simclr pretrain)")
	fl.StringVar(&f.init, "init", f.init, "initialisation: torchvision or official (as simclr pretrain)")
	fl.StringVar(&f.lossReduction, "loss-reduction", f.lossReduction, "NT-Xent over the views: mean or sum (as simclr pretrain)")
	return c
}

// demoSize is the side the demo trains at: Fashion-MNIST's own.
const demoSize = 28

func runDemo(cmd *cobra.Command, g *globalFlags, f demoFlags) error {
	start := time.Now()
	out, ctx := cmd.OutOrStdout(), cmd.Context()
	if err := f.validate(); err != nil {
		return err
	}
	be, err := g.open()
	if err != nil {
		return err
	}
	workers := f.workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	var trainSet, testSet data.Dataset
	trainSet, err = data.FashionMNIST(f.dir, "train")
	if err != nil {
		return fmt.Errorf("%w (install it with: sudo apt-get install dataset-fashion-mnist)", err)
	}
	testSet, err = data.FashionMNIST(f.dir, "test")
	if err != nil {
		return err
	}
	if f.limit < 0 {
		return fmt.Errorf("--limit %d: want a positive count, or 0 for all images", f.limit)
	}
	if f.limit > 0 {
		if trainSet, err = data.RandomSubset(trainSet, f.limit, 0); err != nil {
			return err
		}
		if testSet, err = data.RandomSubset(testSet, f.limit, 0); err != nil {
			return err
		}
	}
	if err := clearDemoDir(f.out); err != nil {
		return err
	}
	if err := os.RemoveAll(f.out); err != nil {
		return err
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return err
	}
	fmt.Fprintf(out, "simclr demo: backend %s, %d threads; Fashion-MNIST %d train / %d test images; budget %v\n",
		be.Name(), be.Threads(), trainSet.Len(), testSet.Len(), f.budget)
	if err := writeRunFile(f.out, cmd, settingsOf(cmd, nil),
		runContext{Backend: be.Name(), Threads: be.Threads(), Dataset: []datasetIdentity{
			identify("pretraining and probe training", "fashion-mnist", "train", f.limit, trainSet),
			identify("probe test", "fashion-mnist", "test", f.limit, testSet)}}); err != nil {
		return err
	}
	// The budget is a deadline for everything pretraining does: timing
	// steps, the kNN curve's probes and the steps themselves.
	pretrainBegan := time.Now()
	deadline := pretrainBegan.Add(f.budget)

	acfg := augment.CIFARDefaults(demoSize)
	// Crops of at least half the image, SGD and weight decay 5e-4: the
	// paper's LARS recipe and smaller crops stay level with a random
	// encoder on Fashion-MNIST at short budgets (BENCHMARKS.md).
	acfg.Scale[0] = 0.5
	pipe, err := augment.NewPipeline(acfg)
	if err != nil {
		return err
	}
	if err := writeViewGrid(filepath.Join(f.out, "views.png"), trainSet, pipe, f.seed); err != nil {
		return err
	}
	views, err := train.NewAugmentedViews(trainSet, pipe, train.ViewOptions{Batch: f.batch, Seed: f.seed, Workers: workers})
	if err != nil {
		return err
	}
	defer views.Close()
	cfg := train.Config{
		Model: simclr.ModelConfig{
			Encoder:    resnet.Config{Depth: 18, Width: f.width, CIFARStem: true, ZeroInitResidual: f.zeroInitRes},
			ProjHidden: []int{8 * f.width}, ProjOut: 64,
		},
		Batch: f.batch, ImageSize: demoSize, Steps: 1, Optimizer: "sgd", BaseLR: 0.5, LRScaling: optim.Linear,
		WeightDecay: 5e-4, Momentum: 0.9, Temperature: 0.5, Seed: f.seed,
	}
	if cfg.Model.HeadStyle, err = simclr.ParseHeadStyle(f.headStyle); err != nil {
		return usagef("--head-style: %w", err)
	}
	if cfg.Model.Init, err = nn.ParseInit(f.init); err != nil {
		return usagef("--init: %w", err)
	}
	if f.lossReduction != train.LossMean {
		cfg.LossReduction = f.lossReduction
	}
	// The schedule needs the number of steps: time a few steps and a probe
	// on this machine. The run stops at the deadline whatever this says.
	stepTime, err := timeSteps(be, cfg, views)
	if err != nil {
		return err
	}

	p, err := train.NewPretrainer(cfg, be, views)
	if err != nil {
		return err
	}
	random, err := simclr.NewModel(cfg.Model, f.seed) // the same initial weights, never trained
	if err != nil {
		return err
	}
	// Per-epoch kNN on subsets keeps the curve cheap.
	bankSub, _ := data.Subset(trainSet, spread(trainSet.Len(), 10000))
	querySub, _ := data.Subset(testSet, spread(testSet.Len(), 2000))
	evalTape := autograd.NewTape(be)
	var curve struct{ steps, loss, lr, knnEpoch, knn []float64 }
	spe := views.StepsPerEpoch()
	probe := func(ctx context.Context, step int) (map[string]float64, error) {
		acc, err := knnAccuracy(ctx, evalTape, p.Model.Encoder.Forward, bankSub, querySub, demoSize, workers, eval.KNNOptions{K: 200, Temperature: 0.1, Classes: 10})
		if err != nil {
			return nil, err
		}
		curve.knnEpoch = append(curve.knnEpoch, float64(step)/float64(spe))
		curve.knn = append(curve.knn, 100*acc)
		return map[string]float64{"knn_top1_subset": acc}, nil
	}
	probeCtx, cancel := context.WithDeadline(ctx, deadline)
	probeStart := time.Now()
	_, err = probe(probeCtx, 0) // the random initialisation
	outOfTime := probeCtx.Err() != nil
	cancel()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if err != nil && !outOfTime {
		return err
	}
	probeTime := time.Since(probeStart).Seconds()
	evalEvery := max(1, spe/2)
	steps := time.Until(deadline).Seconds() / (stepTime + probeTime/float64(evalEvery))
	cfg.Steps = max(10, int(steps))
	cfg.Warmup = cfg.Steps / 10
	if p, err = train.NewPretrainer(cfg, be, views); err != nil {
		return err
	}
	fmt.Fprintf(out, "one step takes %.2fs here, a kNN probe %.1fs: %d steps (%.1f epochs) fit the budget; pretraining stops at the deadline\n",
		stepTime, probeTime, cfg.Steps, float64(cfg.Steps)/float64(spe))
	bar := newBar(cfg.Steps, "pretraining")
	events := followRun(true, f.out, 0, os.Stderr, true) // TensorBoard events; the demo draws its own page
	defer events.close()
	pretrainStart := time.Now()
	err = train.Run(ctx, p, train.RunOptions{
		Dir: f.out, EvalEvery: min(evalEvery, cfg.Steps), Eval: probe, Deadline: deadline,
		Progress: func(st train.StepStats) {
			curve.steps = append(curve.steps, st.Epoch)
			curve.loss = append(curve.loss, st.Loss)
			curve.lr = append(curve.lr, st.LR)
			events.step()
			bar.Describe(fmt.Sprintf("pretraining: loss %.3f, %.0f img/s", st.Loss, st.ImagesPerS))
			bar.Set(st.Step + 1)
		},
	})
	bar.Finish()
	if err != nil {
		return err
	}
	pretrainTime := time.Since(pretrainBegan)
	fmt.Fprintf(out, "pretrained %d of %d steps in %s (budget %s; the steps and probes after timing %s; loading the data before %s)\n", p.Step, cfg.Steps,
		pretrainTime.Round(100*time.Millisecond), f.budget, time.Since(pretrainStart).Round(100*time.Millisecond), pretrainBegan.Sub(start).Round(100*time.Millisecond))

	fmt.Fprintln(out, "evaluating the pretrained and the random encoder (kNN and linear probes on all images)")
	type result struct{ knn, lin1, lin5 float64 }
	results := map[string]result{}
	var bankP, queryP *eval.Features
	for _, m := range []struct {
		name  string
		model *simclr.Model
	}{{"SimCLR", p.Model}, {"random", random}} {
		tape := autograd.NewTape(be)
		bank, err := eval.Embed(tape, m.model.Encoder.Forward, withContext(ctx, trainSet), demoSize, 256, workers)
		if err != nil {
			return interruptedEvaluation(ctx, err, "", nil)
		}
		query, err := eval.Embed(tape, m.model.Encoder.Forward, withContext(ctx, testSet), demoSize, 256, workers)
		if err != nil {
			return interruptedEvaluation(ctx, err, "", nil)
		}
		k, err := eval.KNN(be, bank, query, eval.DefaultKNN(10))
		if err != nil {
			return err
		}
		lin, err := linearProbe(be, bank, query, 10, f.seed)
		if err != nil {
			return err
		}
		results[m.name] = result{k.Top1, lin.Top1, lin.TopK}
		if m.name == "SimCLR" {
			bankP, queryP = bank, query
		}
	}
	total := time.Since(start)

	table := [][]string{{"encoder", "linear top-1", "linear top-5", "kNN top-1 (k=200)"}}
	for _, name := range []string{"SimCLR", "random"} {
		r := results[name]
		table = append(table, []string{name + " ResNet-18", pct(r.lin1), pct(r.lin5), pct(r.knn)})
	}
	fmt.Fprintln(out)
	printTable(out, table)
	fmt.Fprintf(out, "\npretraining %s (%d steps, %.1f epochs), everything %s\n", pretrainTime.Round(time.Second),
		p.Step, float64(p.Step)/float64(spe), total.Round(time.Second))

	// The report.
	if err := report.LinePlot(filepath.Join(f.out, "loss.png"), "NT-Xent loss", "epoch", "loss",
		report.Series{X: curve.steps, Y: curve.loss}); err != nil {
		return err
	}
	if err := report.LinePlot(filepath.Join(f.out, "lr.png"), "learning rate (warmup + cosine)", "epoch", "lr",
		report.Series{X: curve.steps, Y: curve.lr}); err != nil {
		return err
	}
	if err := report.LinePlot(filepath.Join(f.out, "knn.png"), fmt.Sprintf("kNN top-1 during pretraining (%s bank, %s test images)", count(bankSub.Len()), count(querySub.Len())), "epoch", "%",
		report.Series{X: curve.knnEpoch, Y: curve.knn}); err != nil {
		return err
	}
	if err := neighbourGrid(filepath.Join(f.out, "neighbours.png"), be, bankP, queryP, trainSet, testSet); err != nil {
		return err
	}
	html, err := report.WriteHTML(f.out, report.Page{
		Title: "SimCLR on Fashion-MNIST",
		Summary: fmt.Sprintf("ResNet-18 (width %d, CIFAR stem) pretrained with SimCLR for %s on %s (%d threads): %d steps of %d images, %.1f epochs over %s training images, labels unused. Probes use the %s training images as the bank / training set and the %s test images for accuracy.",
			f.width, pretrainTime.Round(time.Second), be.Name(), be.Threads(), p.Step, f.batch, float64(p.Step)/float64(spe),
			count(trainSet.Len()), count(trainSet.Len()), count(testSet.Len())),
		Table: table,
		Figures: []report.Figure{
			{File: "loss.png", Caption: "NT-Xent loss per step"},
			{File: "knn.png", Caption: fmt.Sprintf("kNN accuracy every half epoch, from the random initialisation on (%s training images as the bank, %s test images)", count(bankSub.Len()), count(querySub.Len()))},
			{File: "lr.png", Caption: "learning rate"},
			{File: "views.png", Caption: "augmented views: each row is one training image (first column) and eight of its views"},
			{File: "neighbours.png", Caption: "nearest training images (by cosine similarity of SimCLR features) of test images (framed)"},
		},
		Notes: []string{fmt.Sprintf("total time %s; checkpoint %s", total.Round(time.Second), filepath.Join(f.out, train.CheckpointName))},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "report: %s\n", html)
	return nil
}

// timeSteps runs three steps of a throw-away copy of the run and returns
// the seconds per step of the last two.
func timeSteps(be backend.Backend, cfg train.Config, views train.ViewSource) (float64, error) {
	cfg.Steps = 3
	p, err := train.NewPretrainer(cfg, be, views)
	if err != nil {
		return 0, err
	}
	if _, err := p.TrainStep(); err != nil {
		return 0, err
	}
	t0 := time.Now()
	for !p.Done() {
		if _, err := p.TrainStep(); err != nil {
			return 0, err
		}
	}
	return time.Since(t0).Seconds() / 2, nil
}

// spread picks n indices evenly over [0, total).
func spread(total, n int) []int {
	n = min(n, total)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i * total / n
	}
	return idx
}

func pct(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) + "%" }

// count writes n with thousands separators: 60,000.
func count(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func printTable(w io.Writer, rows [][]string) {
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	for _, r := range rows {
		for i, c := range r {
			fmt.Fprintf(w, "%-*s  ", widths[i], c)
		}
		fmt.Fprintln(w)
	}
}

// neighbourGrid shows, for eight test images, their eight most similar
// training images.
func neighbourGrid(path string, be backend.Backend, bank, query *eval.Features, trainSet, testSet data.Dataset) error {
	const queries, k = 8, 8
	var rows [][]image.Image
	for qi := 0; qi < queries; qi++ {
		q := qi * query.Rows / queries
		one := &eval.Features{Rows: 1, Dim: query.Dim, Data: query.Data[q*query.Dim : (q+1)*query.Dim], Labels: query.Labels[q : q+1]}
		nn, err := eval.Nearest(be, bank, one, k)
		if err != nil {
			return err
		}
		row := []image.Image{}
		s, err := testSet.Get(q)
		if err != nil {
			return err
		}
		row = append(row, augment.FromHWC(s.RGB, s.W, s.H, nil).NRGBA())
		for _, j := range nn[0] {
			s, err := trainSet.Get(j)
			if err != nil {
				return err
			}
			row = append(row, augment.FromHWC(s.RGB, s.W, s.H, nil).NRGBA())
		}
		rows = append(rows, row)
	}
	return report.Grid(path, rows, 2)
}

// linearProbe is the linear protocol on cached features: logistic
// regression with its L2 penalty chosen on a held-out tenth.
func linearProbe(be backend.Backend, trainF, testF *eval.Features, classes int, seed uint64) (*eval.LinearResult, error) {
	return eval.LinearEval(be, eval.LinearData{Train: trainF, Test: testF, Classes: classes}, eval.LinearOptions{Seed: seed})
}

// clearDemoDir makes sure dir, which the demo replaces, is empty, missing or
// an earlier demo's output, so that a mistyped --out cannot delete
// unrelated files.
func clearDemoDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(entries) == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "index.html")); err != nil {
		return fmt.Errorf("--out %s exists and holds no earlier demo report (index.html): choose another folder", dir)
	}
	return nil
}
