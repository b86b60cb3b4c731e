package train

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/optim"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/tensor"
)

func headClassifier(t *testing.T, seed uint64) *Classifier {
	t.Helper()
	m, err := simclr.NewModel(simclr.ModelConfig{Encoder: resnet.Config{Depth: 18, Width: 4, CIFARStem: true}, ProjHidden: []int{8}, ProjOut: 4}, seed)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClassifier(m, 1, 3, seed)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestV2FineTuneOptimizer: SimCLRv2's fine-tuning recipe scales the
// learning rate by sqrt(B) with no warmup, and its LARS adapts the
// encoder's weights by their trust ratio but moves the (zero-initialised)
// classifier layer by lr x (gradient + decay) exactly, as the official
// code, which leaves head_supervised out of LARS's adaptation.
func TestV2FineTuneOptimizer(t *testing.T) {
	cfg := FineTuneConfig{BaseLR: 0.005, Momentum: 0.9, WeightDecay: 1e-4, Optimizer: OptLARS, LRScaling: optim.Sqrt}
	if s := cfg.schedule(64, 100); math.Abs(s.Peak-0.04) > 1e-12 || s.Warmup != 0 {
		t.Errorf("schedule peak %g warmup %d, want 0.005*sqrt(64) = 0.04 and none", s.Peak, s.Warmup)
	}
	if s := (FineTuneConfig{BaseLR: 0.05}).schedule(512, 100); math.Abs(s.Peak-0.1) > 1e-12 {
		t.Errorf("SimCLR's schedule peak %g, want 0.05*512/256", s.Peak)
	}
	if s := (FineTuneConfig{BaseLR: 1, WarmupFraction: 0.05}).schedule(256, 200); s.Warmup != 10 {
		t.Errorf("warmup %d steps, want 5%% of 200", s.Warmup)
	}

	c := headClassifier(t, 1)
	c.ZeroFC()
	for _, v := range append(append([]float32{}, c.FC.Weight.Value.Data...), c.FC.Bias.Value.Data...) {
		if v != 0 {
			t.Fatal("ZeroFC left a non-zero value")
		}
	}
	tape := autograd.NewTape(purego.New(1))
	tape.Train = true
	x := tensor.New(4, 8, 8, 3)
	tensor.NewRNG(2, "x").FillUniform(x, 0, 1)
	loss := tape.CrossEntropy(c.Forward(tape, tape.Input(x)), []int32{0, 1, 2, 0})
	if err := tape.Backward(loss); err != nil {
		t.Fatal(err)
	}
	fcW, conv := c.FC.Weight, c.Model.Params.Params()[0]
	fcBefore, convBefore := fcW.Value.Clone(), conv.Value.Clone()
	fcGrad, convGrad := fcW.Grad.Clone(), conv.Grad.Clone()
	update, _ := cfg.optimizer(c)
	const lr = 0.5
	update(lr, func(p *nn.Param) bool { return p.HasGrad(tape) })
	for i, g := range fcGrad.Data {
		want := fcBefore.Data[i] - lr*(g+1e-4*fcBefore.Data[i])
		if math.Abs(float64(fcW.Value.Data[i]-want)) > 1e-7 {
			t.Fatalf("fc.weight[%d] = %g, want %g (no trust ratio)", i, fcW.Value.Data[i], want)
		}
	}
	var wn, gn float64
	for i, w := range convBefore.Data {
		d := float64(convGrad.Data[i]) + 1e-4*float64(w)
		wn += float64(w) * float64(w)
		gn += d * d
	}
	trust := 0.001 * math.Sqrt(wn) / math.Sqrt(gn)
	i := 0
	want := float64(convBefore.Data[i]) - lr*trust*(float64(convGrad.Data[i])+1e-4*float64(convBefore.Data[i]))
	if math.Abs(float64(conv.Value.Data[i])-want) > 1e-6*math.Abs(want)+1e-9 {
		t.Errorf("%s[0] = %g, want %g (trust ratio %g)", conv.Name, conv.Value.Data[i], want, trust)
	}
	if err := (FineTuneConfig{BaseLR: 1, Optimizer: "adam"}).validate(); err == nil {
		t.Error("optimizer adam accepted")
	}
}

// TestDistillAlphaOn: the paper's weighting puts alpha on the distillation
// term. With alpha 1 on it the loss is the distillation alone, which is
// what alpha 0 on the supervised term gives; alpha 1 on the supervised
// term gives another loss. The recipe is recorded with the student.
func TestDistillAlphaOn(t *testing.T) {
	be := purego.New(2)
	teacher := headClassifier(t, 1)
	unlabelled, labelled := stripes(t, 16, 1), stripes(t, 8, 2)
	first := func(alpha float64, on string) float64 {
		student := headClassifier(t, 5)
		cfg := DistillConfig{FineTuneConfig: DefaultFineTune(8, 1, 8), Temperature: 1, Labelled: labelled, Alpha: alpha, AlphaOn: on}
		cfg.Workers = 1
		var loss float64
		err := Distill(context.Background(), be, teacher, student, unlabelled, cfg, func(step, _ int, l float64) {
			if step == 1 {
				loss = l
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		return loss
	}
	distillOnly := first(1, AlphaDistill)
	if other := first(0, AlphaSupervised); math.Abs(other-distillOnly) > 1e-6*distillOnly {
		t.Errorf("alpha 1 on distillation gives %g, alpha 0 on supervision %g: want equal", distillOnly, other)
	}
	if sup := first(1, AlphaSupervised); math.Abs(sup-distillOnly) < 1e-3*distillOnly {
		t.Errorf("alpha 1 on supervision gives the distillation loss %g", sup)
	}
	student := headClassifier(t, 5)
	student.Recipe = simclr.RecipeV2
	path := filepath.Join(t.TempDir(), "student.safetensors")
	if err := SaveClassifier(path, student, 8); err != nil {
		t.Fatal(err)
	}
	back, _, err := LoadClassifier(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Recipe != simclr.RecipeV2 {
		t.Errorf("recipe %q after saving, want %q", back.Recipe, simclr.RecipeV2)
	}
}

// TestDistillTemperatureSquared: the factor multiplies the distillation
// loss by the temperature squared and nothing else.
func TestDistillTemperatureSquared(t *testing.T) {
	be := purego.New(2)
	teacher := headClassifier(t, 1)
	unlabelled := stripes(t, 16, 1)
	first := func(squared bool) float64 {
		cfg := DistillConfig{FineTuneConfig: DefaultFineTune(8, 1, 8), Temperature: 0.5, TemperatureSquared: squared}
		cfg.Workers = 1
		var loss float64
		err := Distill(context.Background(), be, teacher, headClassifier(t, 5), unlabelled, cfg, func(step, _ int, l float64) {
			if step == 1 {
				loss = l
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		return loss
	}
	plain, squared := first(false), first(true)
	if plain <= 0 || math.Abs(squared-0.25*plain) > 1e-5*plain {
		t.Errorf("first loss %g with the factor, %g without: want a quarter at temperature 0.5", squared, plain)
	}
}
