//go:build cgo

package selection

import (
	"testing"

	"github.com/simclr-go/simclr/backend/onednn"
	"github.com/simclr-go/simclr/tensor"
)

// BenchmarkTypiclustOneDNN chooses 10 of 50,000 rows of 512 features in
// 10 clusters, the distance products on oneDNN: the case of the largest
// clusters, where typicality costs most.
func BenchmarkTypiclustOneDNN(b *testing.B) {
	const n, dim = 50000, 512
	be, err := onednn.New(0)
	if err != nil {
		b.Fatal(err)
	}
	rng := tensor.NewRNG(1, "bench")
	centres := make([]float32, 10*dim)
	for i := range centres {
		centres[i] = float32(rng.Normal())
	}
	x := make([]float32, n*dim)
	for i := range x {
		x[i] = centres[(i/dim)%10*dim+i%dim] + float32(rng.Normal())
	}
	b.ResetTimer()
	for range b.N {
		if _, err := Select(Typiclust, x, dim, Options{Budget: 10, Gemm: be.Gemm}); err != nil {
			b.Fatal(err)
		}
	}
}
