package selection

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/simclr-go/simclr/tensor"
)

// Clustering is the result of k-means.
type Clustering struct {
	K         int
	Dim       int
	Centroids []float32 // [K, Dim]
	Assign    []int     // each row's cluster
	Sizes     []int     // rows per cluster
}

// Gemm computes c = alpha*op(a)*op(b) + beta*c for row-major matrices,
// op(a) [m,k] and op(b) [k,n], as backend.Backend's Gemm does: pass a
// backend's to run the distance products on it.
type Gemm func(transA, transB bool, m, n, k int, alpha float32, a, b []float32, beta float32, c []float32)

// gonumGemm is the pure-Go Gemm, used when none is given.
func gonumGemm(transA, transB bool, m, n, k int, alpha float32, a, b []float32, beta float32, c []float32) {
	op := func(t bool) blas.Transpose {
		if t {
			return blas.Trans
		}
		return blas.NoTrans
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	blas32.Gemm(op(transA), op(transB), alpha,
		blas32.General{Rows: ar, Cols: ac, Stride: ac, Data: a},
		blas32.General{Rows: br, Cols: bc, Stride: bc, Data: b},
		beta, blas32.General{Rows: m, Cols: n, Stride: n, Data: c})
}

// chunkRows bounds the rows whose distances to the centroids are held at
// once: 4096 x K floats, whatever the pool's size.
const chunkRows = 4096

// Cluster groups the rows of x ([n, dim], row-major) into k clusters by
// k-means: k-means++ seeding, then Lloyd iterations until fewer than one
// row in 10,000 (none, for a small pool) changes cluster or iters have
// run. Distances come from matrix products (|x|^2 - 2 x.c + |c|^2), so
// that 50,000 rows of 512 features take seconds; gemm computes them (nil:
// pure Go). The result depends only on x, k and seed.
func Cluster(x []float32, dim, k int, seed uint64, iters int, gemm Gemm) (*Clustering, error) {
	if dim <= 0 || len(x)%dim != 0 {
		return nil, fmt.Errorf("kmeans: %d values are not rows of %d features", len(x), dim)
	}
	n := len(x) / dim
	if k < 1 || k > n {
		return nil, fmt.Errorf("kmeans: %d clusters of %d rows: want 1 to %d", k, n, n)
	}
	norms := rowNorms(x, dim)
	if gemm == nil {
		gemm = gonumGemm
	}
	c := &Clustering{K: k, Dim: dim, Centroids: seedPlusPlus(x, dim, norms, k, tensor.NewRNG(seed, "kmeans++")), Assign: make([]int, n), Sizes: make([]int, k)}
	for i := range c.Assign {
		c.Assign[i] = -1
	}
	rng := tensor.NewRNG(seed, "kmeans-empty")
	dists := make([]float32, min(chunkRows, n)*k)
	// The last step is an assignment, so that Assign matches Centroids.
	for it := 0; ; it++ {
		changed := c.assign(x, dists, gemm)
		if it > 0 && changed <= n/10000 || it >= max(iters, 1) {
			break
		}
		c.update(x, rng)
	}
	return c, nil
}

// assign moves every row to its nearest centroid and returns how many
// rows changed cluster.
func (c *Clustering) assign(x, dists []float32, gemm Gemm) int {
	k, dim := c.K, c.Dim
	n := len(x) / dim
	cn := rowNorms(c.Centroids, dim)
	changed := 0
	clear(c.Sizes)
	for lo := 0; lo < n; lo += chunkRows {
		hi := min(lo+chunkRows, n)
		d := dists[:(hi-lo)*k]
		crossProducts(gemm, x[lo*dim:hi*dim], c.Centroids, dim, d)
		for i := lo; i < hi; i++ {
			row := d[(i-lo)*k : (i-lo+1)*k]
			best, bestD := 0, float32(math.Inf(1))
			for j, v := range row {
				if dd := cn[j] - 2*v; dd < bestD {
					best, bestD = j, dd
				}
			}
			if c.Assign[i] != best {
				changed++
				c.Assign[i] = best
			}
			c.Sizes[best]++
		}
	}
	return changed
}

// update moves each centroid to the mean of its rows; an empty cluster
// takes a random row, so that k clusters remain.
func (c *Clustering) update(x []float32, rng *tensor.RNG) {
	k, dim := c.K, c.Dim
	sum := make([]float64, k*dim)
	for i, a := range c.Assign {
		s, r := sum[a*dim:(a+1)*dim], x[i*dim:(i+1)*dim]
		for j, v := range r {
			s[j] += float64(v)
		}
	}
	n := len(x) / dim
	for a := 0; a < k; a++ {
		cen := c.Centroids[a*dim : (a+1)*dim]
		if c.Sizes[a] == 0 {
			copy(cen, x[rng.IntN(n)*dim:])
			continue
		}
		inv := 1 / float64(c.Sizes[a])
		for j := range cen {
			cen[j] = float32(sum[a*dim+j] * inv)
		}
	}
}

// seedPlusPlus picks k initial centroids by k-means++: each next one is a
// row drawn with probability proportional to its squared distance to the
// nearest centroid so far.
func seedPlusPlus(x []float32, dim int, norms []float32, k int, rng *tensor.RNG) []float32 {
	n := len(x) / dim
	cent := make([]float32, 0, k*dim)
	first := rng.IntN(n)
	cent = append(cent, x[first*dim:(first+1)*dim]...)
	nearest := make([]float32, n)
	distancesTo(x, dim, norms, x[first*dim:(first+1)*dim], nearest)
	d := make([]float32, n)
	for len(cent) < k*dim {
		var total float64
		for _, v := range nearest {
			total += float64(v)
		}
		next := rng.IntN(n)
		if total > 0 {
			r := rng.Float64() * total
			for i, v := range nearest {
				r -= float64(v)
				if r < 0 {
					next = i
					break
				}
			}
		}
		c := x[next*dim : (next+1)*dim]
		cent = append(cent, c...)
		distancesTo(x, dim, norms, c, d)
		for i, v := range d {
			nearest[i] = min(nearest[i], v)
		}
	}
	return cent
}

// distancesTo writes the squared distance of every row of x to c.
func distancesTo(x []float32, dim int, norms, c, out []float32) {
	n := len(x) / dim
	blas32.Gemv(blas.NoTrans, 1, blas32.General{Rows: n, Cols: dim, Stride: dim, Data: x},
		blas32.Vector{N: dim, Inc: 1, Data: c}, 0, blas32.Vector{N: n, Inc: 1, Data: out})
	var cc float32
	for _, v := range c {
		cc += v * v
	}
	for i := range out {
		out[i] = max(norms[i]-2*out[i]+cc, 0)
	}
}

// crossProducts writes x . c^T ([rows of x, rows of c]) to out.
func crossProducts(gemm Gemm, x, c []float32, dim int, out []float32) {
	n, k := len(x)/dim, len(c)/dim
	gemm(false, true, n, k, dim, 1, x, c, 0, out)
}

// rowNorms returns each row's squared length.
func rowNorms(x []float32, dim int) []float32 {
	out := make([]float32, len(x)/dim)
	for i := range out {
		var s float32
		for _, v := range x[i*dim : (i+1)*dim] {
			s += v * v
		}
		out[i] = s
	}
	return out
}
