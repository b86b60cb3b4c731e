package train

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/optim"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/tensor"
)

// noiseSource gives each step its own random views, derived from the step.
type noiseSource struct{ nan bool }

func (s noiseSource) Views(_ context.Context, step int, dst []float32) error {
	t := tensor.FromSlice(dst, len(dst))
	tensor.NewRNG(7, "test-views", uint64(step)).FillUniform(t, 0, 1)
	if s.nan {
		dst[3] = float32(math.NaN())
	}
	return nil
}

func (noiseSource) StepsPerEpoch() int { return 4 }

func tinyConfig(steps int) Config {
	return Config{
		Model: simclr.ModelConfig{
			Encoder:    resnet.Config{Depth: 18, Width: 4, CIFARStem: true},
			ProjHidden: []int{16}, ProjOut: 8,
		},
		Batch: 4, ImageSize: 8, Steps: steps, Optimizer: "lars", BaseLR: 1, LRScaling: optim.Linear,
		WeightDecay: 1e-6, Momentum: 0.9, Warmup: 1, Temperature: 0.5, Seed: 3,
	}
}

// TestResumeIsExact: three steps, a checkpoint, a fresh process-like
// restart and three more steps give bit-identical losses and parameters to
// six uninterrupted steps.
func TestResumeIsExact(t *testing.T) {
	be := purego.New(2)
	full, err := NewPretrainer(tinyConfig(6), be, noiseSource{})
	if err != nil {
		t.Fatal(err)
	}
	var want []float64
	for !full.Done() {
		st, err := full.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, st.Loss)
	}

	path := filepath.Join(t.TempDir(), "ck.safetensors")
	first, _ := NewPretrainer(tinyConfig(6), be, noiseSource{})
	for i := 0; i < 3; i++ {
		if _, err := first.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.Save(path); err != nil {
		t.Fatal(err)
	}
	second, _ := NewPretrainer(tinyConfig(6), be, noiseSource{})
	if err := second.Resume(path); err != nil {
		t.Fatal(err)
	}
	if second.Step != 3 {
		t.Fatalf("resumed at step %d, want 3", second.Step)
	}
	for i := 3; i < 6; i++ {
		st, err := second.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		if st.Loss != want[i] {
			t.Errorf("step %d: loss %.9g after resume, %.9g uninterrupted", i, st.Loss, want[i])
		}
	}
	a, b := full.Model.Params.State(), second.Model.Params.State()
	for name, ta := range a {
		for i, v := range ta.Data {
			if b[name].Data[i] != v {
				t.Fatalf("%s[%d] differs after resume: %g vs %g", name, i, b[name].Data[i], v)
			}
		}
	}
	if want[5] >= want[0] {
		t.Logf("loss did not fall over 6 steps on noise: %v", want)
	}
}

func TestResumeRejectsOtherConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ck.safetensors")
	p, _ := NewPretrainer(tinyConfig(2), purego.New(1), noiseSource{})
	if err := p.Save(path); err != nil {
		t.Fatal(err)
	}
	other := tinyConfig(2)
	other.Temperature = 0.1
	q, _ := NewPretrainer(other, purego.New(1), noiseSource{})
	if err := q.Resume(path); err == nil {
		t.Error("resumed with a different temperature")
	}
}

func TestNaNStops(t *testing.T) {
	p, err := NewPretrainer(tinyConfig(2), purego.New(1), noiseSource{nan: true})
	if err != nil {
		t.Fatal(err)
	}
	before := p.Model.Params.Params()[0].Value.Clone()
	_, err = p.TrainStep()
	var nf *ErrNonFinite
	if !errors.As(err, &nf) {
		t.Fatalf("error %v, want ErrNonFinite", err)
	}
	for i, v := range p.Model.Params.Params()[0].Value.Data {
		if v != before.Data[i] {
			t.Fatal("parameters changed by a NaN step")
		}
	}
	if p.Step != 0 {
		t.Errorf("step advanced to %d", p.Step)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, mod := range []func(*Config){
		func(c *Config) { c.Batch = 1 },
		func(c *Config) { c.Temperature = 0 },
		func(c *Config) { c.Optimizer = "adam" },
		func(c *Config) { c.Warmup = 99 },
		func(c *Config) { c.LRScaling = "cubic" },
	} {
		c := tinyConfig(4)
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("accepted %+v", c)
		}
	}
}
