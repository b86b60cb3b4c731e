package autograd

import (
	"fmt"

	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/tensor"
)

// ConvOpts are a convolution's geometry; zero strides and dilations mean 1.
type ConvOpts struct {
	Stride, Pad, Dilation, Groups int
}

// Conv2D convolves x[N,H,W,C] with w[K,C/groups,R,S] (and bias b[K] unless
// nil) into [N,OH,OW,K].
func (t *Tape) Conv2D(x, w, b *Var, o ConvOpts) *Var {
	xs, ws := x.Value.Shape, w.Value.Shape
	if len(xs) != 4 || len(ws) != 4 {
		panic(fmt.Sprintf("autograd: conv2d of %v with weight %v, want NHWC and OIHW", xs, ws))
	}
	one := func(v int) int { return max(v, 1) }
	p := backend.Conv2D{
		N: xs[0], H: xs[1], W: xs[2], C: xs[3], K: ws[0], R: ws[2], S: ws[3],
		StrideH: one(o.Stride), StrideW: one(o.Stride), PadH: o.Pad, PadW: o.Pad,
		DilH: one(o.Dilation), DilW: one(o.Dilation), Groups: one(o.Groups),
	}
	if err := p.Validate(); err != nil {
		panic(err)
	}
	if ws[1]*p.Groups != p.C {
		panic(fmt.Sprintf("autograd: conv2d weight %v does not fit %d input channels in %d groups", ws, p.C, p.Groups))
	}
	out := t.NewVar(p.N, p.OutH(), p.OutW(), p.K)
	var bias []float32
	if b != nil {
		bias = b.Value.Data
	}
	t.B.Conv2DForward(p, x.Value.Data, w.Value.Data, bias, out.Value.Data)
	t.record(out, func() {
		dy := t.gradIn(out)
		if dw, done := t.gradOut(w); dw != nil {
			var db []float32
			var doneB func()
			if b != nil {
				db, doneB = t.gradOut(b)
			}
			t.B.Conv2DBackwardWeights(p, x.Value.Data, dy, dw, db)
			done()
			if doneB != nil {
				doneB()
			}
		} else if db, doneB := t.gradOut(b); db != nil {
			// Frozen weights with a trainable bias.
			t.B.SumRows(p.N*p.OutH()*p.OutW(), p.K, dy, db)
			doneB()
		}
		if dx, done := t.gradOut(x); dx != nil {
			t.B.Conv2DBackwardData(p, dy, w.Value.Data, dx)
			done()
		}
	}, x, w, b)
	return out
}

// BatchNormStats are the running averages a batch norm keeps and updates in
// training, PyTorch's way: running = (1-momentum)*running + momentum*batch,
// with the unbiased batch variance.
type BatchNormStats struct {
	Mean, Var *tensor.Tensor
	Momentum  float32
	Eps       float32
}

// BatchNorm normalises x over all dimensions but the last (channels), then
// applies ReLU when relu is set. In training mode it uses and records the
// batch statistics; otherwise the running ones.
func (t *Tape) BatchNorm(x, gamma, beta *Var, st *BatchNormStats, relu bool) *Var {
	c := x.Value.Dim(-1)
	m := x.Value.Len() / c
	out := t.NewVar(x.Value.Shape...)
	if !t.Train {
		t.B.BatchNormInference(m, c, st.Eps, x.Value.Data, gamma.Value.Data, beta.Value.Data,
			st.Mean.Data, st.Var.Data, out.Value.Data, relu)
		t.record(out, func() { panic("autograd: backward through batch norm in eval mode") }, x, gamma, beta)
		return out
	}
	if m < 2 {
		panic(fmt.Sprintf("autograd: batch norm in training needs more than one value per channel, got input %v", x.Value.Shape))
	}
	mean, variance := t.arena.Get(c), t.arena.Get(c)
	t.B.BatchNormForward(m, c, st.Eps, x.Value.Data, gamma.Value.Data, beta.Value.Data,
		out.Value.Data, mean, variance, relu)
	mom := st.Momentum
	unbias := float32(m) / float32(m-1)
	for j := 0; j < c; j++ {
		st.Mean.Data[j] = (1-mom)*st.Mean.Data[j] + mom*mean[j]
		st.Var.Data[j] = (1-mom)*st.Var.Data[j] + mom*variance[j]*unbias
	}
	t.record(out, func() {
		dy := t.gradIn(out)
		dx, doneX := t.gradOut(x)
		dg, doneG := t.gradOut(gamma)
		db, doneB := t.gradOut(beta)
		// The kernel computes all three; missing ones go to scratch.
		var scratch [][]float32
		orScratch := func(b []float32, n int) []float32 {
			if b == nil {
				b = t.grads.get(n)
				scratch = append(scratch, b)
			}
			return b
		}
		dx, dg, db = orScratch(dx, x.Value.Len()), orScratch(dg, c), orScratch(db, c)
		t.B.BatchNormBackward(m, c, st.Eps, x.Value.Data, out.Value.Data, dy, gamma.Value.Data,
			mean, variance, dx, dg, db, relu)
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

// ReLU is max(x, 0).
func (t *Tape) ReLU(x *Var) *Var {
	out := t.NewVar(x.Value.Shape...)
	t.B.ReLUForward(x.Value.Data, out.Value.Data)
	t.record(out, func() {
		if dx, done := t.gradOut(x); dx != nil {
			t.B.ReLUBackward(out.Value.Data, t.gradIn(out), dx)
			done()
		}
	}, x)
	return out
}

// AddReLU is max(a+b, 0), the end of a residual block.
func (t *Tape) AddReLU(a, b *Var) *Var {
	mustSameShape("add-relu", a, b)
	out := t.NewVar(a.Value.Shape...)
	t.B.AddReLUForward(a.Value.Data, b.Value.Data, out.Value.Data)
	t.record(out, func() {
		dy := t.gradIn(out)
		// The masked gradient is the same for both inputs: compute it once.
		var first []float32
		for _, in := range []*Var{a, b} {
			dx, done := t.gradOut(in)
			if dx == nil {
				continue
			}
			if first == nil {
				t.B.ReLUBackward(out.Value.Data, dy, dx)
				first = dx
			} else {
				copy(dx, first)
			}
			done()
		}
	}, a, b)
	return out
}

// Add is a + b.
func (t *Tape) Add(a, b *Var) *Var {
	mustSameShape("add", a, b)
	out := t.NewVar(a.Value.Shape...)
	t.B.Add(a.Value.Data, b.Value.Data, out.Value.Data)
	t.record(out, func() {
		dy := t.gradIn(out)
		for _, in := range []*Var{a, b} {
			if dx, done := t.gradOut(in); dx != nil {
				copy(dx, dy)
				done()
			}
		}
	}, a, b)
	return out
}

// Scale is alpha*x.
func (t *Tape) Scale(x *Var, alpha float32) *Var {
	out := t.NewVar(x.Value.Shape...)
	t.B.Scale(alpha, x.Value.Data, out.Value.Data)
	t.record(out, func() {
		if dx, done := t.gradOut(x); dx != nil {
			t.B.Scale(alpha, t.gradIn(out), dx)
			done()
		}
	}, x)
	return out
}

// MaxPool2D takes the maximum over k x k windows of x[N,H,W,C].
func (t *Tape) MaxPool2D(x *Var, k, stride, pad int) *Var {
	s := x.Value.Shape
	p := backend.Pool2D{N: s[0], H: s[1], W: s[2], C: s[3], KH: k, KW: k,
		StrideH: stride, StrideW: stride, PadH: pad, PadW: pad}
	out := t.NewVar(p.N, p.OutH(), p.OutW(), p.C)
	argmax := t.arena.GetInt32(out.Value.Len())
	t.B.MaxPoolForward(p, x.Value.Data, out.Value.Data, argmax)
	t.record(out, func() {
		if dx, done := t.gradOut(x); dx != nil {
			t.B.MaxPoolBackward(p, t.gradIn(out), argmax, dx)
			done()
		}
	}, x)
	return out
}

// GlobalAvgPool averages x[N,H,W,C] over space into [N,C].
func (t *Tape) GlobalAvgPool(x *Var) *Var {
	s := x.Value.Shape
	n, hw, c := s[0], s[1]*s[2], s[3]
	out := t.NewVar(n, c)
	t.B.GlobalAvgPoolForward(n, hw, c, x.Value.Data, out.Value.Data)
	t.record(out, func() {
		if dx, done := t.gradOut(x); dx != nil {
			t.B.GlobalAvgPoolBackward(n, hw, c, t.gradIn(out), dx)
			done()
		}
	}, x)
	return out
}

// Linear is x w^T + b for x[M,in], w[out,in] and b[out] (b may be nil).
// Its products run in the backend's precision (LayerGemm).
func (t *Tape) Linear(x, w, b *Var) *Var {
	m, in := x.Value.Dim(0), x.Value.Dim(1)
	outF := w.Value.Dim(0)
	if x.Value.Len() != m*in || w.Value.Dim(1) != in {
		panic(fmt.Sprintf("autograd: linear of %v with weight %v", x.Value.Shape, w.Value.Shape))
	}
	out := t.NewVar(m, outF)
	t.B.LayerGemm(false, true, m, outF, in, x.Value.Data, w.Value.Data, out.Value.Data)
	if b != nil {
		t.B.AddRowVector(m, outF, out.Value.Data, b.Value.Data)
	}
	t.record(out, func() {
		dy := t.gradIn(out)
		if dw, done := t.gradOut(w); dw != nil {
			t.B.LayerGemm(true, false, outF, in, m, dy, x.Value.Data, dw)
			done()
		}
		if db, done := t.gradOut(b); db != nil {
			t.B.SumRows(m, outF, dy, db)
			done()
		}
		if dx, done := t.gradOut(x); dx != nil {
			t.B.LayerGemm(false, false, m, in, outF, dy, w.Value.Data, dx)
			done()
		}
	}, x, w, b)
	return out
}

// MatMulT is a b^T for a[M,K] and b[N,K]: a similarity matrix when a and b
// hold normalised rows.
func (t *Tape) MatMulT(a, b *Var) *Var {
	m, k, n := a.Value.Dim(0), a.Value.Dim(1), b.Value.Dim(0)
	if b.Value.Dim(1) != k {
		panic(fmt.Sprintf("autograd: matmul of %v by %v transposed", a.Value.Shape, b.Value.Shape))
	}
	out := t.NewVar(m, n)
	t.B.Gemm(false, true, m, n, k, 1, a.Value.Data, b.Value.Data, 0, out.Value.Data)
	t.record(out, func() {
		dy := t.gradIn(out)
		if da, done := t.gradOut(a); da != nil {
			t.B.Gemm(false, false, m, k, n, 1, dy, b.Value.Data, 0, da)
			done()
		}
		if db, done := t.gradOut(b); db != nil {
			t.B.Gemm(true, false, n, k, m, 1, dy, a.Value.Data, 0, db)
			done()
		}
	}, a, b)
	return out
}

// ConcatChannels joins tensors along their last dimension.
func (t *Tape) ConcatChannels(xs ...*Var) *Var {
	shape := append([]int(nil), xs[0].Value.Shape...)
	rows := xs[0].Value.Len() / shape[len(shape)-1]
	total := 0
	for _, x := range xs {
		if x.Value.Len()/x.Value.Dim(-1) != rows {
			panic(fmt.Sprintf("autograd: concat of %v and %v", xs[0].Value.Shape, x.Value.Shape))
		}
		total += x.Value.Dim(-1)
	}
	shape[len(shape)-1] = total
	out := t.NewVar(shape...)
	off := 0
	for _, x := range xs {
		c := x.Value.Dim(-1)
		t.B.CopyChannels(rows, c, x.Value.Data, c, 0, out.Value.Data, total, off)
		off += c
	}
	t.record(out, func() {
		dy := t.gradIn(out)
		off := 0
		for _, x := range xs {
			c := x.Value.Dim(-1)
			if dx, done := t.gradOut(x); dx != nil {
				t.B.CopyChannels(rows, c, dy, total, off, dx, c, 0)
				done()
			}
			off += c
		}
	}, xs...)
	return out
}

// SliceChannels returns channels [from, to) of x's last dimension.
func (t *Tape) SliceChannels(x *Var, from, to int) *Var {
	c := x.Value.Dim(-1)
	rows := x.Value.Len() / c
	shape := append([]int(nil), x.Value.Shape...)
	shape[len(shape)-1] = to - from
	out := t.NewVar(shape...)
	t.B.CopyChannels(rows, to-from, x.Value.Data, c, from, out.Value.Data, to-from, 0)
	t.record(out, func() {
		dx, done := t.gradOut(x)
		if dx == nil {
			return
		}
		clear(dx) // channels outside the slice get no gradient from it
		t.B.CopyChannels(rows, to-from, t.gradIn(out), to-from, 0, dx, c, from)
		done()
	}, x)
	return out
}

// Softmax normalises each row of x[M,N].
func (t *Tape) Softmax(x *Var) *Var {
	m, n := rowsCols(x)
	out := t.NewVar(x.Value.Shape...)
	t.B.SoftmaxForward(m, n, x.Value.Data, out.Value.Data)
	t.record(out, func() {
		if dx, done := t.gradOut(x); dx != nil {
			t.B.SoftmaxBackward(m, n, out.Value.Data, t.gradIn(out), dx)
			done()
		}
	}, x)
	return out
}

// L2Normalize scales each row of x[M,N] to unit length (PyTorch's
// F.normalize, eps 1e-12).
func (t *Tape) L2Normalize(x *Var) *Var {
	m, n := rowsCols(x)
	out := t.NewVar(x.Value.Shape...)
	norm := t.arena.Get(m)
	t.B.L2NormalizeForward(m, n, 1e-12, x.Value.Data, out.Value.Data, norm)
	t.record(out, func() {
		if dx, done := t.gradOut(x); dx != nil {
			t.B.L2NormalizeBackward(m, n, out.Value.Data, norm, t.gradIn(out), dx)
			done()
		}
	}, x)
	return out
}

// CrossEntropy is the mean over rows of the cross-entropy between
// softmax(logits) and the integer labels; a scalar.
func (t *Tape) CrossEntropy(logits *Var, labels []int32) *Var {
	m, n := rowsCols(logits)
	if len(labels) != m {
		panic(fmt.Sprintf("autograd: %d labels for %d rows of logits", len(labels), m))
	}
	for i, l := range labels {
		if l < 0 || int(l) >= n {
			panic(fmt.Sprintf("autograd: label %d of row %d outside [0, %d)", l, i, n))
		}
	}
	prob := t.arena.Get(m * n)
	out := t.NewVar(1)
	out.Value.Data[0] = float32(t.B.CrossEntropyForward(m, n, logits.Value.Data, labels, prob))
	t.record(out, func() {
		if dx, done := t.gradOut(logits); dx != nil {
			t.B.CrossEntropyBackward(m, n, prob, labels, t.gradIn(out)[0], dx)
			done()
		}
	}, logits)
	return out
}

// Sum adds every element of x into a scalar.
func (t *Tape) Sum(x *Var) *Var {
	out := t.NewVar(1)
	var s float64
	for _, v := range x.Value.Data {
		s += float64(v)
	}
	out.Value.Data[0] = float32(s)
	t.record(out, func() {
		if dx, done := t.gradOut(x); dx != nil {
			g := t.gradIn(out)[0]
			for i := range dx {
				dx[i] = g
			}
			done()
		}
	}, x)
	return out
}

// Weighted is sum(x * w) for a constant w of x's size: a loss that gives
// every element of x its own gradient, used to test backward passes.
func (t *Tape) Weighted(x *Var, w *tensor.Tensor) *Var {
	if w.Len() != x.Value.Len() {
		panic(fmt.Sprintf("autograd: weights %v for %v", w.Shape, x.Value.Shape))
	}
	out := t.NewVar(1)
	var s float64
	for i, v := range x.Value.Data {
		s += float64(v) * float64(w.Data[i])
	}
	out.Value.Data[0] = float32(s)
	t.record(out, func() {
		if dx, done := t.gradOut(x); dx != nil {
			t.B.Scale(t.gradIn(out)[0], w.Data, dx)
			done()
		}
	}, x)
	return out
}

func rowsCols(x *Var) (int, int) {
	n := x.Value.Dim(-1)
	return x.Value.Len() / n, n
}

func mustSameShape(op string, a, b *Var) {
	if !tensor.SameShape(a.Value.Shape, b.Value.Shape) {
		panic(fmt.Sprintf("autograd: %s of %v and %v", op, a.Value.Shape, b.Value.Shape))
	}
}

// FillDiagonal returns x[N,N] with its diagonal set to value; the diagonal
// gets no gradient. NT-Xent uses it to drop each view's similarity with
// itself.
func (t *Tape) FillDiagonal(x *Var, value float32) *Var {
	m, n := rowsCols(x)
	if m != n {
		panic(fmt.Sprintf("autograd: diagonal of non-square %v", x.Value.Shape))
	}
	out := t.NewVar(x.Value.Shape...)
	copy(out.Value.Data, x.Value.Data)
	for i := 0; i < n; i++ {
		out.Value.Data[i*n+i] = value
	}
	t.record(out, func() {
		if dx, done := t.gradOut(x); dx != nil {
			copy(dx, t.gradIn(out))
			for i := 0; i < n; i++ {
				dx[i*n+i] = 0
			}
			done()
		}
	}, x)
	return out
}
