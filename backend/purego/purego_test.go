package purego_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/tensor"
)

// ---------------------------------------------------------------------------
// Batch norm against PyTorch (testdata/batchnorm.json, see testdata/README).
// ---------------------------------------------------------------------------

type bnCase struct {
	Shape       []int     `json:"shape"` // PyTorch layout: [N,C,H,W] or [N,C]
	X           []float64 `json:"x"`
	Gamma       []float64 `json:"weight_gamma"`
	Beta        []float64 `json:"bias_beta"`
	DY          []float64 `json:"grad_output"`
	Y           []float64 `json:"y_f64"`
	DX          []float64 `json:"grad_x_f64"`
	DGamma      []float64 `json:"grad_gamma_f64"`
	DBeta       []float64 `json:"grad_beta_f64"`
	Mean        []float64 `json:"batch_mean_f64"`
	VarBiased   []float64 `json:"batch_var_biased_f64"`
	VarUnbiased []float64 `json:"batch_var_unbiased_f64"`
	RunMean     []float64 `json:"running_mean_after_f64"`
	RunVar      []float64 `json:"running_var_after_f64"`
}

type bnFile struct {
	Eps      float64           `json:"eps"`
	Momentum float64           `json:"momentum"`
	Cases    map[string]bnCase `json:"cases"`
}

func loadBN(t *testing.T) bnFile {
	t.Helper()
	raw, err := os.ReadFile("testdata/batchnorm.json")
	if err != nil {
		t.Fatal(err)
	}
	var f bnFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) != 2 {
		t.Fatalf("testdata has %d batch-norm cases, want 2", len(f.Cases))
	}
	return f
}

// bnRows is a reference case in our layout: rows x[M,C] (NHWC flattened)
// and the NHWC shape to give the tape.
type bnRows struct {
	m, c             int
	shape            []int
	x, dy            []float32 // the (float32-exact) inputs
	xRef, dyRef      []float64
	gamma, beta      []float32
	gammaRef         []float64
	yRef, dxRef      []float64
	dgRef, dbRef     []float64
	mean, varB, varU []float64
	runMean, runVar  []float64
	eps, momentum    float64
}

// toRows converts a PyTorch-layout array to rows [M, C].
func toRows(shape []int, v []float64) []float64 {
	if len(shape) == 2 {
		return append([]float64(nil), v...)
	}
	n, c, h, w := shape[0], shape[1], shape[2], shape[3]
	out := make([]float64, len(v))
	for i := 0; i < n; i++ {
		for ch := 0; ch < c; ch++ {
			for p := 0; p < h*w; p++ {
				out[(i*h*w+p)*c+ch] = v[(i*c+ch)*h*w+p]
			}
		}
	}
	return out
}

func f32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func prepBN(t *testing.T, f bnFile, cs bnCase) bnRows {
	t.Helper()
	c := cs.Shape[1]
	m := tensor.Numel(cs.Shape) / c
	r := bnRows{m: m, c: c, eps: f.Eps, momentum: f.Momentum}
	if len(cs.Shape) == 4 {
		r.shape = []int{cs.Shape[0], cs.Shape[2], cs.Shape[3], c}
	} else {
		r.shape = []int{cs.Shape[0], c}
	}
	r.xRef = toRows(cs.Shape, cs.X)
	r.dyRef = toRows(cs.Shape, cs.DY)
	r.x, r.dy = f32(r.xRef), f32(r.dyRef)
	for i := range r.xRef {
		// The reference inputs are float32 values stored in float64.
		if float64(r.x[i]) != r.xRef[i] || float64(r.dy[i]) != r.dyRef[i] {
			t.Fatalf("reference input %d is not float32-exact", i)
		}
	}
	r.yRef, r.dxRef = toRows(cs.Shape, cs.Y), toRows(cs.Shape, cs.DX)
	r.gamma, r.beta, r.gammaRef = f32(cs.Gamma), f32(cs.Beta), cs.Gamma
	r.dgRef, r.dbRef = cs.DGamma, cs.DBeta
	r.mean, r.varB, r.varU = cs.Mean, cs.VarBiased, cs.VarUnbiased
	r.runMean, r.runVar = cs.RunMean, cs.RunVar
	return r
}

// closeRel checks |got - want| <= rel * max(|want|, scale) elementwise,
// where scale is the largest |want| (the check is relative to the tensor's
// magnitude, so elements near zero need not be accurate to 1e-5 of
// themselves, which float32 cannot promise after cancellation).
func closeRel(t *testing.T, what string, got []float32, want []float64, rel float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	scale := 0.0
	for _, w := range want {
		scale = max(scale, math.Abs(w))
	}
	worst, bad := 0.0, 0
	for i, g := range got {
		d := math.Abs(float64(g) - want[i])
		lim := rel * max(math.Abs(want[i]), scale)
		if !(d <= lim) {
			if bad < 5 {
				t.Errorf("%s[%d] = %.9g, want %.9g (|diff| %.3g > %.3g)", what, i, g, want[i], d, lim)
			}
			bad++
		}
		worst = max(worst, d/max(math.Abs(want[i]), scale))
	}
	if bad > 5 {
		t.Errorf("%s: %d values off in all", what, bad)
	}
	t.Logf("%s: worst relative error %.3g", what, worst)
}

func nanSlice(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(math.NaN())
	}
	return s
}

// bnRefRows computes training-mode batch norm (optionally followed by ReLU)
// and its gradient in float64 from the reference inputs: used for the ReLU
// variant, which PyTorch's vectors do not cover. Without ReLU it must agree
// with PyTorch, which validates it.
func bnRefRows(r bnRows, relu bool) (y, dx, dg, db []float64) {
	m, c := r.m, r.c
	y, dx = make([]float64, m*c), make([]float64, m*c)
	dg, db = make([]float64, c), make([]float64, c)
	for j := 0; j < c; j++ {
		var mu, v float64
		for i := 0; i < m; i++ {
			mu += r.xRef[i*c+j]
		}
		mu /= float64(m)
		for i := 0; i < m; i++ {
			d := r.xRef[i*c+j] - mu
			v += d * d
		}
		inv := 1 / math.Sqrt(v/float64(m)+r.eps)
		xhat := make([]float64, m)
		g := make([]float64, m)
		for i := 0; i < m; i++ {
			xhat[i] = (r.xRef[i*c+j] - mu) * inv
			o := r.gammaRef[j]*xhat[i] + float64(r.beta[j])
			g[i] = r.dyRef[i*c+j]
			if relu && o <= 0 {
				o, g[i] = 0, 0
			}
			y[i*c+j] = o
			db[j] += g[i]
			dg[j] += g[i] * xhat[i]
		}
		for i := 0; i < m; i++ {
			dx[i*c+j] = r.gammaRef[j] * inv * (g[i] - db[j]/float64(m) - xhat[i]*dg[j]/float64(m))
		}
	}
	return
}

// TestBatchNormReference runs the backend's batch norm on PyTorch's vectors
// (NCHW converted to NHWC rows), forward and backward, on 1 and 3 threads.
// Outputs are prefilled with NaN: they must be overwritten.
func TestBatchNormReference(t *testing.T) {
	f := loadBN(t)
	for name, cs := range f.Cases {
		r := prepBN(t, f, cs)
		for _, threads := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/threads=%d", name, threads), func(t *testing.T) {
				b := purego.New(threads)
				m, c, eps := r.m, r.c, float32(r.eps)
				y, mean, variance := nanSlice(m*c), nanSlice(c), nanSlice(c)
				b.BatchNormForward(m, c, eps, r.x, r.gamma, r.beta, y, mean, variance, false)
				closeRel(t, "y", y, r.yRef, 1e-5)
				closeRel(t, "batch mean", mean, r.mean, 1e-6)
				closeRel(t, "batch variance (biased)", variance, r.varB, 1e-6)

				dx, dg, db := nanSlice(m*c), nanSlice(c), nanSlice(c)
				b.BatchNormBackward(m, c, eps, r.x, y, r.dy, r.gamma, mean, variance, dx, dg, db, false)
				closeRel(t, "grad_x", dx, r.dxRef, 1e-5)
				closeRel(t, "grad_gamma", dg, r.dgRef, 1e-5)
				closeRel(t, "grad_beta", db, r.dbRef, 1e-5)

				// The ReLU-fused variant against the float64 formula, which
				// first has to reproduce PyTorch without the ReLU.
				y0, dx0, dg0, db0 := bnRefRows(r, false)
				for _, p := range []struct {
					got, want []float64
				}{{y0, r.yRef}, {dx0, r.dxRef}, {dg0, r.dgRef}, {db0, r.dbRef}} {
					for i := range p.got {
						if math.Abs(p.got[i]-p.want[i]) > 1e-12 {
							t.Fatalf("test's float64 batch norm disagrees with PyTorch: %v vs %v", p.got[i], p.want[i])
						}
					}
				}
				yR, dxR, dgR, dbR := bnRefRows(r, true)
				b.BatchNormForward(m, c, eps, r.x, r.gamma, r.beta, y, mean, variance, true)
				closeRel(t, "relu y", y, yR, 1e-5)
				b.BatchNormBackward(m, c, eps, r.x, y, r.dy, r.gamma, mean, variance, dx, dg, db, true)
				closeRel(t, "relu grad_x", dx, dxR, 1e-5)
				closeRel(t, "relu grad_gamma", dg, dgR, 1e-5)
				closeRel(t, "relu grad_beta", db, dbR, 1e-5)
			})
		}
	}
}

// TestBatchNormTapeReference runs the same vectors through
// autograd.Tape.BatchNorm: the loss Weighted(y, grad_output) makes
// d(loss)/dy = grad_output, so the parameter gradients must be PyTorch's.
// It also checks the running statistics (momentum 0.1, unbiased variance,
// starting from mean 0 and variance 1) and evaluation mode, which
// normalises with them.
func TestBatchNormTapeReference(t *testing.T) {
	f := loadBN(t)
	for name, cs := range f.Cases {
		t.Run(name, func(t *testing.T) {
			r := prepBN(t, f, cs)
			tp := autograd.NewTape(purego.New(2))
			x := autograd.NewParam(tensor.FromSlice(append([]float32(nil), r.x...), r.shape...))
			gamma := autograd.NewParam(tensor.FromSlice(append([]float32(nil), r.gamma...), r.c))
			beta := autograd.NewParam(tensor.FromSlice(append([]float32(nil), r.beta...), r.c))
			st := &autograd.BatchNormStats{
				Mean: tensor.New(r.c), Var: tensor.New(r.c),
				Momentum: float32(r.momentum), Eps: float32(r.eps),
			}
			for j := range st.Var.Data {
				st.Var.Data[j] = 1
			}
			y := tp.BatchNorm(x, gamma, beta, st, false)
			if err := tp.Backward(tp.Weighted(y, tensor.FromSlice(r.dy, r.shape...))); err != nil {
				t.Fatal(err)
			}
			closeRel(t, "y", y.Value.Data, r.yRef, 1e-5)
			closeRel(t, "grad_x", x.Grad.Data, r.dxRef, 1e-5)
			closeRel(t, "grad_gamma", gamma.Grad.Data, r.dgRef, 1e-5)
			closeRel(t, "grad_beta", beta.Grad.Data, r.dbRef, 1e-5)
			closeRel(t, "running_mean", st.Mean.Data, r.runMean, 1e-5)
			closeRel(t, "running_var", st.Var.Data, r.runVar, 1e-5)
			// The running variance uses the unbiased batch variance.
			for j := 0; j < r.c; j++ {
				want := 0.9 + 0.1*r.varU[j]
				if d := math.Abs(float64(st.Var.Data[j]) - want); d > 1e-6*want {
					t.Errorf("running_var[%d] = %v, want 0.9 + 0.1*unbiased = %v", j, st.Var.Data[j], want)
				}
			}

			// Evaluation mode normalises with the running statistics.
			tp.Reset()
			tp.Train = false
			ye := tp.BatchNorm(autograd.Const(tensor.FromSlice(r.x, r.shape...)), gamma, beta, st, false)
			want := make([]float64, r.m*r.c)
			for i := 0; i < r.m; i++ {
				for j := 0; j < r.c; j++ {
					want[i*r.c+j] = r.gammaRef[j]*(r.xRef[i*r.c+j]-r.runMean[j])/math.Sqrt(r.runVar[j]+r.eps) + float64(r.beta[j])
				}
			}
			closeRel(t, "eval y", ye.Value.Data, want, 1e-5)
			// ... and leaves them alone.
			closeRel(t, "running_mean after eval", st.Mean.Data, r.runMean, 1e-5)
		})
	}
}

// ---------------------------------------------------------------------------
// Convolution against naive float64 loops.
// ---------------------------------------------------------------------------

// naiveConv is the textbook 7-loop convolution in float64. Besides y it
// returns, per output, Σ|terms| and the number of terms, which bound the
// float32 rounding error of any summation order.
func naiveConv(p backend.Conv2D, x, w, b []float32) (y, abs, terms []float64) {
	oh, ow := p.OutH(), p.OutW()
	cg, kg := p.C/p.Groups, p.K/p.Groups
	y = make([]float64, p.N*oh*ow*p.K)
	abs = make([]float64, len(y))
	terms = make([]float64, len(y))
	for n := 0; n < p.N; n++ {
		for i := 0; i < oh; i++ {
			for j := 0; j < ow; j++ {
				for k := 0; k < p.K; k++ {
					o := ((n*oh+i)*ow+j)*p.K + k
					g := k / kg
					if b != nil {
						y[o], abs[o], terms[o] = float64(b[k]), math.Abs(float64(b[k])), 1
					}
					for c := 0; c < cg; c++ {
						for r := 0; r < p.R; r++ {
							for s := 0; s < p.S; s++ {
								ih := i*p.StrideH - p.PadH + r*p.DilH
								iw := j*p.StrideW - p.PadW + s*p.DilW
								if ih < 0 || ih >= p.H || iw < 0 || iw >= p.W {
									continue
								}
								v := float64(x[((n*p.H+ih)*p.W+iw)*p.C+g*cg+c]) * float64(w[((k*cg+c)*p.R+r)*p.S+s])
								y[o] += v
								abs[o] += math.Abs(v)
								terms[o]++
							}
						}
					}
				}
			}
		}
	}
	return
}

// naiveConvBackward is the adjoint of naiveConv written as the same loops
// scattering dy: dx[x index] += w*dy, dw[w index] += x*dy, db[k] += dy.
func naiveConvBackward(p backend.Conv2D, x, w, dy []float32) (dx, dxAbs, dxTerms, dw, dwAbs, dwTerms, db, dbAbs, dbTerms []float64) {
	oh, ow := p.OutH(), p.OutW()
	cg, kg := p.C/p.Groups, p.K/p.Groups
	dx, dxAbs, dxTerms = make([]float64, len(x)), make([]float64, len(x)), make([]float64, len(x))
	dw, dwAbs, dwTerms = make([]float64, len(w)), make([]float64, len(w)), make([]float64, len(w))
	db, dbAbs, dbTerms = make([]float64, p.K), make([]float64, p.K), make([]float64, p.K)
	for n := 0; n < p.N; n++ {
		for i := 0; i < oh; i++ {
			for j := 0; j < ow; j++ {
				for k := 0; k < p.K; k++ {
					o := ((n*oh+i)*ow+j)*p.K + k
					g := float64(dy[o])
					db[k] += g
					dbAbs[k] += math.Abs(g)
					dbTerms[k]++
					for c := 0; c < cg; c++ {
						for r := 0; r < p.R; r++ {
							for s := 0; s < p.S; s++ {
								ih := i*p.StrideH - p.PadH + r*p.DilH
								iw := j*p.StrideW - p.PadW + s*p.DilW
								if ih < 0 || ih >= p.H || iw < 0 || iw >= p.W {
									continue
								}
								xi := ((n*p.H+ih)*p.W+iw)*p.C + (k/kg)*cg + c
								wi := ((k*cg+c)*p.R+r)*p.S + s
								vx := float64(w[wi]) * g
								dx[xi] += vx
								dxAbs[xi] += math.Abs(vx)
								dxTerms[xi]++
								vw := float64(x[xi]) * g
								dw[wi] += vw
								dwAbs[wi] += math.Abs(vw)
								dwTerms[wi]++
							}
						}
					}
				}
			}
		}
	}
	return
}

// closeSum checks float32 results of sums against float64 ones with the
// first-order bound for float32 arithmetic: each product rounds once
// (2^-24 relative) and a sum of n terms in any order is off by at most
// (n-1)*2^-24*Σ|terms|, and the result is rounded once more; so
// (n+1)*2^-24*Σ|terms|, doubled for slack. Outputs with no terms must be
// exactly zero.
func closeSum(t *testing.T, what string, got []float32, want, abs, terms []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	bad, worst := 0, 0.0
	for i, g := range got {
		lim := 2 * (terms[i] + 1) * 0x1p-24 * abs[i]
		d := math.Abs(float64(g) - want[i])
		if !(d <= lim) {
			if bad < 5 {
				t.Errorf("%s[%d] = %.9g, want %.9g (|diff| %.3g > bound %.3g)", what, i, g, want[i], d, lim)
			}
			bad++
		}
		if lim > 0 {
			worst = max(worst, d/lim)
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d values off in all", what, bad)
	}
	t.Logf("%s: worst |diff|/bound %.3g", what, worst)
}

func dot64(a []float32, b []float32) (s, abs float64) {
	for i := range a {
		v := float64(a[i]) * float64(b[i])
		s += v
		abs += math.Abs(v)
	}
	return
}

func TestConvAgainstNaive(t *testing.T) {
	conv := func(n, h, w, c, k, r, s, sh, sw, ph, pw, dh, dw, g int) backend.Conv2D {
		return backend.Conv2D{N: n, H: h, W: w, C: c, K: k, R: r, S: s,
			StrideH: sh, StrideW: sw, PadH: ph, PadW: pw, DilH: dh, DilW: dw, Groups: g}
	}
	cases := []struct {
		name    string
		p       backend.Conv2D
		threads int
	}{
		{"3x3 s1 p1 C=3 5x7", conv(2, 5, 7, 3, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1), 2},
		{"3x3 s2 p1 groups2", conv(3, 8, 9, 4, 6, 3, 3, 2, 2, 1, 1, 1, 1, 2), 2},
		{"3x2 s(2,1) p(2,1) dil(2,1)", conv(2, 9, 7, 3, 5, 3, 2, 2, 1, 2, 1, 2, 1, 1), 3},
		{"dil2 p2 groups3", conv(2, 7, 6, 6, 3, 3, 3, 1, 1, 2, 2, 2, 2, 3), 1},
		{"depthwise 3x3 s2 p1", conv(2, 7, 8, 6, 6, 3, 3, 2, 2, 1, 1, 1, 1, 6), 2},
		{"7x7 s2 p3 stem", conv(1, 11, 13, 3, 8, 7, 7, 2, 2, 3, 3, 1, 1, 1), 2},
		{"1x1 s2", conv(2, 6, 6, 8, 4, 1, 1, 2, 2, 0, 0, 1, 1, 1), 2},
		{"1x1 p2 (empty borders)", conv(2, 3, 4, 2, 3, 1, 1, 1, 1, 2, 2, 1, 1, 1), 2},
		{"5 images on 3 threads", conv(5, 5, 5, 3, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1), 3},
		{"2x2 s2 no pad", conv(2, 4, 6, 2, 2, 2, 2, 2, 2, 0, 0, 1, 1, 1), 4},
	}
	for ci, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			p := cs.p
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			rng := tensor.NewRNG(21, "conv-naive", uint64(ci))
			rnd := func(n int) []float32 {
				v := tensor.New(n)
				rng.FillNormal(v, 1)
				return v.Data
			}
			x := rnd(p.N * p.H * p.W * p.C)
			w := rnd(p.WeightLen())
			bias := rnd(p.K)
			ny := p.N * p.OutH() * p.OutW() * p.K
			dy := rnd(ny)
			b := purego.New(cs.threads)

			for _, withBias := range []bool{false, true} {
				var bb []float32
				if withBias {
					bb = bias
				}
				y := nanSlice(ny)
				b.Conv2DForward(p, x, w, bb, y)
				want, abs, terms := naiveConv(p, x, w, bb)
				closeSum(t, fmt.Sprintf("y (bias %v)", withBias), y, want, abs, terms)
			}

			dx := nanSlice(len(x))
			b.Conv2DBackwardData(p, dy, w, dx)
			dwGot, dbGot := nanSlice(len(w)), nanSlice(p.K)
			b.Conv2DBackwardWeights(p, x, dy, dwGot, dbGot)
			wdx, wdxA, wdxT, wdw, wdwA, wdwT, wdb, wdbA, wdbT := naiveConvBackward(p, x, w, dy)
			closeSum(t, "dx", dx, wdx, wdxA, wdxT)
			closeSum(t, "dw", dwGot, wdw, wdwA, wdwT)
			closeSum(t, "db", dbGot, wdb, wdbA, wdbT)
			dwOnly := nanSlice(len(w))
			b.Conv2DBackwardWeights(p, x, dy, dwOnly, nil)
			closeSum(t, "dw (no db)", dwOnly, wdw, wdwA, wdwT)

			// The adjoint identities on the backend's own results:
			// <conv(x,w), dy> = <x, dx(dy,w)> = <w, dw(x,dy)>, and the bias
			// part of <conv(x,w,b), dy> is <b, db(dy)>.
			y := make([]float32, ny)
			b.Conv2DForward(p, x, w, nil, y)
			yb := make([]float32, ny)
			b.Conv2DForward(p, x, w, bias, yb)
			lhs, lhsAbs := dot64(y, dy)
			lhsB, lhsBAbs := dot64(yb, dy)
			viaX, _ := dot64(x, dx)
			viaW, _ := dot64(w, dwGot)
			viaB, _ := dot64(bias, dbGot)
			// Every value above carries a float32 sum of at most ~150 terms
			// (relative error <= ~1e-5 of its Σ|terms|); 1e-4*Σ|y·dy| is a
			// safe bound that an indexing error would still exceed.
			tol := 1e-4 * (lhsAbs + lhsBAbs)
			for _, id := range []struct {
				name string
				a, b float64
			}{{"<y,dy> vs <x,dx>", lhs, viaX}, {"<y,dy> vs <w,dw>", lhs, viaW}, {"bias", lhsB - lhs, viaB}} {
				if math.Abs(id.a-id.b) > tol {
					t.Errorf("adjoint identity %s: %.9g vs %.9g", id.name, id.a, id.b)
				}
			}
		})
	}
}
