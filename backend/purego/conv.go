package purego

import (
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/simclr-go/simclr/backend"
)

// The convolutions lower each image to a column matrix (im2col) with one
// row per output pixel and R*S*C/G columns in (r, s, c) order, and multiply
// it by the weights transposed to [K, R, S, C/G].

// convWorkers is how many images are processed at once; each worker owns a
// column buffer, so memory grows with it.
func (b *Backend) convWorkers(p backend.Conv2D) int { return max(1, min(b.threads, p.N)) }

// weightsKRSC transposes w[K, Cg, R, S] to [K, R, S, Cg].
func weightsKRSC(p backend.Conv2D, w []float32) []float32 {
	cg := p.C / p.Groups
	out := make([]float32, p.WeightLen())
	for k := 0; k < p.K; k++ {
		for c := 0; c < cg; c++ {
			for r := 0; r < p.R; r++ {
				for s := 0; s < p.S; s++ {
					out[((k*p.R+r)*p.S+s)*cg+c] = w[((k*cg+c)*p.R+r)*p.S+s]
				}
			}
		}
	}
	return out
}

// im2col fills cols[OH*OW, R*S*Cg] for image n and group g.
func im2col(p backend.Conv2D, x []float32, n, g int, cols []float32) {
	cg := p.C / p.Groups
	oh, ow := p.OutH(), p.OutW()
	rowLen := p.R * p.S * cg
	for y := 0; y < oh; y++ {
		for xo := 0; xo < ow; xo++ {
			row := cols[(y*ow+xo)*rowLen : (y*ow+xo+1)*rowLen]
			for r := 0; r < p.R; r++ {
				ih := y*p.StrideH - p.PadH + r*p.DilH
				for s := 0; s < p.S; s++ {
					iw := xo*p.StrideW - p.PadW + s*p.DilW
					dst := row[(r*p.S+s)*cg : (r*p.S+s+1)*cg]
					if ih < 0 || ih >= p.H || iw < 0 || iw >= p.W {
						clear(dst)
						continue
					}
					src := ((n*p.H+ih)*p.W+iw)*p.C + g*cg
					copy(dst, x[src:src+cg])
				}
			}
		}
	}
}

// col2im adds cols[OH*OW, R*S*Cg] into dx for image n and group g.
func col2im(p backend.Conv2D, cols []float32, n, g int, dx []float32) {
	cg := p.C / p.Groups
	oh, ow := p.OutH(), p.OutW()
	rowLen := p.R * p.S * cg
	for y := 0; y < oh; y++ {
		for xo := 0; xo < ow; xo++ {
			row := cols[(y*ow+xo)*rowLen : (y*ow+xo+1)*rowLen]
			for r := 0; r < p.R; r++ {
				ih := y*p.StrideH - p.PadH + r*p.DilH
				if ih < 0 || ih >= p.H {
					continue
				}
				for s := 0; s < p.S; s++ {
					iw := xo*p.StrideW - p.PadW + s*p.DilW
					if iw < 0 || iw >= p.W {
						continue
					}
					dst := dx[((n*p.H+ih)*p.W+iw)*p.C+g*cg:]
					for c, v := range row[(r*p.S+s)*cg : (r*p.S+s+1)*cg] {
						dst[c] += v
					}
				}
			}
		}
	}
}

// forImages runs fn for every image on convWorkers goroutines; each worker
// gets its own index w and column buffer.
func (b *Backend) forImages(p backend.Conv2D, fn func(w, n int, cols []float32)) {
	workers := b.convWorkers(p)
	colLen := p.OutH() * p.OutW() * p.R * p.S * (p.C / p.Groups)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cols := make([]float32, colLen)
			for n := w; n < p.N; n += workers {
				fn(w, n, cols)
			}
		}()
	}
	wg.Wait()
}

// Conv2DForward implements backend.Backend.
func (b *Backend) Conv2DForward(p backend.Conv2D, x, w, bias, y []float32) {
	mustLen("conv2d x", x, p.N*p.H*p.W*p.C)
	mustLen("conv2d y", y, p.N*p.OutH()*p.OutW()*p.K)
	x, w = b.rounded(x, p.N*p.H*p.W*p.C), b.rounded(w, p.WeightLen())
	wt := weightsKRSC(p, w)
	cg, kg := p.C/p.Groups, p.K/p.Groups
	rowLen := p.R * p.S * cg
	pix := p.OutH() * p.OutW()
	b.forImages(p, func(_, n int, cols []float32) {
		out := y[n*pix*p.K : (n+1)*pix*p.K]
		for g := 0; g < p.Groups; g++ {
			im2col(p, x, n, g, cols)
			gonum.Implementation{}.Sgemm(blas.NoTrans, blas.Trans, pix, kg, rowLen,
				1, cols, rowLen, wt[g*kg*rowLen:], rowLen, 0, out[g*kg:], p.K)
		}
		if bias != nil {
			for i := 0; i < pix; i++ {
				row := out[i*p.K : (i+1)*p.K]
				for k := range row {
					row[k] += bias[k]
				}
			}
		}
	})
}

// Conv2DBackwardData implements backend.Backend.
func (b *Backend) Conv2DBackwardData(p backend.Conv2D, dy, w, dx []float32) {
	mustLen("conv2d dx", dx, p.N*p.H*p.W*p.C)
	dy, w = b.rounded(dy, p.N*p.OutH()*p.OutW()*p.K), b.rounded(w, p.WeightLen())
	wt := weightsKRSC(p, w)
	cg, kg := p.C/p.Groups, p.K/p.Groups
	rowLen := p.R * p.S * cg
	pix := p.OutH() * p.OutW()
	b.forImages(p, func(_, n int, cols []float32) {
		clear(dx[n*p.H*p.W*p.C : (n+1)*p.H*p.W*p.C])
		g0 := dy[n*pix*p.K:]
		for g := 0; g < p.Groups; g++ {
			gonum.Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, pix, rowLen, kg,
				1, g0[g*kg:], p.K, wt[g*kg*rowLen:], rowLen, 0, cols, rowLen)
			col2im(p, cols, n, g, dx)
		}
	})
}

// Conv2DBackwardWeights implements backend.Backend. Each worker sums its
// images' weight gradients privately; the sums are added at the end. In
// BF16 the bias gradient, too, sums the rounded dy, as bf16 kernels do.
func (b *Backend) Conv2DBackwardWeights(p backend.Conv2D, x, dy, dw, db []float32) {
	x, dy = b.rounded(x, p.N*p.H*p.W*p.C), b.rounded(dy, p.N*p.OutH()*p.OutW()*p.K)
	cg, kg := p.C/p.Groups, p.K/p.Groups
	rowLen := p.R * p.S * cg
	pix := p.OutH() * p.OutW()
	partial := make([][]float32, b.convWorkers(p))
	b.forImages(p, func(w, n int, cols []float32) {
		if partial[w] == nil {
			partial[w] = make([]float32, p.WeightLen())
		}
		acc := partial[w]
		g0 := dy[n*pix*p.K:]
		for g := 0; g < p.Groups; g++ {
			im2col(p, x, n, g, cols)
			gonum.Implementation{}.Sgemm(blas.Trans, blas.NoTrans, kg, rowLen, pix,
				1, g0[g*kg:], p.K, cols, rowLen, 1, acc[g*kg*rowLen:], rowLen)
		}
	})
	sum := partial[0]
	for _, q := range partial[1:] {
		if q == nil {
			continue
		}
		for i, v := range q {
			sum[i] += v
		}
	}
	// [K, R, S, Cg] back to [K, Cg, R, S].
	for k := 0; k < p.K; k++ {
		for c := 0; c < cg; c++ {
			for r := 0; r < p.R; r++ {
				for s := 0; s < p.S; s++ {
					dw[((k*cg+c)*p.R+r)*p.S+s] = sum[((k*p.R+r)*p.S+s)*cg+c]
				}
			}
		}
	}
	if db != nil {
		b.SumRows(p.N*pix, p.K, dy, db)
	}
}
