// Package eval measures what an encoder learned: features of a dataset,
// and the weighted kNN classifier the SimCLR literature reports.
package eval

import (
	"fmt"

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
func CenterView(size int) data.Transform {
	return func(s data.Sample, _, _ int, out []float32) error {
		src := augment.FromHWC(s.RGB, s.W, s.H, nil)
		side := min(s.W, s.H)
		c := augment.Crop{X: (s.W - side) / 2, Y: (s.H - side) / 2, W: side, H: side}
		augment.ResizedCrop(src, c, augment.Image{W: size, H: size, Pix: out}, augment.Bilinear, false, nil)
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
