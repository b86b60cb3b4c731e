package eval

import (
	"fmt"

	"github.com/simclr-go/simclr/augment"
	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/data"
	"github.com/simclr-go/simclr/tensor"
)

// EmbedOptions configure EmbedWith.
type EmbedOptions struct {
	Size    int // view side in pixels
	Batch   int // images per forward pass; 0 means 256
	Workers int // decoding goroutines; 0 means 1
	// Transform makes each sample's view; nil means CenterView(Size).
	Transform data.Transform
	// Epoch is passed to Transform, so that augmented copies drawn with
	// different epochs differ.
	Epoch int
	// Names, when set, makes EmbedWith return every sample's name.
	Names bool
	// Progress, if set, is called after each batch.
	Progress func(done, total int)
}

// EmbedWith is Embed with options: another view transform (e.g. augmented
// copies), the samples' names, progress reports.
func EmbedWith(t *autograd.Tape, enc Encoder, ds data.Dataset, o EmbedOptions) (*Features, []string, error) {
	if o.Size <= 0 {
		return nil, nil, fmt.Errorf("embed: image size %d", o.Size)
	}
	if o.Batch <= 0 {
		o.Batch = 256
	}
	tf := o.Transform
	if tf == nil {
		tf = CenterView(o.Size)
	}
	var names []string
	if o.Names {
		names = make([]string, ds.Len())
		inner := tf
		tf = func(s data.Sample, epoch, index int, out []float32) error {
			names[index] = s.Name // distinct indices: no two workers write one slot
			return inner(s, epoch, index, out)
		}
	}
	viewLen := o.Size * o.Size * 3
	l, err := data.NewLoader(ds, data.LoaderOptions{
		BatchSize: o.Batch, Workers: max(o.Workers, 1), Prefetch: 2,
		SampleFloats: viewLen, Transform: tf,
	})
	if err != nil {
		return nil, nil, err
	}
	train, noGrad := t.Train, t.NoGrad
	t.Train, t.NoGrad = false, true
	defer func() { t.Train, t.NoGrad = train, noGrad }()
	f := &Features{}
	for b, err := range l.Batches(o.Epoch) {
		if err != nil {
			return nil, nil, err
		}
		n := len(b.Indices)
		t.Reset()
		x := tensor.FromSlice(b.Data[:n*viewLen], n, o.Size, o.Size, 3)
		h := enc(t, t.Input(x))
		if h.Value.Dim(0) != n || len(h.Value.Shape) != 2 {
			return nil, nil, fmt.Errorf("embed: the encoder gave shape %v for %d images, want [%d, D]", h.Value.Shape, n, n)
		}
		if f.Dim == 0 {
			f.Dim = h.Value.Dim(1)
		}
		f.Data = append(f.Data, h.Value.Data...)
		f.Labels = append(f.Labels, b.Labels...)
		f.Rows += n
		if o.Progress != nil {
			o.Progress(f.Rows, ds.Len())
		}
	}
	if f.Rows != ds.Len() {
		return nil, nil, fmt.Errorf("embedded %d of %d samples", f.Rows, ds.Len())
	}
	return f, names, nil
}

// CropFlipView is the augmentation of the linear protocol's training
// copies: a random resized crop (scale [0.08, 1], ratio [3/4, 4/3]) and a
// horizontal flip with probability 1/2, no colour changes, drawn from
// (seed, epoch, index).
func CropFlipView(size int, seed uint64) (data.Transform, error) {
	c := augment.ImageNetDefaults(size)
	c.ColorP, c.GrayP, c.BlurP, c.SolarizeP = 0, 0, 0, 0
	p, err := augment.NewPipeline(c)
	if err != nil {
		return nil, err
	}
	return func(s data.Sample, epoch, index int, out []float32) error {
		src := augment.FromHWC(s.RGB, s.W, s.H, nil)
		p.Apply(src, out, seed, uint64(epoch), uint64(index), 0)
		return nil
	}, nil
}
