package autograd

import (
	"fmt"
	"math"

	"github.com/simclr-go/simclr/tensor"
)

// SoftCrossEntropy is the mean over rows of -sum_j targets[i,j] *
// log softmax(logits[i])_j: cross-entropy against a distribution, as
// distillation uses with a teacher's softened probabilities. Each row of
// targets (a constant) must sum to 1.
func (t *Tape) SoftCrossEntropy(logits *Var, targets *tensor.Tensor) *Var {
	m, n := rowsCols(logits)
	if targets.Len() != m*n {
		panic(fmt.Sprintf("autograd: soft targets %v for logits %v", targets.Shape, logits.Value.Shape))
	}
	prob := t.arena.Get(m * n)
	t.B.SoftmaxForward(m, n, logits.Value.Data, prob)
	var loss float64
	for i := 0; i < m; i++ {
		row := logits.Value.Data[i*n : (i+1)*n]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = max(mx, float64(v))
		}
		var s float64
		for _, v := range row {
			s += math.Exp(float64(v) - mx)
		}
		lse := mx + math.Log(s)
		for j, v := range row {
			if p := float64(targets.Data[i*n+j]); p != 0 {
				loss -= p * (float64(v) - lse)
			}
		}
	}
	out := t.NewVar(1)
	out.Value.Data[0] = float32(loss / float64(m))
	t.record(out, func() {
		if dx, done := t.gradOut(logits); dx != nil {
			g := t.gradIn(out)[0] / float32(m)
			for i := range dx {
				dx[i] = g * (prob[i] - targets.Data[i])
			}
			done()
		}
	}, logits)
	return out
}
