package autograd

import (
	"fmt"
	"math"
)

// Reducer sums small float64 vectors over the processes of a data-parallel
// group (dist.Comm is one). Global batch norm needs nothing more.
type Reducer interface {
	AllReduceSumFloat64(buf []float64) error
}

// Collective is what AllGatherRows needs of a process group (dist.Comm is
// one).
type Collective interface {
	Rank() int
	Size() int
	AllReduceSum(buf []float32) error
	AllGather(send, recv []float32) error
}

// BatchNormGlobal is BatchNorm whose training statistics are those of the
// batch of every process of r's group together ("synchronised" batch
// norm): each process holds a part of the batch in x, and the mean and
// variance, their running averages and the backward's reductions (the sums
// of dy and of dy*xhat) cover all parts. With a nil r, or in evaluation
// mode, it is BatchNorm. With a group of one it gives BatchNorm's numbers
// exactly.
//
// The parameter gradients it leaves, dgamma and dbeta, are this process's
// own sums: summed over the processes (as data-parallel training does to
// every parameter gradient) they are the global ones.
//
// The heavy work stays in the backend: BatchNormForward gives this part's
// statistics, which are combined over the group in float64 (count, sum and
// sum of squares), BatchNormInference normalises with the global ones, and
// the backward is BatchNormBackward with the global statistics plus a
// per-channel affine correction of dx (again a BatchNormInference, then an
// Axpy) from this part's reductions to the global ones. Only vectors of a
// few channels cross between processes.
func (t *Tape) BatchNormGlobal(x, gamma, beta *Var, st *BatchNormStats, relu bool, r Reducer) *Var {
	if r == nil || !t.Train {
		return t.BatchNorm(x, gamma, beta, st, relu)
	}
	c := x.Value.Dim(-1)
	m := x.Value.Len() / c
	out := t.NewVar(x.Value.Shape...)
	mean, variance := t.arena.Get(c), t.arena.Get(c)
	t.B.BatchNormForward(m, c, st.Eps, x.Value.Data, gamma.Value.Data, beta.Value.Data,
		out.Value.Data, mean, variance, relu)
	// Count, sum and sum of squares from this part's mean and (biased)
	// variance, exact enough in float64: the cancellation in
	// E[x²]-mean² loses log10(mean²/var) of float64's 16 digits.
	sums := make([]float64, 1+2*c)
	sums[0] = float64(m)
	for j := 0; j < c; j++ {
		mu := float64(mean[j])
		sums[1+j] = float64(m) * mu
		sums[1+c+j] = float64(m) * (float64(variance[j]) + mu*mu)
	}
	if err := r.AllReduceSumFloat64(sums); err != nil {
		panic(fmt.Errorf("autograd: global batch norm statistics: %w", err))
	}
	total := sums[0]
	if total < 2 {
		panic(fmt.Sprintf("autograd: batch norm in training needs more than one value per channel, got %g over all processes", total))
	}
	// With other processes' rows (total > m) the statistics change and the
	// output is normalised again; alone, this part's are the global ones.
	global := total != float64(m)
	if global {
		for j := 0; j < c; j++ {
			mu := sums[1+j] / total
			mean[j] = float32(mu)
			variance[j] = float32(max(sums[1+c+j]/total-mu*mu, 0))
		}
		t.B.BatchNormInference(m, c, st.Eps, x.Value.Data, gamma.Value.Data, beta.Value.Data,
			mean, variance, out.Value.Data, relu)
	}
	mom := st.Momentum
	unbias := float32(total) / float32(total-1)
	for j := 0; j < c; j++ {
		st.Mean.Data[j] = (1-mom)*st.Mean.Data[j] + mom*mean[j]
		st.Var.Data[j] = (1-mom)*st.Var.Data[j] + mom*variance[j]*unbias
	}
	t.record(out, func() {
		dy := t.gradIn(out)
		dx, doneX := t.gradOut(x)
		dg, doneG := t.gradOut(gamma)
		db, doneB := t.gradOut(beta)
		var scratch [][]float32
		orScratch := func(b []float32, n int) []float32 {
			if b == nil {
				b = t.grads.get(n)
				scratch = append(scratch, b)
			}
			return b
		}
		dx, dg, db = orScratch(dx, x.Value.Len()), orScratch(dg, c), orScratch(db, c)
		// dx = a*(g - sum(g)/m - xhat*sum(g*xhat)/m) over this part, with
		// a = gamma/sigma, g = dy (masked by the ReLU) and the global mean
		// and sigma; db and dg are this part's sum(g) and sum(g*xhat).
		t.B.BatchNormBackward(m, c, st.Eps, x.Value.Data, out.Value.Data, dy, gamma.Value.Data,
			mean, variance, dx, dg, db, relu)
		if global {
			red := make([]float64, 2*c)
			for j := 0; j < c; j++ {
				red[j], red[c+j] = float64(db[j]), float64(dg[j])
			}
			if err := r.AllReduceSumFloat64(red); err != nil {
				panic(fmt.Errorf("autograd: global batch norm backward: %w", err))
			}
			// The global dx replaces the part's means of g and g*xhat by
			// the global ones: dx += A + B*xhat, per channel.
			scale, shift := t.arena.Get(c), t.arena.Get(c)
			for j := 0; j < c; j++ {
				a := float64(gamma.Value.Data[j]) / math.Sqrt(float64(variance[j])+float64(st.Eps))
				shift[j] = float32(a * (float64(db[j])/float64(m) - red[j]/total))
				scale[j] = float32(a * (float64(dg[j])/float64(m) - red[c+j]/total))
			}
			corr := t.grads.get(x.Value.Len())
			t.B.BatchNormInference(m, c, st.Eps, x.Value.Data, scale, shift, mean, variance, corr, false)
			t.B.Axpy(1, corr, dx)
			t.grads.put(corr)
		}
		for _, done := range []func(){doneX, doneG, doneB} {
			if done != nil {
				done()
			}
		}
		for _, b := range scratch {
			t.grads.put(b)
		}
	}, x, gamma, beta)
	return out
}

// AllGatherRows concatenates every process's x[rows, ...] along the first
// dimension: the result has Size()*rows rows. x is taken as parts equal
// blocks of rows, and the result is ordered by block, then by rank: with
// parts = 2 and x = [first views; second views] of this process's images,
// the result is [first views of all images; second views of all images],
// the layout one process holding the whole batch would have.
//
// Every process's loss depends on every process's x, so the backward sums
// the gradient over the group and keeps this process's rows.
func (t *Tape) AllGatherRows(x *Var, c Collective, parts int) *Var {
	rows := x.Value.Dim(0)
	if parts < 1 || rows%parts != 0 {
		panic(fmt.Sprintf("autograd: all-gather of %d rows in %d parts", rows, parts))
	}
	n := x.Value.Len()
	rowLen := n / max(rows, 1)
	k, rank := c.Size(), c.Rank()
	shape := append([]int(nil), x.Value.Shape...)
	shape[0] = k * rows
	out := t.NewVar(shape...)
	recv := out.Value.Data
	if parts > 1 {
		recv = t.arena.Get(k * n)
	}
	if err := c.AllGather(x.Value.Data, recv); err != nil {
		panic(fmt.Errorf("autograd: all-gather: %w", err))
	}
	block := rows / parts * rowLen // values in one block of one process
	if parts > 1 {
		for r := 0; r < k; r++ {
			for p := 0; p < parts; p++ {
				copy(out.Value.Data[(p*k+r)*block:(p*k+r+1)*block], recv[r*n+p*block:r*n+(p+1)*block])
			}
		}
	}
	t.record(out, func() {
		dy := t.gradIn(out) // out's gradient buffer: nothing reads it after this
		if err := c.AllReduceSum(dy); err != nil {
			panic(fmt.Errorf("autograd: all-gather backward: %w", err))
		}
		if dx, done := t.gradOut(x); dx != nil {
			for p := 0; p < parts; p++ {
				copy(dx[p*block:(p+1)*block], dy[(p*k+rank)*block:(p*k+rank+1)*block])
			}
			done()
		}
	}, x)
	return out
}

// FillAt returns x[M,N] with element cols[i] of each row i set to value
// (none where cols[i] < 0); those elements get no gradient. It is
// FillDiagonal for a rectangular block of a similarity matrix.
func (t *Tape) FillAt(x *Var, cols []int32, value float32) *Var {
	m, n := rowsCols(x)
	if len(cols) != m {
		panic(fmt.Sprintf("autograd: %d columns for %d rows", len(cols), m))
	}
	for i, j := range cols {
		if int(j) >= n {
			panic(fmt.Sprintf("autograd: column %d of row %d outside [0, %d)", j, i, n))
		}
	}
	out := t.NewVar(x.Value.Shape...)
	copy(out.Value.Data, x.Value.Data)
	for i, j := range cols {
		if j >= 0 {
			out.Value.Data[i*n+int(j)] = value
		}
	}
	t.record(out, func() {
		if dx, done := t.gradOut(x); dx != nil {
			copy(dx, t.gradIn(out))
			for i, j := range cols {
				if j >= 0 {
					dx[i*n+int(j)] = 0
				}
			}
			done()
		}
	}, x)
	return out
}
