package augment

import (
	"testing"

	"github.com/simclr-go/simclr/tensor"
)

// The benchmarks mirror /work/shared/reference/augment_bench.py: a pool of
// 64 random-noise RGB sources of the output size, RandomResizedCrop,
// flip, ColorJitter(0.4, 0.4, 0.4, 0.1) with p=0.8, grayscale p=0.2 and,
// at 224, blur (kernel 23, sigma U[0.1,2]) with p=0.5 or 1. The reference
// converts uint8 to float at the end (ToTensor); our sources are converted
// once, up front, as a loader would (BenchmarkPipeline32FromUint8 shows
// converting per view instead costs little). One goroutine.

func benchSources(size int) []Image {
	g := tensor.NewRNG(0, "augment-bench")
	srcs := make([]Image, 64)
	buf := make([]uint8, size*size*3)
	for i := range srcs {
		for j := range buf {
			buf[j] = uint8(g.IntN(256))
		}
		srcs[i] = FromHWC(buf, size, size, nil)
	}
	return srcs
}

func benchPipeline(b *testing.B, size int, blurP float64) {
	c := CIFARDefaults(size) // colour strength 0.5: the reference's jitter
	c.BlurP = blurP
	p := mustPipeline(b, c)
	srcs := benchSources(size)
	dst := make([]float32, p.ViewLen())
	s := new(Scratch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.ApplyScratch(s, srcs[i%len(srcs)], dst, 0, 0, uint64(i), 0)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "views/s")
}

func BenchmarkPipeline32(b *testing.B)       { benchPipeline(b, 32, 0) }
func BenchmarkPipeline224(b *testing.B)      { benchPipeline(b, 224, 0) }
func BenchmarkPipeline224Blur(b *testing.B)  { benchPipeline(b, 224, 0.5) }
func BenchmarkPipeline224Blur1(b *testing.B) { benchPipeline(b, 224, 1) }

func BenchmarkPipeline32FromUint8(b *testing.B) {
	p := mustPipeline(b, CIFARDefaults(32))
	g := tensor.NewRNG(0, "augment-bench")
	raw := make([]uint8, 64*32*32*3)
	for j := range raw {
		raw[j] = uint8(g.IntN(256))
	}
	dst := make([]float32, p.ViewLen())
	var src Image
	s := new(Scratch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % 64
		src = FromCHW(raw[k*3072:(k+1)*3072], 32, 32, src.Pix)
		p.ApplyScratch(s, src, dst, 0, 0, uint64(i), 0)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "views/s")
}

// Per-operation costs at 224, to see where a view's time goes.
func BenchmarkOps224(b *testing.B) {
	src := benchSources(224)[0]
	m := NewImage(224, 224)
	s := new(Scratch)
	ops := []struct {
		name string
		f    func()
	}{
		{"crop-bilinear", func() { ResizedCrop(src, Crop{X: 20, Y: 30, W: 150, H: 120}, m, Bilinear, false, s) }},
		{"crop-bicubic", func() { ResizedCrop(src, Crop{X: 20, Y: 30, W: 150, H: 120}, m, Bicubic, false, s) }},
		{"brightness", func() { AdjustBrightness(m, 1.1) }},
		{"contrast", func() { AdjustContrast(m, 0.9) }},
		{"saturation", func() { AdjustSaturation(m, 1.1) }},
		{"hue", func() { AdjustHue(m, 0.05) }},
		{"grayscale", func() { Grayscale(m) }},
		{"blur-sigma2", func() { GaussianBlur(m, 23, 2, s) }},
		{"blur-sigma0.5", func() { GaussianBlur(m, 23, 0.5, s) }},
	}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			copy(m.Pix, src.Pix)
			for i := 0; i < b.N; i++ {
				op.f()
			}
		})
	}
}
