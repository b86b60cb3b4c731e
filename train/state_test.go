package train

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/simclr"
)

// tinyClassifier is a fresh width-4 classifier over two classes.
func tinyClassifier(t *testing.T, seed uint64) *Classifier {
	t.Helper()
	m, err := simclr.NewModel(simclr.ModelConfig{Encoder: resnet.Config{Depth: 18, Width: 4, CIFARStem: true}, ProjHidden: []int{8}, ProjOut: 4}, seed)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClassifier(m, 0, 2, seed)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sameParams compares every parameter and buffer of two classifiers bit
// for bit.
func sameParams(t *testing.T, a, b *Classifier) {
	t.Helper()
	sa, sb := a.Model.Params.State(), b.Model.Params.State()
	for name, x := range sa {
		for i, v := range x.Data {
			if math.Float32bits(v) != math.Float32bits(sb[name].Data[i]) {
				t.Fatalf("%s[%d]: %g after resuming, %g uninterrupted", name, i, sb[name].Data[i], v)
			}
		}
	}
	for i, v := range a.FC.Weight.Value.Data {
		if v != b.FC.Weight.Value.Data[i] {
			t.Fatalf("fc.weight[%d] differs after resuming", i)
		}
	}
}

// TestFineTuneAndDistillResume: fine-tuning and distillation stopped by
// their context mid-epoch save their state; resumed from it they end with
// the parameters of an uninterrupted run, bit for bit. A state saved with
// other settings is refused.
func TestFineTuneAndDistillResume(t *testing.T) {
	be := purego.New(1)
	ds := stripes(t, 48, 1)
	cfg := DefaultFineTune(8, 2, 16) // 6 steps an epoch, 12 in all
	cfg.Workers = 1

	whole := tinyClassifier(t, 1)
	if err := FineTune(context.Background(), be, whole, ds, cfg, nil); err != nil {
		t.Fatal(err)
	}
	cut := tinyClassifier(t, 1)
	cfg.StatePath = filepath.Join(t.TempDir(), "finetune.state")
	ctx, cancel := context.WithCancel(context.Background())
	err := FineTune(ctx, be, cut, ds, cfg, func(step, _ int, _ float64) {
		if step == 4 {
			cancel()
		}
	})
	var ie *InterruptedError
	if !errors.As(err, &ie) || ie.Step != 4 {
		t.Fatalf("interrupted fine-tuning: %v; want an interruption after step 4", err)
	}
	resumed := tinyClassifier(t, 1)
	cfg.Resume = true
	if err := FineTune(context.Background(), be, resumed, ds, cfg, nil); err != nil {
		t.Fatal(err)
	}
	sameParams(t, whole, resumed)
	other := cfg
	other.BaseLR = 0.2
	var me *ConfigMismatchError
	if err := FineTune(context.Background(), be, tinyClassifier(t, 1), ds, other, nil); !errors.As(err, &me) {
		t.Errorf("resuming with another learning rate: %v", err)
	}

	dcfg := DistillConfig{FineTuneConfig: DefaultFineTune(8, 2, 16), Temperature: 1, Labelled: stripes(t, 16, 2), Alpha: 0.5}
	dcfg.Workers = 1
	unlabelled := stripes(t, 40, 3) // 5 steps an epoch; the labelled batches wrap every 2
	wholeStudent := tinyClassifier(t, 2)
	if err := Distill(context.Background(), be, whole, wholeStudent, unlabelled, dcfg, nil); err != nil {
		t.Fatal(err)
	}
	dcfg.StatePath = filepath.Join(t.TempDir(), "distill.state")
	ctx, cancel = context.WithCancel(context.Background())
	err = Distill(ctx, be, whole, tinyClassifier(t, 2), unlabelled, dcfg, func(step, _ int, _ float64) {
		if step == 3 {
			cancel()
		}
	})
	if !errors.As(err, &ie) || ie.Step != 3 {
		t.Fatalf("interrupted distillation: %v; want an interruption after step 3", err)
	}
	dcfg.Resume = true
	student := tinyClassifier(t, 2)
	if err := Distill(context.Background(), be, whole, student, unlabelled, dcfg, nil); err != nil {
		t.Fatal(err)
	}
	sameParams(t, wholeStudent, student)
}
