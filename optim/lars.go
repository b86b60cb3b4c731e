package optim

import (
	"math"

	"github.com/simclr-go/simclr/nn"
)

// LARS is layer-wise adaptive rate scaling as in the official SimCLR code
// (lars_optimizer.py, classic momentum): for each tensor, g' = g + wd*w and a
// trust ratio eta*|w|/|g'| scale the learning rate; v = m*v + lr*trust*g';
// w -= v. Batch-norm parameters and biases (nn.Param.NoDecay) get neither
// weight decay nor adaptation.
type LARS struct {
	Momentum    float32
	WeightDecay float32
	Eta         float32
	Nesterov    bool
	// NoAdapt, when set, names parameters that keep their weight decay but
	// take no trust ratio: the official code's classifier layer
	// (head_supervised), decayed through the loss and left out of LARS's
	// adaptation.
	NoAdapt func(*nn.Param) bool

	params   []*nn.Param
	velocity [][]float32
	// TrustRatios holds each parameter's ratio from the last step, for logs.
	TrustRatios []float64
}

// NewLARS returns LARS with the official defaults: momentum 0.9, eta 0.001.
func NewLARS(params []*nn.Param, weightDecay float32) *LARS {
	l := &LARS{Momentum: 0.9, WeightDecay: weightDecay, Eta: 0.001, params: params}
	l.velocity = make([][]float32, len(params))
	for i, p := range params {
		l.velocity[i] = make([]float32, p.Value.Len())
	}
	l.TrustRatios = make([]float64, len(params))
	return l
}

// Velocity exposes the momentum buffers, in parameter order, for
// checkpoints.
func (l *LARS) Velocity() [][]float32 { return l.velocity }

// Step applies one update with learning rate lr to the parameters for
// which hasGrad is true.
func (l *LARS) Step(lr float32, hasGrad func(*nn.Param) bool) {
	for i, p := range l.params {
		if !hasGrad(p) {
			continue
		}
		w, g, v := p.Value.Data, p.Grad.Data, l.velocity[i]
		wd := l.WeightDecay
		if p.NoDecay {
			wd = 0
		}
		trust := 1.0
		if !p.NoDecay && (l.NoAdapt == nil || !l.NoAdapt(p)) {
			var wn, gn float64
			for j := range w {
				d := float64(g[j]) + float64(wd)*float64(w[j])
				wn += float64(w[j]) * float64(w[j])
				gn += d * d
			}
			if wn > 0 && gn > 0 {
				trust = float64(l.Eta) * math.Sqrt(wn) / math.Sqrt(gn)
			}
		}
		l.TrustRatios[i] = trust
		scaled := float32(float64(lr) * trust)
		m := l.Momentum
		for j := range w {
			d := g[j] + wd*w[j]
			v[j] = m*v[j] + scaled*d
			if l.Nesterov {
				w[j] -= m*v[j] + scaled*d
			} else {
				w[j] -= v[j]
			}
		}
	}
}
