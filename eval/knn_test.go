package eval

import (
	"slices"
	"testing"

	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/tensor"
)

func TestTopK(t *testing.T) {
	rng := tensor.NewRNG(1, "topk")
	row := make([]float32, 500)
	for i := range row {
		row[i] = float32(rng.IntN(50)) // many ties
	}
	for _, k := range []int{1, 7, 200, 500} {
		got := topK(row, k, nil)
		idx := make([]int, len(row))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			switch {
			case row[a] > row[b]:
				return -1
			case row[a] < row[b]:
				return 1
			}
			return 0
		})
		want := slices.Clone(idx[:k])
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("k=%d: top set differs", k)
		}
	}
}

// TestKNNClusters: queries near their class's cluster centre are
// classified correctly; with shuffled bank labels accuracy drops to chance.
func TestKNNClusters(t *testing.T) {
	rng := tensor.NewRNG(2, "knn")
	classes, dim := 4, 8
	centres := tensor.New(classes, dim)
	rng.FillNormal(centres, 1)
	make1 := func(n int) *Features {
		f := &Features{Rows: n, Dim: dim, Data: make([]float32, n*dim), Labels: make([]int, n)}
		for i := 0; i < n; i++ {
			c := i % classes
			f.Labels[i] = c
			for j := 0; j < dim; j++ {
				f.Data[i*dim+j] = centres.Data[c*dim+j] + float32(0.2*rng.Normal())
			}
		}
		return f
	}
	bank, query := make1(400), make1(100)
	res, err := KNN(purego.New(1), bank, query, DefaultKNN(classes))
	if err != nil {
		t.Fatal(err)
	}
	if res.Top1 < 0.95 {
		t.Errorf("top-1 %.2f on separated clusters", res.Top1)
	}
	for i := range bank.Labels {
		bank.Labels[i] = rng.IntN(classes)
	}
	res, _ = KNN(purego.New(1), bank, query, DefaultKNN(classes))
	if res.Top1 > 0.5 {
		t.Errorf("top-1 %.2f with random bank labels, want near chance", res.Top1)
	}
}
