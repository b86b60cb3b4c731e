package purego

import "math"

// Row operations for losses: small matrices, one row per goroutine chunk.

// SoftmaxForward implements backend.Backend.
func (b *Backend) SoftmaxForward(m, n int, x, y []float32) {
	b.parallel(m, 64, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			softmaxRow(x[i*n:(i+1)*n], y[i*n:(i+1)*n])
		}
	})
}

func softmaxRow(x, y []float32) {
	mx := float32(math.Inf(-1))
	for _, v := range x {
		mx = max(mx, v)
	}
	var s float64
	for j, v := range x {
		e := math.Exp(float64(v - mx))
		y[j] = float32(e)
		s += e
	}
	inv := float32(1 / s)
	for j := range y {
		y[j] *= inv
	}
}

// SoftmaxBackward implements backend.Backend.
func (b *Backend) SoftmaxBackward(m, n int, y, dy, dx []float32) {
	b.parallel(m, 64, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			yr, gr := y[i*n:(i+1)*n], dy[i*n:(i+1)*n]
			var dot float64
			for j := range yr {
				dot += float64(yr[j]) * float64(gr[j])
			}
			for j := range yr {
				dx[i*n+j] = yr[j] * (gr[j] - float32(dot))
			}
		}
	})
}

// L2NormalizeForward implements backend.Backend.
func (b *Backend) L2NormalizeForward(m, n int, eps float32, x, y, norm []float32) {
	b.parallel(m, 64, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			var s float64
			for _, v := range x[i*n : (i+1)*n] {
				s += float64(v) * float64(v)
			}
			nv := max(math.Sqrt(s), float64(eps))
			norm[i] = float32(nv)
			inv := 1 / nv
			for j, v := range x[i*n : (i+1)*n] {
				y[i*n+j] = float32(float64(v) * inv)
			}
		}
	})
}

// L2NormalizeBackward implements backend.Backend: dx = (dy - y*<y,dy>)/|x|.
func (b *Backend) L2NormalizeBackward(m, n int, y, norm, dy, dx []float32) {
	b.parallel(m, 64, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			yr, gr := y[i*n:(i+1)*n], dy[i*n:(i+1)*n]
			var dot float64
			for j := range yr {
				dot += float64(yr[j]) * float64(gr[j])
			}
			inv := 1 / float64(norm[i])
			for j := range yr {
				dx[i*n+j] = float32((float64(gr[j]) - float64(yr[j])*dot) * inv)
			}
		}
	})
}

// CrossEntropyForward implements backend.Backend.
func (b *Backend) CrossEntropyForward(m, n int, logits []float32, labels []int32, prob []float32) float64 {
	b.SoftmaxForward(m, n, logits, prob)
	var loss float64
	for i := 0; i < m; i++ {
		row := logits[i*n : (i+1)*n]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = max(mx, float64(v))
		}
		var s float64
		for _, v := range row {
			s += math.Exp(float64(v) - mx)
		}
		loss += mx + math.Log(s) - float64(row[labels[i]])
	}
	return loss / float64(m)
}

// CrossEntropyBackward implements backend.Backend.
func (b *Backend) CrossEntropyBackward(m, n int, prob []float32, labels []int32, g float32, dlogits []float32) {
	s := g / float32(m)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			v := prob[i*n+j]
			if int32(j) == labels[i] {
				v--
			}
			dlogits[i*n+j] = s * v
		}
	}
}
