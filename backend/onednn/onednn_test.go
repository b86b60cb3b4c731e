//go:build cgo

package onednn

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/tensor"
)

// Tolerances. oneDNN and the pure-Go reference both compute in float32 but
// sum in different orders (blocked, vectorised, split across threads), so
// results differ by rounding. Each sum of K products carries a relative
// error of about sqrt(K)*6e-8 typically and K*6e-8 at worst; for the largest
// reductions here (K up to ~1000) that is 1e-6 typically and 6e-5 at worst.
// Errors are measured against the largest magnitude of the reference tensor
// (see closeTo): elements that cancel to near zero cannot be accurate
// relative to themselves. 1e-4 of that scale bounds the rounding and is
// still orders of magnitude below what any indexing or layout error gives
// (those are of order 1).
const tolSum = 1e-4

// Batch norm: mean and variance are float32 sums over up to 1024 rows here,
// and dx subtracts two such means from dy; purego accumulates in float64,
// oneDNN in float32. The same 1e-4 of the tensor's scale applies.
const tolBN = 1e-4

func newPair(t testing.TB) (*Backend, *purego.Backend) {
	t.Helper()
	b, err := New(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, purego.New(2)
}

func randn(rng *tensor.RNG, n int, mean, std float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(mean + std*rng.Normal())
	}
	return s
}

func nans(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(math.NaN())
	}
	return s
}

// closeTo checks |got-want| <= rel*max|want| elementwise.
func closeTo(t *testing.T, what string, got, want []float32, rel float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	scale := 0.0
	for _, w := range want {
		scale = max(scale, math.Abs(float64(w)))
	}
	scale = max(scale, 1e-30)
	worst, bad := 0.0, 0
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if !(d <= rel*scale) {
			if bad < 5 {
				t.Errorf("%s[%d] = %.8g, want %.8g (diff %.3g, scale %.3g)", what, i, got[i], want[i], d, scale)
			}
			bad++
		}
		if !math.IsNaN(d) {
			worst = max(worst, d/scale)
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d of %d values off", what, bad, len(got))
	}
	if testing.Verbose() && worst > rel/10 {
		t.Logf("%s: worst relative error %.3g", what, worst)
	}
}

func exact(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if got[i] != want[i] && !(math.IsNaN(float64(got[i])) && math.IsNaN(float64(want[i]))) {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func conv(n, h, w, c, k, r, s, sh, sw, ph, pw, dh, dw, g int) backend.Conv2D {
	return backend.Conv2D{N: n, H: h, W: w, C: c, K: k, R: r, S: s,
		StrideH: sh, StrideW: sw, PadH: ph, PadW: pw, DilH: dh, DilW: dw, Groups: g}
}

var convCases = []struct {
	name string
	p    backend.Conv2D
}{
	{"3x3 s1 p1 C3 7x5", conv(2, 7, 5, 3, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1)},
	{"3x3 s2 p1 C3 7x5", conv(3, 7, 5, 3, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1)},
	{"3x3 s1 p1 C20 K24", conv(2, 9, 8, 20, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1)},
	{"3x3 s2 p1 C64 K32 8x8", conv(4, 8, 8, 64, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1)},
	{"3x3 s1 p1 C64 K64 8x8", conv(2, 8, 8, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1)},
	{"3x3 dil2 p2 C20 K17", conv(2, 9, 8, 20, 17, 3, 3, 1, 1, 2, 2, 2, 2, 1)},
	{"3x3 dil2 s2 p1", conv(2, 11, 9, 5, 7, 3, 3, 2, 2, 1, 1, 2, 2, 1)},
	{"3x2 s(2,1) p(2,1) dil(2,1)", conv(2, 9, 7, 3, 5, 3, 2, 2, 1, 2, 1, 2, 1, 1)},
	{"groups2 3x3 s1 p1", conv(2, 7, 6, 12, 10, 3, 3, 1, 1, 1, 1, 1, 1, 2)},
	{"groups2 3x3 s2 p1 C32 K64", conv(2, 8, 8, 32, 64, 3, 3, 2, 2, 1, 1, 1, 1, 2)},
	{"groups3 dil2 p2", conv(2, 7, 6, 6, 3, 3, 3, 1, 1, 2, 2, 2, 2, 3)},
	{"depthwise 3x3 s1 p1 C16", conv(2, 7, 5, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 16)},
	{"depthwise 3x3 s2 p1 C6", conv(2, 7, 8, 6, 6, 3, 3, 2, 2, 1, 1, 1, 1, 6)},
	{"depthwise x2 multiplier", conv(2, 6, 6, 8, 16, 3, 3, 1, 1, 1, 1, 1, 1, 8)},
	{"7x7 s2 p3 stem", conv(2, 17, 15, 3, 16, 7, 7, 2, 2, 3, 3, 1, 1, 1)},
	{"1x1 s1", conv(2, 5, 7, 24, 40, 1, 1, 1, 1, 0, 0, 1, 1, 1)},
	{"1x1 s2 C64 K128", conv(2, 8, 8, 64, 128, 1, 1, 2, 2, 0, 0, 1, 1, 1)},
	{"1x1 s2 odd (unused last row)", conv(2, 7, 9, 8, 4, 1, 1, 2, 2, 0, 0, 1, 1, 1)},
	{"2x2 s3 (unused rows)", conv(2, 9, 10, 4, 6, 2, 2, 3, 3, 0, 0, 1, 1, 1)},
	{"1x1 p2 (empty borders)", conv(2, 3, 4, 2, 3, 1, 1, 1, 1, 2, 2, 1, 1, 1)},
	{"5x5 s1 p2 asym", conv(1, 6, 11, 5, 9, 5, 5, 1, 1, 2, 2, 1, 1, 1)},
}

func TestConvAgainstPurego(t *testing.T) {
	fast, ref := newPair(t)
	for ci, cs := range convCases {
		t.Run(cs.name, func(t *testing.T) {
			p := cs.p
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			rng := tensor.NewRNG(3, "onednn-conv", uint64(ci))
			nx, nw, ny := convSizes(p)
			x := randn(rng, nx, 0, 1)
			w := randn(rng, nw, 0, 1)
			bias := randn(rng, p.K, 0, 1)
			dy := randn(rng, ny, 0, 1)
			for _, withBias := range []bool{false, true} {
				var bb []float32
				if withBias {
					bb = bias
				}
				got, want := nans(ny), nans(ny)
				fast.Conv2DForward(p, x, w, bb, got)
				ref.Conv2DForward(p, x, w, bb, want)
				closeTo(t, fmt.Sprintf("y (bias %v)", withBias), got, want, tolSum)
			}
			got, want := nans(nx), nans(nx)
			fast.Conv2DBackwardData(p, dy, w, got)
			ref.Conv2DBackwardData(p, dy, w, want)
			closeTo(t, "dx", got, want, tolSum)
			for _, withBias := range []bool{false, true} {
				gw, ww := nans(nw), nans(nw)
				var gb, wb []float32
				if withBias {
					gb, wb = nans(p.K), nans(p.K)
				}
				fast.Conv2DBackwardWeights(p, x, dy, gw, gb)
				ref.Conv2DBackwardWeights(p, x, dy, ww, wb)
				closeTo(t, fmt.Sprintf("dw (db %v)", withBias), gw, ww, tolSum)
				if withBias {
					closeTo(t, "db", gb, wb, tolSum)
				}
			}
			var impls []string
			for pass := PassForward; pass <= PassBackwardWeightsBias; pass++ {
				impl, err := fast.ConvImpl(p, pass)
				if err != nil {
					t.Fatal(err)
				}
				impls = append(impls, impl)
			}
			t.Logf("fwd, fwd+bias, bwd data, bwd weights, bwd weights+bias: %s", strings.Join(impls, ", "))
		})
	}
}

// resnet18Convs are the distinct convolutions of a CIFAR ResNet-18 (3x3
// stem, no max pool) at batch n.
func resnet18Convs(n int) []struct {
	name string
	p    backend.Conv2D
} {
	c3 := func(h, c, k, s int) backend.Conv2D { return conv(n, h, h, c, k, 3, 3, s, s, 1, 1, 1, 1, 1) }
	c1 := func(h, c, k int) backend.Conv2D { return conv(n, h, h, c, k, 1, 1, 2, 2, 0, 0, 1, 1, 1) }
	return []struct {
		name string
		p    backend.Conv2D
	}{
		{"stem_3to64_32x32", c3(32, 3, 64, 1)},
		{"l1_64to64_32x32", c3(32, 64, 64, 1)},
		{"l2_64to128_s2_32x32", c3(32, 64, 128, 2)},
		{"l2_128to128_16x16", c3(16, 128, 128, 1)},
		{"l2_down1x1_64to128_s2", c1(32, 64, 128)},
		{"l3_128to256_s2_16x16", c3(16, 128, 256, 2)},
		{"l3_256to256_8x8", c3(8, 256, 256, 1)},
		{"l3_down1x1_128to256_s2", c1(16, 128, 256)},
		{"l4_256to512_s2_8x8", c3(8, 256, 512, 2)},
		{"l4_512to512_4x4", c3(4, 512, 512, 1)},
		{"l4_down1x1_256to512_s2", c1(8, 256, 512)},
	}
}

// TestConvImplementations logs the implementations oneDNN picks for the
// ResNet-18 layers in NHWC and fails on a reference (non-JIT) one.
func TestConvImplementations(t *testing.T) {
	fast, _ := newPair(t)
	t.Logf("backend name: %s", fast.Name())
	if !strings.HasPrefix(fast.Name(), "onednn(") {
		t.Errorf("Name() = %q", fast.Name())
	}
	passes := []string{"fwd", "fwd+bias", "bwd_data", "bwd_weights", "bwd_weights+bias"}
	for _, c := range resnet18Convs(256) {
		var impls []string
		for pass := PassForward; pass <= PassBackwardWeightsBias; pass++ {
			impl, err := fast.ConvImpl(c.p, pass)
			if err != nil {
				t.Fatal(err)
			}
			impls = append(impls, passes[pass]+"="+impl)
			if strings.Contains(impl, "ref") {
				t.Errorf("%s %s: reference implementation %q", c.name, passes[pass], impl)
			}
		}
		t.Logf("%-24s %s", c.name, strings.Join(impls, " "))
	}
	for _, m := range []int{256 * 32 * 32, 256} {
		for which, name := range []string{"fwd", "fwd+relu", "bwd", "inference", "inference+relu"} {
			impl, err := fast.BNImpl(m, 64, 1e-5, which)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("batch norm %dx64 %s: %s", m, name, impl)
			if strings.Contains(impl, "ref") {
				t.Errorf("batch norm %s: reference implementation %q", name, impl)
			}
		}
	}
}

func TestBatchNormAgainstPurego(t *testing.T) {
	fast, ref := newPair(t)
	cases := []struct{ m, c int }{{70, 3}, {256, 17}, {256, 64}, {1000, 33}, {2 * 4 * 4, 512}, {4, 5}}
	for ci, cs := range cases {
		for _, relu := range []bool{false, true} {
			t.Run(fmt.Sprintf("%dx%d relu=%v", cs.m, cs.c, relu), func(t *testing.T) {
				m, c := cs.m, cs.c
				const eps = 1e-5
				rng := tensor.NewRNG(4, "onednn-bn", uint64(ci))
				// A mean far from zero checks the variance is computed
				// from centred values.
				x := randn(rng, m*c, 3, 2)
				dy := randn(rng, m*c, 0, 1)
				gamma := randn(rng, c, 1, 0.5)
				beta := randn(rng, c, 0, 0.5)

				y, mean, v := nans(m*c), nans(c), nans(c)
				yr, meanr, vr := nans(m*c), nans(c), nans(c)
				fast.BatchNormForward(m, c, eps, x, gamma, beta, y, mean, v, relu)
				ref.BatchNormForward(m, c, eps, x, gamma, beta, yr, meanr, vr, relu)
				closeTo(t, "mean", mean, meanr, tolBN)
				closeTo(t, "variance", v, vr, tolBN)
				closeTo(t, "y", y, yr, tolBN)

				// Both backwards get the reference forward's outputs, so
				// the ReLU masks agree exactly.
				dx, dg, db := nans(m*c), nans(c), nans(c)
				dxr, dgr, dbr := nans(m*c), nans(c), nans(c)
				fast.BatchNormBackward(m, c, eps, x, yr, dy, gamma, meanr, vr, dx, dg, db, relu)
				ref.BatchNormBackward(m, c, eps, x, yr, dy, gamma, meanr, vr, dxr, dgr, dbr, relu)
				closeTo(t, "dx", dx, dxr, tolBN)
				closeTo(t, "dgamma", dg, dgr, tolBN)
				closeTo(t, "dbeta", db, dbr, tolBN)

				// Inference with running statistics unrelated to x.
				rm, rv := randn(rng, c, 2, 1), randn(rng, c, 0, 1)
				for i := range rv {
					rv[i] = rv[i]*rv[i] + 0.1
				}
				yi, yir := nans(m*c), nans(m*c)
				fast.BatchNormInference(m, c, eps, x, gamma, beta, rm, rv, yi, relu)
				ref.BatchNormInference(m, c, eps, x, gamma, beta, rm, rv, yir, relu)
				closeTo(t, "inference y", yi, yir, tolBN)
			})
		}
	}
}

// TestBatchNormBackwardKeepsInputs checks the ReLU backward (which masks dy
// into dx and runs in place there) leaves its inputs alone.
func TestBatchNormBackwardKeepsInputs(t *testing.T) {
	fast, _ := newPair(t)
	m, c := 64, 16
	rng := tensor.NewRNG(4, "onednn-bn-inputs")
	x, dy := randn(rng, m*c, 0, 1), randn(rng, m*c, 0, 1)
	gamma, beta := randn(rng, c, 1, 0.1), randn(rng, c, 0, 0.1)
	y, mean, v := make([]float32, m*c), make([]float32, c), make([]float32, c)
	fast.BatchNormForward(m, c, 1e-5, x, gamma, beta, y, mean, v, true)
	keep := append([]float32(nil), dy...)
	keepY := append([]float32(nil), y...)
	dx, dg, db := make([]float32, m*c), make([]float32, c), make([]float32, c)
	fast.BatchNormBackward(m, c, 1e-5, x, y, dy, gamma, mean, v, dx, dg, db, true)
	exact(t, "dy", dy, keep)
	exact(t, "y", y, keepY)
}

func TestGemmAgainstPurego(t *testing.T) {
	fast, ref := newPair(t)
	sizes := []struct{ m, n, k int }{{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {64, 130, 31}, {256, 128, 512}}
	for si, sz := range sizes {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for _, beta := range []float32{0, 0.5} {
					name := fmt.Sprintf("%dx%dx%d tA=%v tB=%v beta=%v", sz.m, sz.n, sz.k, ta, tb, beta)
					t.Run(name, func(t *testing.T) {
						rng := tensor.NewRNG(5, "onednn-gemm", uint64(si))
						a := randn(rng, sz.m*sz.k, 0, 1)
						bm := randn(rng, sz.k*sz.n, 0, 1)
						c0 := randn(rng, sz.m*sz.n, 0, 1)
						if beta == 0 {
							c0 = nans(sz.m * sz.n) // beta 0 must not read c
						}
						got := append([]float32(nil), c0...)
						want := append([]float32(nil), c0...)
						fast.Gemm(ta, tb, sz.m, sz.n, sz.k, 1.5, a, bm, beta, got)
						ref.Gemm(ta, tb, sz.m, sz.n, sz.k, 1.5, a, bm, beta, want)
						closeTo(t, "c", got, want, tolSum)
					})
				}
			}
		}
	}
}

func TestElementwiseAgainstPurego(t *testing.T) {
	fast, ref := newPair(t)
	for _, n := range []int{0, 1, 17, 1000, 100003} {
		rng := tensor.NewRNG(6, "onednn-elementwise", uint64(n))
		a, b := randn(rng, n, 0, 1), randn(rng, n, 0, 1)
		if n > 3 {
			a[1], a[2], a[3] = 0, float32(math.Copysign(0, -1)), float32(math.Inf(-1))
		}
		for _, op := range []struct {
			name string
			f    func(be backend.Backend, y []float32)
		}{
			{"relu", func(be backend.Backend, y []float32) { be.ReLUForward(a, y) }},
			{"relu backward", func(be backend.Backend, y []float32) { be.ReLUBackward(a, b, y) }},
			{"add", func(be backend.Backend, y []float32) { be.Add(a, b, y) }},
			{"add relu", func(be backend.Backend, y []float32) { be.AddReLUForward(a, b, y) }},
			{"axpy", func(be backend.Backend, y []float32) { copy(y, b); be.Axpy(-0.75, a, y) }},
			{"scale", func(be backend.Backend, y []float32) { be.Scale(1.25, a, y) }},
			{"scale in place", func(be backend.Backend, y []float32) { copy(y, a); be.Scale(-3, y, y) }},
		} {
			got, want := nans(n), nans(n)
			op.f(fast, got)
			op.f(ref, want)
			exact(t, fmt.Sprintf("%s n=%d", op.name, n), got, want)
		}
	}
}

func TestGlobalAvgPoolAgainstPurego(t *testing.T) {
	fast, ref := newPair(t)
	for _, sz := range []struct{ n, hw, c int }{{1, 1, 1}, {3, 49, 17}, {256, 16, 512}, {2, 1024, 64}} {
		rng := tensor.NewRNG(7, "onednn-gap", uint64(sz.hw))
		x := randn(rng, sz.n*sz.hw*sz.c, 1, 1)
		dy := randn(rng, sz.n*sz.c, 0, 1)
		got, want := nans(sz.n*sz.c), nans(sz.n*sz.c)
		fast.GlobalAvgPoolForward(sz.n, sz.hw, sz.c, x, got)
		ref.GlobalAvgPoolForward(sz.n, sz.hw, sz.c, x, want)
		// A float32 sum of hw values against purego's float64 one.
		closeTo(t, fmt.Sprintf("gap %v", sz), got, want, 1e-5)
		gdx, wdx := nans(len(x)), nans(len(x))
		fast.GlobalAvgPoolBackward(sz.n, sz.hw, sz.c, dy, gdx)
		ref.GlobalAvgPoolBackward(sz.n, sz.hw, sz.c, dy, wdx)
		exact(t, fmt.Sprintf("gap backward %v", sz), gdx, wdx)
	}
}

func TestMaxPoolAgainstPurego(t *testing.T) {
	fast, ref := newPair(t)
	pools := []backend.Pool2D{
		{N: 2, H: 9, W: 7, C: 5, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1},
		{N: 3, H: 8, W: 8, C: 16, KH: 2, KW: 2, StrideH: 2, StrideW: 2},
		{N: 2, H: 6, W: 5, C: 3, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},
		{N: 4, H: 32, W: 32, C: 64, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1},
	}
	for pi, p := range pools {
		rng := tensor.NewRNG(8, "onednn-maxpool", uint64(pi))
		x := make([]float32, p.N*p.H*p.W*p.C)
		for i := range x {
			x[i] = float32(rng.IntN(5)) // many ties: the first maximum must win
		}
		ny := p.N * p.OutH() * p.OutW() * p.C
		y, yr := nans(ny), nans(ny)
		am, amr := make([]int32, ny), make([]int32, ny)
		fast.MaxPoolForward(p, x, y, am)
		ref.MaxPoolForward(p, x, yr, amr)
		exact(t, fmt.Sprintf("maxpool %d y", pi), y, yr)
		for i := range am {
			if am[i] != amr[i] {
				t.Fatalf("maxpool %d argmax[%d] = %d, want %d", pi, i, am[i], amr[i])
			}
		}
		dy := randn(rng, ny, 0, 1)
		dx, dxr := nans(len(x)), nans(len(x))
		fast.MaxPoolBackward(p, dy, am, dx)
		ref.MaxPoolBackward(p, dy, amr, dxr)
		// Overlapping windows add in the same order in both.
		exact(t, fmt.Sprintf("maxpool %d dx", pi), dx, dxr)
	}
}

// TestNoAllocationsAfterWarmup checks the Go side of a training step's heavy
// calls allocates nothing once the primitives exist (the C side allocates
// only when it creates a primitive).
func TestNoAllocationsAfterWarmup(t *testing.T) {
	fast, _ := newPair(t)
	p := conv(4, 8, 8, 16, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1)
	nx, nw, ny := convSizes(p)
	x, w, y := make([]float32, nx), make([]float32, nw), make([]float32, ny)
	dw, db, dx := make([]float32, nw), make([]float32, p.K), make([]float32, nx)
	m, c := ny/p.K, p.K
	gamma, beta, mean, v := make([]float32, c), make([]float32, c), make([]float32, c), make([]float32, c)
	for i := range v {
		v[i], gamma[i] = 1, 1
	}
	yy, dyy := make([]float32, ny), make([]float32, ny)
	step := func() {
		fast.Conv2DForward(p, x, w, nil, y)
		fast.BatchNormForward(m, c, 1e-5, y, gamma, beta, yy, mean, v, true)
		fast.BatchNormBackward(m, c, 1e-5, y, yy, yy, gamma, mean, v, dyy, db, db, true)
		fast.Conv2DBackwardData(p, dyy, w, dx)
		fast.Conv2DBackwardWeights(p, x, dyy, dw, db)
		fast.ReLUForward(y, yy)
		fast.Gemm(false, true, 16, 16, 16, 1, w, w, 0, dw)
	}
	step()
	if a := testing.AllocsPerRun(5, step); a != 0 {
		t.Errorf("%v allocations per step after warm-up", a)
	}
}

// TestConcurrentCalls runs different shapes from several goroutines at once.
func TestConcurrentCalls(t *testing.T) {
	fast, ref := newPair(t)
	var wg sync.WaitGroup
	for gi, cs := range convCases[:6] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := cs.p
			rng := tensor.NewRNG(9, "onednn-concurrent", uint64(gi))
			nx, nw, ny := convSizes(p)
			x, w := randn(rng, nx, 0, 1), randn(rng, nw, 0, 1)
			want := make([]float32, ny)
			ref.Conv2DForward(p, x, w, nil, want)
			for range 20 {
				got := nans(ny)
				fast.Conv2DForward(p, x, w, nil, got)
				closeTo(t, cs.name, got, want, tolSum)
			}
		}()
	}
	wg.Wait()
}

func TestUseAfterClosePanics(t *testing.T) {
	fast, _ := newPair(t)
	fast.Close()
	defer func() {
		if msg := fmt.Sprint(recover()); !strings.Contains(msg, "after Close") {
			t.Errorf("panic %q", msg)
		}
	}()
	p := conv(1, 4, 4, 3, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1)
	fast.Conv2DForward(p, make([]float32, 48), make([]float32, 108), nil, make([]float32, 64))
}

func TestPanicsNameTheShape(t *testing.T) {
	fast, _ := newPair(t)
	p := conv(1, 4, 4, 3, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1)
	defer func() {
		msg := fmt.Sprint(recover())
		if !strings.Contains(msg, "Conv2DForward") || !strings.Contains(msg, "y has") {
			t.Errorf("panic %q", msg)
		}
	}()
	fast.Conv2DForward(p, make([]float32, 48), make([]float32, 108), nil, make([]float32, 10))
}
