// Package eval measures what an encoder learned: features of a dataset,
// and the weighted kNN classifier the SimCLR literature reports.
package eval

import (
	"fmt"
	"math"

	"github.com/simclr-go/simclr/augment"
	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/data"
	"github.com/simclr-go/simclr/tensor"
)

// Encoder maps images [N, S, S, 3] to features [N, D] on a tape.
type Encoder func(t *autograd.Tape, x *autograd.Var) *autograd.Var

// Features holds one row per sample.
type Features struct {
	Rows   int
	Dim    int
	Data   []float32 // [Rows, Dim]
	Labels []int
}

// CenterView resizes a sample to size x size for evaluation: the central
// square (the whole image when square), resized without augmentation.
func CenterView(size int) data.Transform { return View(size, ViewSquare) }

// ViewStyle names how an evaluation view is cut from an image.
type ViewStyle string

// The evaluation views.
const (
	// ViewSquare is the whole central square, resized bilinearly. The zero
	// value.
	ViewSquare ViewStyle = ""
	// ViewCrop is the official SimCLR code's (tf2/data_util.py,
	// preprocess_for_eval): the central square of 87.5% of the shorter
	// side, resized bicubically; for views of 32 px or less the whole
	// central square, as the official code does not crop small images.
	ViewCrop ViewStyle = "crop"
)

// evalCropFraction is the official code's CROP_PROPORTION.
const evalCropFraction = 0.875

// ParseViewStyle reads an evaluation view name: "square" (or "") or
// "crop".
func ParseViewStyle(s string) (ViewStyle, error) {
	switch s {
	case "", "square":
		return ViewSquare, nil
	case string(ViewCrop):
		return ViewCrop, nil
	}
	return "", fmt.Errorf("evaluation view %q: want square or crop", s)
}

// ViewCropBox is the region of a w x h image that style's view of side
// size shows.
func ViewCropBox(w, h, size int, style ViewStyle) augment.Crop {
	side := min(w, h)
	if style == ViewCrop && size > 32 {
		side = max(int(math.RoundToEven(evalCropFraction*float64(side))), 1)
		return augment.Crop{X: (w - side + 1) / 2, Y: (h - side + 1) / 2, W: side, H: side}
	}
	return augment.Crop{X: (w - side) / 2, Y: (h - side) / 2, W: side, H: side}
}

// View makes each sample's size x size evaluation view in the given style.
func View(size int, style ViewStyle) data.Transform {
	interp := augment.Bilinear
	if style == ViewCrop && size > 32 {
		interp = augment.Bicubic
	}
	return func(s data.Sample, _, _ int, out []float32) error {
		src := augment.FromHWC(s.RGB, s.W, s.H, nil)
		augment.ResizedCrop(src, ViewCropBox(s.W, s.H, size, style), augment.Image{W: size, H: size, Pix: out}, interp, false, nil)
		return nil
	}
}

// Embed computes enc's features of every sample of ds in eval mode (batch
// norm with running statistics, no gradients).
func Embed(t *autograd.Tape, enc Encoder, ds data.Dataset, size, batch, workers int) (*Features, error) {
	viewLen := size * size * 3
	l, err := data.NewLoader(ds, data.LoaderOptions{
		BatchSize: batch, Workers: max(workers, 1), Prefetch: 2,
		SampleFloats: viewLen, Transform: CenterView(size),
	})
	if err != nil {
		return nil, err
	}
	train, noGrad := t.Train, t.NoGrad
	t.Train, t.NoGrad = false, true
	defer func() { t.Train, t.NoGrad = train, noGrad }()
	f := &Features{}
	for b, err := range l.Batches(0) {
		if err != nil {
			return nil, err
		}
		n := len(b.Indices)
		t.Reset()
		x := tensor.FromSlice(b.Data[:n*viewLen], n, size, size, 3)
		h := enc(t, t.Input(x))
		if f.Dim == 0 {
			f.Dim = h.Value.Dim(1)
		}
		f.Data = append(f.Data, h.Value.Data...)
		f.Labels = append(f.Labels, b.Labels...)
		f.Rows += n
	}
	if f.Rows != ds.Len() {
		return nil, fmt.Errorf("embedded %d of %d samples", f.Rows, ds.Len())
	}
	return f, nil
}
