//go:build cgo

package onednn

import (
	"fmt"
	"testing"

	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/tensor"
)

func convFlops(p backend.Conv2D) float64 {
	return 2 * float64(p.N*p.OutH()*p.OutW()*p.K) * float64(p.C/p.Groups*p.R*p.S)
}

func reportGFLOPs(b *testing.B, flops float64) {
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkResNet18Conv times the three passes of every distinct
// convolution of a CIFAR ResNet-18 at batch 256 (NHWC activations, OIHW
// weights, reorders included).
func BenchmarkResNet18Conv(b *testing.B) {
	fast, err := New(0)
	if err != nil {
		b.Fatal(err)
	}
	defer fast.Close()
	for _, c := range resnet18Convs(256) {
		p := c.p
		rng := tensor.NewRNG(1, "onednn-bench", uint64(p.C), uint64(p.K), uint64(p.H))
		nx, nw, ny := convSizes(p)
		x, w := randn(rng, nx, 0, 1), randn(rng, nw, 0, 1)
		y, dy := make([]float32, ny), randn(rng, ny, 0, 1)
		dx, dw := make([]float32, nx), make([]float32, nw)
		fl := convFlops(p)
		b.Run(c.name+"/fwd", func(b *testing.B) {
			for b.Loop() {
				fast.Conv2DForward(p, x, w, nil, y)
			}
			reportGFLOPs(b, fl)
		})
		b.Run(c.name+"/bwd_data", func(b *testing.B) {
			for b.Loop() {
				fast.Conv2DBackwardData(p, dy, w, dx)
			}
			reportGFLOPs(b, fl)
		})
		b.Run(c.name+"/bwd_weights", func(b *testing.B) {
			for b.Loop() {
				fast.Conv2DBackwardWeights(p, x, dy, dw, nil)
			}
			reportGFLOPs(b, fl)
		})
	}
}

// BenchmarkResNet18ConvStep runs the convolutions of one CIFAR ResNet-18
// training step at batch 256: all 20 layers forward, backward weights, and
// backward data except for the stem (whose input needs no gradient).
func BenchmarkResNet18ConvStep(b *testing.B) {
	fast, err := New(0)
	if err != nil {
		b.Fatal(err)
	}
	defer fast.Close()
	// How often each distinct convolution of resnet18Convs occurs.
	count := []int{1, 4, 1, 3, 1, 1, 3, 1, 1, 3, 1}
	type layer struct {
		p               backend.Conv2D
		n               int
		x, w, y, dx, dw []float32
	}
	var layers []layer
	var flops float64
	for i, c := range resnet18Convs(256) {
		p := c.p
		nx, nw, ny := convSizes(p)
		rng := tensor.NewRNG(1, "onednn-bench-step", uint64(i))
		layers = append(layers, layer{p, count[i], randn(rng, nx, 0, 1), randn(rng, nw, 0, 1),
			randn(rng, ny, 0, 1), make([]float32, nx), make([]float32, nw)})
		passes := 3.0
		if i == 0 {
			passes = 2
		}
		flops += passes * float64(count[i]) * convFlops(p)
	}
	for b.Loop() {
		for i, l := range layers {
			for range l.n {
				fast.Conv2DForward(l.p, l.x, l.w, nil, l.y)
				fast.Conv2DBackwardWeights(l.p, l.x, l.y, l.dw, nil)
				if i > 0 {
					fast.Conv2DBackwardData(l.p, l.y, l.w, l.dx)
				}
			}
		}
	}
	reportGFLOPs(b, flops)
}

type benchBackend struct {
	name string
	be   backend.Backend
}

func benchPair(b *testing.B) []benchBackend {
	fast, err := New(0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(fast.Close)
	return []benchBackend{{"onednn", fast}, {"purego", purego.New(0)}}
}

// BenchmarkBatchNorm compares batch norm with ReLU on ResNet-18 sizes.
func BenchmarkBatchNorm(b *testing.B) {
	for _, be := range benchPair(b) {
		for _, sz := range []struct{ m, c int }{{256 * 32 * 32, 64}, {256 * 16 * 16, 128}, {256 * 8 * 8, 256}, {256 * 4 * 4, 512}} {
			m, c := sz.m, sz.c
			rng := tensor.NewRNG(2, "onednn-bench-bn", uint64(c))
			x, dy := randn(rng, m*c, 0, 1), randn(rng, m*c, 0, 1)
			y, dx := make([]float32, m*c), make([]float32, m*c)
			gamma, beta := randn(rng, c, 1, 0.1), randn(rng, c, 0, 0.1)
			mean, v, dg, db := make([]float32, c), make([]float32, c), make([]float32, c), make([]float32, c)
			b.Run(fmt.Sprintf("%s/%dx%d/fwd_relu", be.name, m, c), func(b *testing.B) {
				for b.Loop() {
					be.be.BatchNormForward(m, c, 1e-5, x, gamma, beta, y, mean, v, true)
				}
				b.SetBytes(int64(8 * m * c))
			})
			b.Run(fmt.Sprintf("%s/%dx%d/bwd_relu", be.name, m, c), func(b *testing.B) {
				for b.Loop() {
					be.be.BatchNormBackward(m, c, 1e-5, x, y, dy, gamma, mean, v, dx, dg, db, true)
				}
				b.SetBytes(int64(16 * m * c))
			})
		}
	}
}

// BenchmarkElementwise compares the memory-bound operations on the size of
// the first ResNet-18 stage's activations (256x32x32x64).
func BenchmarkElementwise(b *testing.B) {
	const n = 256 * 32 * 32 * 64
	rng := tensor.NewRNG(3, "onednn-bench-elementwise")
	x1, x2, y := randn(rng, n, 0, 1), randn(rng, n, 0, 1), make([]float32, n)
	pool := backend.Pool2D{N: 256, H: 32, W: 32, C: 64, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}
	np := pool.N * pool.OutH() * pool.OutW() * pool.C
	am := make([]int32, np)
	for _, be := range benchPair(b) {
		ops := []struct {
			name  string
			bytes int
			f     func()
		}{
			{"relu", 8 * n, func() { be.be.ReLUForward(x1, y) }},
			{"relu_bwd", 12 * n, func() { be.be.ReLUBackward(x1, x2, y) }},
			{"add", 12 * n, func() { be.be.Add(x1, x2, y) }},
			{"add_relu", 12 * n, func() { be.be.AddReLUForward(x1, x2, y) }},
			{"axpy", 12 * n, func() { be.be.Axpy(0.5, x1, y) }},
			{"scale", 8 * n, func() { be.be.Scale(0.5, x1, y) }},
			{"gap_256x1024x64", 4 * n, func() { be.be.GlobalAvgPoolForward(256, 1024, 64, x1, y) }},
			{"gap_bwd_256x1024x64", 4 * n, func() { be.be.GlobalAvgPoolBackward(256, 1024, 64, x1, y) }},
			{"gap_256x16x512", 4 * 256 * 16 * 512, func() { be.be.GlobalAvgPoolForward(256, 16, 512, x1, y) }},
			{"maxpool3s2", 4*n + 8*np, func() { be.be.MaxPoolForward(pool, x1, y, am) }},
			{"maxpool3s2_bwd", 4*n + 8*np, func() { be.be.MaxPoolBackward(pool, x2, am, y) }},
		}
		be.be.MaxPoolForward(pool, x1, y, am)
		for _, op := range ops {
			b.Run(be.name+"/"+op.name, func(b *testing.B) {
				for b.Loop() {
					op.f()
				}
				b.SetBytes(int64(op.bytes))
			})
		}
	}
}

// BenchmarkGemm compares GEMMs of a SimCLR projection head and loss at
// batch 2x256.
func BenchmarkGemm(b *testing.B) {
	for _, be := range benchPair(b) {
		for _, sz := range []struct {
			m, n, k int
			ta, tb  bool
		}{
			{512, 2048, 512, false, true},  // x W^T
			{512, 512, 2048, false, false}, // dy W
			{2048, 512, 512, true, false},  // dy^T x
			{512, 512, 128, false, true},   // similarities
			{256, 10, 512, false, true},    // a linear probe
		} {
			rng := tensor.NewRNG(4, "onednn-bench-gemm")
			a, bm, c := randn(rng, sz.m*sz.k, 0, 1), randn(rng, sz.k*sz.n, 0, 1), make([]float32, sz.m*sz.n)
			b.Run(fmt.Sprintf("%s/%dx%dx%d_tA=%v_tB=%v", be.name, sz.m, sz.n, sz.k, sz.ta, sz.tb), func(b *testing.B) {
				for b.Loop() {
					be.be.Gemm(sz.ta, sz.tb, sz.m, sz.n, sz.k, 1, a, bm, 0, c)
				}
				reportGFLOPs(b, 2*float64(sz.m*sz.n*sz.k))
			})
		}
	}
}
