package autograd

import (
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/backend/auto"
	"github.com/simclr-go/simclr/dist"
	"github.com/simclr-go/simclr/tensor"
)

// onRanks runs fn as each of k in-process ranks at once and waits.
func onRanks(k int, fn func(c dist.Comm)) {
	comms := dist.NewLocal(k, 0)
	var wg sync.WaitGroup
	for _, c := range comms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(c)
		}()
	}
	wg.Wait()
}

// testBackends are purego and, in a cgo build, oneDNN: the global batch
// norm is built from backend calls, so it is checked on both.
func testBackends(t *testing.T) []backend.Backend {
	var bes []backend.Backend
	for _, name := range auto.Names() {
		be, err := auto.New(name, 1)
		if err != nil {
			t.Fatal(err)
		}
		bes = append(bes, be)
	}
	return bes
}

// bnResult is everything a batch norm step produces.
type bnResult struct {
	y, dx, dg, db, runMean, runVar []float32
}

// bnStep runs BatchNormGlobal (BatchNorm when red is nil) on x with the
// loss sum(y*w) and returns its outputs and gradients.
func bnStep(be backend.Backend, shape []int, x, w, gamma, beta []float32, relu bool, red Reducer) bnResult {
	c := shape[len(shape)-1]
	tp := NewTape(be)
	xv := NewParam(tensor.FromSlice(append([]float32(nil), x...), shape...))
	g := NewParam(tensor.FromSlice(append([]float32(nil), gamma...), c))
	b := NewParam(tensor.FromSlice(append([]float32(nil), beta...), c))
	st := &BatchNormStats{Mean: tensor.New(c), Var: tensor.New(c), Momentum: 0.1, Eps: 1e-5}
	st.Mean.Data[0], st.Var.Data[0] = 0.5, 2 // running stats that are not the defaults
	for j := 1; j < c; j++ {
		st.Var.Data[j] = 1
	}
	var y *Var
	if red == nil {
		y = tp.BatchNorm(xv, g, b, st, relu)
	} else {
		y = tp.BatchNormGlobal(xv, g, b, st, relu, red)
	}
	if err := tp.Backward(tp.Weighted(y, tensor.FromSlice(w, len(w)))); err != nil {
		panic(err)
	}
	return bnResult{
		y: append([]float32(nil), y.Value.Data...), dx: xv.Grad.Data, dg: g.Grad.Data, db: b.Grad.Data,
		runMean: st.Mean.Data, runVar: st.Var.Data,
	}
}

// maxRelDiff is max|a-b| / max(max|b|, tiny): the worst error relative
// to the scale of the reference.
func maxRelDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d, s float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
		s = max(s, math.Abs(float64(b[i])))
	}
	return d / max(s, 1e-30)
}

// TestBatchNormGlobal: two processes holding halves of a batch compute,
// with BatchNormGlobal, what BatchNorm computes on the whole batch:
// output, input gradient, parameter gradients summed over the processes
// and running statistics. The halves have different means and spreads, so
// per-half statistics would be far off (checked too). The tolerance is
// float32 rounding: the global path adds one normalisation and one
// correction pass, each off by a few ulps of values of order 1, and the
// statistics are combined in float64.
func TestBatchNormGlobal(t *testing.T) {
	for _, be := range testBackends(t) {
		for _, relu := range []bool{false, true} {
			for _, shape := range [][]int{{8, 3, 3, 5}, {12, 6}} {
				name := fmt.Sprintf("%s relu=%v %v", be.Name(), relu, shape)
				t.Run(name, func(t *testing.T) {
					const k = 2
					c := shape[len(shape)-1]
					rng := tensor.NewRNG(5, "bn-global", uint64(len(shape)))
					n := tensor.Numel(shape)
					x, w := tensor.New(n), tensor.New(n)
					rng.FillNormal(x, 1)
					rng.FillNormal(w, 1)
					for i := range x.Data {
						if i >= n/2 { // the second half: shifted and wider
							x.Data[i] = 3*x.Data[i] + 2 + 0.5*float32(i%c)
						}
					}
					gamma, beta := tensor.New(c), tensor.New(c)
					rng.FillNormal(gamma, 1)
					rng.FillNormal(beta, 0.5)

					want := bnStep(be, shape, x.Data, w.Data, gamma.Data, beta.Data, relu, nil)
					part := append([]int(nil), shape...)
					part[0] /= k
					got := make([]bnResult, k)
					onRanks(k, func(cm dist.Comm) {
						r := cm.Rank()
						lo, hi := r*n/k, (r+1)*n/k
						got[r] = bnStep(be, part, x.Data[lo:hi], w.Data[lo:hi], gamma.Data, beta.Data, relu, cm)
					})
					cat := func(f func(bnResult) []float32) []float32 {
						var out []float32
						for _, g := range got {
							out = append(out, f(g)...)
						}
						return out
					}
					sum := func(f func(bnResult) []float32) []float32 {
						out := make([]float32, c)
						for _, g := range got {
							for j, v := range f(g) {
								out[j] += v
							}
						}
						return out
					}
					checks := []struct {
						what      string
						got, want []float32
					}{
						{"y", cat(func(r bnResult) []float32 { return r.y }), want.y},
						{"dx", cat(func(r bnResult) []float32 { return r.dx }), want.dx},
						{"dgamma", sum(func(r bnResult) []float32 { return r.dg }), want.dg},
						{"dbeta", sum(func(r bnResult) []float32 { return r.db }), want.db},
						{"running mean rank 0", got[0].runMean, want.runMean},
						{"running var rank 0", got[0].runVar, want.runVar},
						{"running mean rank 1", got[1].runMean, want.runMean},
						{"running var rank 1", got[1].runVar, want.runVar},
					}
					for _, ch := range checks {
						if d := maxRelDiff(ch.got, ch.want); d > 2e-6 {
							t.Errorf("%s: relative difference %.3g from one process with the whole batch", ch.what, d)
						} else {
							t.Logf("%s: relative difference %.3g", ch.what, d)
						}
					}

					// Per-half statistics give something else: the test can fail.
					var local []bnResult
					for r := 0; r < k; r++ {
						lo, hi := r*n/k, (r+1)*n/k
						local = append(local, bnStep(be, part, x.Data[lo:hi], w.Data[lo:hi], gamma.Data, beta.Data, relu, nil))
					}
					var ly, ldx []float32
					for _, l := range local {
						ly, ldx = append(ly, l.y...), append(ldx, l.dx...)
					}
					if d := maxRelDiff(ly, want.y); d < 1e-2 {
						t.Errorf("per-process batch norm is only %.3g from the global one: the check cannot tell them apart", d)
					}
					if d := maxRelDiff(ldx, want.dx); d < 1e-2 {
						t.Errorf("per-process dx is only %.3g from the global one", d)
					}
				})
			}
		}
	}
}

// TestBatchNormGlobalAlone: in a group of one, BatchNormGlobal gives
// BatchNorm's numbers bit for bit.
func TestBatchNormGlobalAlone(t *testing.T) {
	for _, be := range testBackends(t) {
		for _, relu := range []bool{false, true} {
			shape := []int{4, 5, 5, 6}
			rng := tensor.NewRNG(6, "bn-alone")
			n := tensor.Numel(shape)
			x, w, gamma, beta := tensor.New(n), tensor.New(n), tensor.New(6), tensor.New(6)
			rng.FillNormal(x, 2)
			rng.FillNormal(w, 1)
			rng.FillNormal(gamma, 1)
			rng.FillNormal(beta, 1)
			want := bnStep(be, shape, x.Data, w.Data, gamma.Data, beta.Data, relu, nil)
			got := bnStep(be, shape, x.Data, w.Data, gamma.Data, beta.Data, relu, dist.Single{})
			for _, ch := range [][2][]float32{{got.y, want.y}, {got.dx, want.dx}, {got.dg, want.dg}, {got.db, want.db}, {got.runMean, want.runMean}, {got.runVar, want.runVar}} {
				for i := range ch[0] {
					if ch[0][i] != ch[1][i] {
						t.Fatalf("%s relu=%v: element %d: %g alone, %g from BatchNorm", be.Name(), relu, i, ch[0][i], ch[1][i])
					}
				}
			}
		}
	}
}

// TestAllGatherRows: the gathered layout is by block, then rank, and the
// backward gives each rank the gradient of the sum of every rank's loss.
func TestAllGatherRows(t *testing.T) {
	const k, rows, d, parts = 3, 4, 2, 2
	w := make([][]float32, k) // each rank's loss weights over the gathered rows
	for r := range w {
		w[r] = make([]float32, k*rows*d)
		for i := range w[r] {
			w[r][i] = float32(r*1000 + i)
		}
	}
	grads := make([][]float32, k)
	outs := make([][]float32, k)
	onRanks(k, func(c dist.Comm) {
		r := c.Rank()
		x := tensor.New(rows, d)
		for i := range x.Data {
			x.Data[i] = float32(100*r + i) // rank r, row i/d, column i%d
		}
		xv := NewParam(x)
		tp := NewTape(testBackends(t)[0])
		out := tp.AllGatherRows(xv, c, parts)
		outs[r] = append([]float32(nil), out.Value.Data...)
		if err := tp.Backward(tp.Weighted(out, tensor.FromSlice(w[r], len(w[r])))); err != nil {
			panic(err)
		}
		grads[r] = xv.Grad.Data
	})
	per := rows / parts
	for r := 0; r < k; r++ {
		for p := 0; p < parts; p++ {
			for i := 0; i < per; i++ {
				for j := 0; j < d; j++ {
					row := (p*k+r)*per + i // where rank r's row p*per+i lands
					src := (p*per+i)*d + j
					if got, want := outs[0][row*d+j], float32(100*r+src); got != want {
						t.Fatalf("gathered row %d col %d = %g, want %g (rank %d block %d row %d)", row, j, got, want, r, p, i)
					}
					var want float32
					for s := 0; s < k; s++ {
						want += w[s][row*d+j]
					}
					if got := grads[r][src]; got != want {
						t.Fatalf("rank %d grad[%d] = %g, want %g", r, src, got, want)
					}
				}
			}
		}
	}
	for r := 1; r < k; r++ {
		if maxRelDiff(outs[r], outs[0]) != 0 {
			t.Fatalf("rank %d gathered other values than rank 0", r)
		}
	}
}

func TestGradFillAt(t *testing.T) {
	rng := tensor.NewRNG(7, "fillat")
	x := param(rng, 1, 3, 5)
	cols := []int32{4, -1, 0}
	gradOK(t, "fill-at", linTol, func(tp *Tape) *Var { return tp.FillAt(x, cols, -7) }, x)
	tp := newTestTape()
	out := tp.FillAt(x, cols, -7)
	if out.Value.Data[4] != -7 || out.Value.Data[10] != -7 || out.Value.Data[5] != x.Value.Data[5] {
		t.Errorf("fill-at wrote %v", out.Value.Data)
	}
}
