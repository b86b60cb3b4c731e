// Package optim updates parameters from their gradients: SGD with momentum
// (optionally Nesterov) and LARS, with learning-rate schedules.
package optim

import "github.com/simclr-go/simclr/nn"

// SGD is stochastic gradient descent with momentum and weight decay, as
// torch.optim.SGD: v = mu*v + (g + wd*w); w -= lr*v (Nesterov: w -= lr*(g +
// wd*w + mu*v)).
type SGD struct {
	Momentum    float32
	WeightDecay float32
	Nesterov    bool
	// SkipNoDecay excludes batch-norm parameters and biases from decay.
	SkipNoDecay bool

	params   []*nn.Param
	velocity [][]float32
}

// NewSGD returns an optimiser for params.
func NewSGD(params []*nn.Param, momentum, weightDecay float32) *SGD {
	s := &SGD{Momentum: momentum, WeightDecay: weightDecay, params: params}
	s.velocity = make([][]float32, len(params))
	for i, p := range params {
		s.velocity[i] = make([]float32, p.Value.Len())
	}
	return s
}

// Step applies one update with learning rate lr. Parameters without a
// gradient in the last backward pass are left alone.
func (s *SGD) Step(lr float32, hasGrad func(*nn.Param) bool) {
	for i, p := range s.params {
		if !hasGrad(p) {
			continue
		}
		wd := s.WeightDecay
		if s.SkipNoDecay && p.NoDecay {
			wd = 0
		}
		w, g, v := p.Value.Data, p.Grad.Data, s.velocity[i]
		for j := range w {
			d := g[j] + wd*w[j]
			v[j] = s.Momentum*v[j] + d
			if s.Nesterov {
				d += s.Momentum * v[j]
			} else {
				d = v[j]
			}
			w[j] -= lr * d
		}
	}
}

// Velocity exposes the momentum buffers, in parameter order, for
// checkpoints.
func (s *SGD) Velocity() [][]float32 { return s.velocity }
