package eval

import (
	"math"
	"slices"
	"testing"
)

func TestPredict(t *testing.T) {
	logits := &Features{Rows: 2, Dim: 4, Data: []float32{
		1, 3, 2, 3, // a tie between classes 1 and 3
		-50, 0, 50, 10,
	}}
	preds := Predict(logits, 3)
	if !slices.Equal(preds[0].Classes, []int{1, 3, 2}) || !slices.Equal(preds[1].Classes, []int{2, 3, 1}) {
		t.Errorf("top classes %v, %v", preds[0].Classes, preds[1].Classes)
	}
	// Softmax by hand for the first row.
	z := math.Exp(1) + 2*math.Exp(3) + math.Exp(2)
	if math.Abs(preds[0].Probs[0]-math.Exp(3)/z) > 1e-12 || math.Abs(preds[0].Probs[2]-math.Exp(2)/z) > 1e-12 {
		t.Errorf("probabilities %v", preds[0].Probs)
	}
	all := Predict(logits, 10) // k above the classes: every class
	for _, p := range all {
		sum := 0.0
		for _, q := range p.Probs {
			sum += q
		}
		if len(p.Classes) != 4 || math.Abs(sum-1) > 1e-12 {
			t.Errorf("%d classes, probabilities sum to %v", len(p.Classes), sum)
		}
	}
	labels := []int{3, -1}
	if a := TopKAccuracy(preds, labels, 1); a != 0 {
		t.Errorf("top-1 %v, want 0", a)
	}
	if a := TopKAccuracy(preds, labels, 2); a != 1 {
		t.Errorf("top-2 %v, want 1 (the unlabelled row left out)", a)
	}
	if a := TopKAccuracy(preds, []int{-1, -1}, 1); !math.IsNaN(a) {
		t.Errorf("accuracy without labels %v, want NaN", a)
	}
}

func TestMatchClasses(t *testing.T) {
	to, err := MatchClasses([]string{"dog", "cat"}, []string{"cat", "dog", "ship"})
	if err != nil || !slices.Equal(to, []int{1, 0}) {
		t.Errorf("MatchClasses: %v, %v", to, err)
	}
	if _, err := MatchClasses([]string{"dog", "frog"}, []string{"cat", "dog"}); err == nil {
		t.Error("an unknown class matched")
	}
}
