//go:build cgo

package resnet

import (
	"math"
	"testing"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/backend/onednn"
	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/tensor"
)

// run does one forward and backward of a fresh encoder on be and returns
// the features and every parameter's gradient by name.
func run(t *testing.T, be backend.Backend, cfg Config, x, r *tensor.Tensor) (*tensor.Tensor, map[string]*tensor.Tensor) {
	reg := nn.NewRegistry(11)
	m, err := New(reg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tape := autograd.NewTape(be)
	h := m.Forward(tape, tape.Input(x))
	if err := tape.Backward(tape.Weighted(h, r)); err != nil {
		t.Fatal(err)
	}
	grads := map[string]*tensor.Tensor{}
	for _, p := range reg.Params() {
		grads[p.Name] = p.Grad.Clone()
	}
	return h.Value.Clone(), grads
}

// relErr is |a-b| / |b| over whole tensors: per-element comparisons are
// meaningless for values that cancel to near zero.
func relErr(a, b []float32) float64 {
	var d, n float64
	for i := range a {
		d += (float64(a[i]) - float64(b[i])) * (float64(a[i]) - float64(b[i]))
		n += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(d / math.Max(n, 1e-30))
}

// TestResNet18BackendsAgree runs a whole ResNet-18 forward and backward on
// oneDNN and on the pure-Go reference. The two sum in different orders, so
// float32 rounding (~1e-7 per operation) grows through 20 layers of batch
// norm; 1e-3 relative on every tensor leaves room for that and still fails
// on any wrong kernel (those give errors of order 1).
func TestResNet18BackendsAgree(t *testing.T) {
	fast, err := onednn.New(2)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cfg  Config
		side int
	}{
		{"cifar-stem", Config{Depth: 18, Width: 8, CIFARStem: true}, 16},
		{"imagenet-stem", Config{Depth: 18, Width: 8}, 40},
		{"bottleneck", Config{Depth: 50, Width: 4, CIFARStem: true}, 16},
	} {
		t.Run(c.name, func(t *testing.T) {
			rng := tensor.NewRNG(5, "resnet-backends")
			x := tensor.New(4, c.side, c.side, 3)
			rng.FillNormal(x, 1)
			m, _ := New(nn.NewRegistry(11), c.cfg)
			r := tensor.New(4, m.OutDim)
			rng.FillNormal(r, 1)
			hf, gf := run(t, fast, c.cfg, x, r)
			hr, gr := run(t, purego.New(2), c.cfg, x, r)
			if e := relErr(hf.Data, hr.Data); e > 1e-4 {
				t.Errorf("features differ: relative error %.2g", e)
			}
			for name, g := range gr {
				if e := relErr(gf[name].Data, g.Data); e > 1e-3 {
					t.Errorf("%s gradient differs: relative error %.2g", name, e)
				}
			}
		})
	}
}
