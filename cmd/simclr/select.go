package main

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/simclr-go/simclr/data"
	"github.com/simclr-go/simclr/internal/atomicfile"
	"github.com/simclr-go/simclr/report"
	"github.com/simclr-go/simclr/selection"
)

type selectFlags struct {
	model     modelFlags
	data      dataFlags
	layer     string
	imageSize int
	batch     int
	workers   int
	budget    int
	method    string
	exclude   string
	seed      uint64
	out       string
	quiet     bool
}

func selectCmd(g *globalFlags) *cobra.Command {
	f := selectFlags{layer: "h", batch: 256, method: string(selection.Typiclust)}
	c := &cobra.Command{
		Use:   "select",
		Short: "Choose which images of a pool to label first, from a trained encoder's features",
		Long: `Choose --budget images of a dataset for a person to label, from a trained
encoder's features alone (labels the dataset may have are never looked at).

Methods:
  typiclust  k-means into as many clusters as labelled plus chosen images
             (at most 500); from the largest clusters no labelled image
             covers, the most typical image: the one of least mean distance
             to its 20 nearest neighbours in the cluster (Hacohen et al.,
             ICML 2022). Best at budgets of about one image per class.
  kmeans     k-means into --budget clusters; the image nearest each centroid
  kcenter    greedy k-center: each image the farthest from all chosen or
             labelled so far (diverse, but fond of outliers)
  random     uniformly at random, the baseline

Writes OUT (one image name per line, the format finetune --labels-file
reads: label those images, then train on them), and next to it OUT's name
with .png (a contact sheet of the picks, in order) and .html (a page
listing them with the size of the cluster each stands for).
--exclude names images already labelled (a file in the same format): they
are never chosen, and typiclust counts their clusters as covered, so that
rounds of labelling add to one another.

--layer: ` + layerHelp + `

` + modelHelp + `

` + datasetHelp,
		Example: `  simclr select --checkpoint runs/photos/checkpoint.safetensors --data photos/ --budget 200 --out to-label.txt
  simclr select --checkpoint enc.safetensors --data photos/ --budget 100 --exclude to-label.txt --out round2.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSelect(cmd, g, f) },
	}
	fl := c.Flags()
	f.model.register(fl, "checkpoint", "model file whose features decide (see below)")
	fl.StringVar(&f.data.Data, "data", "", "the pool of images to choose from (see below)")
	fl.StringVar(&f.data.Split, "split", "train", "dataset split: train or test (STL-10 also unlabeled, train+unlabeled)")
	fl.BoolVar(&f.data.SkipBad, "skip-bad", false, "skip unreadable images (counted) instead of stopping")
	fl.BoolVar(&f.data.Unlabeled, "unlabeled", false, unlabeledHelp)
	fl.IntVar(&f.data.Limit, "limit", 0, limitHelp)
	fl.IntVar(&f.budget, "budget", 0, "how many images to choose")
	fl.StringVar(&f.method, "method", f.method, "how to choose: "+orList(selection.Methods))
	fl.StringVar(&f.exclude, "exclude", "", "file naming images already labelled (names or indices, one per line): never chosen")
	fl.Uint64Var(&f.seed, "seed", 0, "random seed (k-means, random picks)")
	fl.StringVar(&f.layer, "layer", f.layer, "features to compare: h, a head layer number, or z")
	fl.IntVar(&f.imageSize, "image-size", 0, "view side in pixels (0: the training size recorded in the model, else the images' side if <= 64, else 224)")
	fl.IntVar(&f.batch, "batch", f.batch, "images per forward pass")
	fl.IntVar(&f.workers, "workers", 0, "data loading goroutines (0: one per CPU)")
	fl.StringVar(&f.out, "out", "", "file to write the chosen images' names to, e.g. to-label.txt")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress bar")
	return c
}

// outputs are the files select writes: the list, the contact sheet and
// the page.
func (f *selectFlags) outputs() (list, sheet, page string) {
	base := strings.TrimSuffix(f.out, filepath.Ext(f.out))
	return f.out, base + ".png", base + ".html"
}

func (f *selectFlags) validate() error {
	var c checks
	f.model.check(&c, "checkpoint")
	c.required("data", f.data.Data, "a dataset ("+datasetHelp+")")
	c.required("out", f.out, "the file to write the names to, e.g. --out to-label.txt")
	c.intIn("budget", f.budget, 1, maxCount)
	c.oneOf("method", f.method, selection.Methods...)
	c.autoOrIn("limit", f.data.Limit, 1, maxCount, "all images")
	c.layer(f.layer)
	c.imageSide("image-size", f.imageSize)
	c.intIn("batch", f.batch, 1, maxBatch)
	c.workers("workers", f.workers)
	if f.out != "" {
		inputs := []input{{"checkpoint", f.model.checkpoint}, {"exclude", f.exclude}}
		list, sheet, page := f.outputs()
		if list == sheet || list == page {
			c.failf("--out %s: the contact sheet and the page take its name with .png and .html: give the list another extension, e.g. .txt", f.out)
		}
		for _, o := range []string{list, sheet, page} {
			c.outputFile("out", o, inputs, datasetInput("data", f.data.Data))
		}
	}
	return c.err()
}

func runSelect(cmd *cobra.Command, g *globalFlags, f selectFlags) error {
	if err := f.validate(); err != nil {
		return err
	}
	layer, err := parseLayer(f.layer)
	if err != nil {
		return err
	}
	ds, err := f.data.open()
	if err != nil {
		return err
	}
	names, err := sampleNames(ds)
	if err != nil {
		return err
	}
	var exclude []int
	if f.exclude != "" {
		if exclude, err = readExclude(f.exclude, names); err != nil {
			return err
		}
	}
	if free := len(names) - len(exclude); f.budget > free {
		return usagef("--budget %d: the pool holds %d images, %d of them already labelled (--exclude): want at most %d", f.budget, len(names), len(exclude), free)
	}
	l, err := f.model.load("checkpoint")
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
	// The features' labels are dropped here: the choice must not see them.
	feats, _, err := e.embed("embedding", ds, nil, 0, false)
	if err != nil {
		return err
	}
	method := selection.Method(f.method)
	if !f.quiet {
		fmt.Fprintf(cmd.ErrOrStderr(), "choosing %d of %d images by %s\n", f.budget, len(names)-len(exclude), method)
	}
	picks, err := selection.Select(method, feats.Data, feats.Dim, selection.Options{Budget: f.budget, Seed: f.seed, Exclude: exclude, Gemm: be.Gemm})
	if err != nil {
		return err
	}
	list, sheetPath, pagePath := f.outputs()
	if dir := filepath.Dir(list); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %d images to label, chosen by %s from %s (%d images, %d already labelled), seed %d\n",
		len(picks), method, f.data.Data, len(names), len(exclude), f.seed)
	escape := strings.NewReplacer("\n", `\n`, "\r", `\r`)
	for _, p := range picks {
		b.WriteString(escape.Replace(names[p.Index]))
		b.WriteByte('\n')
	}
	if err := atomicfile.Write(list, b.Bytes(), 0o644); err != nil {
		return err
	}
	if err := writeContactSheet(sheetPath, ds, picks); err != nil {
		return err
	}
	if err := writeSelectPage(pagePath, sheetPath, names, picks, f, len(exclude)); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "chose %d of %d images by %s (%s, %d features, backend %s): wrote %s, %s, %s\n",
		len(picks), len(names), method, layerName(layer), feats.Dim, be.Name(), list, sheetPath, pagePath)
	return nil
}

// sampleNames lists the names of ds's samples, in order.
func sampleNames(ds data.Dataset) ([]string, error) {
	names := make([]string, ds.Len())
	namer, fast := ds.(interface{ Name(int) string })
	for i := range names {
		if fast {
			names[i] = namer.Name(i)
			continue
		}
		s, err := ds.Get(i)
		if err != nil {
			return nil, err
		}
		names[i] = s.Name
	}
	return names, nil
}

// readExclude reads the images already labelled: a file in the format of
// --labels-file (indices or sample names, one per line; blank lines and
// lines starting with # skipped).
func readExclude(path string, names []string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--exclude: %w", err)
	}
	var lines []string
	var lineNo []int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			lines, lineNo = append(lines, l), append(lineNo, n)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--exclude %s: %w", path, err)
	}
	idx := make([]int, 0, len(lines))
	for _, l := range lines {
		i, err := strconv.Atoi(l)
		if err != nil {
			idx = idx[:0]
			break
		}
		if i < 0 || i >= len(names) {
			return nil, fmt.Errorf("--exclude %s: index %d outside the pool's %d images", path, i, len(names))
		}
		idx = append(idx, i)
	}
	if len(idx) == len(lines) {
		return uniqueRows(idx), nil
	}
	byName := make(map[string]int, len(names))
	for i, n := range names {
		byName[n] = i
	}
	for k, l := range lines {
		i, ok := byName[l]
		if !ok {
			return nil, fmt.Errorf("--exclude %s line %d: no image named %q in the pool", path, lineNo[k], l)
		}
		idx = append(idx, i)
	}
	return uniqueRows(idx), nil
}

func uniqueRows(idx []int) []int {
	seen := make(map[int]bool, len(idx))
	out := idx[:0]
	for _, i := range idx {
		if !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	return out
}

// thumbSide is the side of a contact sheet's thumbnails in pixels;
// sheetMax bounds the thumbnails of one sheet, so that a large budget
// still gives an image a browser shows.
const (
	thumbSide = 64
	sheetMax  = 500
)

// writeContactSheet writes the picks' thumbnails (their central squares),
// ten a row, in order, as one PNG: the first sheetMax picks.
func writeContactSheet(path string, ds data.Dataset, picks []selection.Pick) error {
	const cols, gap = 10, 4
	picks = picks[:min(len(picks), sheetMax)]
	rows := (len(picks) + cols - 1) / cols
	w := min(len(picks), cols)*(thumbSide+gap) + gap
	sheet := image.NewNRGBA(image.Rect(0, 0, w, rows*(thumbSide+gap)+gap))
	draw.Draw(sheet, sheet.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	for k, p := range picks {
		s, err := ds.Get(p.Index)
		if err != nil {
			return fmt.Errorf("contact sheet: %w", err)
		}
		x0, y0 := gap+(k%cols)*(thumbSide+gap), gap+(k/cols)*(thumbSide+gap)
		side := min(s.W, s.H)
		cx, cy := (s.W-side)/2, (s.H-side)/2
		for y := 0; y < thumbSide; y++ {
			for x := 0; x < thumbSide; x++ {
				o := ((cy+y*side/thumbSide)*s.W + cx + x*side/thumbSide) * 3
				sheet.SetNRGBA(x0+x, y0+y, color.NRGBA{s.RGB[o], s.RGB[o+1], s.RGB[o+2], 255})
			}
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, sheet); err != nil {
		return fmt.Errorf("contact sheet %s: %w", path, err)
	}
	return atomicfile.Write(path, b.Bytes(), 0o644)
}

// writeSelectPage writes the HTML page of the picks.
func writeSelectPage(path, sheet string, names []string, picks []selection.Pick, f selectFlags, excluded int) error {
	table := [][]string{{"#", "image", "cluster", "images in cluster"}}
	for k, p := range picks {
		table = append(table, []string{strconv.Itoa(k + 1), names[p.Index], strconv.Itoa(p.Cluster), strconv.Itoa(p.ClusterSize)})
	}
	clusterNote := "the k-means cluster each image was chosen from"
	if m := selection.Method(f.method); m == selection.KCenter || m == selection.Random {
		clusterNote = "the images nearer to each pick than to any other"
	}
	return report.WriteHTMLFile(path, report.Page{
		Title: fmt.Sprintf("%d images to label", len(picks)),
		Summary: fmt.Sprintf("Chosen by %s from the %d images of %s (%d already labelled), seed %d. Cluster: %s.",
			f.method, len(names), f.data.Data, excluded, f.seed, clusterNote),
		Figures: []report.Figure{{File: filepath.Base(sheet), Caption: sheetCaption(len(picks))}},
		Table:   table,
		Settings: [][]string{
			{"checkpoint", f.model.checkpoint}, {"layer", f.layer}, {"budget", strconv.Itoa(f.budget)},
			{"exclude", f.exclude}, {"list", filepath.Base(f.out)},
		},
	})
}

func sheetCaption(picks int) string {
	if picks > sheetMax {
		return fmt.Sprintf("The first %d of the %d chosen images in order, ten a row.", sheetMax, picks)
	}
	return "The chosen images in order, ten a row."
}
