package selection

import (
	"math"
	"slices"
	"testing"

	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/tensor"
)

// blobs returns 10 well separated Gaussian blobs of different sizes in 32
// dimensions, each row's blob, and the blobs' centres.
func blobs(seed uint64) (x []float32, blob []int, centres [][]float32) {
	const dim = 32
	rng := tensor.NewRNG(seed, "blobs")
	for b := 0; b < 10; b++ {
		c := make([]float32, dim)
		for j := range c {
			c[j] = float32(rng.Normal())
		}
		centres = append(centres, c)
		for i := 0; i < 8+4*b; i++ {
			for j := range c {
				x = append(x, c[j]+0.15*float32(rng.Normal()))
			}
			blob = append(blob, b)
		}
	}
	return x, blob, centres
}

func checkValid(t *testing.T, m Method, picks []Pick, n, budget int, exclude []int) {
	t.Helper()
	if len(picks) != budget {
		t.Fatalf("%s: %d picks, want %d", m, len(picks), budget)
	}
	seen := map[int]bool{}
	for _, p := range picks {
		if p.Index < 0 || p.Index >= n || seen[p.Index] || slices.Contains(exclude, p.Index) {
			t.Fatalf("%s: pick %d is out of the pool of %d, repeated or excluded (%v)", m, p.Index, n, exclude)
		}
		if p.ClusterSize < 1 {
			t.Errorf("%s: pick %d stands for a cluster of %d images", m, p.Index, p.ClusterSize)
		}
		seen[p.Index] = true
	}
}

func TestEveryBlobGetsAPick(t *testing.T) {
	x, blob, _ := blobs(1)
	for _, m := range []Method{Typiclust, KMeans, KCenter} {
		picks, err := Select(m, x, 32, Options{Budget: 10, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		checkValid(t, m, picks, len(blob), 10, nil)
		covered := map[int]int{}
		for _, p := range picks {
			covered[blob[p.Index]]++
		}
		if len(covered) != 10 {
			t.Errorf("%s: picks cover blobs %v, want each of the 10 once", m, covered)
		}
		if m == Typiclust {
			for _, p := range picks {
				if want := 8 + 4*blob[p.Index]; p.ClusterSize != want {
					t.Errorf("typiclust: pick %d of blob %d reports a cluster of %d, want %d", p.Index, blob[p.Index], p.ClusterSize, want)
				}
			}
			if blob[picks[0].Index] != 9 {
				t.Errorf("typiclust: first pick from blob %d, want the largest (9)", blob[picks[0].Index])
			}
		}
	}
}

// TestTypiclustPicksCentres checks that the most typical image of a blob
// lies near its centre: closer than most of the blob's images.
func TestTypiclustPicksCentres(t *testing.T) {
	x, blob, _ := blobs(2)
	xn := normalized(x, 32)
	picks, err := Select(Typiclust, x, 32, Options{Budget: 10, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range picks {
		b := blob[p.Index]
		mean := make([]float64, 32)
		var members []int
		for i, bb := range blob {
			if bb == b {
				members = append(members, i)
				for j := range mean {
					mean[j] += float64(xn[i*32+j])
				}
			}
		}
		dist := func(i int) float64 {
			var s float64
			for j := range mean {
				d := float64(xn[i*32+j]) - mean[j]/float64(len(members))
				s += d * d
			}
			return math.Sqrt(s)
		}
		closer := 0
		for _, i := range members {
			if dist(i) < dist(p.Index) {
				closer++
			}
		}
		if closer > len(members)/4 {
			t.Errorf("blob %d: %d of its %d images lie closer to its centre than the typiclust pick", b, closer, len(members))
		}
	}
}

func TestSelectDeterministicBySeed(t *testing.T) {
	x, blob, _ := blobs(3)
	for _, m := range []Method{Typiclust, KMeans, KCenter, Random} {
		a, err := Select(m, x, 32, Options{Budget: 7, Seed: 5})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Select(m, x, 32, Options{Budget: 7, Seed: 5})
		if !slices.Equal(a, b) {
			t.Errorf("%s: seed 5 gave %v, then %v", m, a, b)
		}
		checkValid(t, m, a, len(blob), 7, nil)
	}
	a, _ := Select(Random, x, 32, Options{Budget: 7, Seed: 5})
	b, _ := Select(Random, x, 32, Options{Budget: 7, Seed: 6})
	if slices.Equal(a, b) {
		t.Errorf("random: seeds 5 and 6 both gave %v", a)
	}
}

func TestExcludeHonoured(t *testing.T) {
	x, blob, _ := blobs(4)
	var exclude []int
	for i, b := range blob {
		if b == 3 && len(exclude) < 1 { // one: typiclust then makes 1+9 clusters
			exclude = append(exclude, i)
		}
	}
	for _, m := range []Method{Typiclust, KMeans, KCenter, Random} {
		picks, err := Select(m, x, 32, Options{Budget: 9, Seed: 2, Exclude: exclude})
		if err != nil {
			t.Fatal(err)
		}
		checkValid(t, m, picks, len(blob), 9, exclude)
		if m == Typiclust || m == KCenter {
			// Blob 3 is covered by the labelled images: the other nine each get one.
			covered := map[int]int{}
			for _, p := range picks {
				covered[blob[p.Index]]++
			}
			if len(covered) != 9 || covered[3] != 0 {
				t.Errorf("%s with blob 3 labelled: picks cover %v, want the other nine blobs once each", m, covered)
			}
		}
	}
	// Every image but one labelled: that one is the only possible pick.
	all := make([]int, 0, len(blob))
	for i := range blob {
		if i != 17 {
			all = append(all, i)
		}
	}
	for _, m := range []Method{Typiclust, KMeans, KCenter, Random} {
		picks, err := Select(m, x, 32, Options{Budget: 1, Seed: 2, Exclude: all})
		if err != nil || len(picks) != 1 || picks[0].Index != 17 {
			t.Errorf("%s with all but row 17 labelled: %v, %v", m, picks, err)
		}
	}
}

func TestSelectBadInput(t *testing.T) {
	x, blob, _ := blobs(5)
	for _, o := range []Options{{Budget: 0}, {Budget: len(blob) + 1}, {Budget: len(blob), Exclude: []int{0}}, {Budget: 1, Exclude: []int{len(blob)}}} {
		if _, err := Select(Typiclust, x, 32, o); err == nil {
			t.Errorf("options %+v accepted for a pool of %d", o, len(blob))
		}
	}
	if _, err := Select("nearest", x, 32, Options{Budget: 1}); err == nil {
		t.Error("unknown method accepted")
	}
	if _, err := Select(Random, x, 33, Options{Budget: 1}); err == nil {
		t.Error("rows of 33 features accepted for 32-wide data")
	}
}

func TestClusterSeparatesBlobs(t *testing.T) {
	x, blob, _ := blobs(6)
	c, err := Cluster(normalized(x, 32), 32, 10, 1, 50, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Every blob lies in one cluster, every cluster holds one blob.
	of := map[int]int{}
	for i, b := range blob {
		if a, ok := of[b]; ok && a != c.Assign[i] {
			t.Fatalf("blob %d split between clusters %d and %d", b, a, c.Assign[i])
		}
		of[b] = c.Assign[i]
	}
	seen := map[int]bool{}
	for _, a := range of {
		seen[a] = true
	}
	if len(seen) != 10 {
		t.Errorf("10 blobs fill %d clusters", len(seen))
	}
}

func BenchmarkCluster(b *testing.B) {
	const n, dim, k = 50000, 512, 100
	rng := tensor.NewRNG(1, "bench")
	x := make([]float32, n*dim)
	for i := range x {
		x[i] = float32(rng.Normal())
	}
	b.ResetTimer()
	for range b.N {
		if _, err := Cluster(x, dim, k, 1, 20, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTypiclust(b *testing.B) {
	const n, dim = 50000, 512
	rng := tensor.NewRNG(1, "bench")
	x := make([]float32, n*dim)
	for i := range x {
		x[i] = float32(rng.Normal())
	}
	b.ResetTimer()
	for range b.N {
		if _, err := Select(Typiclust, x, dim, Options{Budget: 100, Iterations: 20}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestChunkedDistances checks the paths that split a large pool into
// blocks against plain loops: every row's cluster has the nearest
// centroid, and the most typical row of a large cluster is the one of
// least mean distance to its neighbours.
func TestChunkedDistances(t *testing.T) {
	const n, dim = 5000, 8
	rng := tensor.NewRNG(1, "chunks")
	x := make([]float32, n*dim)
	for i := range x {
		x[i] = float32(rng.Normal())
	}
	c, err := Cluster(x, dim, 7, 1, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	sq := func(a, b []float32) float64 {
		var s float64
		for j := range a {
			d := float64(a[j]) - float64(b[j])
			s += d * d
		}
		return s
	}
	for i := 0; i < n; i++ {
		r := x[i*dim : (i+1)*dim]
		own := sq(r, c.Centroids[c.Assign[i]*dim:(c.Assign[i]+1)*dim])
		for k := 0; k < c.K; k++ {
			if d := sq(r, c.Centroids[k*dim:(k+1)*dim]); d < own-1e-4 {
				t.Fatalf("row %d assigned to a centroid at %g, centroid %d lies at %g", i, own, k, d)
			}
		}
	}

	members := make([]int, 700) // more than one block of the typicality pass
	for i := range members {
		members[i] = 3 * i
	}
	got := mostTypical(gonumGemm, x, dim, members, 20)
	best, bestMean := -1, math.Inf(1)
	for a, i := range members {
		var d []float64
		for b, j := range members {
			if a != b {
				d = append(d, math.Sqrt(sq(x[i*dim:(i+1)*dim], x[j*dim:(j+1)*dim])))
			}
		}
		slices.Sort(d)
		var s float64
		for _, v := range d[:20] {
			s += v
		}
		if s/20 < bestMean {
			best, bestMean = a, s/20
		}
	}
	if got != best {
		t.Errorf("most typical of 700 rows: %d, plain loops say %d", got, best)
	}
}

// TestBackendGemm checks that a backend's matrix products choose as the
// pure-Go ones do.
func TestBackendGemm(t *testing.T) {
	x, _, _ := blobs(7)
	be := purego.New(1)
	for _, m := range []Method{Typiclust, KMeans, KCenter, Random} {
		a, err := Select(m, x, 32, Options{Budget: 10, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		b, err := Select(m, x, 32, Options{Budget: 10, Seed: 1, Gemm: be.Gemm})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(a, b) {
			t.Errorf("%s: pure Go picked %v, the backend %v", m, a, b)
		}
	}
}
