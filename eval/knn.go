package eval

import (
	"fmt"
	"math"
	"slices"

	"github.com/simclr-go/simclr/backend"
)

// KNNOptions are the weighted-kNN settings of the instance-discrimination
// literature (Wu et al. 2018), which SimCLR evaluations follow.
type KNNOptions struct {
	K           int     // neighbours; 200
	Temperature float64 // weight exp(sim/T); 0.1
	Classes     int
}

// DefaultKNN is k=200, T=0.1.
func DefaultKNN(classes int) KNNOptions {
	return KNNOptions{K: 200, Temperature: 0.1, Classes: classes}
}

// KNNResult holds top-1 accuracy and each query's predicted class.
type KNNResult struct {
	Top1        float64
	Predictions []int
}

// KNN classifies each query by its K most cosine-similar bank rows, each
// voting for its label with weight exp(similarity/T).
func KNN(be backend.Backend, bank, query *Features, o KNNOptions) (KNNResult, error) {
	if bank.Dim != query.Dim {
		return KNNResult{}, fmt.Errorf("knn: bank features of size %d, queries of size %d", bank.Dim, query.Dim)
	}
	if o.K < 1 || o.Temperature <= 0 || o.Classes < 1 {
		return KNNResult{}, fmt.Errorf("knn: k %d, temperature %g, %d classes: want k >= 1, temperature > 0 and classes >= 1", o.K, o.Temperature, o.Classes)
	}
	for _, l := range bank.Labels {
		if l < 0 || l >= o.Classes {
			return KNNResult{}, fmt.Errorf("knn: bank label %d outside [0, %d)", l, o.Classes)
		}
	}
	k := min(o.K, bank.Rows)
	b := normalized(bank)
	q := normalized(query)
	res := KNNResult{Predictions: make([]int, query.Rows)}
	// Queries go in chunks so the similarity matrix stays small.
	const chunk = 256
	sim := make([]float32, chunk*bank.Rows)
	top := make([]int, 0, k)
	votes := make([]float64, o.Classes)
	correct := 0
	for lo := 0; lo < query.Rows; lo += chunk {
		m := min(chunk, query.Rows-lo)
		be.Gemm(false, true, m, bank.Rows, bank.Dim, 1, q[lo*query.Dim:], b, 0, sim)
		for i := 0; i < m; i++ {
			row := sim[i*bank.Rows : (i+1)*bank.Rows]
			top = topK(row, k, top[:0])
			clear(votes)
			for _, j := range top {
				votes[bank.Labels[j]] += math.Exp(float64(row[j]) / o.Temperature)
			}
			pred := 0
			for c, v := range votes {
				if v > votes[pred] {
					pred = c
				}
			}
			res.Predictions[lo+i] = pred
			if pred == query.Labels[lo+i] {
				correct++
			}
		}
	}
	res.Top1 = float64(correct) / float64(query.Rows)
	return res, nil
}

// topK returns the indices of the k largest values of row (ties to the
// lower index), using a min-heap of the best so far: most values fail the
// comparison with the heap's minimum and cost one compare.
func topK(row []float32, k int, heap []int) []int {
	less := func(a, b int) bool { // a is worse than b
		return row[a] < row[b] || (row[a] == row[b] && a > b)
	}
	down := func(i int) {
		for {
			l, m := 2*i+1, i
			if l < len(heap) && less(heap[l], heap[m]) {
				m = l
			}
			if r := l + 1; r < len(heap) && less(heap[r], heap[m]) {
				m = r
			}
			if m == i {
				return
			}
			heap[i], heap[m] = heap[m], heap[i]
			i = m
		}
	}
	for j := range row {
		if len(heap) < k {
			heap = append(heap, j)
			for i := len(heap) - 1; i > 0; {
				p := (i - 1) / 2
				if !less(heap[i], heap[p]) {
					break
				}
				heap[i], heap[p] = heap[p], heap[i]
				i = p
			}
			continue
		}
		if less(heap[0], j) {
			heap[0] = j
			down(0)
		}
	}
	return heap
}

func normalized(f *Features) []float32 {
	out := make([]float32, len(f.Data))
	for i := 0; i < f.Rows; i++ {
		row := f.Data[i*f.Dim : (i+1)*f.Dim]
		var s float64
		for _, v := range row {
			s += float64(v) * float64(v)
		}
		inv := float32(1 / math.Max(math.Sqrt(s), 1e-12))
		for j, v := range row {
			out[i*f.Dim+j] = v * inv
		}
	}
	return out
}

// Nearest returns, for each query, the indices of its k most
// cosine-similar bank rows, most similar first.
func Nearest(be backend.Backend, bank, query *Features, k int) ([][]int, error) {
	if bank.Dim != query.Dim {
		return nil, fmt.Errorf("nearest: bank features of size %d, queries of size %d", bank.Dim, query.Dim)
	}
	k = min(k, bank.Rows)
	b, q := normalized(bank), normalized(query)
	sim := make([]float32, bank.Rows)
	out := make([][]int, query.Rows)
	for i := 0; i < query.Rows; i++ {
		be.Gemm(false, true, 1, bank.Rows, bank.Dim, 1, q[i*query.Dim:(i+1)*query.Dim], b, 0, sim)
		top := topK(sim, k, nil)
		slices.SortFunc(top, func(a, c int) int {
			switch {
			case sim[a] > sim[c]:
				return -1
			case sim[a] < sim[c]:
				return 1
			}
			return a - c
		})
		out[i] = top
	}
	return out, nil
}
