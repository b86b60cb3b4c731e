// Package autograd records a training step's operations on a tape and runs
// their gradients in reverse.
//
// Operations are coarse (a whole convolution, a whole batch norm), so the
// tape is short and every backward is a visible call into the backend.
// Activation and gradient buffers come from an arena that is rewound, not
// freed, between steps: the same sequence of operations gets the same
// buffers back, so a step allocates nothing large after the first.
package autograd

import (
	"fmt"

	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/tensor"
)

// Var is a tensor in the graph, with its gradient once backward reached it.
type Var struct {
	Value *tensor.Tensor
	// Grad is the gradient of the loss with respect to Value. For
	// parameters it persists across steps and is overwritten by each step's
	// first contribution, so no zeroing pass is needed.
	Grad         *tensor.Tensor
	RequiresGrad bool
	// gradTape and gradStep say which tape step last wrote Grad; a Grad
	// written in another step, or by another tape over the same
	// parameters, is stale and gets overwritten, not added to.
	gradTape *Tape
	gradStep uint64
	// gradPooled marks a Grad lent by the tape's gradient pool, which
	// takes it back once backward is past this variable.
	gradPooled bool
}

// current reports whether v's gradient was written in t's current step.
func (v *Var) current(t *Tape) bool { return v.gradTape == t && v.gradStep == t.step }

// markCurrent records that t's current step wrote v's gradient.
func (v *Var) markCurrent(t *Tape) { v.gradTape, v.gradStep = t, t.step }

// NewParam wraps t as a leaf that requires a gradient.
func NewParam(t *tensor.Tensor) *Var {
	return &Var{Value: t, Grad: tensor.New(t.Shape...), RequiresGrad: true}
}

// Const wraps t as a leaf without gradient (an input).
func Const(t *tensor.Tensor) *Var { return &Var{Value: t} }

// HasGrad reports whether v received a gradient in the tape's last step.
func (v *Var) HasGrad(t *Tape) bool { return v.Grad != nil && v.current(t) }

// Tape records operations for one step at a time.
type Tape struct {
	B backend.Backend
	// Train selects training behaviour (batch statistics in batch norm).
	Train bool
	// NoGrad disables recording: forward passes for evaluation.
	NoGrad bool

	arena    Arena
	grads    pool
	backward []entry
	step     uint64
}

// NewTape returns a tape computing on b, in training mode.
func NewTape(b backend.Backend) *Tape { return &Tape{B: b, Train: true, step: 1} }

// Reset forgets the recorded operations and rewinds the arena, making every
// buffer handed out since the last Reset available again. Tensors from the
// previous step must not be used after it.
func (t *Tape) Reset() {
	clear(t.backward)
	t.backward = t.backward[:0]
	t.arena.Rewind()
	t.grads.reclaim()
	t.step++
}

// Allocs is the number of buffers the tape had to allocate so far.
func (t *Tape) Allocs() int { return t.arena.allocs + t.grads.allocs }

// ArenaBytes is the memory the tape's buffers hold.
func (t *Tape) ArenaBytes() int64 { return t.arena.bytes + t.grads.bytes }

// NewVar returns an arena-backed tensor of the given shape wrapped in a Var.
// Its contents are undefined: the caller overwrites them.
func (t *Tape) NewVar(shape ...int) *Var {
	return &Var{Value: tensor.FromSlice(t.arena.Get(tensor.Numel(shape)), shape...)}
}

// Input copies x into an arena buffer and returns it as a constant.
func (t *Tape) Input(x *tensor.Tensor) *Var {
	v := t.NewVar(x.Shape...)
	copy(v.Value.Data, x.Data)
	return v
}

// record makes out require a gradient when any input does and, if so,
// pushes its backward function.
func (t *Tape) record(out *Var, backward func(), inputs ...*Var) {
	if t.NoGrad {
		return
	}
	for _, in := range inputs {
		if in != nil && in.RequiresGrad {
			out.RequiresGrad = true
			t.backward = append(t.backward, entry{backward, out})
			return
		}
	}
}

// Backward runs the recorded operations' gradients in reverse, starting
// from d(loss)/d(loss) = 1. loss must hold a single value.
func (t *Tape) Backward(loss *Var) error {
	if loss.Value.Len() != 1 {
		return fmt.Errorf("autograd: backward from a tensor of shape %v, want a scalar", loss.Value.Shape)
	}
	if !loss.RequiresGrad {
		return fmt.Errorf("autograd: loss does not depend on any parameter")
	}
	g := t.gradBuffer(loss)
	g.Data[0] = 1
	loss.markCurrent(t)
	for i := len(t.backward) - 1; i >= 0; i-- {
		e := t.backward[i]
		e.fn()
		// Every consumer of out has run its backward by now, and out's
		// producer just read its gradient: the buffer is free.
		if out := e.out; out.gradPooled {
			t.grads.put(out.Grad.Data)
			out.Grad, out.gradPooled = nil, false
		}
	}
	return nil
}

// entry is a recorded operation: its backward and the output it produced.
type entry struct {
	fn  func()
	out *Var
}

// gradBuffer returns v's gradient tensor, creating it from the arena for
// intermediate values.
func (t *Tape) gradBuffer(v *Var) *tensor.Tensor {
	if v.Grad == nil {
		v.Grad = tensor.FromSlice(t.grads.get(v.Value.Len()), v.Value.Shape...)
		v.gradPooled = true
	}
	return v.Grad
}

// gradOut gives the buffer a backward function writes v's gradient
// contribution into, and a function to call once it is written. The first
// contribution in a step goes straight into v.Grad; later ones go to a
// scratch buffer that done adds in. It returns nil when v needs no gradient.
func (t *Tape) gradOut(v *Var) (buf []float32, done func()) {
	if v == nil || !v.RequiresGrad {
		return nil, nil
	}
	g := t.gradBuffer(v)
	if !v.current(t) {
		v.markCurrent(t)
		return g.Data, func() {}
	}
	tmp := t.grads.get(g.Len())
	return tmp, func() {
		t.B.Axpy(1, tmp, g.Data)
		t.grads.put(tmp)
	}
}

// gradIn is the gradient of an op's output, which backward reads. An output
// that no later op used (and is not the loss) has a zero gradient.
func (t *Tape) gradIn(out *Var) []float32 {
	g := t.gradBuffer(out)
	if !out.current(t) {
		clear(g.Data)
		out.markCurrent(t)
	}
	return g.Data
}

// pool lends gradient buffers, which live only from the first
// contribution to a variable's gradient until its producer's backward has
// read it. Reusing them keeps the peak near one step's activations plus a
// few gradients, instead of activations plus all their gradients. Every
// step requests the same sizes in the same order, so after the first step
// the pool allocates nothing.
type pool struct {
	free   map[int][][]float32
	all    [][]float32
	allocs int
	bytes  int64
}

func (p *pool) get(n int) []float32 {
	if l := p.free[n]; len(l) > 0 {
		b := l[len(l)-1]
		p.free[n] = l[:len(l)-1]
		return b
	}
	b := make([]float32, n)
	p.all = append(p.all, b)
	p.allocs++
	p.bytes += int64(4 * n)
	return b
}

func (p *pool) put(b []float32) {
	if p.free == nil {
		p.free = map[int][][]float32{}
	}
	p.free[len(b)] = append(p.free[len(b)], b)
}

// reclaim takes back every buffer, including any a step left lent.
func (p *pool) reclaim() {
	for n, l := range p.free {
		p.free[n] = l[:0]
	}
	for _, b := range p.all {
		p.put(b)
	}
}

// Arena hands out float32 buffers in request order and takes them all back
// at once.
type Arena struct {
	bufs   [][]float32
	next   int
	ints   [][]int32
	nextI  int
	allocs int
	bytes  int64
}

// Get returns a buffer of n values, reusing the one handed out at the same
// position of the previous round when it is large enough.
func (a *Arena) Get(n int) []float32 {
	if a.next < len(a.bufs) && cap(a.bufs[a.next]) >= n {
		b := a.bufs[a.next][:n]
		a.next++
		return b
	}
	b := make([]float32, n)
	a.allocs++
	a.bytes += int64(4 * n)
	if a.next < len(a.bufs) {
		a.bytes -= int64(4 * cap(a.bufs[a.next]))
		a.bufs[a.next] = b
	} else {
		a.bufs = append(a.bufs, b)
	}
	a.next++
	return b
}

// Rewind makes every buffer available again.
func (a *Arena) Rewind() { a.next, a.nextI = 0, 0 }

// GetInt32 is Get for index buffers (max-pool argmax).
func (a *Arena) GetInt32(n int) []int32 {
	if a.nextI < len(a.ints) && cap(a.ints[a.nextI]) >= n {
		b := a.ints[a.nextI][:n]
		a.nextI++
		return b
	}
	b := make([]int32, n)
	a.allocs++
	a.bytes += int64(4 * n)
	if a.nextI < len(a.ints) {
		a.bytes -= int64(4 * cap(a.ints[a.nextI]))
		a.ints[a.nextI] = b
	} else {
		a.ints = append(a.ints, b)
	}
	a.nextI++
	return b
}
