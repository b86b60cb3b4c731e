package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/simclr-go/simclr/eval"
	"github.com/simclr-go/simclr/npy"
	"github.com/simclr-go/simclr/simclr"
)

type predictFlags struct {
	model     modelFlags
	data      dataFlags
	topK      int
	imageSize int
	batch     int
	workers   int
	out       string
	asJSON    bool
	quiet     bool
}

func predictCmd(g *globalFlags) *cobra.Command {
	f := predictFlags{topK: 5, batch: 256}
	c := &cobra.Command{
		Use:   "predict",
		Short: "Classify images with a classifier: the top-k classes and probabilities of each",
		Long: `Run a classifier (written by simclr finetune --out or simclr distill --out, or a
torchvision ResNet state dict with its fc layer) on every image of a dataset,
in eval mode on the centre view of each image (the central square, resized to
--image-size), as embed, knn and linear-eval see them, and print each image's
--top-k most probable classes (softmax over all classes), best first.

Output, on stdout or in --out (written whole or not at all):
  CSV (default)  header file,class1,prob1,...,classK,probK, then one row per
                 image; classes by name when the classifier holds the names
                 (its training data had them), else by number
  --json         JSON lines: one object per image,
                 {"file": ..., "label": ..., "top": [{"class": ..., "prob": ...}, ...]}
                 ("label" only for labelled images)

Progress and, at the end, the images per second go to stderr. When the images
are labelled (class sub-folders) and their classes are the classifier's, the
top-1 and top-5 accuracy are printed there too.

` + datasetHelp,
		Example: `  simclr predict --model runs/v2/teacher.safetensors --data photos/ > predictions.csv
  simclr predict --model student.safetensors --data cifar10 --split test --top-k 3 --json --out preds.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPredict(cmd, g, f) },
	}
	fl := c.Flags()
	f.model.register(fl, "model", "classifier file (see above)")
	fl.StringVar(&f.data.Data, "data", "", "images to classify (see below)")
	fl.StringVar(&f.data.Split, "split", "train", "dataset split: train or test (STL-10 also unlabeled, train+unlabeled)")
	fl.BoolVar(&f.data.SkipBad, "skip-bad", false, "skip unreadable images (counted) instead of stopping")
	fl.BoolVar(&f.data.Unlabeled, "unlabeled", false, unlabeledHelp)
	fl.IntVar(&f.data.Limit, "limit", 0, limitHelp)
	fl.IntVar(&f.topK, "top-k", f.topK, "classes per image (at most the classifier's classes)")
	fl.IntVar(&f.imageSize, "image-size", 0, "view side in pixels (0: the training size recorded in the model, else the images' side if <= 64, else 224)")
	fl.IntVar(&f.batch, "batch", f.batch, "images per forward pass")
	fl.IntVar(&f.workers, "workers", 0, "data loading goroutines (0: one per CPU)")
	fl.StringVar(&f.out, "out", "", "write the predictions to this file instead of stdout")
	fl.BoolVar(&f.asJSON, "json", false, "JSON lines instead of CSV")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress bar")
	return c
}

func runPredict(cmd *cobra.Command, g *globalFlags, f predictFlags) error {
	if err := f.validate(); err != nil {
		return err
	}
	l, err := f.model.load("model")
	if err != nil {
		return err
	}
	logits, err := l.Logits()
	if err != nil {
		return fmt.Errorf("%s: %w", f.model.checkpoint, err)
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
	e, err := newEmbedder(be, l, 0, size, f.batch, f.workers, f.quiet)
	if err != nil {
		return err
	}
	e.enc = logits // the embedder's batching and progress, the classifier's outputs
	began := time.Now()
	scores, names, err := e.embed("predicting", ds, nil, 0, true)
	if err != nil {
		return err
	}
	elapsed := time.Since(began)
	preds := eval.Predict(scores, f.topK)

	classNames := ds.Classes() // nil for unlabelled images
	write := func(w io.Writer) error { return writeCSV(w, l, preds, names) }
	if f.asJSON {
		write = func(w io.Writer) error { return writeJSONLines(w, l, preds, names, scores.Labels, classNames) }
	}
	if f.out != "" {
		err = npy.WriteFile(f.out, write)
	} else {
		err = write(cmd.OutOrStdout())
	}
	if err != nil {
		return err
	}
	stderr := cmd.ErrOrStderr()
	fmt.Fprintf(stderr, "predicted %d images of %dpx in %.1fs: %.1f images/s (backend %s)\n",
		len(preds), size, elapsed.Seconds(), float64(len(preds))/elapsed.Seconds(), be.Name())
	if classNames != nil {
		reportAccuracy(stderr, l, scores, classNames)
	}
	return nil
}

// reportAccuracy prints top-1 (and, beyond five classes, top-5) accuracy
// when the dataset's classes are the classifier's: by name, or by position
// when the file holds no names and the counts agree.
func reportAccuracy(w io.Writer, l *simclr.Loaded, scores *eval.Features, dataClasses []string) {
	var to []int
	switch {
	case l.ClassNames != nil:
		var err error
		if to, err = eval.MatchClasses(dataClasses, l.ClassNames); err != nil {
			fmt.Fprintf(w, "no accuracy: %v\n", err)
			return
		}
	case len(dataClasses) == l.Classes():
		fmt.Fprintln(w, "note: the classifier holds no class names; the data's classes are taken in order")
		to = make([]int, len(dataClasses))
		for i := range to {
			to[i] = i
		}
	default:
		fmt.Fprintf(w, "no accuracy: the data has %d classes, the classifier %d (and no class names)\n", len(dataClasses), l.Classes())
		return
	}
	mapped := make([]int, len(scores.Labels))
	for i, y := range scores.Labels {
		mapped[i] = -1
		if y >= 0 {
			mapped[i] = to[y]
		}
	}
	preds := eval.Predict(scores, 5) // whatever --top-k printed
	top1 := eval.TopKAccuracy(preds, mapped, 1)
	if math.IsNaN(top1) {
		return
	}
	msg := fmt.Sprintf("top-1 %.2f%%", 100*top1)
	if l.Classes() > 5 {
		msg += fmt.Sprintf(", top-5 %.2f%%", 100*eval.TopKAccuracy(preds, mapped, 5))
	}
	fmt.Fprintf(w, "%s on the %d labelled images\n", msg, countLabelled(mapped))
}

func countLabelled(labels []int) int {
	n := 0
	for _, y := range labels {
		if y >= 0 {
			n++
		}
	}
	return n
}

func writeCSV(w io.Writer, l *simclr.Loaded, preds []eval.Prediction, names []string) error {
	cw := csv.NewWriter(w)
	k := 0
	if len(preds) > 0 {
		k = len(preds[0].Classes)
	}
	row := []string{"file"}
	for i := 1; i <= k; i++ {
		row = append(row, "class"+strconv.Itoa(i), "prob"+strconv.Itoa(i))
	}
	if err := cw.Write(row); err != nil {
		return err
	}
	for i, p := range preds {
		row = append(row[:0], names[i])
		for j, c := range p.Classes {
			row = append(row, l.ClassName(c), strconv.FormatFloat(p.Probs[j], 'g', 6, 64))
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// jsonPrediction is one line of predict --json.
type jsonPrediction struct {
	File  string      `json:"file"`
	Label *string     `json:"label,omitempty"`
	Top   []jsonClass `json:"top"`
}

type jsonClass struct {
	Class string  `json:"class"`
	Prob  float64 `json:"prob"`
}

func writeJSONLines(w io.Writer, l *simclr.Loaded, preds []eval.Prediction, names []string, labels []int, dataClasses []string) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i, p := range preds {
		line := jsonPrediction{File: names[i], Top: make([]jsonClass, len(p.Classes))}
		if dataClasses != nil && labels[i] >= 0 {
			line.Label = &dataClasses[labels[i]]
		}
		for j, c := range p.Classes {
			line.Top[j] = jsonClass{l.ClassName(c), p.Probs[j]}
		}
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}
