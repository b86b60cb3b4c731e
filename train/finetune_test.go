package train

import (
	"context"
	"testing"

	"github.com/simclr-go/simclr/backend/auto"
	"github.com/simclr-go/simclr/data"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/tensor"
)

// stripes makes n 16x16 images: class 0 horizontal stripes, class 1
// vertical, with random phase, contrast and noise. Crops and flips keep
// the orientation, so fine-tuning can learn it.
func stripes(t *testing.T, n int, seed uint64) data.Dataset {
	const side = 16
	rng := tensor.NewRNG(seed, "stripes")
	pix := make([]uint8, n*side*side*3)
	labels := make([]int32, n)
	for i := 0; i < n; i++ {
		labels[i] = int32(i % 2)
		phase, period := rng.IntN(4), 2+rng.IntN(3)
		lo, hi := 30+rng.IntN(60), 160+rng.IntN(90)
		for y := 0; y < side; y++ {
			for x := 0; x < side; x++ {
				k := y
				if labels[i] == 1 {
					k = x
				}
				v := lo
				if (k+phase)/period%2 == 0 {
					v = hi
				}
				v += rng.IntN(21) - 10
				for c := 0; c < 3; c++ {
					pix[((i*side+y)*side+x)*3+c] = uint8(max(0, min(255, v)))
				}
			}
		}
	}
	ds, err := data.NewArray("stripes", side, side, 3, pix, labels, []string{"horizontal", "vertical"})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestFineTuneLearns(t *testing.T) {
	be, err := auto.New("auto", 2)
	if err != nil {
		t.Fatal(err)
	}
	model, err := simclr.NewModel(simclr.ModelConfig{
		Encoder:    resnet.Config{Depth: 18, Width: 4, CIFARStem: true},
		ProjHidden: []int{16, 16}, ProjOut: 8,
	}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, sel := range []int{0, 1} {
		if _, err := NewClassifier(model, sel, 2, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := NewClassifier(model, 3, 2, 1); err == nil {
		t.Error("head layer 3 of a 2-hidden-layer head accepted")
	}
	c, err := NewClassifier(model, 1, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Params {
		if p.Name == "head.3.weight" || p.Name == "head.6.weight" {
			t.Errorf("%s trained though the classifier starts from head layer 1", p.Name)
		}
	}
	trainSet, testSet := stripes(t, 128, 1), stripes(t, 64, 2)
	before, err := Accuracy(be, c, testSet, 16, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultFineTune(32, 6, 16)
	cfg.BaseLR = 0.4
	if err := FineTune(context.Background(), be, c, trainSet, cfg, nil); err != nil {
		t.Fatal(err)
	}
	after, err := Accuracy(be, c, testSet, 16, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("test accuracy %.2f before, %.2f after fine-tuning", before, after)
	if after < 0.9 {
		t.Errorf("accuracy %.2f after fine-tuning on an easy task", after)
	}
}
