package eval

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/tensor"
)

// The linear evaluation protocol: a multinomial logistic regression on
// frozen, standardized features, its L2 penalty chosen on a held-out part
// of the training set, then refit on all of it (as Kornblith et al. 2019,
// which SimCLR's transfer evaluations follow).

// LogReg is a multinomial logistic regression. It applies to raw features:
// scores = ((x - Mean) * Scale) W^T + B.
type LogReg struct {
	Dim, Classes int
	W            []float32 // [Classes, Dim], on standardized features
	B            []float32 // [Classes]
	Mean, Scale  []float32 // per-feature standardization
	L2           float64
}

// LogRegOptions control one fit.
type LogRegOptions struct {
	// L2 is the penalty L2/2 * |W|^2 added to the mean cross-entropy (the
	// bias is not penalised).
	L2 float64
	// MaxIter bounds L-BFGS iterations; 0 means 500.
	MaxIter int
	// GradTol stops when every gradient entry is below it; 0 means 1e-5.
	GradTol float64
}

// problem is the standardized design matrix and labels of a fit.
type problem struct {
	be      backend.Backend
	x       []float32 // [n, d]
	labels  []int32
	n, d, c int
	chunk   int
	// scratch, per chunk of rows
	logits, g []float32
	w32       []float32
	gw        []float32 // [c, d] float32 gradient of the data term
	gb        []float64
}

func newProblem(be backend.Backend, x []float32, labels []int32, d, c int) *problem {
	n := len(labels)
	chunk := min(n, max(256, (1<<22)/max(c, 1))) // ~16 MiB of logits
	return &problem{
		be: be, x: x, labels: labels, n: n, d: d, c: c, chunk: chunk,
		logits: make([]float32, chunk*c), g: make([]float32, chunk*c),
		w32: make([]float32, c*d), gw: make([]float32, c*d), gb: make([]float64, c),
	}
}

// eval returns the penalised mean cross-entropy at theta = [W (c*d), b (c)]
// and, when grad is not nil, stores its gradient there.
func (p *problem) eval(theta []float64, l2 float64, grad []float64) float64 {
	c, d := p.c, p.d
	for i := range p.w32 {
		p.w32[i] = float32(theta[i])
	}
	bias := theta[c*d:]
	clear(p.gb)
	var loss float64
	workers := runtime.GOMAXPROCS(0)
	for lo := 0; lo < p.n; lo += p.chunk {
		m := min(p.chunk, p.n-lo)
		xs := p.x[lo*d : (lo+m)*d]
		p.be.Gemm(false, true, m, c, d, 1, xs, p.w32, 0, p.logits)
		// Softmax rows in parallel; each worker keeps its sums.
		parts := make([]float64, workers)
		gbs := make([][]float64, workers)
		var wg sync.WaitGroup
		step := (m + workers - 1) / workers
		for w := 0; w < workers; w++ {
			a, b := w*step, min((w+1)*step, m)
			if a >= b {
				break
			}
			gbs[w] = make([]float64, c)
			wg.Add(1)
			go func(w, a, b int) {
				defer wg.Done()
				z := make([]float64, c)
				inv := 1 / float64(p.n)
				for i := a; i < b; i++ {
					row := p.logits[i*c : (i+1)*c]
					mx := math.Inf(-1)
					for k := range z {
						z[k] = float64(row[k]) + bias[k]
						mx = math.Max(mx, z[k])
					}
					var s float64
					for k := range z {
						z[k] = math.Exp(z[k] - mx)
						s += z[k]
					}
					y := p.labels[lo+i]
					parts[w] += math.Log(s) + mx - (float64(row[y]) + bias[y])
					if grad == nil {
						continue
					}
					gr := p.g[i*c : (i+1)*c]
					for k := range z {
						v := z[k] / s
						if k == int(y) {
							v--
						}
						v *= inv
						gr[k] = float32(v)
						gbs[w][k] += v
					}
				}
			}(w, a, b)
		}
		wg.Wait()
		for w := range parts {
			loss += parts[w]
			for k, v := range gbs[w] {
				p.gb[k] += v
			}
		}
		if grad != nil {
			beta := float32(1)
			if lo == 0 {
				beta = 0
			}
			p.be.Gemm(true, false, c, d, m, 1, p.g[:m*c], xs, beta, p.gw)
		}
	}
	loss /= float64(p.n)
	var pen float64
	for _, w := range theta[:c*d] {
		pen += w * w
	}
	loss += 0.5 * l2 * pen
	if grad != nil {
		for i, g := range p.gw {
			grad[i] = float64(g) + l2*theta[i]
		}
		copy(grad[c*d:], p.gb)
	}
	return loss
}

// fit minimises the objective from theta (updated in place) with L-BFGS.
func (p *problem) fit(theta []float64, o LogRegOptions) (iters int, err error) {
	if o.MaxIter == 0 {
		o.MaxIter = 500
	}
	if o.GradTol == 0 {
		o.GradTol = 1e-5
	}
	iters, f := lbfgs(func(x, g []float64) float64 { return p.eval(x, o.L2, g) }, theta, o.MaxIter, o.GradTol)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("linear: the loss is %g: features may hold NaN or infinite values", f)
	}
	return iters, nil
}

// lbfgs minimises a smooth function from x (updated in place) by L-BFGS
// (Nocedal and Wright 2006, algorithm 7.4) with a backtracking Armijo line
// search, which suffices for convex objectives. It stops after maxIter
// iterations, when every gradient entry is below gtol, or when the value
// stops decreasing (relative 1e-9 for 5 iterations: the data term is
// computed in float32). It returns the iterations done and the final value.
func lbfgs(fg func(x, g []float64) float64, x []float64, maxIter int, gtol float64) (int, float64) {
	const memory = 10
	n := len(x)
	g := make([]float64, n)
	fx := fg(x, g)
	var s, y [][]float64
	var rho []float64
	d, xn, gn := make([]float64, n), make([]float64, n), make([]float64, n)
	alpha := make([]float64, memory)
	stall := 0
	for it := 0; it < maxIter; it++ {
		if math.IsNaN(fx) || infNorm(g) < gtol {
			return it, fx
		}
		// Two-loop recursion: d = -H g.
		for i := range d {
			d[i] = -g[i]
		}
		for k := len(s) - 1; k >= 0; k-- {
			alpha[k] = rho[k] * dot(s[k], d)
			axpy(-alpha[k], y[k], d)
		}
		step := 1.0
		if k := len(s) - 1; k >= 0 {
			scale(dot(s[k], y[k])/dot(y[k], y[k]), d)
		} else {
			step = math.Min(1, 1/math.Sqrt(dot(g, g))) // no curvature known yet
		}
		for k := range s {
			b := rho[k] * dot(y[k], d)
			axpy(alpha[k]-b, s[k], d)
		}
		gd := dot(g, d)
		if !(gd < 0) { // not a descent direction: forget the curvature pairs
			s, y, rho = s[:0], y[:0], rho[:0]
			for i := range d {
				d[i] = -g[i]
			}
			gd = -dot(g, g)
		}
		var fn float64
		ok := false
		for try := 0; try < 40; try++ {
			for i := range xn {
				xn[i] = x[i] + step*d[i]
			}
			fn = fg(xn, gn)
			if fn <= fx+1e-4*step*gd {
				ok = true
				break
			}
			step /= 2
		}
		if !ok { // no decrease along d: the optimum, to float32 precision
			return it, fx
		}
		sk, yk := make([]float64, n), make([]float64, n)
		for i := range sk {
			sk[i], yk[i] = xn[i]-x[i], gn[i]-g[i]
		}
		if sy := dot(sk, yk); sy > 1e-12*math.Sqrt(dot(sk, sk)*dot(yk, yk)) {
			if len(s) == memory {
				s, y, rho = s[1:], y[1:], rho[1:]
			}
			s, y, rho = append(s, sk), append(y, yk), append(rho, 1/sy)
		}
		if fx-fn <= 1e-9*math.Max(1, math.Abs(fx)) {
			stall++
		} else {
			stall = 0
		}
		copy(x, xn)
		copy(g, gn)
		fx = fn
		if stall >= 5 {
			return it + 1, fx
		}
	}
	return maxIter, fx
}

func dot(a, b []float64) float64 {
	var s float64
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

func axpy(a float64, x, y []float64) {
	for i, v := range x {
		y[i] += a * v
	}
}

func scale(a float64, x []float64) {
	for i := range x {
		x[i] *= a
	}
}

func infNorm(x []float64) float64 {
	var m float64
	for _, v := range x {
		m = math.Max(m, math.Abs(v))
	}
	return m
}

// standardizer computes per-feature mean and 1/std over the given rows.
func standardizer(parts []*Features, d int) (mean, scale []float32) {
	sum := make([]float64, d)
	sq := make([]float64, d)
	n := 0
	for _, f := range parts {
		for i := 0; i < f.Rows; i++ {
			for j, v := range f.Data[i*d : (i+1)*d] {
				sum[j] += float64(v)
			}
		}
		n += f.Rows
	}
	mean = make([]float32, d)
	for j := range sum {
		sum[j] /= float64(n)
		mean[j] = float32(sum[j])
	}
	for _, f := range parts {
		for i := 0; i < f.Rows; i++ {
			for j, v := range f.Data[i*d : (i+1)*d] {
				e := float64(v) - sum[j]
				sq[j] += e * e
			}
		}
	}
	scale = make([]float32, d)
	for j := range sq {
		sd := math.Sqrt(sq[j] / float64(n))
		if sd < 1e-8 {
			scale[j] = 1 // a constant feature: centred to zero
		} else {
			scale[j] = float32(1 / sd)
		}
	}
	return mean, scale
}

func standardizeRow(dst, src, mean, scale []float32) {
	for j, v := range src {
		dst[j] = (v - mean[j]) * scale[j]
	}
}

// FitLogReg fits a logistic regression to f (every label in [0, classes))
// on features standardized with f's own statistics.
func FitLogReg(be backend.Backend, f *Features, classes int, o LogRegOptions) (*LogReg, error) {
	if err := checkLabels("training", f, classes); err != nil {
		return nil, err
	}
	mean, scale := standardizer([]*Features{f}, f.Dim)
	x := make([]float32, f.Rows*f.Dim)
	labels := make([]int32, f.Rows)
	for i := 0; i < f.Rows; i++ {
		standardizeRow(x[i*f.Dim:(i+1)*f.Dim], f.Data[i*f.Dim:(i+1)*f.Dim], mean, scale)
		labels[i] = int32(f.Labels[i])
	}
	theta := make([]float64, classes*(f.Dim+1))
	if _, err := newProblem(be, x, labels, f.Dim, classes).fit(theta, o); err != nil {
		return nil, err
	}
	return newLogReg(theta, f.Dim, classes, mean, scale, o.L2), nil
}

func newLogReg(theta []float64, d, c int, mean, scale []float32, l2 float64) *LogReg {
	m := &LogReg{Dim: d, Classes: c, W: make([]float32, c*d), B: make([]float32, c), Mean: mean, Scale: scale, L2: l2}
	for i := range m.W {
		m.W[i] = float32(theta[i])
	}
	for k := range m.B {
		m.B[k] = float32(theta[c*d+k])
	}
	return m
}

// Scores returns the logits [f.Rows, Classes] of f's rows.
func (m *LogReg) Scores(be backend.Backend, f *Features) ([]float32, error) {
	if f.Dim != m.Dim {
		return nil, fmt.Errorf("linear: features of size %d, the classifier takes %d", f.Dim, m.Dim)
	}
	x := make([]float32, len(f.Data))
	for i := 0; i < f.Rows; i++ {
		standardizeRow(x[i*m.Dim:(i+1)*m.Dim], f.Data[i*m.Dim:(i+1)*m.Dim], m.Mean, m.Scale)
	}
	out := make([]float32, f.Rows*m.Classes)
	if f.Rows == 0 {
		return out, nil
	}
	be.Gemm(false, true, f.Rows, m.Classes, m.Dim, 1, x, m.W, 0, out)
	for i := 0; i < f.Rows; i++ {
		for k, b := range m.B {
			out[i*m.Classes+k] += b
		}
	}
	return out, nil
}

// TopK returns the fraction of rows whose label is among the k highest
// scores (ties count against the label: a label must beat the others).
func TopK(scores []float32, labels []int, classes, k int) float64 {
	if len(labels) == 0 {
		return 0
	}
	hit := 0
	for i, y := range labels {
		row := scores[i*classes : (i+1)*classes]
		above := 0
		for c, s := range row {
			if c != y && s >= row[y] {
				above++
			}
		}
		if above < k {
			hit++
		}
	}
	return float64(hit) / float64(len(labels))
}

// meanCE is the mean cross-entropy of scores against labels.
func meanCE(scores []float32, labels []int, classes int) float64 {
	var s float64
	for i, y := range labels {
		row := scores[i*classes : (i+1)*classes]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, float64(v))
		}
		var z float64
		for _, v := range row {
			z += math.Exp(float64(v) - mx)
		}
		s += math.Log(z) + mx - float64(row[y])
	}
	return s / float64(max(len(labels), 1))
}

func checkLabels(what string, f *Features, classes int) error {
	if classes < 2 {
		return fmt.Errorf("linear: %d classes: need at least 2", classes)
	}
	if f.Rows == 0 {
		return fmt.Errorf("linear: no %s samples", what)
	}
	if len(f.Labels) != f.Rows || len(f.Data) != f.Rows*f.Dim {
		return fmt.Errorf("linear: %s features hold %d values and %d labels for %d rows of %d", what, len(f.Data), len(f.Labels), f.Rows, f.Dim)
	}
	for i, l := range f.Labels {
		if l < 0 || l >= classes {
			return fmt.Errorf("linear: %s sample %d has label %d, want 0..%d (the linear protocol needs labelled data)", what, i, l, classes-1)
		}
	}
	return nil
}

// DefaultL2s are the candidate penalties: 5 values log-spaced from 1e-5
// to 1e-1 (on standardized features and the mean cross-entropy).
func DefaultL2s() []float64 { return []float64{1e-5, 1e-4, 1e-3, 1e-2, 1e-1} }

// LinearData are the features of a linear evaluation.
type LinearData struct {
	// Train has one row per training image (its centre view).
	Train *Features
	// Aug, optional, are augmented copies of the training images, each
	// row-aligned with Train (row i is a view of Train's image i).
	Aug []*Features
	// Test is scored with the final classifier.
	Test    *Features
	Classes int
}

// LinearOptions control LinearEval.
type LinearOptions struct {
	// L2s are the candidate penalties; nil means DefaultL2s. With one
	// value there is no search and no held-out part.
	L2s []float64
	// HoldOut is the fraction of training images that chooses the penalty;
	// 0 means 0.1.
	HoldOut float64
	Seed    uint64
	// MaxIter and GradTol are as in LogRegOptions.
	MaxIter int
	GradTol float64
	// TopK is the k of the second accuracy reported; 0 means 5.
	TopK int
	// Progress, if set, is told of each finished fit.
	Progress func(stage string, l2 float64, iters int)
}

// L2Trial is one candidate penalty's result on the held-out images.
type L2Trial struct {
	L2      float64 `json:"l2"`
	ValTop1 float64 `json:"val_top1"`
	ValLoss float64 `json:"val_loss"`
	Iters   int     `json:"iterations"`
}

// LinearResult is the outcome of LinearEval.
type LinearResult struct {
	L2        float64   `json:"l2"`
	Trials    []L2Trial `json:"l2_search,omitempty"`
	HeldOut   int       `json:"held_out"`
	TrainRows int       `json:"train_rows"`
	Iters     int       `json:"iterations"`
	Top1      float64   `json:"top1"`
	TopK      float64   `json:"topk"`
	K         int       `json:"k"`
	TrainTop1 float64   `json:"train_top1"`
	Model     *LogReg   `json:"-"`
}

// LinearEval runs the linear protocol: standardize the training features,
// choose the L2 penalty by top-1 accuracy (ties: lower cross-entropy) on a
// held-out HoldOut of the training images (their centre views; their
// augmented copies are left out of that fit), refit on every training row
// with the chosen penalty, and score the test features.
func LinearEval(be backend.Backend, d LinearData, o LinearOptions) (*LinearResult, error) {
	tr := d.Train
	if err := checkLabels("training", tr, d.Classes); err != nil {
		return nil, err
	}
	if err := checkLabels("test", d.Test, d.Classes); err != nil {
		return nil, err
	}
	if d.Test.Dim != tr.Dim {
		return nil, fmt.Errorf("linear: test features of size %d, training features of size %d", d.Test.Dim, tr.Dim)
	}
	for k, a := range d.Aug {
		if a.Rows != tr.Rows || a.Dim != tr.Dim {
			return nil, fmt.Errorf("linear: augmented copy %d is %dx%d, training features %dx%d", k, a.Rows, a.Dim, tr.Rows, tr.Dim)
		}
		if !slices.Equal(a.Labels, tr.Labels) {
			return nil, fmt.Errorf("linear: augmented copy %d has other labels than the training features", k)
		}
	}
	l2s := o.L2s
	if l2s == nil {
		l2s = DefaultL2s()
	}
	for _, l := range l2s {
		if !(l >= 0) || math.IsInf(l, 0) {
			return nil, fmt.Errorf("linear: L2 penalty %g: want a finite value >= 0", l)
		}
	}
	if len(l2s) == 0 {
		return nil, errors.New("linear: no L2 penalty to try")
	}
	hold := o.HoldOut
	if hold == 0 {
		hold = 0.1
	}
	if !(hold > 0 && hold < 1) {
		return nil, fmt.Errorf("linear: held-out fraction %g not in (0, 1)", hold)
	}
	k := o.TopK
	if k == 0 {
		k = 5
	}
	k = min(k, d.Classes)
	dim, c := tr.Dim, d.Classes
	parts := append([]*Features{tr}, d.Aug...)
	mean, scale := standardizer(parts, dim)

	// One standardized matrix, rows ordered [fit images (centre views, then
	// each augmented copy), held-out centre views, held-out augmented
	// copies], so the search fits a prefix, validates on the next block,
	// and the final fit takes it all.
	nVal := 0
	if len(l2s) > 1 {
		nVal = max(1, int(math.Round(hold*float64(tr.Rows))))
		if nVal >= tr.Rows {
			return nil, fmt.Errorf("linear: %d training images are too few to hold out %g of them", tr.Rows, hold)
		}
	}
	perm := tensor.NewRNG(o.Seed, "linear-holdout").Perm(tr.Rows)
	val, fit := perm[:nVal], perm[nVal:]
	slices.Sort(val)
	slices.Sort(fit)
	rows := len(parts) * tr.Rows
	x := make([]float32, rows*dim)
	labels := make([]int32, rows)
	r := 0
	put := func(f *Features, idx []int) {
		for _, i := range idx {
			standardizeRow(x[r*dim:(r+1)*dim], f.Data[i*dim:(i+1)*dim], mean, scale)
			labels[r] = int32(f.Labels[i])
			r++
		}
	}
	for _, f := range parts {
		put(f, fit)
	}
	nFit := r
	put(tr, val)
	for _, f := range d.Aug {
		put(f, val)
	}
	res := &LinearResult{HeldOut: nVal, TrainRows: rows, K: k}
	opts := LogRegOptions{MaxIter: o.MaxIter, GradTol: o.GradTol}
	theta := make([]float64, c*(dim+1))
	best := -1
	if len(l2s) > 1 {
		valF := &Features{Rows: nVal, Dim: dim, Data: x[nFit*dim : (nFit+nVal)*dim], Labels: make([]int, nVal)}
		for i := range valF.Labels {
			valF.Labels[i] = int(labels[nFit+i])
		}
		p := newProblem(be, x[:nFit*dim], labels[:nFit], dim, c)
		order := slices.Clone(l2s)
		slices.Sort(order)
		slices.Reverse(order) // strongest first: each fit warm-starts the next
		thetas := map[float64][]float64{}
		for _, l2 := range order {
			opts.L2 = l2
			iters, err := p.fit(theta, opts)
			if err != nil {
				return nil, err
			}
			m := newLogReg(theta, dim, c, make([]float32, dim), ones(dim), l2)
			scores, _ := m.Scores(be, valF)
			t := L2Trial{L2: l2, ValTop1: TopK(scores, valF.Labels, c, 1), ValLoss: meanCE(scores, valF.Labels, c), Iters: iters}
			res.Trials = append(res.Trials, t)
			thetas[l2] = slices.Clone(theta)
			if o.Progress != nil {
				o.Progress("search", l2, iters)
			}
		}
		for i, t := range res.Trials {
			if best < 0 || t.ValTop1 > res.Trials[best].ValTop1 ||
				(t.ValTop1 == res.Trials[best].ValTop1 && t.ValLoss < res.Trials[best].ValLoss) {
				best = i
			}
		}
		res.L2 = res.Trials[best].L2
		copy(theta, thetas[res.L2])
		slices.SortFunc(res.Trials, func(a, b L2Trial) int {
			switch {
			case a.L2 < b.L2:
				return -1
			case a.L2 > b.L2:
				return 1
			}
			return 0
		})
	} else {
		res.L2 = l2s[0]
	}
	opts.L2 = res.L2
	iters, err := newProblem(be, x, labels, dim, c).fit(theta, opts)
	if err != nil {
		return nil, err
	}
	if o.Progress != nil {
		o.Progress("final", res.L2, iters)
	}
	res.Iters = iters
	res.Model = newLogReg(theta, dim, c, mean, scale, res.L2)
	scores, err := res.Model.Scores(be, d.Test)
	if err != nil {
		return nil, err
	}
	res.Top1 = TopK(scores, d.Test.Labels, c, 1)
	res.TopK = TopK(scores, d.Test.Labels, c, k)
	trScores, _ := res.Model.Scores(be, tr)
	res.TrainTop1 = TopK(trScores, tr.Labels, c, 1)
	return res, nil
}

func ones(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = 1
	}
	return s
}
