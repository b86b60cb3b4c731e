package simclr

import (
	"math"
	"testing"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/tensor"
)

// rowsOf returns rows r, r+1, ... of width 2 holding (r, -r).
func rowsOf(from, count int) []float32 {
	var out []float32
	for r := from; r < from+count; r++ {
		out = append(out, float32(r), -float32(r))
	}
	return out
}

func equalF(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestQueueOrder: rows go in FIFO order; once full, each new row replaces
// the oldest, and the ring pointer wraps.
func TestQueueOrder(t *testing.T) {
	q := NewQueue(3, 2)
	if q.Len() != 0 || len(q.Entries()) != 0 {
		t.Fatal("new queue is not empty")
	}
	q.Enqueue(rowsOf(1, 2)) // 1 2
	if q.Len() != 2 || q.Ptr != 2 || !equalF(q.Ordered(), rowsOf(1, 2)) || !equalF(q.Entries(), rowsOf(1, 2)) {
		t.Fatalf("after 2 rows: len %d ptr %d ordered %v", q.Len(), q.Ptr, q.Ordered())
	}
	q.Enqueue(rowsOf(3, 2)) // 1 dequeued: 2 3 4, ring [4 2 3]
	if q.Len() != 3 || q.Ptr != 1 || !equalF(q.Ordered(), rowsOf(2, 3)) {
		t.Fatalf("after wrap: len %d ptr %d ordered %v", q.Len(), q.Ptr, q.Ordered())
	}
	if want := append(rowsOf(4, 1), rowsOf(2, 2)...); !equalF(q.Entries(), want) {
		t.Fatalf("ring %v, want %v", q.Entries(), want)
	}
	q.Enqueue(rowsOf(5, 1)) // 3 4 5
	if !equalF(q.Ordered(), rowsOf(3, 3)) || q.Ptr != 2 {
		t.Fatalf("ordered %v ptr %d", q.Ordered(), q.Ptr)
	}
	q.Enqueue(rowsOf(10, 5)) // more rows than K: the last 3 stay
	if !equalF(q.Ordered(), rowsOf(12, 3)) || q.Len() != 3 {
		t.Fatalf("after a long batch: %v", q.Ordered())
	}
}

// memLossRef is NTXentMemory in float64 loops: z rows normalised, logits
// over the other batch rows and the queue rows, mean cross-entropy with
// the other view as the label.
func memLossRef(z []float32, rows, d int, queue []float32, tau float64) float64 {
	norm := func(v []float32) []float64 {
		var s float64
		for _, x := range v {
			s += float64(x) * float64(x)
		}
		s = math.Sqrt(s)
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x) / s
		}
		return out
	}
	dot := func(a, b []float64) float64 {
		var s float64
		for i := range a {
			s += a[i] * b[i]
		}
		return s
	}
	zn := make([][]float64, rows)
	for i := range zn {
		zn[i] = norm(z[i*d : (i+1)*d])
	}
	var qn [][]float64
	for r := 0; r < len(queue)/d; r++ {
		v := make([]float64, d)
		for j := range v {
			v[j] = float64(queue[r*d+j])
		}
		qn = append(qn, v)
	}
	n := rows / 2
	var total float64
	for i := 0; i < rows; i++ {
		pos := (i + n) % rows
		var lse float64
		for j := 0; j < rows; j++ {
			if j != i {
				lse += math.Exp(dot(zn[i], zn[j]) / tau)
			}
		}
		for _, q := range qn {
			lse += math.Exp(dot(zn[i], q) / tau)
		}
		total += math.Log(lse) - dot(zn[i], zn[pos])/tau
	}
	return total / float64(rows)
}

func randomQueue(k, d, fill int, seed uint64) *Queue {
	q := NewQueue(k, d)
	v := tensor.New(fill, d)
	tensor.NewRNG(seed, "queue").FillNormal(v, 1)
	for r := 0; r < fill; r++ {
		row := v.Data[r*d : (r+1)*d]
		var s float64
		for _, x := range row {
			s += float64(x) * float64(x)
		}
		for j := range row {
			row[j] /= float32(math.Sqrt(s))
		}
	}
	q.Enqueue(v.Data)
	return q
}

// TestNTXentMemoryReference: the loss with a full and a partly filled
// queue matches float64 loops; an empty queue gives NTXent exactly.
func TestNTXentMemoryReference(t *testing.T) {
	rows, d := 6, 4
	zt := tensor.New(rows, d)
	tensor.NewRNG(5, "z").FillNormal(zt, 1)
	for _, c := range []struct{ k, fill int }{{5, 5}, {5, 2}, {3, 7}} {
		q := randomQueue(c.k, d, c.fill, uint64(c.k*10+c.fill))
		tape := autograd.NewTape(purego.New(1))
		loss, st := NTXentMemory(tape, autograd.NewParam(zt.Clone()), q, 0.5)
		want := memLossRef(zt.Data, rows, d, q.Entries(), 0.5)
		if got := float64(loss.Value.Data[0]); math.Abs(got-want) > 1e-5*want {
			t.Errorf("K=%d fill %d: loss %.7f, want %.7f", c.k, c.fill, got, want)
		}
		if st.Entropy <= 0 || st.Entropy > math.Log(float64(rows-1+q.Len())) {
			t.Errorf("K=%d fill %d: entropy %g", c.k, c.fill, st.Entropy)
		}
	}
	// Empty queue: identical to NTXent.
	a, _ := NTXentMemory(autograd.NewTape(purego.New(1)), autograd.NewParam(zt.Clone()), NewQueue(4, d), 0.5)
	b, _ := NTXent(autograd.NewTape(purego.New(1)), autograd.NewParam(zt.Clone()), 0.5)
	if a.Value.Data[0] != b.Value.Data[0] {
		t.Errorf("empty queue: loss %g, NTXent %g", a.Value.Data[0], b.Value.Data[0])
	}
	// Only the filled part counts: a partly filled queue with garbage in
	// the unfilled slots gives the loss of its valid rows.
	q := randomQueue(6, d, 2, 9)
	for i := 2 * d; i < len(q.Data.Data); i++ {
		q.Data.Data[i] = 100
	}
	l, _ := NTXentMemory(autograd.NewTape(purego.New(1)), autograd.NewParam(zt.Clone()), q, 0.5)
	if want := memLossRef(zt.Data, rows, d, q.Data.Data[:2*d], 0.5); math.Abs(float64(l.Value.Data[0])-want) > 1e-5*want {
		t.Errorf("partial fill: loss %g, want %g", l.Value.Data[0], want)
	}
}

// TestNTXentMemoryGrad: the gradient with respect to z matches central
// finite differences of the float64 reference; the queue is constant
// (changing it after the forward does not change the backward).
func TestNTXentMemoryGrad(t *testing.T) {
	rows, d := 4, 3
	zt := tensor.New(rows, d)
	tensor.NewRNG(6, "z").FillNormal(zt, 1)
	q := randomQueue(4, d, 3, 11)
	keep := append([]float32(nil), q.Entries()...)
	tape := autograd.NewTape(purego.New(1))
	z := autograd.NewParam(zt.Clone())
	loss, _ := NTXentMemory(tape, z, q, 0.3)
	q.Enqueue(make([]float32, 2*d)) // mutate the queue before backward
	if err := tape.Backward(loss); err != nil {
		t.Fatal(err)
	}
	const h = 1e-3
	for i := range zt.Data {
		plus, minus := append([]float32(nil), zt.Data...), append([]float32(nil), zt.Data...)
		plus[i] += h
		minus[i] -= h
		// float32 inputs, float64 reference: the step is exactly h in float32
		// only up to rounding, so use the actual difference.
		step := float64(plus[i]) - float64(minus[i])
		fd := (memLossRef(plus, rows, d, keep, 0.3) - memLossRef(minus, rows, d, keep, 0.3)) / step
		if got := float64(z.Grad.Data[i]); math.Abs(got-fd) > 2e-3*math.Max(1, math.Abs(fd)) {
			t.Errorf("grad[%d] = %g, finite difference %g", i, got, fd)
		}
	}
}

func tinyModelConfig() ModelConfig {
	return ModelConfig{Encoder: resnet.Config{Depth: 18, Width: 4, CIFARStem: true}, ProjHidden: []int{8}, ProjOut: 4}
}

// TestMemoryMomentum: the momentum model starts as a copy of the online
// one, Update is θ_m ← m·θ_m + (1-m)·θ, and encoding records nothing, so
// no gradient reaches the momentum parameters.
func TestMemoryMomentum(t *testing.T) {
	be := purego.New(1)
	cfg := tinyModelConfig()
	online, err := NewModel(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := NewMemory(online, cfg, 8, 0.9, be)
	if err != nil {
		t.Fatal(err)
	}
	op, mp := online.Params.Params(), mem.Model.Params.Params()
	for i := range op {
		if !equalF(op[i].Value.Data, mp[i].Value.Data) {
			t.Fatalf("%s not copied", op[i].Name)
		}
	}
	// Move the online model, then update.
	before := make([][]float32, len(mp))
	for i, p := range op {
		before[i] = append([]float32(nil), mp[i].Value.Data...)
		tensor.NewRNG(2, p.Name).FillNormal(p.Value, 1)
	}
	mem.Update(online)
	for i, p := range mp {
		for j, v := range p.Value.Data {
			want := 0.9*float64(before[i][j]) + 0.1*float64(op[i].Value.Data[j])
			if math.Abs(float64(v)-want) > 1e-6*math.Max(1, math.Abs(want)) {
				t.Fatalf("%s[%d] = %g, want %g", p.Name, j, v, want)
			}
		}
	}
	// A training step of the online model with the momentum model's
	// projections in the queue: gradients reach the online parameters
	// only.
	x := tensor.New(4, 8, 8, 3)
	tensor.NewRNG(3, "x").FillUniform(x, 0, 1)
	mem.Push(x)
	if mem.Queue.Len() != 4 {
		t.Fatalf("queue holds %d rows after pushing 4", mem.Queue.Len())
	}
	for r := 0; r < 4; r++ {
		var s float64
		for _, v := range mem.Queue.Entries()[r*4 : (r+1)*4] {
			s += float64(v) * float64(v)
		}
		if math.Abs(s-1) > 1e-5 {
			t.Errorf("queue row %d has squared norm %g", r, s)
		}
	}
	tape := autograd.NewTape(be)
	_, z := online.Forward(tape, tape.Input(x))
	loss, _ := NTXentMemory(tape, z, mem.Queue, 0.5)
	if err := tape.Backward(loss); err != nil {
		t.Fatal(err)
	}
	mem.Push(x)
	if !op[0].HasGrad(tape) {
		t.Error("online model got no gradient")
	}
	for _, p := range mp {
		if p.HasGrad(tape) || p.HasGrad(mem.Tape()) {
			t.Fatalf("%s of the momentum model has a gradient", p.Name)
		}
		for _, g := range p.Grad.Data {
			if g != 0 {
				t.Fatalf("%s of the momentum model has a non-zero gradient", p.Name)
			}
		}
	}
	mt := mem.Tape()
	mt.Reset()
	if _, zm := mem.Model.Forward(mt, mt.Input(x)); zm.RequiresGrad || !mt.Train || !mt.NoGrad {
		t.Error("the momentum model's forward is recorded for backward")
	}
}

// keysLossRef is NTXentMomentumKeys in float64 loops: row i's positive is
// key[partner(i)]; its negatives are every other key but key[i], every
// other online row but its partner, and the queue.
func keysLossRef(z, keys []float32, rows, d int, queue []float32, tau float64) float64 {
	unit := func(v []float32) []float64 {
		var s float64
		for _, x := range v {
			s += float64(x) * float64(x)
		}
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x) / math.Sqrt(s)
		}
		return out
	}
	raw := func(v []float32) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	}
	dot := func(a, b []float64) float64 {
		var s float64
		for i := range a {
			s += a[i] * b[i]
		}
		return s
	}
	n := rows / 2
	var total float64
	for i := 0; i < rows; i++ {
		zi := unit(z[i*d : (i+1)*d])
		p := (i + n) % rows
		pos := dot(zi, raw(keys[p*d:(p+1)*d])) / tau
		lse := math.Exp(pos)
		for j := 0; j < rows; j++ {
			if j != i && j != p {
				lse += math.Exp(dot(zi, raw(keys[j*d:(j+1)*d])) / tau)
				lse += math.Exp(dot(zi, unit(z[j*d:(j+1)*d])) / tau)
			}
		}
		for r := 0; r < len(queue)/d; r++ {
			lse += math.Exp(dot(zi, raw(queue[r*d:(r+1)*d])) / tau)
		}
		total += math.Log(lse) - pos
	}
	return total / float64(rows)
}

// TestNTXentMomentumKeys: loss against float64 loops, with and without a
// queue, and the gradient against finite differences.
func TestNTXentMomentumKeys(t *testing.T) {
	rows, d := 6, 4
	zt := tensor.New(rows, d)
	tensor.NewRNG(7, "z").FillNormal(zt, 1)
	keys := randomQueue(rows, d, rows, 3).Entries()
	for _, q := range []*Queue{nil, randomQueue(5, d, 5, 4), randomQueue(5, d, 2, 5)} {
		var entries []float32
		if q != nil {
			entries = q.Entries()
		}
		loss, st := NTXentMomentumKeys(autograd.NewTape(purego.New(1)), autograd.NewParam(zt.Clone()), keys, q, 0.5)
		want := keysLossRef(zt.Data, keys, rows, d, entries, 0.5)
		if got := float64(loss.Value.Data[0]); math.Abs(got-want) > 1e-5*want {
			t.Errorf("queue of %d: loss %.7f, want %.7f", len(entries)/d, got, want)
		}
		if st.Entropy <= 0 || st.Accuracy < 0 || st.Accuracy > 1 {
			t.Errorf("stats %+v", st)
		}
	}
	// A perfect match (keys equal to the normalised online rows) with a
	// low temperature finds every positive.
	zn := make([]float32, len(zt.Data))
	for i := 0; i < rows; i++ {
		var s float64
		for _, x := range zt.Data[i*d : (i+1)*d] {
			s += float64(x) * float64(x)
		}
		for j := 0; j < d; j++ {
			zn[i*d+j] = zt.Data[i*d+j] / float32(math.Sqrt(s))
		}
	}
	swapped := make([]float32, len(zn)) // key of view i's partner = view i itself
	n := rows / 2
	for i := 0; i < rows; i++ {
		p := (i + n) % rows
		copy(swapped[p*d:(p+1)*d], zn[i*d:(i+1)*d])
	}
	if _, st := NTXentMomentumKeys(autograd.NewTape(purego.New(1)), autograd.NewParam(zt.Clone()), swapped, nil, 0.05); st.Accuracy != 1 {
		t.Errorf("keys that equal the positives: accuracy %g, want 1", st.Accuracy)
	}

	q := randomQueue(4, d, 3, 8)
	tape := autograd.NewTape(purego.New(1))
	z := autograd.NewParam(zt.Clone())
	loss, _ := NTXentMomentumKeys(tape, z, keys, q, 0.3)
	if err := tape.Backward(loss); err != nil {
		t.Fatal(err)
	}
	const h = 1e-3
	for i := range zt.Data {
		plus, minus := append([]float32(nil), zt.Data...), append([]float32(nil), zt.Data...)
		plus[i] += h
		minus[i] -= h
		step := float64(plus[i]) - float64(minus[i])
		fd := (keysLossRef(plus, keys, rows, d, q.Entries(), 0.3) - keysLossRef(minus, keys, rows, d, q.Entries(), 0.3)) / step
		if got := float64(z.Grad.Data[i]); math.Abs(got-fd) > 2e-3*math.Max(1, math.Abs(fd)) {
			t.Errorf("grad[%d] = %g, finite difference %g", i, got, fd)
		}
	}
}
