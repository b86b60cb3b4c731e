package optim

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/tensor"
)

type larsCase struct {
	Hyper struct {
		LearningRate float64 `json:"learning_rate"`
		Momentum     float64 `json:"momentum"`
		WeightDecay  float64 `json:"weight_decay"`
		Eeta         float64 `json:"eeta"`
	} `json:"hyper"`
	Params map[string]struct {
		Excluded bool            `json:"excluded"`
		Param0   json.RawMessage `json:"param0"`
		Grads    json.RawMessage `json:"grads"`
		Steps    []struct {
			Trust    float64         `json:"trust_ratio_f64"`
			Param    json.RawMessage `json:"param_f64"`
			Momentum json.RawMessage `json:"momentum_f64"`
		} `json:"steps"`
	} `json:"params"`
}

// flatten reads a nested JSON array of numbers into a flat slice.
func flatten(t *testing.T, raw json.RawMessage) []float64 {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	var out []float64
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case float64:
			out = append(out, x)
		}
	}
	walk(v)
	return out
}

// TestLARSReference runs two LARS steps against the official algorithm's
// values, computed in float64. Our float32 update differs by rounding only:
// relative 1e-6 on parameters of order 1.
func TestLARSReference(t *testing.T) {
	raw, err := os.ReadFile("testdata/lars.json")
	if err != nil {
		t.Fatal(err)
	}
	var c larsCase
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	for name, pc := range c.Params {
		w0 := flatten(t, pc.Param0)
		grads := flatten(t, pc.Grads)
		w := tensor.New(len(w0))
		for i, v := range w0 {
			w.Data[i] = float32(v)
		}
		p := &nn.Param{Name: name, Var: autograd.NewParam(w), NoDecay: pc.Excluded}
		opt := NewLARS([]*nn.Param{p}, float32(c.Hyper.WeightDecay))
		opt.Momentum, opt.Eta = float32(c.Hyper.Momentum), float32(c.Hyper.Eeta)
		for s, want := range pc.Steps {
			for i := range p.Grad.Data {
				p.Grad.Data[i] = float32(grads[s*len(w0)+i])
			}
			opt.Step(float32(c.Hyper.LearningRate), func(*nn.Param) bool { return true })
			if d := math.Abs(opt.TrustRatios[0] - want.Trust); d > 1e-5*want.Trust {
				t.Errorf("%s step %d: trust ratio %g, want %g", name, s, opt.TrustRatios[0], want.Trust)
			}
			for i, v := range flatten(t, want.Param) {
				if d := math.Abs(float64(w.Data[i]) - v); d > 1e-6*math.Max(1, math.Abs(v)) {
					t.Errorf("%s step %d: w[%d] = %g, want %g", name, s, i, w.Data[i], v)
				}
			}
			for i, v := range flatten(t, want.Momentum) {
				if d := math.Abs(float64(opt.velocity[0][i]) - v); d > 1e-6*math.Max(1e-3, math.Abs(v)) {
					t.Errorf("%s step %d: v[%d] = %g, want %g", name, s, i, opt.velocity[0][i], v)
				}
			}
		}
	}
}

func TestSGDMatchesTorch(t *testing.T) {
	// torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.01), two steps
	// from w=1 with grads 0.5 then -0.25, worked by hand:
	// step 1: d=0.51, v=0.51, w=0.949; step 2: d=-0.25+0.00949=-0.24051,
	// v=0.459-0.24051=0.21849, w=0.949-0.021849=0.927151.
	w := tensor.FromSlice([]float32{1}, 1)
	p := &nn.Param{Var: autograd.NewParam(w)}
	opt := NewSGD([]*nn.Param{p}, 0.9, 0.01)
	for _, g := range []float32{0.5, -0.25} {
		p.Grad.Data[0] = g
		opt.Step(0.1, func(*nn.Param) bool { return true })
	}
	if math.Abs(float64(w.Data[0])-0.927151) > 1e-6 {
		t.Errorf("w = %.7f, want 0.927151", w.Data[0])
	}
}

func TestWarmupCosine(t *testing.T) {
	s := WarmupCosine{Peak: 1, Warmup: 10, Total: 110}
	if got := s.At(0); math.Abs(got-0.1) > 1e-12 {
		t.Errorf("step 0: %g, want 0.1", got)
	}
	if got := s.At(9); got != 1 {
		t.Errorf("end of warmup: %g, want 1", got)
	}
	if got := s.At(60); math.Abs(got-0.5) > 1e-12 {
		t.Errorf("half way: %g, want 0.5", got)
	}
	if got := s.At(110); math.Abs(got) > 1e-12 {
		t.Errorf("end: %g, want 0", got)
	}
	for i := 10; i < 110; i++ {
		if s.At(i+1) > s.At(i) {
			t.Fatalf("cosine rises at step %d", i)
		}
	}
}

func TestScaledLR(t *testing.T) {
	if v, _ := ScaledLR(0.3, 512, Linear); math.Abs(v-0.6) > 1e-12 {
		t.Errorf("linear: %g", v)
	}
	if v, _ := ScaledLR(0.075, 4096, Sqrt); math.Abs(v-4.8) > 1e-12 {
		t.Errorf("sqrt: %g", v)
	}
	if _, err := ScaledLR(1, 256, "cubic"); err == nil {
		t.Error("unknown scaling accepted")
	}
}
