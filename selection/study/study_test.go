package study

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/eval"
)

// blobs returns n points of dim dimensions around classes well-separated
// centres, class c holding a share of the points that falls with c (so
// that random picks miss the small classes), labelled by centre.
func blobs(n, dim, classes int, seed uint64) *eval.Features {
	r := rand.New(rand.NewPCG(seed, 1))
	centres := make([]float32, classes*dim)
	for i := range centres {
		centres[i] = float32(r.NormFloat64() * 10)
	}
	weights := make([]float64, classes)
	total := 0.0
	for c := range weights {
		weights[c] = 1 / float64(c+1)
		total += weights[c]
	}
	f := &eval.Features{Rows: n, Dim: dim, Data: make([]float32, n*dim), Labels: make([]int, n)}
	for i := range n {
		u, c := r.Float64()*total, 0
		for c < classes-1 && u > weights[c] {
			u -= weights[c]
			c++
		}
		f.Labels[i] = c
		for j := range dim {
			f.Data[i*dim+j] = centres[c*dim+j] + float32(r.NormFloat64())
		}
	}
	return f
}

func TestRun(t *testing.T) {
	// The test set shares the pool's centres (same seed) but not its points.
	pool, all := blobs(2000, 8, 8, 1), blobs(2400, 8, 8, 1)
	test := &eval.Features{Rows: 400, Dim: 8, Data: all.Data[2000*8:], Labels: all.Labels[2000:]}
	be := purego.New(1)
	c := Config{Methods: Methods, Budgets: []int{8, 16}, Seeds: []uint64{1, 2}, L2: 1e-3}
	var seen int
	trials, err := Run(be, pool, test, 8, c, func(Trial) { seen++ })
	if err != nil {
		t.Fatal(err)
	}
	if len(trials) != len(Methods)*2*2 || seen != len(trials) {
		t.Fatalf("%d trials, %d reported: want %d", len(trials), seen, len(Methods)*4)
	}
	for _, tr := range trials {
		if len(tr.Picks) != tr.Budget {
			t.Errorf("%s budget %d: %d picks", tr.Method, tr.Budget, len(tr.Picks))
		}
		// k-means can merge two blobs when it has as many clusters as
		// blobs; with twice as many, typiclust covers them all.
		if tr.Method == Balanced || tr.Method == "typiclust" && tr.Budget == 16 {
			if tr.Classes != 8 {
				t.Errorf("%s budget %d seed %d covers %d of 8 classes", tr.Method, tr.Budget, tr.Seed, tr.Classes)
			}
			if tr.Top1 < 0.95 {
				t.Errorf("%s budget %d seed %d: top-1 %.3f on separated blobs", tr.Method, tr.Budget, tr.Seed, tr.Top1)
			}
		}
	}
	// The same seeds give the same picks.
	again, err := Run(be, pool, test, 8, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range trials {
		if !slices.Equal(trials[i].Picks, again[i].Picks) || trials[i].Top1 != again[i].Top1 {
			t.Fatalf("trial %d differs between two runs", i)
		}
	}
	// Methods other than Balanced never read labels: relabelling the pool
	// leaves their picks alone.
	shuffled := *pool
	shuffled.Labels = slices.Clone(pool.Labels)
	rand.New(rand.NewPCG(9, 9)).Shuffle(len(shuffled.Labels), func(i, j int) {
		shuffled.Labels[i], shuffled.Labels[j] = shuffled.Labels[j], shuffled.Labels[i]
	})
	c.Methods = []string{"typiclust", "kmeans", "kcenter", "random"}
	relabelled, err := Run(be, &shuffled, test, 8, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range relabelled {
		for _, o := range trials {
			if o.Method == r.Method && o.Budget == r.Budget && o.Seed == r.Seed && !slices.Equal(o.Picks, r.Picks) {
				t.Errorf("%s budget %d seed %d: picks changed with the labels", r.Method, r.Budget, r.Seed)
			}
		}
	}
	sum := Summarize(trials)
	coverage := map[string]float64{}
	for _, s := range sum {
		coverage[s.Method] += s.Classes
	}
	if coverage["typiclust"] <= coverage["random"] {
		t.Errorf("typiclust covers %.1f classes over both budgets, random %.1f: want more", coverage["typiclust"], coverage["random"])
	}
	if len(sum) != len(Methods)*2 {
		t.Fatalf("%d summaries, want %d", len(sum), len(Methods)*2)
	}
	for _, s := range sum {
		if s.Seeds != 2 || s.Min > s.Mean || s.Mean > s.Max || s.Std < 0 {
			t.Errorf("summary %+v inconsistent", s)
		}
	}
}

func TestBalanced(t *testing.T) {
	labels := []int{0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2}
	for budget := 1; budget <= 9; budget++ {
		rows := balanced(labels, 3, budget, uint64(budget))
		if len(rows) != budget {
			t.Fatalf("budget %d: %d rows", budget, len(rows))
		}
		per := make([]int, 3)
		seen := map[int]bool{}
		for _, i := range rows {
			if seen[i] {
				t.Fatalf("budget %d: row %d twice", budget, i)
			}
			seen[i] = true
			per[labels[i]]++
		}
		if slices.Max(per)-slices.Min(per) > 1 {
			t.Errorf("budget %d: per class %v, not balanced", budget, per)
		}
	}
}

func TestRunRefuses(t *testing.T) {
	pool := blobs(50, 4, 2, 1)
	be := purego.New(1)
	for name, c := range map[string]Config{
		"method": {Methods: []string{"psychic"}, Budgets: []int{2}, Seeds: []uint64{1}},
		"budget": {Methods: []string{"random"}, Budgets: []int{51}, Seeds: []uint64{1}},
		"seeds":  {Methods: []string{"random"}, Budgets: []int{2}},
		"l2":     {Methods: []string{"random"}, Budgets: []int{2}, Seeds: []uint64{1}, L2: -1},
	} {
		if _, err := Run(be, pool, pool, 2, c, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
