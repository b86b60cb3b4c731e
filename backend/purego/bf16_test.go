package purego

import (
	"math"
	"testing"

	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/tensor"
)

func normal(rng *tensor.RNG, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.Normal())
	}
	return s
}

func roundAll(s []float32) []float32 {
	r := make([]float32, len(s))
	for i, v := range s {
		r[i] = backend.RoundBF16(v)
	}
	return r
}

// relDiff is |a-b| / |b| over whole tensors.
func relDiff(a, b []float32) float64 {
	var d, n float64
	for i := range a {
		d += (float64(a[i]) - float64(b[i])) * (float64(a[i]) - float64(b[i]))
		n += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(d / n)
}

// TestBF16Emulation: in BF16 every product reads its inputs rounded to
// bfloat16 and sums in float32, so it equals the float32 product of rounded
// inputs exactly, and differs from the float32 product of the inputs by
// about bfloat16's precision (2^-9 relative rounding of each input): far
// more than float32 rounding (~1e-7), far less than a wrong result (~1).
func TestBF16Emulation(t *testing.T) {
	f32, b16 := New(2), NewWithPrecision(2, backend.BF16)
	if b16.Name() != "purego(bf16)" || b16.Precision() != backend.BF16 || f32.Precision() != backend.FP32 {
		t.Fatalf("names %q, %q; precisions %v, %v", f32.Name(), b16.Name(), f32.Precision(), b16.Precision())
	}
	p := backend.Conv2D{N: 2, H: 6, W: 5, C: 8, K: 6, R: 3, S: 3, StrideH: 1, StrideW: 1,
		PadH: 1, PadW: 1, DilH: 1, DilW: 1, Groups: 1}
	rng := tensor.NewRNG(1, "purego-bf16")
	nx, nw, ny := p.N*p.H*p.W*p.C, p.WeightLen(), p.N*p.OutH()*p.OutW()*p.K
	x, w, bias, dy := normal(rng, nx), normal(rng, nw), normal(rng, p.K), normal(rng, ny)
	xr, wr, dyr := roundAll(x), roundAll(w), roundAll(dy)

	check := func(what string, got, ofRounded, full []float32) {
		t.Helper()
		for i := range got {
			if got[i] != ofRounded[i] {
				t.Fatalf("%s[%d] = %g, want %g (float32 on rounded inputs)", what, i, got[i], ofRounded[i])
			}
		}
		d := relDiff(got, full)
		if d < 2e-4 || d > 1e-2 {
			t.Errorf("%s: relative difference from float32 %.3g, want about bfloat16's 2^-9 (2e-4..1e-2)", what, d)
		}
		t.Logf("%s: relative difference from float32 %.3g", what, d)
	}
	y, yr, yf := make([]float32, ny), make([]float32, ny), make([]float32, ny)
	b16.Conv2DForward(p, x, w, bias, y)
	f32.Conv2DForward(p, xr, wr, bias, yr)
	f32.Conv2DForward(p, x, w, bias, yf)
	check("y", y, yr, yf)

	dx, dxr, dxf := make([]float32, nx), make([]float32, nx), make([]float32, nx)
	b16.Conv2DBackwardData(p, dy, w, dx)
	f32.Conv2DBackwardData(p, dyr, wr, dxr)
	f32.Conv2DBackwardData(p, dy, w, dxf)
	check("dx", dx, dxr, dxf)

	dw, dwr, dwf := make([]float32, nw), make([]float32, nw), make([]float32, nw)
	db, dbr, dbf := make([]float32, p.K), make([]float32, p.K), make([]float32, p.K)
	b16.Conv2DBackwardWeights(p, x, dy, dw, db)
	f32.Conv2DBackwardWeights(p, xr, dyr, dwr, dbr)
	f32.Conv2DBackwardWeights(p, x, dy, dwf, dbf)
	check("dw", dw, dwr, dwf)
	check("db", db, dbr, dbf)

	const m, n, k = 9, 7, 40
	a, bm := normal(rng, m*k), normal(rng, k*n)
	c, cr, cf := make([]float32, m*n), make([]float32, m*n), make([]float32, m*n)
	b16.LayerGemm(true, false, m, n, k, a, bm, c)
	f32.LayerGemm(true, false, m, n, k, roundAll(a), roundAll(bm), cr)
	f32.LayerGemm(true, false, m, n, k, a, bm, cf)
	check("LayerGemm", c, cr, cf)

	// Gemm stays float32 in every precision.
	g := make([]float32, m*n)
	b16.Gemm(true, false, m, n, k, 1, a, bm, 0, g)
	for i := range g {
		if g[i] != cf[i] {
			t.Fatalf("BF16 Gemm[%d] = %g, float32 gives %g", i, g[i], cf[i])
		}
	}
}
