package autograd

import (
	"math"
	"testing"

	"github.com/simclr-go/simclr/tensor"
)

// TestSKOpsForward checks the selective-kernel ops against values computed
// here in float64.
func TestSKOpsForward(t *testing.T) {
	tp := newTestTape()
	rng := tensor.NewRNG(21, "sk-forward")

	x := randTensor(rng, 1, 2, 3, 2, 4)
	s := randTensor(rng, 1, 2, 4)
	got := tp.ScaleChannels(Const(x), Const(s)).Value
	for i := range got.Data {
		n, c := i/(3*2*4), i%4
		if want := x.Data[i] * s.Data[n*4+c]; got.Data[i] != want {
			t.Fatalf("scale-channels[%d] = %v, want %v", i, got.Data[i], want)
		}
	}

	// Three branches of two channels for two samples.
	l := randTensor(rng, 1, 2, 6)
	y := tp.SoftmaxBranches(Const(l), 3).Value
	for n := 0; n < 2; n++ {
		for c := 0; c < 2; c++ {
			var sum float64
			for k := 0; k < 3; k++ {
				sum += math.Exp(float64(l.Data[n*6+k*2+c]))
			}
			for k := 0; k < 3; k++ {
				want := math.Exp(float64(l.Data[n*6+k*2+c])) / sum
				if d := math.Abs(float64(y.Data[n*6+k*2+c]) - want); d > 1e-6 {
					t.Errorf("softmax-branches n%d c%d branch %d = %v, want %v", n, c, k, y.Data[n*6+k*2+c], want)
				}
			}
		}
	}

	// A 3x3 single-channel image 1..9.
	img := tensor.FromSlice([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9}, 1, 3, 3, 1)
	for _, c := range []struct {
		name         string
		stride, pad  int
		countPad     bool
		want         []float32
		wantH, wantW int
	}{
		// Zero pad after, 2x2 windows every 2, divided by 4.
		{"stride2 countpad", 2, 1, true, []float32{12.0 / 4, 9.0 / 4, 15.0 / 4, 9.0 / 4}, 2, 2},
		// 'SAME' stride 1: windows clipped, divided by their size.
		{"stride1 same", 1, 1, false, []float32{3, 4, 4.5, 6, 7, 7.5, 7.5, 8.5, 9}, 3, 3},
		{"stride2 valid", 2, 0, true, []float32{3}, 1, 1},
	} {
		o := tp.AvgPool2D(Const(img), 2, c.stride, c.pad, c.countPad).Value
		if o.Dim(1) != c.wantH || o.Dim(2) != c.wantW {
			t.Errorf("avgpool %s: shape %v", c.name, o.Shape)
			continue
		}
		for i, w := range c.want {
			if math.Abs(float64(o.Data[i]-w)) > 1e-6 {
				t.Errorf("avgpool %s: out[%d] = %v, want %v", c.name, i, o.Data[i], w)
			}
		}
	}
}

func TestGradSKOps(t *testing.T) {
	rng := tensor.NewRNG(22, "sk-grad")
	x := param(rng, 1, 2, 3, 2, 4)
	s := param(rng, 1, 2, 4)
	gradOK(t, "scale-channels", linTol, func(tp *Tape) *Var { return tp.ScaleChannels(x, s) }, x, s)

	l := param(rng, 1, 3, 8)
	gradOK(t, "softmax-branches 2", smoothTol, func(tp *Tape) *Var { return tp.SoftmaxBranches(l, 2) }, l)
	gradOK(t, "softmax-branches 4", smoothTol, func(tp *Tape) *Var { return tp.SoftmaxBranches(l, 4) }, l)

	p := param(rng, 1, 2, 5, 4, 3)
	gradOK(t, "avgpool stride2 countpad", linTol, func(tp *Tape) *Var { return tp.AvgPool2D(p, 2, 2, 1, true) }, p)
	gradOK(t, "avgpool stride1 same", linTol, func(tp *Tape) *Var { return tp.AvgPool2D(p, 2, 1, 1, false) }, p)
	gradOK(t, "avgpool 3x3 stride2", linTol, func(tp *Tape) *Var { return tp.AvgPool2D(p, 3, 2, 0, true) }, p)

	// The SK mixing: two branches of a tensor scaled by their attention
	// weights (slices of one softmax) and summed, with the branch tensor
	// also feeding the attention through its pooled sum, so that every
	// input receives gradients along two paths.
	u := param(rng, 1, 2, 3, 3, 6)
	w := param(rng, 0.5, 6, 3)
	tol := gradTol{Step: 1e-2, Abs: 2e-3, Rel: 2e-3}
	gradOK(t, "sk mix", tol, func(tp *Tape) *Var {
		a, b := tp.SliceChannels(u, 0, 3), tp.SliceChannels(u, 3, 6)
		z := tp.GlobalAvgPool(tp.Add(a, b))
		mix := tp.SoftmaxBranches(tp.Linear(z, w, nil), 2)
		return tp.Add(tp.ScaleChannels(a, tp.SliceChannels(mix, 0, 3)), tp.ScaleChannels(b, tp.SliceChannels(mix, 3, 6)))
	}, u, w)
}
