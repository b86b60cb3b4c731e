package autograd

// Finite-difference checks of every op's backward pass on the purego
// backend, plus tests of the tape's bookkeeping (gradient accumulation,
// buffer reuse across steps, parameter gradients being overwritten).
//
// How the checks are sized. The engine is float32 only, so the perturbed
// forward passes run in float32; the loss L = Weighted(out, r) is evaluated
// here by summing float64(out[i])*float64(r[i]) in float64 (the float32
// products are exact in float64 and the float64 sum adds ~1e-16 relative),
// so the only noise is the float32 rounding inside the op. If the op's
// outputs are each off by a few ulps, L is off by about
// 2^-24·Σ|out·r| ≈ 6e-8·Σ|out·r|, and the central difference
// (L(x+h) - L(x-h)) / 2h by about 6e-8·Σ|out·r|/h (this estimate is logged
// with -v as "noise"). The truncation error of the central difference is
// h²/6·|∂³L/∂x³|: it is exactly zero when L is a polynomial of degree <= 2
// in the perturbed element (linear ops, bilinear ops like conv and matmul,
// MatMulT(a, a)), and also for piecewise-linear ops as long as x±h does not
// cross a kink. So:
//
//   - linear / bilinear ops: a large step h = 1/8 (exact in float32 for the
//     magnitudes used) keeps the rounding noise low; with Σ|out·r| <= ~1e3
//     the noise bound is ~5e-4 and the realistic (random-walk) noise far
//     smaller, so abs 1e-3 + rel 1e-3 passes with margin and still catches
//     any wrong scale, index or sign (an O(1) relative error).
//   - piecewise-linear ops (ReLU, AddReLU, max pool): h = 1e-2, with inputs
//     kept at least 0.05 from the kinks (|x| >= 0.05, distinct max-pool
//     values 0.07 apart), so x±h never crosses one and truncation is again
//     zero. ReLU and max are exact in float32 (no rounding at all, the
//     logged noise estimate is an overestimate for them) and AddReLU rounds
//     once, so abs 1e-3 + rel 1e-3 leaves a wide margin.
//   - smooth ops (batch norm, softmax, L2 normalise, cross-entropy):
//     h = 1e-2 makes truncation h²/6·O(1) ≈ 2e-5 and noise <= ~3e-4;
//     abs 1e-3..2e-3 plus rel 2e-3 covers both with a 3-5x margin, for
//     gradients of order 0.1..1.
//
// The perturbation itself is rounded to float32, so the divisor is the
// actual float64 difference of the two perturbed float32 values.

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/tensor"
)

// gradTol is a finite-difference check's step and tolerance: an element
// passes when |fd - analytic| <= Abs + Rel*max(|fd|, |analytic|).
type gradTol struct {
	Step     float32
	Abs, Rel float64
}

var (
	// linTol is for ops that are affine (or quadratic) in each element:
	// truncation is zero, so a big step minimises rounding noise.
	linTol = gradTol{Step: 1.0 / 8, Abs: 1e-3, Rel: 1e-3}
	// pwlTol is for piecewise-linear ops with inputs >= 0.05 from kinks.
	pwlTol = gradTol{Step: 1e-2, Abs: 1e-3, Rel: 1e-3}
	// smoothTol is for smooth nonlinear ops (truncation ~2e-5).
	smoothTol = gradTol{Step: 1e-2, Abs: 2e-3, Rel: 2e-3}
)

// maxCheckedElems bounds how many elements of one input are perturbed.
const maxCheckedElems = 200

func newTestTape() *Tape { return NewTape(purego.New(2)) }

// lossWeights returns the fixed r of L = sum(out*r): magnitudes in
// [0.5, 1.5) with random signs, so that every output element matters.
func lossWeights(name string, n int) *tensor.Tensor {
	rng := tensor.NewRNG(11, "gradcheck-r/"+name)
	r := tensor.New(n)
	for i := range r.Data {
		v := rng.Uniform(0.5, 1.5)
		if rng.IntN(2) == 0 {
			v = -v
		}
		r.Data[i] = float32(v)
	}
	return r
}

func weightedSum(out []float32, r []float32) float64 {
	var s float64
	for i, v := range out {
		s += float64(v) * float64(r[i])
	}
	return s
}

// checkGrads compares the analytic gradients of L = Weighted(build(tape), r)
// with respect to each input against central finite differences. The inputs
// must be leaves that require a gradient and that build reads (it is called
// once for the analytic gradients and twice per perturbed element, each time
// on the same tape after Reset). It returns nil or an error that describes
// the mismatches; it does not fail t itself, so that a test can assert that
// a wrong gradient is caught.
func checkGrads(t testing.TB, name string, tol gradTol, build func(*Tape) *Var, inputs ...*Var) error {
	t.Helper()
	tp := newTestTape()
	out := build(tp)
	r := lossWeights(name, out.Value.Len())
	l0 := weightedSum(out.Value.Data, r.Data)
	var absSum float64
	for i, v := range out.Value.Data {
		absSum += math.Abs(float64(v) * float64(r.Data[i]))
	}
	loss := tp.Weighted(out, r)
	if err := tp.Backward(loss); err != nil {
		return fmt.Errorf("%s: backward: %v", name, err)
	}
	analytic := make([][]float32, len(inputs))
	for k, in := range inputs {
		switch {
		case !in.RequiresGrad:
			return fmt.Errorf("%s: input %d %v does not require a gradient", name, k, in.Value.Shape)
		case !in.HasGrad(tp):
			return fmt.Errorf("%s: input %d %v received no gradient", name, k, in.Value.Shape)
		}
		analytic[k] = slices.Clone(in.Grad.Data)
	}

	lossAt := func() float64 {
		tp.Reset()
		tp.NoGrad = true
		defer func() { tp.NoGrad = false }()
		o := build(tp)
		return weightedSum(o.Value.Data, r.Data)
	}
	// The unperturbed forward on the reused buffers must reproduce L.
	if l := lossAt(); l != l0 {
		return fmt.Errorf("%s: forward after Reset gives L = %v, first pass %v", name, l, l0)
	}

	type bad struct {
		input, elem int
		fd, an      float64
		ratio       float64
	}
	var bads []bad
	checked, worst := 0, 0.0
	rng := tensor.NewRNG(13, "gradcheck-elems/"+name)
	for k, in := range inputs {
		data := in.Value.Data
		idx := make([]int, len(data))
		for i := range idx {
			idx[i] = i
		}
		if len(idx) > maxCheckedElems {
			idx = rng.Perm(len(data))[:maxCheckedElems]
			sort.Ints(idx)
		}
		for _, i := range idx {
			orig := data[i]
			xp, xm := orig+tol.Step, orig-tol.Step
			data[i] = xp
			lp := lossAt()
			data[i] = xm
			lm := lossAt()
			data[i] = orig
			fd := (lp - lm) / (float64(xp) - float64(xm))
			an := float64(analytic[k][i])
			allowed := tol.Abs + tol.Rel*max(math.Abs(fd), math.Abs(an))
			ratio := math.Abs(fd-an) / allowed
			if math.IsNaN(ratio) {
				ratio = math.Inf(1)
			}
			worst = max(worst, ratio)
			checked++
			if ratio > 1 {
				bads = append(bads, bad{k, i, fd, an, ratio})
			}
		}
	}
	t.Logf("%s: %d elements, worst |fd-an|/allowed = %.3g, rounding noise estimate %.2g",
		name, checked, worst, 6e-8*absSum/float64(tol.Step))
	if len(bads) == 0 {
		return nil
	}
	sort.Slice(bads, func(i, j int) bool { return bads[i].ratio > bads[j].ratio })
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d of %d gradient elements mismatch (step %g, abs %g, rel %g); worst:",
		name, len(bads), checked, tol.Step, tol.Abs, tol.Rel)
	for _, m := range bads[:min(len(bads), 5)] {
		fmt.Fprintf(&b, "\n  input %d elem %d: finite difference %.6g, analytic %.6g", m.input, m.elem, m.fd, m.an)
	}
	return &gradMismatch{count: len(bads), msg: b.String()}
}

// gradMismatch is checkGrads' error when some elements disagree.
type gradMismatch struct {
	count int
	msg   string
}

func (e *gradMismatch) Error() string { return e.msg }

// gradOK fails t when checkGrads reports anything.
func gradOK(t *testing.T, name string, tol gradTol, build func(*Tape) *Var, inputs ...*Var) {
	t.Helper()
	if err := checkGrads(t, name, tol, build, inputs...); err != nil {
		t.Error(err)
	}
}

// randTensor returns N(0, std²) values.
func randTensor(rng *tensor.RNG, std float64, shape ...int) *tensor.Tensor {
	x := tensor.New(shape...)
	rng.FillNormal(x, std)
	return x
}

func param(rng *tensor.RNG, std float64, shape ...int) *Var {
	return NewParam(randTensor(rng, std, shape...))
}

// awayFromZero resamples every value with |x| < margin.
func awayFromZero(rng *tensor.RNG, x []float32, std, margin float64) {
	for i := range x {
		for math.Abs(float64(x[i])) < margin {
			x[i] = float32(rng.Normal() * std)
		}
	}
}

// kinkMargin is how far from 0 inputs to ReLU-like kinks are kept; with
// pwlTol.Step = 1e-2 a perturbation cannot cross a kink.
const kinkMargin = 0.05

func TestGradConv2D(t *testing.T) {
	type cse struct {
		name    string
		n, h, w int
		c, k    int
		r, s    int
		o       ConvOpts
		bias    bool
	}
	cases := []cse{
		{"3x3 s1 p1 bias C=3 5x7", 2, 5, 7, 3, 4, 3, 3, ConvOpts{Stride: 1, Pad: 1}, true},
		{"3x3 s1 p1 nobias", 2, 5, 7, 3, 4, 3, 3, ConvOpts{Pad: 1}, false},
		{"3x3 s2 p1", 3, 5, 7, 3, 4, 3, 3, ConvOpts{Stride: 2, Pad: 1}, true},
		{"3x3 s2 p0 even", 2, 6, 6, 2, 3, 3, 3, ConvOpts{Stride: 2}, false},
		{"3x3 dil2 p2", 2, 7, 5, 3, 2, 3, 3, ConvOpts{Pad: 2, Dilation: 2}, true},
		{"3x3 dil2 s2 p1", 1, 9, 8, 2, 3, 3, 3, ConvOpts{Stride: 2, Pad: 1, Dilation: 2}, false},
		{"groups2", 2, 5, 7, 4, 6, 3, 3, ConvOpts{Pad: 1, Groups: 2}, true},
		{"groups2 s2", 2, 5, 7, 4, 2, 3, 3, ConvOpts{Stride: 2, Pad: 1, Groups: 2}, false},
		{"depthwise", 2, 5, 7, 3, 3, 3, 3, ConvOpts{Pad: 1, Groups: 3}, true},
		{"depthwise x2 s2", 2, 5, 7, 3, 6, 3, 3, ConvOpts{Stride: 2, Pad: 1, Groups: 3}, false},
		{"1x1 s2 downsample", 2, 5, 7, 4, 5, 1, 1, ConvOpts{Stride: 2}, false},
		{"7x7 s2 p3 stem", 1, 9, 11, 3, 4, 7, 7, ConvOpts{Stride: 2, Pad: 3}, false},
		{"1x3 nonsquare", 2, 4, 5, 3, 2, 1, 3, ConvOpts{Pad: 1}, true},
		{"pad beyond reach", 1, 3, 4, 2, 3, 1, 1, ConvOpts{Pad: 2}, true},
	}
	for ci, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := tensor.NewRNG(1, "conv", uint64(ci))
			groups := max(c.o.Groups, 1)
			x := param(rng, 1, c.n, c.h, c.w, c.c)
			w := param(rng, 0.4, c.k, c.c/groups, c.r, c.s)
			var b *Var
			inputs := []*Var{x, w}
			if c.bias {
				b = param(rng, 0.5, c.k)
				inputs = append(inputs, b)
			}
			gradOK(t, "conv "+c.name, linTol, func(tp *Tape) *Var { return tp.Conv2D(x, w, b, c.o) }, inputs...)
		})
	}
}

// TestGradConv2DPartial checks convolutions where only some inputs need a
// gradient: a constant image (the first layer) and a frozen weight.
func TestGradConv2DPartial(t *testing.T) {
	rng := tensor.NewRNG(2, "conv-partial")
	o := ConvOpts{Stride: 2, Pad: 1}
	xc := Const(randTensor(rng, 1, 2, 5, 7, 3))
	w := param(rng, 0.4, 4, 3, 3, 3)
	b := param(rng, 0.5, 4)
	gradOK(t, "conv const x", linTol, func(tp *Tape) *Var { return tp.Conv2D(xc, w, b, o) }, w, b)

	x := param(rng, 1, 2, 5, 7, 3)
	wc := Const(randTensor(rng, 0.4, 4, 3, 3, 3))
	gradOK(t, "conv frozen w", linTol, func(tp *Tape) *Var { return tp.Conv2D(x, wc, b, o) }, x, b)
	gradOK(t, "conv frozen w, bias only", linTol, func(tp *Tape) *Var { return tp.Conv2D(xc, wc, b, o) }, b)
}

// reluSafeBeta picks, for batch-norm input x[M,C] and gamma, a beta that
// puts the ReLU threshold -beta/gamma in the middle of the widest gap between
// normalised values (with at least two values on each side, so both sides
// of the kink are exercised), and returns it with the smallest |gamma*xhat +
// beta| over all elements.
func reluSafeBeta(x []float32, m, c int, gamma []float32) ([]float32, float64, float64) {
	beta := make([]float32, c)
	margin, maxXhat := math.Inf(1), 0.0
	for j := 0; j < c; j++ {
		var mu, v float64
		for i := 0; i < m; i++ {
			mu += float64(x[i*c+j])
		}
		mu /= float64(m)
		for i := 0; i < m; i++ {
			d := float64(x[i*c+j]) - mu
			v += d * d
		}
		sd := math.Sqrt(v/float64(m) + 1e-5)
		xh := make([]float64, m)
		for i := range xh {
			xh[i] = (float64(x[i*c+j]) - mu) / sd
			maxXhat = max(maxXhat, math.Abs(xh[i]))
		}
		sort.Float64s(xh)
		best := 1
		for i := 1; i+2 < m; i++ {
			if xh[i+1]-xh[i] > xh[best+1]-xh[best] {
				best = i
			}
		}
		beta[j] = float32(-float64(gamma[j]) * (xh[best] + xh[best+1]) / 2)
		for _, v := range xh {
			margin = min(margin, math.Abs(float64(gamma[j])*v+float64(beta[j])))
		}
	}
	return beta, margin, maxXhat
}

func TestGradBatchNorm(t *testing.T) {
	cases := []struct {
		name  string
		shape []int
		relu  bool
	}{
		{"NHWC", []int{2, 3, 3, 3}, false},
		{"NHWC relu", []int{2, 3, 3, 3}, true},
		{"NC", []int{6, 4}, false},
		{"NC relu", []int{6, 4}, true},
	}
	for ci, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			rng := tensor.NewRNG(3, "bn", uint64(ci))
			c := cs.shape[len(cs.shape)-1]
			m := tensor.Numel(cs.shape) / c
			xt := randTensor(rng, 1.5, cs.shape...)
			for i := range xt.Data {
				xt.Data[i] += 0.3 * float32(i%c) // a different mean per channel
			}
			gamma := tensor.New(c)
			for j := range gamma.Data {
				g := rng.Uniform(0.6, 1.5)
				if j%2 == 1 {
					g = -g
				}
				gamma.Data[j] = float32(g)
			}
			beta := randTensor(rng, 0.3, c)
			tol := smoothTol
			if cs.relu {
				var margin, maxXhat float64
				beta.Data, margin, maxXhat = reluSafeBeta(xt.Data, m, c, gamma.Data)
				// Perturbing x_i by h moves its pre-activation by at most
				// |gamma|*h/sigma (sigma >= ~0.8 here) and the others by
				// O(h/m); gamma by h moves it by h*|xhat|; beta by h by h.
				need := 2 * float64(tol.Step) * max(2, maxXhat)
				if margin < need {
					t.Fatalf("setup: pre-activations only %.3g from the ReLU kink, need %.3g", margin, need)
				}
			}
			x, g, b := NewParam(xt), NewParam(gamma), NewParam(beta)
			st := &BatchNormStats{Mean: tensor.New(c), Var: tensor.New(c), Momentum: 0.1, Eps: 1e-5}
			build := func(tp *Tape) *Var { return tp.BatchNorm(x, g, b, st, cs.relu) }
			gradOK(t, "batchnorm "+cs.name, tol, build, x, g, b)

			// A constant input (no dx wanted) goes through the scratch path.
			xc := Const(xt)
			gradOK(t, "batchnorm const x "+cs.name, tol, func(tp *Tape) *Var {
				return tp.BatchNorm(xc, g, b, st, cs.relu)
			}, g, b)
		})
	}
}

func TestGradElementwise(t *testing.T) {
	rng := tensor.NewRNG(4, "elementwise")
	x := param(rng, 1, 2, 3, 4, 5)
	awayFromZero(rng, x.Value.Data, 1, kinkMargin)
	gradOK(t, "relu", pwlTol, func(tp *Tape) *Var { return tp.ReLU(x) }, x)

	a := param(rng, 1, 2, 3, 4, 5)
	b := param(rng, 1, 2, 3, 4, 5)
	for i := range a.Value.Data {
		for math.Abs(float64(a.Value.Data[i]+b.Value.Data[i])) < kinkMargin {
			b.Value.Data[i] = float32(rng.Normal())
		}
	}
	gradOK(t, "addrelu", pwlTol, func(tp *Tape) *Var { return tp.AddReLU(a, b) }, a, b)
	gradOK(t, "add", linTol, func(tp *Tape) *Var { return tp.Add(a, b) }, a, b)
	gradOK(t, "scale", linTol, func(tp *Tape) *Var { return tp.Scale(a, -1.7) }, a)

	// Only one side requiring a gradient.
	bc := Const(b.Value)
	gradOK(t, "addrelu const b", pwlTol, func(tp *Tape) *Var { return tp.AddReLU(bc, a) }, a)
	gradOK(t, "add const b", linTol, func(tp *Tape) *Var { return tp.Add(a, bc) }, a)
}

func TestGradMaxPool(t *testing.T) {
	for ci, shape := range [][]int{{2, 5, 7, 3}, {1, 6, 6, 2}, {2, 4, 3, 1}} {
		rng := tensor.NewRNG(5, "maxpool", uint64(ci))
		xt := tensor.New(shape...)
		// Distinct values 0.07 apart (> 2*step), so no perturbation changes
		// which element of a window is the maximum.
		for i, p := range rng.Perm(xt.Len()) {
			xt.Data[i] = 0.07 * float32(p-xt.Len()/2)
		}
		x := NewParam(xt)
		gradOK(t, fmt.Sprintf("maxpool 3x3 s2 p1 %v", shape), pwlTol,
			func(tp *Tape) *Var { return tp.MaxPool2D(x, 3, 2, 1) }, x)
	}
}

func TestGradPoolAndLinear(t *testing.T) {
	rng := tensor.NewRNG(6, "linear")
	x4 := param(rng, 1, 2, 3, 5, 4)
	gradOK(t, "globalavgpool", linTol, func(tp *Tape) *Var { return tp.GlobalAvgPool(x4) }, x4)

	x := param(rng, 1, 5, 7)
	w := param(rng, 0.5, 3, 7)
	b := param(rng, 0.5, 3)
	gradOK(t, "linear bias", linTol, func(tp *Tape) *Var { return tp.Linear(x, w, b) }, x, w, b)
	gradOK(t, "linear nobias", linTol, func(tp *Tape) *Var { return tp.Linear(x, w, nil) }, x, w)
	xc := Const(x.Value)
	gradOK(t, "linear const x", linTol, func(tp *Tape) *Var { return tp.Linear(xc, w, b) }, w, b)

	a := param(rng, 1, 4, 6)
	bm := param(rng, 1, 5, 6)
	gradOK(t, "matmulT", linTol, func(tp *Tape) *Var { return tp.MatMulT(a, bm) }, a, bm)
	// a a^T is quadratic in each element: central differences are exact.
	gradOK(t, "matmulT self", linTol, func(tp *Tape) *Var { return tp.MatMulT(a, a) }, a)
}

func TestGradChannels(t *testing.T) {
	rng := tensor.NewRNG(7, "channels")
	a := param(rng, 1, 2, 3, 3, 2)
	b := param(rng, 1, 2, 3, 3, 3)
	c := param(rng, 1, 2, 3, 3, 1)
	gradOK(t, "concat NHWC", linTol, func(tp *Tape) *Var { return tp.ConcatChannels(a, b, c) }, a, b, c)
	gradOK(t, "concat repeated", linTol, func(tp *Tape) *Var { return tp.ConcatChannels(a, b, a) }, a, b)
	p := param(rng, 1, 4, 3)
	q := param(rng, 1, 4, 5)
	gradOK(t, "concat NC", linTol, func(tp *Tape) *Var { return tp.ConcatChannels(p, q) }, p, q)

	x := param(rng, 1, 2, 3, 3, 6)
	gradOK(t, "slice middle", linTol, func(tp *Tape) *Var { return tp.SliceChannels(x, 2, 5) }, x)
	gradOK(t, "slice both halves", linTol, func(tp *Tape) *Var {
		return tp.ConcatChannels(tp.SliceChannels(x, 3, 6), tp.SliceChannels(x, 0, 3))
	}, x)
	gradOK(t, "slice NC", linTol, func(tp *Tape) *Var { return tp.SliceChannels(q, 0, 2) }, q)
}

func TestGradRows(t *testing.T) {
	rng := tensor.NewRNG(8, "rows")
	x := param(rng, 1, 4, 5)
	gradOK(t, "softmax", smoothTol, func(tp *Tape) *Var { return tp.Softmax(x) }, x)
	gradOK(t, "l2normalize", smoothTol, func(tp *Tape) *Var { return tp.L2Normalize(x) }, x)
	labels := []int32{2, 0, 4, 4}
	gradOK(t, "crossentropy", smoothTol, func(tp *Tape) *Var { return tp.CrossEntropy(x, labels) }, x)
	gradOK(t, "sum", linTol, func(tp *Tape) *Var { return tp.Sum(x) }, x)
	w := randTensor(rng, 1, 4, 5)
	gradOK(t, "weighted", linTol, func(tp *Tape) *Var { return tp.Weighted(x, w) }, x)
}

// TestGradComposite chains ops the way a SimCLR step does: a residual block
// and the NT-Xent-style head, every input checked at once.
func TestGradComposite(t *testing.T) {
	rng := tensor.NewRNG(9, "composite")
	img := Const(randTensor(rng, 1, 4, 6, 6, 3))
	w1 := param(rng, 0.3, 4, 3, 3, 3)
	g1, b1 := NewParam(tensor.FromSlice([]float32{1.2, 0.9, 1.1, 0.8}, 4)), param(rng, 0.1, 4)
	w2 := param(rng, 0.3, 4, 4, 3, 3)
	fc := param(rng, 0.5, 3, 4)
	fcb := param(rng, 0.1, 3)
	labels := []int32{1, 0, 3, 2}
	// Smooth head (softmax/L2/CE, h=1e-2), conv weights are the perturbed
	// elements; the ReLU/max-pool kinks could be crossed by a perturbation
	// of a weight, so this check uses a smaller step and looser tolerance:
	// with h = 1e-3 a crossing needs a pre-activation within ~1e-3 of 0
	// (unlikely for 100-odd values, and the seed is fixed), at the price of
	// 10x the rounding noise (6e-8·Σ|out·r|/1e-3 ≈ 6e-5 here, Σ|out·r| ≈ 1);
	// truncation through the smooth head is ~h²/6 = 2e-7.
	tol := gradTol{Step: 1e-3, Abs: 2e-3, Rel: 5e-3}
	st := &BatchNormStats{Mean: tensor.New(4), Var: tensor.New(4), Momentum: 0.1, Eps: 1e-5}
	build := func(tp *Tape) *Var {
		h := tp.Conv2D(img, w1, nil, ConvOpts{Stride: 1, Pad: 1})
		h = tp.BatchNorm(h, g1, b1, st, true)
		h = tp.MaxPool2D(h, 3, 2, 1)
		r := tp.Conv2D(h, w2, nil, ConvOpts{Pad: 1})
		h = tp.AddReLU(r, h)
		z := tp.GlobalAvgPool(h)
		z = tp.Linear(z, fc, fcb)
		z = tp.L2Normalize(z)
		s := tp.Scale(tp.MatMulT(z, z), 1/0.5)
		return tp.CrossEntropy(s, labels)
	}
	gradOK(t, "composite", tol, build, w1, g1, b1, w2, fc, fcb)
}

// TestGradAccumulation checks values used more than once: the second and
// later gradient contributions go through scratch buffers and are added.
func TestGradAccumulation(t *testing.T) {
	rng := tensor.NewRNG(10, "accum")
	x := param(rng, 1, 2, 5, 7, 3)

	// Add(x, x): the gradient is exactly 2r.
	tp := newTestTape()
	out := tp.Add(x, x)
	r := lossWeights("add-self", out.Value.Len())
	if err := tp.Backward(tp.Weighted(out, r)); err != nil {
		t.Fatal(err)
	}
	for i, g := range x.Grad.Data {
		if g != 2*r.Data[i] {
			t.Fatalf("Add(x, x): grad[%d] = %v, want %v", i, g, 2*r.Data[i])
		}
	}
	gradOK(t, "add self", linTol, func(tp *Tape) *Var { return tp.Add(x, x) }, x)
	awayFromZero(rng, x.Value.Data, 1, kinkMargin)
	gradOK(t, "addrelu self", pwlTol, func(tp *Tape) *Var { return tp.AddReLU(x, x) }, x)

	// x feeding two convolutions (a leaf and an intermediate value), and a
	// weight shared by two convolutions.
	w1 := param(rng, 0.4, 4, 3, 3, 3)
	w2 := param(rng, 0.4, 4, 3, 1, 1)
	gradOK(t, "leaf into two convs", linTol, func(tp *Tape) *Var {
		return tp.Add(tp.Conv2D(x, w1, nil, ConvOpts{Pad: 1}), tp.Conv2D(x, w2, nil, ConvOpts{}))
	}, x, w1, w2)
	gradOK(t, "intermediate into two convs", linTol, func(tp *Tape) *Var {
		h := tp.Scale(x, 1.3)
		return tp.Add(tp.Conv2D(h, w1, nil, ConvOpts{Pad: 1}), tp.Conv2D(h, w2, nil, ConvOpts{}))
	}, x, w1, w2)
	y := param(rng, 1, 2, 5, 7, 3)
	gradOK(t, "shared weight", linTol, func(tp *Tape) *Var {
		return tp.Add(tp.Conv2D(x, w1, nil, ConvOpts{Pad: 1}), tp.Conv2D(y, w1, nil, ConvOpts{Pad: 1}))
	}, x, y, w1)
	// Three uses, one of them after an op whose output is unused.
	gradOK(t, "three uses", linTol, func(tp *Tape) *Var {
		tp.Scale(x, 5) // output never used: contributes nothing
		return tp.ConcatChannels(tp.Add(x, tp.Scale(x, 2)), x)
	}, x)
}

// wrongGradOp is the identity with a backward pass that corrupt alters.
func wrongGradOp(tp *Tape, x *Var, corrupt func(dx []float32)) *Var {
	out := tp.NewVar(x.Value.Shape...)
	copy(out.Value.Data, x.Value.Data)
	tp.record(out, func() {
		if dx, done := tp.gradOut(x); dx != nil {
			copy(dx, tp.gradIn(out))
			corrupt(dx)
			done()
		}
	}, x)
	return out
}

// TestCheckGradsDetectsErrors makes sure the finite-difference check can
// fail: deliberately wrong backward passes must be reported.
func TestCheckGradsDetectsErrors(t *testing.T) {
	rng := tensor.NewRNG(12, "corrupt")
	x := param(rng, 1, 2, 5, 7, 3)
	w := param(rng, 0.4, 4, 3, 3, 3)
	conv := func(corrupt func([]float32)) func(*Tape) *Var {
		return func(tp *Tape) *Var {
			return tp.Conv2D(wrongGradOp(tp, x, corrupt), w, nil, ConvOpts{Stride: 2, Pad: 1})
		}
	}
	if err := checkGrads(t, "identity wrapper", linTol, conv(func([]float32) {}), x, w); err != nil {
		t.Fatalf("uncorrupted wrapper: %v", err)
	}
	corruptions := []struct {
		name    string
		corrupt func([]float32)
		min     int // at least this many mismatching elements
	}{
		{"scaled by 1.01", func(g []float32) {
			for i := range g {
				g[i] *= 1.01
			}
		}, 100},
		{"one element off by 0.05", func(g []float32) { g[17] += 0.05 }, 1},
		{"two elements swapped", func(g []float32) { g[3], g[40] = g[40], g[3] }, 2},
		{"one sign flipped", func(g []float32) { g[100] = -g[100] }, 1},
		{"zeroed", func(g []float32) { clear(g) }, 100},
	}
	for _, c := range corruptions {
		err := checkGrads(t, "corrupt "+c.name, linTol, conv(c.corrupt), x, w)
		var mm *gradMismatch
		switch {
		case err == nil:
			t.Errorf("%s: checkGrads reported no mismatch", c.name)
		case !asMismatch(err, &mm):
			t.Errorf("%s: unexpected error %v", c.name, err)
		case mm.count < c.min:
			t.Errorf("%s: %d mismatches reported, want >= %d", c.name, mm.count, c.min)
		default:
			t.Logf("%s: caught, %d mismatches", c.name, mm.count)
		}
	}
	// A backward pass that never writes the gradient.
	silent := func(tp *Tape) *Var {
		out := tp.NewVar(x.Value.Shape...)
		copy(out.Value.Data, x.Value.Data)
		tp.record(out, func() {}, x)
		return out
	}
	if err := checkGrads(t, "missing gradient", linTol, silent, x); err == nil {
		t.Error("missing gradient: checkGrads reported nothing")
	}
}

func asMismatch(err error, mm **gradMismatch) bool {
	m, ok := err.(*gradMismatch)
	*mm = m
	return ok
}

// miniNet is a small network over most ops; step runs one training step
// and returns the loss.
type miniNet struct {
	img            *tensor.Tensor
	w1, g1, b1, w2 *Var
	fc             *Var
	st             *BatchNormStats
	labels         []int32
}

func newMiniNet() *miniNet {
	rng := tensor.NewRNG(14, "mininet")
	return &miniNet{
		img: randTensor(rng, 1, 4, 8, 8, 3),
		w1:  param(rng, 0.3, 6, 3, 3, 3),
		g1:  NewParam(tensor.FromSlice([]float32{1, 1.1, 0.9, 1.2, 0.8, 1}, 6)),
		b1:  param(rng, 0.1, 6),
		w2:  param(rng, 0.3, 6, 3, 3, 3),
		fc:  param(rng, 0.4, 5, 6),
		st: &BatchNormStats{Mean: tensor.New(6), Var: tensor.FromSlice([]float32{1, 1, 1, 1, 1, 1}, 6),
			Momentum: 0.1, Eps: 1e-5},
		labels: []int32{1, 0, 3, 2},
	}
}

func (n *miniNet) params() []*Var { return []*Var{n.w1, n.g1, n.b1, n.w2, n.fc} }

func (n *miniNet) step(t *testing.T, tp *Tape) float32 {
	t.Helper()
	x := tp.Input(n.img)
	h := tp.Conv2D(x, n.w1, nil, ConvOpts{Stride: 1, Pad: 1})
	h = tp.BatchNorm(h, n.g1, n.b1, n.st, true)
	h = tp.MaxPool2D(h, 3, 2, 1)
	a := tp.SliceChannels(h, 0, 3)
	b := tp.Conv2D(a, n.w2, nil, ConvOpts{Pad: 1, Groups: 1})
	h = tp.AddReLU(b, tp.ConcatChannels(tp.SliceChannels(h, 3, 6), a))
	z := tp.Linear(tp.GlobalAvgPool(h), n.fc, nil)
	z = tp.L2Normalize(z)
	s := tp.Scale(tp.MatMulT(z, z), 2)
	loss := tp.CrossEntropy(tp.Softmax(s), n.labels)
	if err := tp.Backward(loss); err != nil {
		t.Fatal(err)
	}
	return loss.Value.Data[0]
}

func gradsOf(vs []*Var) [][]float32 {
	out := make([][]float32, len(vs))
	for i, v := range vs {
		out[i] = slices.Clone(v.Grad.Data)
	}
	return out
}

// TestStepReuse runs the same step three times on one tape: results must be
// bitwise identical to the first step and to a fresh tape's (reused buffers
// hold no stale state), the arena must not allocate after the first step,
// and parameter gradients must be overwritten, not accumulated.
func TestStepReuse(t *testing.T) {
	net := newMiniNet()
	tp := newTestTape()
	loss1 := net.step(t, tp)
	grads1 := gradsOf(net.params())
	allocs, bytes := tp.Allocs(), tp.ArenaBytes()
	for s := 2; s <= 3; s++ {
		tp.Reset()
		loss := net.step(t, tp)
		if loss != loss1 {
			t.Errorf("step %d: loss %v, first step %v", s, loss, loss1)
		}
		for i, g := range gradsOf(net.params()) {
			if !slices.Equal(g, grads1[i]) {
				t.Errorf("step %d: gradient of parameter %d differs from the first step's (accumulated or stale buffer?)", s, i)
			}
		}
		if tp.Allocs() != allocs || tp.ArenaBytes() != bytes {
			t.Errorf("step %d: arena grew to %d allocations / %d bytes from %d / %d",
				s, tp.Allocs(), tp.ArenaBytes(), allocs, bytes)
		}
	}
	fresh := newTestTape()
	if loss := net.step(t, fresh); loss != loss1 {
		t.Errorf("fresh tape: loss %v, reused tape %v", loss, loss1)
	}
	for i, g := range gradsOf(net.params()) {
		if !slices.Equal(g, grads1[i]) {
			t.Errorf("fresh tape: gradient of parameter %d differs from the reused tape's", i)
		}
	}
}

// TestParamGradOverwritten checks that a new step's gradient replaces the
// previous step's, and that a parameter the step did not use reports none.
func TestParamGradOverwritten(t *testing.T) {
	rng := tensor.NewRNG(15, "overwrite")
	x := Const(randTensor(rng, 1, 3, 4))
	w := param(rng, 1, 2, 4)
	other := param(rng, 1, 2, 4)
	r1, r2 := lossWeights("r1", 6), lossWeights("r2", 6)

	run := func(tp *Tape, r *tensor.Tensor, useOther bool) []float32 {
		out := tp.Linear(x, w, nil)
		if useOther {
			out = tp.Add(out, tp.Linear(x, other, nil))
		}
		if err := tp.Backward(tp.Weighted(out, r)); err != nil {
			t.Fatal(err)
		}
		return slices.Clone(w.Grad.Data)
	}
	want2 := run(newTestTape(), r2, false)

	tp := newTestTape()
	run(tp, r1, true)
	if !other.HasGrad(tp) {
		t.Fatal("other: no gradient in the step that used it")
	}
	tp.Reset()
	got2 := run(tp, r2, false)
	if !slices.Equal(got2, want2) {
		t.Errorf("second step's gradient %v, want %v (first step's not overwritten)", got2, want2)
	}
	if other.HasGrad(tp) {
		t.Error("a parameter unused in this step reports a gradient")
	}
	if !w.HasGrad(tp) {
		t.Error("w: HasGrad false after the step that used it")
	}
}

func TestBackwardErrors(t *testing.T) {
	rng := tensor.NewRNG(16, "errors")
	tp := newTestTape()
	x := param(rng, 1, 2, 3)
	out := tp.Scale(x, 2)
	if err := tp.Backward(out); err == nil {
		t.Error("Backward from a [2,3] tensor: no error")
	}
	c := tp.Sum(Const(randTensor(rng, 1, 2, 3)))
	if err := tp.Backward(c); err == nil {
		t.Error("Backward from a loss that depends on no parameter: no error")
	}
	tp.Reset()
	tp.NoGrad = true
	l := tp.Sum(tp.Scale(x, 2))
	if err := tp.Backward(l); err == nil {
		t.Error("Backward after a NoGrad forward: no error")
	}
}

// TestTwoTapesSameParams: parameters outlive tapes (a trainer rebuilt, an
// evaluation tape, a fine-tuning phase). Step numbers must not collide
// between tapes, or the second tape's first step adds to the first tape's
// stale gradient.
func TestTwoTapesSameParams(t *testing.T) {
	rng := tensor.NewRNG(17, "two-tapes")
	x := Const(randTensor(rng, 1, 3, 4))
	w := param(rng, 1, 2, 4)
	r := lossWeights("two-tapes", 6)
	grad := func(tp *Tape) []float32 {
		if err := tp.Backward(tp.Weighted(tp.Linear(x, w, nil), r)); err != nil {
			t.Fatal(err)
		}
		return slices.Clone(w.Grad.Data)
	}
	a, b := newTestTape(), newTestTape()
	ga := grad(a)
	if w.HasGrad(b) {
		t.Error("w reports a gradient on a tape that has not run backward")
	}
	if gb := grad(b); !slices.Equal(ga, gb) {
		t.Errorf("second tape's gradient %v, first tape's %v", gb, ga)
	}
	if w.HasGrad(a) {
		t.Error("w reports a current gradient on the first tape after the second wrote it")
	}
}

// TestArenaBytes checks the arena's byte count when buffers are replaced by
// larger ones (float and index buffers alike).
func TestArenaBytes(t *testing.T) {
	var a Arena
	a.Get(10)
	a.GetInt32(10)
	a.Rewind()
	a.Get(30)
	a.GetInt32(30)
	if want := int64(4*30 + 4*30); a.bytes != want {
		t.Errorf("arena holds %d bytes by its count, want %d", a.bytes, want)
	}
	if a.allocs != 4 {
		t.Errorf("%d allocations, want 4", a.allocs)
	}
	a.Rewind()
	a.Get(20)
	a.GetInt32(20)
	if a.allocs != 4 {
		t.Errorf("smaller requests allocated: %d allocations, want 4", a.allocs)
	}
}

// TestReuseAcrossGraphs runs a different graph on a tape whose arena holds
// another step's data: buffers handed out again (including the gradient of
// an output nothing uses, which must read as zero) must not leak stale
// values, so the result must equal a fresh tape's bit for bit.
func TestReuseAcrossGraphs(t *testing.T) {
	rng := tensor.NewRNG(18, "across-graphs")
	x := param(rng, 1, 2, 5, 5, 3)
	w := param(rng, 0.4, 4, 3, 3, 3)
	r := lossWeights("across-graphs", 2*3*3*4)
	step := func(tp *Tape) (float32, []float32, []float32) {
		h := tp.Conv2D(x, w, nil, ConvOpts{Pad: 1})
		tp.Scale(h, 3) // unused: its gradient must be zero, not stale
		h = tp.MaxPool2D(tp.ReLU(h), 3, 2, 1)
		loss := tp.Weighted(h, r)
		if err := tp.Backward(loss); err != nil {
			t.Fatal(err)
		}
		return loss.Value.Data[0], slices.Clone(x.Grad.Data), slices.Clone(w.Grad.Data)
	}
	wantL, wantX, wantW := step(newTestTape())

	tp := newTestTape()
	net := newMiniNet()
	for i := 0; i < 2; i++ {
		net.step(t, tp) // fill the arena with unrelated values
		tp.Reset()
	}
	gotL, gotX, gotW := step(tp)
	if gotL != wantL || !slices.Equal(gotX, wantX) || !slices.Equal(gotW, wantW) {
		t.Errorf("graph run on a reused tape differs from a fresh tape (loss %v vs %v)", gotL, wantL)
	}
}
