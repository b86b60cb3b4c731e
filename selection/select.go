// Package selection chooses which images of an unlabelled pool a person
// should label first, from an encoder's features alone: with very few
// labels, typical and diverse picks beat random ones by a wide margin
// (TypiClust, Hacohen et al., ICML 2022).
//
// Select never sees labels: it takes a matrix of features and returns row
// indices.
package selection

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/simclr-go/simclr/tensor"
)

// Method is a way of choosing images.
type Method string

// The methods Select knows.
const (
	// Typiclust clusters the pool and takes the most typical image of each
	// of the largest clusters no labelled image covers yet.
	Typiclust Method = "typiclust"
	// KMeans clusters the pool into budget clusters and takes the image
	// nearest each centroid.
	KMeans Method = "kmeans"
	// KCenter greedily takes the image farthest from every image taken or
	// labelled so far (the k-center coreset).
	KCenter Method = "kcenter"
	// Random takes images uniformly at random.
	Random Method = "random"
)

// Methods lists the method names, for flags and messages.
var Methods = []string{string(Typiclust), string(KMeans), string(KCenter), string(Random)}

// Defaults of Options, as TypiClust publishes them.
const (
	DefaultMaxClusters = 500 // clusters at most, however large the budget
	DefaultNeighbours  = 20  // neighbours that define typicality
	DefaultIterations  = 50  // Lloyd iterations at most
	minClusterSize     = 5   // smaller clusters are outliers, visited last
)

// Options configure Select.
type Options struct {
	// Budget is how many images to pick.
	Budget int
	// Seed makes the choice reproducible: the same features, options and
	// seed give the same picks.
	Seed uint64
	// Exclude are rows already labelled: never picked, and for Typiclust
	// their clusters count as covered.
	Exclude []int
	// MaxClusters caps Typiclust's clusters (0: DefaultMaxClusters).
	MaxClusters int
	// Neighbours is Typiclust's neighbourhood (0: DefaultNeighbours).
	Neighbours int
	// Iterations bounds the k-means iterations (0: DefaultIterations).
	Iterations int
	// Gemm computes the distance products (nil: pure Go); a backend's
	// Gemm is much faster on large pools.
	Gemm Gemm
}

// Pick is one chosen row.
type Pick struct {
	Index int
	// Cluster and ClusterSize say which group of the pool the pick stands
	// for: its k-means cluster (Typiclust, KMeans), else the images nearer
	// to it than to any other pick (KCenter, Random).
	Cluster     int
	ClusterSize int
}

// Select picks o.Budget rows of x ([n, dim], row-major) by method. Rows are
// compared by cosine similarity (they are L2-normalised first), as the
// contrastive loss compares them.
func Select(method Method, x []float32, dim int, o Options) ([]Pick, error) {
	if dim <= 0 || len(x) == 0 || len(x)%dim != 0 {
		return nil, fmt.Errorf("selection: %d values are not rows of %d features", len(x), dim)
	}
	n := len(x) / dim
	taken := make([]bool, n) // labelled or picked
	for _, i := range o.Exclude {
		if i < 0 || i >= n {
			return nil, fmt.Errorf("selection: excluded row %d outside the pool of %d", i, n)
		}
		taken[i] = true
	}
	free := n
	for _, t := range taken {
		if t {
			free--
		}
	}
	if o.Budget < 1 || o.Budget > free {
		return nil, fmt.Errorf("selection: budget %d: want 1 to %d (the pool's %d images less %d already labelled)", o.Budget, free, n, n-free)
	}
	o.MaxClusters = cmp.Or(o.MaxClusters, DefaultMaxClusters)
	o.Neighbours = cmp.Or(o.Neighbours, DefaultNeighbours)
	o.Iterations = cmp.Or(o.Iterations, DefaultIterations)
	if o.Gemm == nil {
		o.Gemm = gonumGemm
	}
	x = normalized(x, dim)
	switch method {
	case Typiclust:
		return typiclust(x, dim, taken, o)
	case KMeans:
		return nearestCentroids(x, dim, taken, o)
	case KCenter:
		return voronoi(x, dim, kcenter(x, dim, taken, o), o.Gemm), nil
	case Random:
		rng := tensor.NewRNG(o.Seed, "select-random")
		var picks []int
		for _, i := range rng.Perm(n) {
			if !taken[i] && len(picks) < o.Budget {
				picks = append(picks, i)
			}
		}
		return voronoi(x, dim, picks, o.Gemm), nil
	}
	return nil, fmt.Errorf("selection: unknown method %q: want %v", method, Methods)
}

// typiclust is TypiClust as published: k-means into as many clusters as
// labelled plus budget images (capped), then, cluster by cluster from the
// fewest labelled images and the largest size, the most typical image
// not yet labelled.
func typiclust(x []float32, dim int, taken []bool, o Options) ([]Pick, error) {
	n := len(x) / dim
	labelledRows := 0
	for _, t := range taken {
		if t {
			labelledRows++
		}
	}
	k := min(labelledRows+o.Budget, o.MaxClusters, n)
	km, err := Cluster(x, dim, k, o.Seed, o.Iterations, o.Gemm)
	if err != nil {
		return nil, err
	}
	labelled := make([]int, k)
	free := make([]int, k)
	for i, a := range km.Assign {
		if taken[i] {
			labelled[a]++
		} else {
			free[a]++
		}
	}
	order := make([]int, k)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		// Outlier clusters go last; then uncovered before covered, large before small.
		return cmp.Or(
			cmp.Compare(boolInt(km.Sizes[a] <= minClusterSize), boolInt(km.Sizes[b] <= minClusterSize)),
			cmp.Compare(labelled[a], labelled[b]),
			cmp.Compare(km.Sizes[b], km.Sizes[a]))
	})
	big := len(order)
	for big > 0 && km.Sizes[order[big-1]] <= minClusterSize {
		big--
	}
	if big == 0 {
		big = len(order)
	}
	picks := make([]Pick, 0, o.Budget)
	for p := 0; len(picks) < o.Budget; p++ {
		if p == big { // a round over the clusters is done
			p = 0
			if !anyFree(order[:big], free) {
				order, big = order[big:], len(order)-big // only outliers are left
			}
		}
		c := order[p]
		if free[c] == 0 {
			continue
		}
		var members []int
		for i, a := range km.Assign {
			if a == c && !taken[i] {
				members = append(members, i)
			}
		}
		best := members[mostTypical(o.Gemm, x, dim, members, min(o.Neighbours, len(members)/2))]
		taken[best] = true
		free[c]--
		picks = append(picks, Pick{Index: best, Cluster: c, ClusterSize: km.Sizes[c]})
	}
	return picks, nil
}

func anyFree(clusters, free []int) bool {
	return slices.ContainsFunc(clusters, func(c int) bool { return free[c] > 0 })
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// mostTypical returns the position in members of the row of highest
// typicality: 1 / (mean Euclidean distance to its k nearest other members).
func mostTypical(gemm Gemm, x []float32, dim int, members []int, k int) int {
	if k < 1 || len(members) < 2 {
		return 0
	}
	m := len(members)
	sub := make([]float32, m*dim)
	for j, i := range members {
		copy(sub[j*dim:], x[i*dim:(i+1)*dim])
	}
	norms := rowNorms(sub, dim)
	best, bestT := 0, math.Inf(-1)
	nearest := make([]float32, 0, k)
	block := max(1, chunkRows*64/m) // rows whose distances are held at once
	prod := make([]float32, min(block, m)*m)
	for lo := 0; lo < m; lo += block {
		hi := min(lo+block, m)
		d := prod[:(hi-lo)*m]
		crossProducts(gemm, sub[lo*dim:hi*dim], sub, dim, d)
		for r := lo; r < hi; r++ {
			nearest = nearest[:0]
			for j, v := range d[(r-lo)*m : (r-lo+1)*m] {
				if j == r {
					continue
				}
				nearest = keepSmallest(nearest, k, max(norms[r]+norms[j]-2*v, 0))
			}
			var sum float64
			for _, v := range nearest {
				sum += math.Sqrt(float64(v))
			}
			if t := 1 / (sum/float64(len(nearest)) + 1e-5); t > bestT {
				best, bestT = r, t
			}
		}
	}
	return best
}

// keepSmallest adds v to s, the k smallest values seen, kept sorted.
func keepSmallest(s []float32, k int, v float32) []float32 {
	if len(s) == k {
		if v >= s[k-1] {
			return s
		}
		s = s[:k-1]
	}
	i, _ := slices.BinarySearch(s, v)
	return slices.Insert(s, i, v)
}

// nearestCentroids clusters the pool into budget clusters and picks, from
// the largest cluster down, the free row nearest each centroid.
func nearestCentroids(x []float32, dim int, taken []bool, o Options) ([]Pick, error) {
	km, err := Cluster(x, dim, o.Budget, o.Seed, o.Iterations, o.Gemm)
	if err != nil {
		return nil, err
	}
	order := make([]int, km.K)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(km.Sizes[b], km.Sizes[a]) })
	n := len(x) / dim
	norms := rowNorms(x, dim)
	d := make([]float32, n)
	picks := make([]Pick, 0, o.Budget)
	for _, c := range order {
		distancesTo(x, dim, norms, km.Centroids[c*dim:(c+1)*dim], d)
		best := -1
		for i, v := range d {
			if !taken[i] && (best < 0 || v < d[best]) {
				best = i
			}
		}
		taken[best] = true
		picks = append(picks, Pick{Index: best, Cluster: c, ClusterSize: km.Sizes[c]})
	}
	return picks, nil
}

// kcenter is the greedy k-center coreset: each pick is the free row
// farthest from every labelled or picked row (the first, with none
// labelled, a random row).
func kcenter(x []float32, dim int, taken []bool, o Options) []int {
	n := len(x) / dim
	norms := rowNorms(x, dim)
	far := make([]float32, n)
	for i := range far {
		far[i] = float32(math.Inf(1))
	}
	d := make([]float32, n)
	addCentre := func(c int) {
		distancesTo(x, dim, norms, x[c*dim:(c+1)*dim], d)
		for i, v := range d {
			far[i] = min(far[i], v)
		}
	}
	for i, t := range taken {
		if t {
			addCentre(i)
		}
	}
	picks := make([]int, 0, o.Budget)
	for len(picks) < o.Budget {
		best := -1
		if len(picks) == 0 && !slices.Contains(taken, true) {
			free := make([]int, 0, n)
			for i, t := range taken {
				if !t {
					free = append(free, i)
				}
			}
			best = free[tensor.NewRNG(o.Seed, "select-kcenter").IntN(len(free))]
		} else {
			for i, v := range far {
				if !taken[i] && (best < 0 || v > far[best]) {
					best = i
				}
			}
		}
		taken[best] = true
		picks = append(picks, best)
		addCentre(best)
	}
	return picks
}

// voronoi describes each pick by the rows nearer to it than to any other
// pick.
func voronoi(x []float32, dim int, picks []int, gemm Gemm) []Pick {
	c := &Clustering{K: len(picks), Dim: dim, Assign: make([]int, len(x)/dim), Sizes: make([]int, len(picks))}
	for _, p := range picks {
		c.Centroids = append(c.Centroids, x[p*dim:(p+1)*dim]...)
	}
	c.assign(x, make([]float32, min(chunkRows, len(x)/dim)*len(picks)), gemm)
	out := make([]Pick, len(picks))
	for j, p := range picks {
		out[j] = Pick{Index: p, Cluster: j, ClusterSize: c.Sizes[j]}
	}
	return out
}

// normalized returns a copy of x with every row scaled to unit length
// (rows of zeros stay zero).
func normalized(x []float32, dim int) []float32 {
	out := make([]float32, len(x))
	for i := 0; i < len(x); i += dim {
		var s float64
		for _, v := range x[i : i+dim] {
			s += float64(v) * float64(v)
		}
		inv := float32(1)
		if s > 0 {
			inv = float32(1 / math.Sqrt(s))
		}
		for j, v := range x[i : i+dim] {
			out[i+j] = v * inv
		}
	}
	return out
}
