package augment

import (
	"errors"
	"fmt"
	"sync"

	"github.com/simclr-go/simclr/tensor"
)

// Config holds every parameter of the SimCLR augmentation pipeline.
// Probabilities are in [0,1]; ranges are [lo, hi].
type Config struct {
	Size          int           // output side; views are Size×Size
	Scale         [2]float64    // crop area as a fraction of the source
	Ratio         [2]float64    // crop aspect ratio w/h, drawn log-uniformly
	Interp        Interpolation // resize filter
	FlipP         float64       // horizontal flip
	ColorStrength float64       // s: jitter 0.8s brightness, contrast, saturation, 0.2s hue
	ColorP        float64       // colour jitter
	GrayP         float64       // random grayscale
	BlurP         float64       // Gaussian blur
	BlurSigma     [2]float64    // blur sigma range
	BlurKernel    int           // odd kernel side; 0 means BlurKernelSize(Size)
	SolarizeP     float64       // solarisation (SimCLRv2/BYOL), threshold 0.5
}

// ImageNetDefaults is the paper's ImageNet pipeline: crop scale [0.08,1],
// ratio [3/4,4/3], flip, colour strength 1 with p=0.8, grayscale p=0.2,
// blur p=0.5 with sigma [0.1,2]. The resize is bilinear like torchvision's
// default (SimCLR's TF code uses bicubic; set Interp to follow it).
func ImageNetDefaults(size int) Config {
	return Config{
		Size:          size,
		Scale:         [2]float64{0.08, 1},
		Ratio:         [2]float64{3.0 / 4, 4.0 / 3},
		Interp:        Bilinear,
		FlipP:         0.5,
		ColorStrength: 1,
		ColorP:        0.8,
		GrayP:         0.2,
		BlurP:         0.5,
		BlurSigma:     [2]float64{0.1, 2},
	}
}

// CIFARDefaults is the paper's CIFAR-10 pipeline: as ImageNet's but colour
// strength 0.5 and no blur (the paper found blur unhelpful at 32×32).
func CIFARDefaults(size int) Config {
	c := ImageNetDefaults(size)
	c.ColorStrength = 0.5
	c.BlurP = 0
	return c
}

// Validate reports the first parameter out of range.
func (c Config) Validate() error {
	prob := func(name string, p float64) error {
		if !(p >= 0 && p <= 1) {
			return fmt.Errorf("augment: %s %g outside [0,1]", name, p)
		}
		return nil
	}
	switch {
	case c.Size <= 0:
		return fmt.Errorf("augment: size %d", c.Size)
	case !(c.Scale[0] > 0 && c.Scale[0] <= c.Scale[1]):
		return fmt.Errorf("augment: crop scale %v", c.Scale)
	case !(c.Ratio[0] > 0 && c.Ratio[0] <= c.Ratio[1]):
		return fmt.Errorf("augment: crop ratio %v", c.Ratio)
	case c.Interp != Bilinear && c.Interp != Bicubic:
		return fmt.Errorf("augment: %v", c.Interp)
	case !(c.ColorStrength >= 0):
		return fmt.Errorf("augment: colour strength %g", c.ColorStrength)
	case c.BlurP > 0 && !(c.BlurSigma[0] > 0 && c.BlurSigma[0] <= c.BlurSigma[1]):
		return fmt.Errorf("augment: blur sigma %v", c.BlurSigma)
	case c.BlurKernel < 0 || (c.BlurKernel > 0 && c.BlurKernel%2 == 0):
		return fmt.Errorf("augment: blur kernel %d must be odd", c.BlurKernel)
	}
	return errors.Join(prob("flip p", c.FlipP), prob("colour p", c.ColorP), prob("gray p", c.GrayP),
		prob("blur p", c.BlurP), prob("solarize p", c.SolarizeP))
}

// Scratch holds the buffers one goroutine reuses from view to view, so the
// pipeline allocates nothing per view once they have grown.
type Scratch struct {
	xa, ya axis
	rows   []float32 // ring of horizontally resampled source rows
	tags   [4]int32  // source row held by each ring slot
	kern   []float32
	pad    []float32 // one reflect-padded row
	tmp    []float32 // horizontally blurred image
}

// Pipeline applies a Config. It is safe for concurrent use.
type Pipeline struct {
	cfg    Config
	kernel int
	pool   sync.Pool // *Scratch, for Apply
}

// NewPipeline checks cfg and returns its pipeline.
func NewPipeline(cfg Config) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Pipeline{cfg: cfg, kernel: cfg.BlurKernel}
	if p.kernel == 0 {
		p.kernel = BlurKernelSize(cfg.Size)
	}
	p.pool.New = func() any { return new(Scratch) }
	return p, nil
}

// Config returns the pipeline's configuration.
func (p *Pipeline) Config() Config { return p.cfg }

// ViewLen is the number of float32 values in one view (Size*Size*3).
func (p *Pipeline) ViewLen() int { return p.cfg.Size * p.cfg.Size * 3 }

// Apply writes one augmented view of src into dst (Size×Size×3, HWC),
// with scratch buffers from a pool inside p. All randomness comes from
// tensor.NewRNG(seed, "augment", epoch, index, view), so the view depends
// on those numbers only, not on which worker computes it or when.
func (p *Pipeline) Apply(src Image, dst []float32, seed, epoch, index, view uint64) {
	s := p.pool.Get().(*Scratch)
	p.ApplyScratch(s, src, dst, seed, epoch, index, view)
	p.pool.Put(s)
}

// ApplyScratch is Apply with caller-owned scratch (one per goroutine).
//
// Draw order: crop, flip, colour coin [jitter order and factors], gray
// coin, blur coin [sigma], solarize coin; coins are drawn even when their
// probability is 0 or 1, so changing one probability leaves the others'
// draws where they were.
func (p *Pipeline) ApplyScratch(s *Scratch, src Image, dst []float32, seed, epoch, index, view uint64) {
	c := &p.cfg
	n := c.Size * c.Size * 3
	if len(dst) < n {
		panic(fmt.Sprintf("augment: view needs %d values, dst has %d", n, len(dst)))
	}
	checkDims(src.W, src.H, len(src.Pix))
	rng := tensor.NewRNG(seed, "augment", epoch, index, view)
	out := Image{W: c.Size, H: c.Size, Pix: dst[:n:n]}

	crop := RandomResizedCropParams(rng, src.W, src.H, c.Scale, c.Ratio)
	flip := rng.Float64() < c.FlipP
	ResizedCrop(src, crop, out, c.Interp, flip, s)

	if rng.Float64() < c.ColorP {
		st := c.ColorStrength
		DrawJitter(rng, 0.8*st, 0.8*st, 0.8*st, 0.2*st).Apply(out)
	}
	if rng.Float64() < c.GrayP {
		Grayscale(out)
	}
	if rng.Float64() < c.BlurP {
		GaussianBlur(out, p.kernel, rng.Uniform(c.BlurSigma[0], c.BlurSigma[1]), s)
	}
	if rng.Float64() < c.SolarizeP {
		Solarize(out, 0.5)
	}
}
