package nn

import (
	"math"
	"testing"

	"github.com/simclr-go/simclr/autograd"
)

// moments returns the mean and variance of xs.
func moments(xs []float32) (mean, variance float64) {
	for _, v := range xs {
		mean += float64(v)
	}
	mean /= float64(len(xs))
	for _, v := range xs {
		d := float64(v) - mean
		variance += d * d
	}
	return mean, variance / float64(len(xs))
}

// TestOfficialConvInit: with InitOfficial a convolution's weights have
// variance 1/fan_in (fan_in = in*k*k), none beyond two of the truncated
// normal's deviations; torchvision's have 2/fan_out.
func TestOfficialConvInit(t *testing.T) {
	const in, out, k = 32, 64, 3
	r := NewRegistry(1)
	official := NewConv2d(r.Sub("a").WithInit(InitOfficial), in, out, k, autograd.ConvOpts{Pad: 1}, false)
	tv := NewConv2d(r.Sub("b"), in, out, k, autograd.ConvOpts{Pad: 1}, false)

	mean, v := moments(official.Weight.Value.Data)
	want := 1.0 / (in * k * k)
	if math.Abs(mean) > 0.05*math.Sqrt(want) || math.Abs(v-want) > 0.05*want {
		t.Errorf("official: mean %g variance %g, want 0 and %g", mean, v, want)
	}
	bound := 2 * math.Sqrt(want) / 0.87962566103423978
	for i, w := range official.Weight.Value.Data {
		if math.Abs(float64(w)) > bound {
			t.Fatalf("official: w[%d] = %g beyond the truncation at %g", i, w, bound)
		}
	}
	_, v = moments(tv.Weight.Value.Data)
	if want := 2.0 / (out * k * k); math.Abs(v-want) > 0.05*want {
		t.Errorf("torchvision: variance %g, want %g", v, want)
	}
}

// TestOfficialLinearInit: N(0, 0.01²) weights and a zero bias.
func TestOfficialLinearInit(t *testing.T) {
	l := NewLinear(NewRegistry(2).WithInit(InitOfficial), 256, 128, true)
	mean, v := moments(l.Weight.Value.Data)
	if math.Abs(mean) > 5e-4 || math.Abs(math.Sqrt(v)-0.01) > 2e-4 {
		t.Errorf("weights: mean %g std %g, want 0 and 0.01", mean, math.Sqrt(v))
	}
	for i, b := range l.Bias.Value.Data {
		if b != 0 {
			t.Fatalf("bias[%d] = %g, want 0", i, b)
		}
	}
}

// TestWithInitIsInherited: sub-registries keep the initialisation, and the
// parameters still land in the one collection.
func TestWithInitIsInherited(t *testing.T) {
	r := NewRegistry(3)
	sub := r.WithInit(InitOfficial).Sub("x").Sub("y")
	NewLinear(sub, 4, 2, false)
	if sub.init != InitOfficial || len(r.Params()) != 1 || r.Params()[0].Name != "x.y.weight" {
		t.Fatalf("init %q, params %d", sub.init, len(r.Params()))
	}
	if _, err := ParseInit("xavier"); err == nil {
		t.Error("ParseInit accepted an unknown name")
	}
}

// TestScaleOnlyBatchNorm: the shift is a saved buffer of zeros, not a
// parameter.
func TestScaleOnlyBatchNorm(t *testing.T) {
	r := NewRegistry(4)
	bn := NewBatchNormScaleOnly(r.Sub("bn"), 3)
	for _, p := range r.Params() {
		if p.Name == "bn.bias" {
			t.Fatal("bn.bias is a trained parameter")
		}
	}
	if _, ok := r.State()["bn.bias"]; !ok || !bn.FixedShift {
		t.Fatal("bn.bias is not saved state")
	}
	for _, v := range bn.Bias.Value.Data {
		if v != 0 {
			t.Fatalf("shift %g, want 0", v)
		}
	}
}
