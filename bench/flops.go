package bench

import (
	"time"

	"github.com/simclr-go/simclr/backend"
)

// flopCounter passes every operation on to a backend and, while counting is
// on, adds up the floating-point operations of the convolutions and matrix
// products (2 per multiply-add), the work that sets a step's speed.
type flopCounter struct {
	backend.Backend
	counting bool
	flops    float64
}

func (c *flopCounter) Conv2DForward(p backend.Conv2D, x, w, b, y []float32) {
	if c.counting {
		c.flops += 2 * float64(p.N*p.OutH()*p.OutW()) * float64(p.WeightLen())
	}
	c.Backend.Conv2DForward(p, x, w, b, y)
}

func (c *flopCounter) Gemm(transA, transB bool, m, n, k int, alpha float32, a, b []float32, beta float32, out []float32) {
	if c.counting {
		c.flops += 2 * float64(m) * float64(n) * float64(k)
	}
	c.Backend.Gemm(transA, transB, m, n, k, alpha, a, b, beta, out)
}

func (c *flopCounter) LayerGemm(transA, transB bool, m, n, k int, a, b, out []float32) {
	if c.counting {
		c.flops += 2 * float64(m) * float64(n) * float64(k)
	}
	c.Backend.LayerGemm(transA, transB, m, n, k, a, b, out)
}

// PeakGFLOPS measures the most a backend computes on this machine: the best
// of up to reps products of two side x side matrices through its LayerGemm
// (in its precision), in GFLOP/s, stopping early once a second has passed (the pure-Go backend is
// slow). A step's convolutions rarely reach it; their share of it says how
// much room is left.
func PeakGFLOPS(be backend.Backend, side, reps int) float64 {
	a := make([]float32, side*side)
	b := make([]float32, side*side)
	c := make([]float32, side*side)
	for i := range a {
		a[i] = float32(i%7) - 3
		b[i] = float32(i%5) - 2
	}
	be.LayerGemm(false, false, side, side, side, a, b, c) // warm-up: primitives, pages
	best := time.Duration(1 << 62)
	for start := time.Now(); reps > 0 && time.Since(start) < time.Second; reps-- {
		t0 := time.Now()
		be.LayerGemm(false, false, side, side, side, a, b, c)
		best = min(best, time.Since(t0))
	}
	return 2 * float64(side) * float64(side) * float64(side) / best.Seconds() / 1e9
}
