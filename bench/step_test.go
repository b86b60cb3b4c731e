package bench

import (
	"math"
	"testing"

	"github.com/simclr-go/simclr/backend/auto"
)

// TestStepSteadyState: after the first step, a training step allocates no
// buffers and the loss stays finite.
func TestStepSteadyState(t *testing.T) {
	be, err := auto.New("auto", 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg := StepConfig{Depth: 18, Width: 4, Batch: 8, Image: 16, ProjHidden: 32, ProjOut: 16,
		Temperature: 0.5, Warmup: 1, Steps: 3}
	res, err := RunStep(be, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.AllocsAfterWarmup != 0 {
		t.Errorf("%d buffers allocated after the first step", res.AllocsAfterWarmup)
	}
	for i, l := range res.Losses {
		if math.IsNaN(l) || math.IsInf(l, 0) {
			t.Errorf("step %d: loss %g", i, l)
		}
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
