package bench

import (
	"math"
	"testing"

	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/backend/auto"
	"github.com/simclr-go/simclr/backend/purego"
)

// TestStepSteadyState: after the first step, a training step allocates no
// buffers and the loss stays finite, in both precisions.
func TestStepSteadyState(t *testing.T) {
	for _, prec := range []backend.Precision{backend.FP32, backend.BF16} {
		t.Run(prec.String(), func(t *testing.T) {
			be, err := auto.NewWithPrecision("auto", 2, prec)
			if err != nil {
				t.Skip(err) // bf16 on a CPU without bf16 instructions
			}
			cfg := StepConfig{Depth: 18, Width: 4, CIFARStem: true, Batch: 8, Image: 16, ProjHidden: 32, ProjOut: 16,
				Temperature: 0.5, Warmup: 1, Steps: 3}
			res, err := RunStep(be, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Precision != prec.String() {
				t.Errorf("result says precision %q", res.Precision)
			}
			if res.AllocsAfterWarmup != 0 {
				t.Errorf("%d buffers allocated after the first step", res.AllocsAfterWarmup)
			}
			if res.GFLOPPerStep <= 0 || res.GFLOPS <= 0 {
				t.Errorf("%g GFLOP per step, %g GFLOP/s", res.GFLOPPerStep, res.GFLOPS)
			}
			for i, l := range res.Losses {
				if math.IsNaN(l) || math.IsInf(l, 0) {
					t.Errorf("step %d: loss %g", i, l)
				}
			}
		})
	}
}

func benchStep(b *testing.B, width, batch int) {
	be, err := auto.New("auto", 0)
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultStep()
	cfg.Width, cfg.Batch, cfg.Warmup, cfg.Steps = width, batch, 1, b.N
	b.ResetTimer()
	res, err := RunStep(be, cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.ImagesPerSec, "images/s")
	b.ReportMetric(res.PeakRSSMB, "peak-MiB")
}

// BenchmarkStepW16B256 is one SimCLR step of CIFAR ResNet-18 at width 16,
// batch 256 (512 views), head 128-2048-128.
func BenchmarkStepW16B256(b *testing.B) { benchStep(b, 16, 256) }

// BenchmarkStepW64B128 is the same at width 64, batch 128.
func BenchmarkStepW64B128(b *testing.B) { benchStep(b, 64, 128) }

// TestFLOPCount: the counter adds 2 operations per multiply-add of the
// forward convolutions and matrix products, and only while counting.
func TestFLOPCount(t *testing.T) {
	c := &flopCounter{Backend: purego.New(1)}
	p := backend.Conv2D{N: 2, H: 5, W: 5, C: 3, K: 4, R: 3, S: 3, StrideH: 2, StrideW: 2,
		PadH: 1, PadW: 1, DilH: 1, DilW: 1, Groups: 1}
	x := make([]float32, 2*5*5*3)
	w := make([]float32, p.WeightLen())
	y := make([]float32, 2*3*3*4)
	c.Conv2DForward(p, x, w, nil, y)
	if c.flops != 0 {
		t.Fatalf("counted %g while off", c.flops)
	}
	c.counting = true
	c.Conv2DForward(p, x, w, nil, y)
	// 2 images x 3x3 outputs x 4 channels, each 3x3x3 multiply-adds.
	if want := 2.0 * 2 * 9 * 4 * 27; c.flops != want {
		t.Errorf("convolution: %g flops, want %g", c.flops, want)
	}
	c.flops = 0
	c.Gemm(false, true, 3, 4, 5, 1, make([]float32, 15), make([]float32, 20), 0, make([]float32, 12))
	if want := 2.0 * 3 * 4 * 5; c.flops != want {
		t.Errorf("gemm: %g flops, want %g", c.flops, want)
	}
}
