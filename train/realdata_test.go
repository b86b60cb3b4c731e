package train

import (
	"os"
	"testing"

	"github.com/simclr-go/simclr/augment"
	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/backend/auto"
	"github.com/simclr-go/simclr/data"
	"github.com/simclr-go/simclr/eval"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/optim"
	"github.com/simclr-go/simclr/simclr"
)

// TestPretrainingLearns pretrains a small encoder for 300 steps on real
// images (2,400 Fashion-MNIST images at 16 px) and checks that the loss
// falls and the views find their partners far more often.
//
// It also logs kNN and linear accuracy beside the random initialisation,
// without asserting on them: at this budget a random ResNet is as strong a
// kNN baseline on Fashion-MNIST as the pretrained one (about 73% both).
// The pretrained encoder pulls ahead with more data and steps: see the
// demo (10 minutes on all 60,000 images) and BENCHMARKS.md.
func TestPretrainingLearns(t *testing.T) {
	if _, err := os.Stat(data.FashionMNISTDir); err != nil {
		t.Skipf("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist): %v", err)
	}
	if testing.Short() {
		t.Skip("long test")
	}
	full, err := data.FashionMNIST("", "train")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := data.Subset(full, seq(0, 3000))
	if err != nil {
		t.Fatal(err)
	}
	trainSet, valSet, err := data.SplitTrainVal(sub, 600, 1)
	if err != nil {
		t.Fatal(err)
	}
	be, err := auto.New("auto", 0)
	if err != nil {
		t.Fatal(err)
	}
	const size, batch, steps = 16, 64, 300
	acfg := augment.CIFARDefaults(size)
	acfg.Scale[0] = 0.2
	pipe, err := augment.NewPipeline(acfg)
	if err != nil {
		t.Fatal(err)
	}
	views, err := NewAugmentedViews(trainSet, pipe, ViewOptions{Batch: batch, Seed: 1, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer views.Close()
	cfg := Config{
		Model: simclr.ModelConfig{
			Encoder:    resnet.Config{Depth: 18, Width: 8, CIFARStem: true},
			ProjHidden: []int{64}, ProjOut: 32,
		},
		Batch: batch, ImageSize: size, Steps: steps, Optimizer: "lars", BaseLR: 1, LRScaling: optim.Linear,
		WeightDecay: 1e-6, Momentum: 0.9, Warmup: steps / 10, Temperature: 0.5, Seed: 1,
	}
	p, err := NewPretrainer(cfg, be, views)
	if err != nil {
		t.Fatal(err)
	}
	probe := func() (knn, linear float64) {
		tape := autograd.NewTape(be)
		bank, err := eval.Embed(tape, p.Model.Encoder.Forward, trainSet, size, 256, 2)
		if err != nil {
			t.Fatal(err)
		}
		q, err := eval.Embed(tape, p.Model.Encoder.Forward, valSet, size, 256, 2)
		if err != nil {
			t.Fatal(err)
		}
		k, err := eval.KNN(be, bank, q, eval.KNNOptions{K: 20, Temperature: 0.1, Classes: 10})
		if err != nil {
			t.Fatal(err)
		}
		lin, err := eval.LinearEval(be, eval.LinearData{Train: bank, Test: q, Classes: 10}, eval.LinearOptions{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		return k.Top1, lin.Top1
	}
	randomKNN, randomLin := probe()
	const window = 20
	var firstLoss, lastLoss, firstAcc, lastAcc float64
	for i := 0; !p.Done(); i++ {
		st, err := p.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		if i < window {
			firstLoss += st.Loss / window
			firstAcc += st.ContrastAcc / window
		}
		if i >= steps-window {
			lastLoss += st.Loss / window
			lastAcc += st.ContrastAcc / window
		}
	}
	knn, lin := probe()
	t.Logf("NT-Xent %.3f -> %.3f, contrastive accuracy %.2f -> %.2f; kNN top-1 random %.1f%%, pretrained %.1f%%; linear random %.1f%%, pretrained %.1f%%",
		firstLoss, lastLoss, firstAcc, lastAcc, 100*randomKNN, 100*knn, 100*randomLin, 100*lin)
	if lastLoss > firstLoss-0.5 {
		t.Errorf("NT-Xent fell only from %.3f to %.3f", firstLoss, lastLoss)
	}
	if lastAcc < firstAcc+0.08 {
		t.Errorf("contrastive accuracy rose only from %.2f to %.2f", firstAcc, lastAcc)
	}
}

func seq(lo, hi int) []int {
	s := make([]int, hi-lo)
	for i := range s {
		s[i] = lo + i
	}
	return s
}
