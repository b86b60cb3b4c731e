package optim

import (
	"fmt"
	"math"
)

// Scaling says how the base learning rate grows with the batch size.
type Scaling string

// The two rules of the SimCLR paper: lr = base*B/256, or base*sqrt(B).
const (
	Linear Scaling = "linear"
	Sqrt   Scaling = "sqrt"
)

// ScaledLR is the peak learning rate for a global batch size.
func ScaledLR(base float64, batch int, s Scaling) (float64, error) {
	switch s {
	case Linear:
		return base * float64(batch) / 256, nil
	case Sqrt:
		return base * math.Sqrt(float64(batch)), nil
	}
	return 0, fmt.Errorf("learning-rate scaling %q: want %q or %q", s, Linear, Sqrt)
}

// WarmupCosine is a linear warmup from 0 to Peak over Warmup steps, then a
// cosine decay to 0 at Total steps, as the official code.
type WarmupCosine struct {
	Peak          float64
	Warmup, Total int
}

// At is the learning rate for step (0-based).
func (s WarmupCosine) At(step int) float64 {
	if step < s.Warmup {
		return s.Peak * float64(step+1) / float64(s.Warmup)
	}
	if s.Total <= s.Warmup {
		return s.Peak
	}
	p := math.Min(1, float64(step-s.Warmup)/float64(s.Total-s.Warmup))
	return s.Peak * 0.5 * (1 + math.Cos(math.Pi*p))
}
