package eval

import (
	"math"
	"testing"

	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/tensor"
)

// blobs draws n samples of classes Gaussian clusters in dim dimensions:
// centres at distance ~sep, unit noise; flip is the fraction of labels
// replaced by random ones.
func blobs(rng *tensor.RNG, centres []float64, n, dim, classes int, flip float64) *Features {
	f := &Features{Rows: n, Dim: dim, Data: make([]float32, n*dim), Labels: make([]int, n)}
	for i := 0; i < n; i++ {
		c := rng.IntN(classes)
		for j := 0; j < dim; j++ {
			f.Data[i*dim+j] = float32(centres[c*dim+j] + rng.Normal())
		}
		if rng.Float64() < flip {
			c = rng.IntN(classes)
		}
		f.Labels[i] = c
	}
	return f
}

func centres(rng *tensor.RNG, classes, dim int, sep float64) []float64 {
	c := make([]float64, classes*dim)
	for i := range c {
		c[i] = sep * rng.Normal()
	}
	return c
}

func TestLinearSeparable(t *testing.T) {
	rng := tensor.NewRNG(1, "linear-separable")
	ce := centres(rng, 4, 10, 4)
	tr, te := blobs(rng, ce, 400, 10, 4, 0), blobs(rng, ce, 200, 10, 4, 0)
	res, err := LinearEval(purego.New(1), LinearData{Train: tr, Test: te, Classes: 4}, LinearOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Top1 < 0.99 || res.TrainTop1 < 0.99 {
		t.Errorf("separable clusters: test top-1 %.3f, train top-1 %.3f", res.Top1, res.TrainTop1)
	}
	if len(res.Trials) != 5 || res.HeldOut != 40 {
		t.Errorf("%d trials, %d held out; want 5 and 40", len(res.Trials), res.HeldOut)
	}
	// The model also applies to raw features through FitLogReg.
	m, err := FitLogReg(purego.New(1), tr, 4, LogRegOptions{L2: 1e-3})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := m.Scores(purego.New(1), te)
	if a := TopK(s, te.Labels, 4, 1); a < 0.99 {
		t.Errorf("FitLogReg: top-1 %.3f", a)
	}
}

// TestLinearL2Search: with few noisy samples in many dimensions the search
// picks a stronger penalty than on plentiful clean data.
func TestLinearL2Search(t *testing.T) {
	rng := tensor.NewRNG(2, "linear-l2")
	clean := centres(rng, 3, 8, 3)
	trC, teC := blobs(rng, clean, 600, 8, 3, 0), blobs(rng, clean, 100, 8, 3, 0)
	resC, err := LinearEval(purego.New(1), LinearData{Train: trC, Test: teC, Classes: 3}, LinearOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Noisy: the class shows in 3 of 100 dimensions, a quarter of the
	// labels are random, and the fit part has fewer samples than
	// dimensions, so a weak penalty fits the noise.
	noisy := make([]float64, 3*100)
	for c := 0; c < 3; c++ {
		noisy[c*100+c] = 2
	}
	trN, teN := blobs(rng, noisy, 120, 100, 3, 0.25), blobs(rng, noisy, 100, 100, 3, 0.25)
	resN, err := LinearEval(purego.New(1), LinearData{Train: trN, Test: teN, Classes: 3}, LinearOptions{Seed: 1, HoldOut: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("clean: L2 %g %+v; noisy: L2 %g %+v", resC.L2, resC.Trials, resN.L2, resN.Trials)
	if resN.L2 <= resC.L2 {
		t.Errorf("noisy data chose L2 %g, clean data %g: want a larger penalty for noisy data", resN.L2, resC.L2)
	}
}

func TestLinearTopK(t *testing.T) {
	rng := tensor.NewRNG(3, "linear-topk")
	ce := centres(rng, 10, 6, 0.8) // overlapping classes
	tr, te := blobs(rng, ce, 500, 6, 10, 0), blobs(rng, ce, 300, 6, 10, 0)
	aug := []*Features{{Rows: tr.Rows, Dim: tr.Dim, Data: make([]float32, len(tr.Data)), Labels: tr.Labels}}
	for i, v := range tr.Data {
		aug[0].Data[i] = v + float32(0.1*rng.Normal())
	}
	res, err := LinearEval(purego.New(1), LinearData{Train: tr, Aug: aug, Test: te, Classes: 10}, LinearOptions{L2s: []float64{1e-4, 1e-2}})
	if err != nil {
		t.Fatal(err)
	}
	if res.K != 5 || res.TopK < res.Top1 || res.Top1 < 0.2 || res.TopK <= res.Top1 {
		t.Errorf("top-1 %.3f, top-%d %.3f: want top-5 above top-1, top-1 above chance", res.Top1, res.K, res.TopK)
	}
	if res.TrainRows != 1000 {
		t.Errorf("%d training rows with one augmented copy of 500", res.TrainRows)
	}
	// TopK by hand: scores with ties count against the label.
	s := []float32{3, 1, 2, 2, 2, 2}
	if a := TopK(s, []int{2, 0}, 3, 1); a != 0 {
		t.Errorf("tied and lower labels counted as top-1: %g", a)
	}
	if a := TopK(s, []int{2, 0}, 3, 2); a != 0.5 {
		t.Errorf("top-2 %g, want 0.5", a)
	}
}

// TestLinearGradient checks the objective's gradient against central
// differences.
func TestLinearGradient(t *testing.T) {
	rng := tensor.NewRNG(4, "linear-grad")
	n, d, c := 37, 5, 4
	x := make([]float32, n*d)
	labels := make([]int32, n)
	for i := range x {
		x[i] = float32(rng.Normal())
	}
	for i := range labels {
		labels[i] = int32(rng.IntN(c))
	}
	p := newProblem(purego.New(1), x, labels, d, c)
	p.chunk = 16 // several chunks
	theta := make([]float64, c*(d+1))
	for i := range theta {
		theta[i] = 0.5 * rng.Normal()
	}
	const l2 = 0.03
	grad := make([]float64, len(theta))
	p.eval(theta, l2, grad)
	const h = 1e-2
	for i := range theta {
		save := theta[i]
		theta[i] = save + h
		fp := p.eval(theta, l2, nil)
		theta[i] = save - h
		fm := p.eval(theta, l2, nil)
		theta[i] = save
		num := (fp - fm) / (2 * h)
		if math.Abs(num-grad[i]) > 1e-4+1e-3*math.Abs(num) {
			t.Errorf("gradient %d: analytic %.6g, numeric %.6g", i, grad[i], num)
		}
	}
}

func TestLinearErrors(t *testing.T) {
	f := &Features{Rows: 2, Dim: 1, Data: []float32{0, 1}, Labels: []int{0, -1}}
	if _, err := LinearEval(purego.New(1), LinearData{Train: f, Test: f, Classes: 2}, LinearOptions{}); err == nil {
		t.Error("unlabelled sample accepted")
	}
}

// TestLBFGSRosenbrock: the optimiser finds the minimum of a non-convex
// valley, from the classic start.
func TestLBFGSRosenbrock(t *testing.T) {
	x := []float64{-1.2, 1}
	iters, f := lbfgs(func(x, g []float64) float64 {
		a, b := 1-x[0], x[1]-x[0]*x[0]
		if g != nil {
			g[0] = -2*a - 400*x[0]*b
			g[1] = 200 * b
		}
		return a*a + 100*b*b
	}, x, 500, 1e-8)
	if math.Abs(x[0]-1) > 1e-4 || math.Abs(x[1]-1) > 1e-4 || f > 1e-8 {
		t.Errorf("after %d iterations x = %v, f = %g; want (1, 1), 0", iters, x, f)
	}
}
