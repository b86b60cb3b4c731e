package purego

import "math"

// Batch normalisation works on x[M, C]: channels are the fast dimension of
// NHWC, so a row is one pixel. Statistics accumulate in float64.

// BatchNormForward implements backend.Backend.
func (b *Backend) BatchNormForward(m, c int, eps float32, x, gamma, beta, y, mean, variance []float32, relu bool) {
	sums := b.columnSums(m, c, func(i int, acc []float64) {
		for j, v := range x[i*c : (i+1)*c] {
			acc[j] += float64(v)
		}
	})
	mu := make([]float64, c)
	for j := range mu {
		mu[j] = sums[j] / float64(m)
	}
	sq := b.columnSums(m, c, func(i int, acc []float64) {
		for j, v := range x[i*c : (i+1)*c] {
			d := float64(v) - mu[j]
			acc[j] += d * d
		}
	})
	for j := range mu {
		mean[j] = float32(mu[j])
		variance[j] = float32(sq[j] / float64(m))
	}
	b.BatchNormInference(m, c, eps, x, gamma, beta, mean, variance, y, relu)
}

// BatchNormInference implements backend.Backend.
func (b *Backend) BatchNormInference(m, c int, eps float32, x, gamma, beta, mean, variance, y []float32, relu bool) {
	scale, shift := make([]float32, c), make([]float32, c)
	for j := range scale {
		inv := 1 / math.Sqrt(float64(variance[j])+float64(eps))
		scale[j] = float32(float64(gamma[j]) * inv)
		shift[j] = float32(float64(beta[j]) - float64(mean[j])*float64(gamma[j])*inv)
	}
	b.parallel(m, max(1, elementwiseGrain/c), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out := y[i*c : (i+1)*c]
			for j, v := range x[i*c : (i+1)*c] {
				o := v*scale[j] + shift[j]
				if relu && o < 0 {
					o = 0
				}
				out[j] = o
			}
		}
	})
}

// BatchNormBackward implements backend.Backend:
// dx = gamma/sigma * (dy - mean(dy) - xhat*mean(dy*xhat)), where dy is first
// masked by y > 0 when the forward applied a ReLU.
func (b *Backend) BatchNormBackward(m, c int, eps float32, x, y, dy, gamma, mean, variance, dx, dgamma, dbeta []float32, relu bool) {
	inv := make([]float64, c)
	for j := range inv {
		inv[j] = 1 / math.Sqrt(float64(variance[j])+float64(eps))
	}
	grad := func(i, j int) float64 {
		if relu && y[i*c+j] <= 0 {
			return 0
		}
		return float64(dy[i*c+j])
	}
	sums := b.columnSums(m, 2*c, func(i int, acc []float64) {
		for j := 0; j < c; j++ {
			g := grad(i, j)
			acc[j] += g
			acc[c+j] += g * (float64(x[i*c+j]) - float64(mean[j])) * inv[j]
		}
	})
	a, k := make([]float32, c), make([]float32, c)
	for j := 0; j < c; j++ {
		dbeta[j] = float32(sums[j])
		dgamma[j] = float32(sums[c+j])
		a[j] = float32(float64(gamma[j]) * inv[j])
		k[j] = float32(sums[c+j] / float64(m))
	}
	mdb := make([]float32, c)
	for j := range mdb {
		mdb[j] = float32(sums[j] / float64(m))
	}
	b.parallel(m, max(1, elementwiseGrain/c), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			for j := 0; j < c; j++ {
				g := float32(grad(i, j))
				xhat := (x[i*c+j] - mean[j]) * float32(inv[j])
				dx[i*c+j] = a[j] * (g - mdb[j] - xhat*k[j])
			}
		}
	})
}
