package autograd

import (
	"math"
	"testing"

	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/tensor"
)

func TestSoftCrossEntropy(t *testing.T) {
	rng := tensor.NewRNG(3, "soft-ce")
	m, n := 5, 7
	logits := tensor.New(m, n)
	rng.FillNormal(logits, 1)
	targets := tensor.New(m, n)
	for i := 0; i < m; i++ {
		var s float32
		for j := 0; j < n; j++ {
			targets.Data[i*n+j] = float32(rng.Uniform(0, 1))
			s += targets.Data[i*n+j]
		}
		for j := 0; j < n; j++ {
			targets.Data[i*n+j] /= s
		}
	}
	// One-hot targets give the ordinary cross-entropy.
	onehot := tensor.New(m, n)
	labels := make([]int32, m)
	for i := range labels {
		labels[i] = int32(i % n)
		onehot.Data[i*n+int(labels[i])] = 1
	}
	tape := NewTape(purego.New(1))
	a := tape.SoftCrossEntropy(Const(logits), onehot).Value.Data[0]
	b := tape.CrossEntropy(Const(logits), labels).Value.Data[0]
	if math.Abs(float64(a-b)) > 1e-6 {
		t.Errorf("one-hot soft cross-entropy %g, cross-entropy %g", a, b)
	}
	x := NewParam(logits.Clone())
	gradOK(t, "soft-cross-entropy", smoothTol, func(tp *Tape) *Var { return tp.SoftCrossEntropy(x, targets) }, x)
}
