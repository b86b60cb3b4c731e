package eval

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Prediction is one image's most probable classes, best first.
type Prediction struct {
	Classes []int     // indices into the classifier's outputs
	Probs   []float64 // their softmax probabilities
}

// Predict turns logits (one row per image) into each row's k most
// probable classes and their probabilities (softmax over all classes).
// Ties go to the lower class index, as argmax does.
func Predict(logits *Features, k int) []Prediction {
	k = min(k, logits.Dim)
	preds := make([]Prediction, logits.Rows)
	probs := make([]float64, logits.Dim)
	order := make([]int, logits.Dim)
	for r := range preds {
		softmax(logits.Data[r*logits.Dim:(r+1)*logits.Dim], probs)
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return probs[order[a]] > probs[order[b]] })
		p := Prediction{Classes: append([]int(nil), order[:k]...), Probs: make([]float64, k)}
		for i, c := range p.Classes {
			p.Probs[i] = probs[c]
		}
		preds[r] = p
	}
	return preds
}

// softmax writes the softmax of x to out, in float64.
func softmax(x []float32, out []float64) {
	peak := math.Inf(-1)
	for _, v := range x {
		peak = math.Max(peak, float64(v))
	}
	var sum float64
	for i, v := range x {
		out[i] = math.Exp(float64(v) - peak)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
}

// TopKAccuracy is the fraction of predictions whose label (an index into
// the classifier's outputs) is among their first k classes. Negative
// labels (unlabelled images) are left out; NaN when none is labelled.
func TopKAccuracy(preds []Prediction, labels []int, k int) float64 {
	hit, n := 0, 0
	for i, p := range preds {
		if labels[i] < 0 {
			continue
		}
		n++
		for _, c := range p.Classes[:min(k, len(p.Classes))] {
			if c == labels[i] {
				hit++
				break
			}
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return float64(hit) / float64(n)
}

// MatchClasses maps a dataset's labels (indices into data) to a
// classifier's outputs (indices into model) by class name. Every class of
// the data must be one of the model's.
func MatchClasses(data, model []string) ([]int, error) {
	index := make(map[string]int, len(model))
	for i, name := range model {
		index[name] = i
	}
	to := make([]int, len(data))
	var unknown []string
	for i, name := range data {
		j, ok := index[name]
		if !ok {
			unknown = append(unknown, name)
		}
		to[i] = j
	}
	if len(unknown) > 0 {
		if len(unknown) > 5 {
			unknown = append(unknown[:5], fmt.Sprintf("and %d more", len(unknown)-5))
		}
		return nil, fmt.Errorf("the classifier does not know the classes %s", strings.Join(unknown, ", "))
	}
	return to, nil
}
