package simclr

import (
	"fmt"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/tensor"
)

// SimCLRv2's memory (Chen et al. 2020, "Big Self-Supervised Models are
// Strong Semi-Supervised Learners", section 2): "we also incorporate the
// memory mechanism from MoCo, which designates a memory network (with a
// moving average of weights for stabilization) whose output will be
// buffered as negative examples". The paper gives no more detail and the
// public TF2 code does not include it, so this follows MoCo (He et al.
// 2020) where the paper is silent:
//
//   - Positives: two variants. NTXentMemory keeps SimCLR's (each row's
//     positive is its other view, both from the online model) and the
//     queue only adds negatives, as the paper's wording suggests. That
//     has a shortcut: the online model can lower the loss by drifting
//     away from where the momentum model put past batches, without
//     telling images apart; on CIFAR-10 it learned nothing when the
//     momentum model tracked closely (BENCHMARKS.md). NTXentMomentumKeys
//     takes MoCo's positives (the momentum model's projection of the
//     other view), which closes it; it is the command line's default.
//   - The queue holds L2-normalised projections of both views of past
//     batches, computed by the momentum model; it is a constant (no
//     gradient reaches it or the momentum model).
//   - The momentum model's parameters follow θ_m ← m·θ_m + (1-m)·θ after
//     every optimizer step. Its batch-norm buffers (running statistics,
//     num_batches_tracked) are not averaged: as in MoCo, where the
//     momentum update covers parameters only, they evolve from the
//     momentum model's own training-mode forwards. They never affect
//     training (training-mode batch norm uses batch statistics), only an
//     evaluation of the momentum model.

// Queue is a FIFO of at most K rows of width Dim, kept in a ring: slot Ptr
// is the next to be written, which once the queue is full holds the
// oldest row. Until then the filled rows are slots [0, Len()).
type Queue struct {
	K, Dim int
	// Data is the ring, [K, Dim]; only the first Len() rows are valid
	// until the queue has been filled once.
	Data *tensor.Tensor
	// Ptr is the slot the next row goes to.
	Ptr int
	// Filled is the number of valid rows (at most K).
	Filled int
}

// NewQueue returns an empty queue of k rows of width dim.
func NewQueue(k, dim int) *Queue {
	if k < 1 || dim < 1 {
		panic(fmt.Sprintf("simclr: queue of %d rows of width %d", k, dim))
	}
	return &Queue{K: k, Dim: dim, Data: tensor.New(k, dim)}
}

// Len is the number of valid rows.
func (q *Queue) Len() int { return q.Filled }

// Enqueue appends the rows of rows[r*Dim...] in order, each replacing the
// oldest row once the queue is full. With more rows than K only the last
// K remain.
func (q *Queue) Enqueue(rows []float32) {
	if len(rows)%q.Dim != 0 {
		panic(fmt.Sprintf("simclr: enqueue of %d values into rows of %d", len(rows), q.Dim))
	}
	for r := 0; r < len(rows)/q.Dim; r++ {
		copy(q.Data.Data[q.Ptr*q.Dim:(q.Ptr+1)*q.Dim], rows[r*q.Dim:(r+1)*q.Dim])
		q.Ptr = (q.Ptr + 1) % q.K
		q.Filled = min(q.Filled+1, q.K)
	}
}

// Entries are the valid rows in slot order, [Len(), Dim] (a view of Data,
// not a copy). The loss does not depend on their order.
func (q *Queue) Entries() []float32 { return q.Data.Data[:q.Filled*q.Dim] }

// Ordered returns a copy of the valid rows from oldest to newest.
func (q *Queue) Ordered() []float32 {
	out := make([]float32, 0, q.Filled*q.Dim)
	start := 0
	if q.Filled == q.K {
		start = q.Ptr
	}
	for i := 0; i < q.Filled; i++ {
		s := (start + i) % q.K
		out = append(out, q.Data.Data[s*q.Dim:(s+1)*q.Dim]...)
	}
	return out
}

// NTXentMemory is NTXent with the rows of the queue as further negatives:
// row i's logits are [its similarities to the 2N batch rows (itself
// masked) | its similarities to the queue's Len() rows], all divided by
// the temperature, and its label is still its other view in the batch.
// The queue rows are taken as L2-normalised constants (copied onto the
// tape, so the queue may change before backward). With an empty queue it
// is NTXent.
func NTXentMemory(t *autograd.Tape, z *autograd.Var, q *Queue, temperature float32) (loss *autograd.Var, stats ContrastStats) {
	if q == nil || q.Len() == 0 {
		return NTXent(t, z, temperature)
	}
	rows := z.Value.Dim(0)
	if rows%2 != 0 || rows < 4 {
		panic(fmt.Sprintf("simclr: NT-Xent needs two views of at least 2 images, got %d rows", rows))
	}
	if z.Value.Dim(1) != q.Dim {
		panic(fmt.Sprintf("simclr: projections of width %d with a queue of width %d", z.Value.Dim(1), q.Dim))
	}
	n := rows / 2
	zn := t.L2Normalize(z)
	batch := t.FillDiagonal(t.Scale(t.MatMulT(zn, zn), 1/temperature), -1e9)
	mem := t.Input(tensor.FromSlice(q.Entries(), q.Len(), q.Dim))
	neg := t.Scale(t.MatMulT(zn, mem), 1/temperature)
	logits := t.ConcatChannels(batch, neg)
	labels := make([]int32, rows)
	for i := 0; i < n; i++ {
		labels[i], labels[i+n] = int32(i+n), int32(i)
	}
	self := make([]int32, rows)
	for i := range self {
		self[i] = int32(i)
	}
	return t.CrossEntropy(logits, labels), contrastStatsRows(logits.Value.Data, rows+q.Len(), self, labels)
}

// Memory is SimCLRv2's memory: a momentum (moving-average) copy of the
// model and a queue of its projections, used as extra negatives by
// NTXentMemory. See the comment at the top of this file for the choices.
type Memory struct {
	// Model is the momentum model: same architecture as the online one,
	// never given gradients.
	Model *Model
	// Momentum is m in θ_m ← m·θ_m + (1-m)·θ.
	Momentum float32
	Queue    *Queue
	// tape runs the momentum model: training-mode batch norm, no
	// recording, so nothing of it can be differentiated.
	tape *autograd.Tape
}

// NewMemory builds a momentum copy of online (built from cfg; parameters
// and buffers copied from online) and an empty queue of size rows.
func NewMemory(online *Model, cfg ModelConfig, size int, momentum float64, be backend.Backend) (*Memory, error) {
	if size < 1 {
		return nil, fmt.Errorf("simclr: memory of %d entries: need at least 1", size)
	}
	if momentum < 0 || momentum >= 1 {
		return nil, fmt.Errorf("simclr: memory momentum %g outside [0, 1)", momentum)
	}
	m, err := NewModel(cfg, 0)
	if err != nil {
		return nil, err
	}
	if err := copyState(m, online); err != nil {
		return nil, err
	}
	tape := autograd.NewTape(be)
	tape.Train, tape.NoGrad = true, true
	return &Memory{Model: m, Momentum: float32(momentum), Queue: NewQueue(size, cfg.ProjOut), tape: tape}, nil
}

// copyState copies src's parameters, buffers and counters into dst.
func copyState(dst, src *Model) error {
	dp, sp := dst.Params.Params(), src.Params.Params()
	db, sb := dst.Params.Buffers(), src.Params.Buffers()
	dc, sc := dst.Params.Counters(), src.Params.Counters()
	if len(dp) != len(sp) || len(db) != len(sb) || len(dc) != len(sc) {
		return fmt.Errorf("simclr: momentum model does not match the online model")
	}
	for i := range dp {
		copy(dp[i].Value.Data, sp[i].Value.Data)
	}
	for i := range db {
		copy(db[i].Tensor.Data, sb[i].Tensor.Data)
	}
	for i := range dc {
		dc[i].Value = sc[i].Value
	}
	return nil
}

// Update moves the momentum parameters towards online's:
// θ_m ← m·θ_m + (1-m)·θ, in float32. Call it after each optimizer step.
func (mem *Memory) Update(online *Model) {
	m := mem.Momentum
	a := 1 - m
	sp := online.Params.Params()
	for i, p := range mem.Model.Params.Params() {
		s := sp[i].Value.Data
		for j, v := range p.Value.Data {
			p.Value.Data[j] = m*v + a*s[j]
		}
	}
}

// Encode runs the momentum model on x (training-mode batch norm, nothing
// recorded) and returns its L2-normalised projections, [rows, ProjOut]. The
// result lives in the memory's tape arena until the next Encode.
func (mem *Memory) Encode(x *tensor.Tensor) []float32 {
	mem.tape.Reset()
	_, z := mem.Model.Forward(mem.tape, mem.tape.Input(x))
	return mem.tape.L2Normalize(z).Value.Data
}

// Push encodes x with the momentum model and enqueues the projections of
// every row, in row order (for views [first views; second views], the
// first views go in first).
func (mem *Memory) Push(x *tensor.Tensor) { mem.Queue.Enqueue(mem.Encode(x)) }

// Tape is the tape the momentum model runs on (tests check that nothing
// of the momentum model received a gradient on it).
func (mem *Memory) Tape() *autograd.Tape { return mem.tape }

// NTXentMomentumKeys is the memory loss with MoCo's positives: row i's
// positive is keys[partner(i)], the momentum model's projection of its
// other view, instead of the online one. Its logits are [its similarities
// to the batch's momentum keys | to the online rows | to the queue], all
// divided by the temperature, with three entries masked: keys[i] (the
// momentum model's projection of the same view), itself and its online
// partner (neither a fair negative nor, here, the positive). Its label is
// column i of the key block, which holds keys[partner(i)].
//
// With the positive also coming from the momentum model, moving all online
// projections away from where the momentum model puts them moves them away
// from the positives too: NTXentMemory's shortcut (drift away from the
// queue without telling images apart) is closed. keys are L2-normalised,
// [rows, Dim], taken as constants.
func NTXentMomentumKeys(t *autograd.Tape, z *autograd.Var, keys []float32, q *Queue, temperature float32) (loss *autograd.Var, stats ContrastStats) {
	rows, d := z.Value.Dim(0), z.Value.Dim(1)
	if rows%2 != 0 || rows < 4 {
		panic(fmt.Sprintf("simclr: NT-Xent needs two views of at least 2 images, got %d rows", rows))
	}
	if len(keys) != rows*d {
		panic(fmt.Sprintf("simclr: %d key values for %d rows of width %d", len(keys), rows, d))
	}
	n := rows / 2
	partner := make([]int32, rows)
	for i := 0; i < n; i++ {
		partner[i], partner[i+n] = int32(i+n), int32(i)
	}
	// Row j of swapped is keys[partner(j)], so row i's positive sits on
	// the diagonal and keys[i] (same view) in column partner(i).
	swapped := tensor.New(rows, d)
	for j, p := range partner {
		copy(swapped.Data[j*d:(j+1)*d], keys[int(p)*d:(int(p)+1)*d])
	}
	zn := t.L2Normalize(z)
	inv := 1 / temperature
	withKeys := t.FillAt(t.Scale(t.MatMulT(zn, t.Input(swapped)), inv), partner, -1e9)
	online := t.FillAt(t.FillDiagonal(t.Scale(t.MatMulT(zn, zn), inv), -1e9), partner, -1e9)
	parts := []*autograd.Var{withKeys, online}
	if q != nil && q.Len() > 0 {
		if q.Dim != d {
			panic(fmt.Sprintf("simclr: projections of width %d with a queue of width %d", d, q.Dim))
		}
		parts = append(parts, t.Scale(t.MatMulT(zn, t.Input(tensor.FromSlice(q.Entries(), q.Len(), q.Dim))), inv))
	}
	logits := t.ConcatChannels(parts...)
	labels, self := make([]int32, rows), make([]int32, rows)
	for i := range labels {
		labels[i], self[i] = int32(i), int32(rows+i)
	}
	return t.CrossEntropy(logits, labels), contrastStatsRows(logits.Value.Data, logits.Value.Dim(1), self, labels)
}
