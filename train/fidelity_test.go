package train

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/simclr"
)

// TestLossSumDoublesLossAndGradients: the official reduction (the sum of
// the two directions' means) is twice the mean over rows, and so is every
// gradient.
func TestLossSumDoublesLossAndGradients(t *testing.T) {
	be := purego.New(2)
	mean, err := NewPretrainer(tinyConfig(2), be, noiseSource{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig(2)
	cfg.LossReduction = LossSum
	sum, err := NewPretrainer(cfg, be, noiseSource{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := mean.TrainStep()
	if err != nil {
		t.Fatal(err)
	}
	b, err := sum.TrainStep()
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(b.Loss-2*a.Loss) > 1e-5*a.Loss {
		t.Errorf("summed loss %g, want twice %g", b.Loss, a.Loss)
	}
	pa, pb := mean.Model.Params.Params(), sum.Model.Params.Params()
	for i := range pa {
		ga, gb := pa[i].Grad.Data, pb[i].Grad.Data
		for j := range ga {
			if d := math.Abs(float64(gb[j] - 2*ga[j])); d > 1e-4*math.Abs(float64(ga[j]))+1e-9 {
				t.Fatalf("%s[%d]: gradient %g, want twice %g", pa[i].Name, j, gb[j], ga[j])
			}
		}
	}
	cfg.LossReduction = "total"
	if err := cfg.Validate(); err == nil {
		t.Error("an unknown loss reduction was accepted")
	}
}

// TestOfficialHeadTrains: in the official layout no head Linear has a
// bias, the last batch norm's shift stays at zero through training and
// resume restores the run.
func TestOfficialHeadTrains(t *testing.T) {
	cfg := tinyConfig(3)
	cfg.Model.HeadStyle = simclr.HeadOfficial
	cfg.Model.Init = nn.InitOfficial
	cfg.Model.Encoder.ZeroInitResidual = true
	be := purego.New(2)
	p, err := NewPretrainer(cfg, be, noiseSource{})
	if err != nil {
		t.Fatal(err)
	}
	h := p.Model.Head
	for i, l := range h.Linears {
		if l.Bias != nil {
			t.Errorf("head Linear %d has a bias", i)
		}
	}
	if h.OutBN == nil || h.OutBN.Bias.Name != "head.4.bias" {
		t.Fatalf("no shift-free batch norm at head.4")
	}
	for _, q := range p.Model.Params.Params() {
		if q.Name == "head.4.bias" {
			t.Fatal("head.4.bias is trained")
		}
	}
	for i := 0; i < 2; i++ {
		if _, err := p.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range h.OutBN.Bias.Value.Data {
		if v != 0 {
			t.Fatalf("the last batch norm's shift moved to %g", v)
		}
	}
	path := filepath.Join(t.TempDir(), "ck.safetensors")
	if err := p.Save(path); err != nil {
		t.Fatal(err)
	}
	l, err := simclr.LoadModel(path, simclr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Model.Head.OutBN == nil || l.Config.HeadStyle != simclr.HeadOfficial {
		t.Fatal("the loaded model lost the official head")
	}
	again, _ := NewPretrainer(cfg, be, noiseSource{})
	if err := again.Resume(path); err != nil {
		t.Fatal(err)
	}
	plain, _ := NewPretrainer(tinyConfig(3), be, noiseSource{})
	if err := plain.Resume(path); err == nil {
		t.Error("a plain-head run resumed an official-head checkpoint")
	}
}
