// Package purego is the reference backend: every operation in plain Go,
// parallel over goroutines. It builds without cgo, and the fast backends
// are tested against it.
package purego

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/simclr-go/simclr/backend"
)

// Backend implements backend.Backend in Go.
type Backend struct {
	threads int
	prec    backend.Precision
}

var _ backend.Backend = (*Backend)(nil)

// New returns a float32 backend computing with the given number of
// goroutines; threads <= 0 means one per CPU.
func New(threads int) *Backend { return NewWithPrecision(threads, backend.FP32) }

// NewWithPrecision is New computing convolutions and LayerGemm in prec.
// BF16 is emulated exactly: the inputs of each product are rounded to
// bfloat16 (backend.RoundBF16) and the products summed in float32, which is
// what bf16 hardware computes, up to the order of the sums.
func NewWithPrecision(threads int, prec backend.Precision) *Backend {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	return &Backend{threads: threads, prec: prec}
}

// Name implements backend.Backend: "purego", or "purego(bf16)".
func (b *Backend) Name() string {
	if b.prec != backend.FP32 {
		return "purego(" + b.prec.String() + ")"
	}
	return "purego"
}

// Threads implements backend.Backend.
func (b *Backend) Threads() int { return b.threads }

// Precision implements backend.Backend.
func (b *Backend) Precision() backend.Precision { return b.prec }

// rounded returns s[:n] as the products of b's precision read it: s itself
// in float32, else a copy rounded to bfloat16.
func (b *Backend) rounded(s []float32, n int) []float32 {
	if b.prec == backend.FP32 {
		return s
	}
	r := make([]float32, n)
	b.parallel(n, elementwiseGrain, func(lo, hi int) {
		for i, v := range s[lo:hi] {
			r[lo+i] = backend.RoundBF16(v)
		}
	})
	return r
}

// parallel calls fn(lo, hi) over a split of [0, n) into at most b.threads
// contiguous chunks, each at least grain long, and waits for all of them.
func (b *Backend) parallel(n, grain int, fn func(lo, hi int)) {
	if grain < 1 {
		grain = 1
	}
	chunks := min(b.threads, (n+grain-1)/grain)
	if chunks <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for i := 0; i < chunks; i++ {
		lo, hi := n*i/chunks, n*(i+1)/chunks
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// elementwiseGrain is the smallest chunk worth a goroutine for cheap
// elementwise loops.
const elementwiseGrain = 1 << 15

func mustLen(op string, s []float32, n int) {
	if len(s) < n {
		panic(fmt.Sprintf("purego: %s: buffer of %d values, need %d", op, len(s), n))
	}
}

// ReLUForward implements backend.Backend.
func (b *Backend) ReLUForward(x, y []float32) {
	b.parallel(len(x), elementwiseGrain, func(lo, hi int) {
		for i, v := range x[lo:hi] {
			y[lo+i] = max(v, 0)
		}
	})
}

// ReLUBackward implements backend.Backend.
func (b *Backend) ReLUBackward(y, dy, dx []float32) {
	b.parallel(len(y), elementwiseGrain, func(lo, hi int) {
		for i, v := range y[lo:hi] {
			if v > 0 {
				dx[lo+i] = dy[lo+i]
			} else {
				dx[lo+i] = 0
			}
		}
	})
}

// AddReLUForward implements backend.Backend.
func (b *Backend) AddReLUForward(x1, x2, y []float32) {
	b.parallel(len(x1), elementwiseGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			y[i] = max(x1[i]+x2[i], 0)
		}
	})
}

// Add implements backend.Backend.
func (b *Backend) Add(x1, x2, y []float32) {
	b.parallel(len(x1), elementwiseGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			y[i] = x1[i] + x2[i]
		}
	})
}

// Axpy implements backend.Backend.
func (b *Backend) Axpy(alpha float32, x, y []float32) {
	b.parallel(len(x), elementwiseGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			y[i] += alpha * x[i]
		}
	})
}

// Scale implements backend.Backend.
func (b *Backend) Scale(alpha float32, x, y []float32) {
	b.parallel(len(x), elementwiseGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			y[i] = alpha * x[i]
		}
	})
}

// Gemm implements backend.Backend with gonum's blocked, parallel SGEMM.
func (b *Backend) Gemm(transA, transB bool, m, n, k int, alpha float32, a, bm []float32, beta float32, c []float32) {
	lda, ldb := k, n
	ta, tb := blas.NoTrans, blas.NoTrans
	if transA {
		lda, ta = m, blas.Trans
	}
	if transB {
		ldb, tb = k, blas.Trans
	}
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		b.Scale(beta, c[:m*n], c[:m*n])
		return
	}
	gonum.Implementation{}.Sgemm(ta, tb, m, n, k, alpha, a, lda, bm, ldb, beta, c, n)
}

// LayerGemm implements backend.Backend: Gemm on inputs rounded to the
// backend's precision.
func (b *Backend) LayerGemm(transA, transB bool, m, n, k int, a, bm, c []float32) {
	mustLen("LayerGemm a", a, m*k)
	mustLen("LayerGemm b", bm, k*n)
	b.Gemm(transA, transB, m, n, k, 1, b.rounded(a, m*k), b.rounded(bm, k*n), 0, c)
}

// AddRowVector implements backend.Backend.
func (b *Backend) AddRowVector(m, n int, x, v []float32) {
	b.parallel(m, max(1, elementwiseGrain/max(n, 1)), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := x[i*n : (i+1)*n]
			for j := range row {
				row[j] += v[j]
			}
		}
	})
}

// SumRows implements backend.Backend, accumulating in float64.
func (b *Backend) SumRows(m, n int, x, s []float32) {
	acc := b.columnSums(m, n, func(i int, row []float64) {
		for j, v := range x[i*n : (i+1)*n] {
			row[j] += float64(v)
		}
	})
	for j := range n {
		s[j] = float32(acc[j])
	}
}

// columnSums runs add(i, partial) for every row i in parallel chunks, each
// with its own float64 partial sums of length n, and returns their total.
func (b *Backend) columnSums(m, n int, add func(i int, partial []float64)) []float64 {
	chunks := min(b.threads, max(1, m*n/elementwiseGrain))
	chunks = max(1, min(chunks, m))
	partials := make([][]float64, chunks)
	b.parallel(chunks, 1, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			p := make([]float64, n)
			for i := m * c / chunks; i < m*(c+1)/chunks; i++ {
				add(i, p)
			}
			partials[c] = p
		}
	})
	total := partials[0]
	for _, p := range partials[1:] {
		for j, v := range p {
			total[j] += v
		}
	}
	return total
}

// CopyChannels implements backend.Backend.
func (b *Backend) CopyChannels(rows, width int, src []float32, srcC, srcOff int, dst []float32, dstC, dstOff int) {
	b.parallel(rows, max(1, elementwiseGrain/max(width, 1)), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			copy(dst[i*dstC+dstOff:i*dstC+dstOff+width], src[i*srcC+srcOff:i*srcC+srcOff+width])
		}
	})
}

// GlobalAvgPoolForward implements backend.Backend.
func (b *Backend) GlobalAvgPoolForward(n, hw, c int, x, y []float32) {
	inv := 1 / float64(hw)
	b.parallel(n, 1, func(lo, hi int) {
		acc := make([]float64, c)
		for i := lo; i < hi; i++ {
			clear(acc)
			for p := 0; p < hw; p++ {
				for j, v := range x[(i*hw+p)*c : (i*hw+p+1)*c] {
					acc[j] += float64(v)
				}
			}
			for j := range acc {
				y[i*c+j] = float32(acc[j] * inv)
			}
		}
	})
}

// GlobalAvgPoolBackward implements backend.Backend.
func (b *Backend) GlobalAvgPoolBackward(n, hw, c int, dy, dx []float32) {
	inv := 1 / float32(hw)
	b.parallel(n, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			g := dy[i*c : (i+1)*c]
			for p := 0; p < hw; p++ {
				row := dx[(i*hw+p)*c : (i*hw+p+1)*c]
				for j := range row {
					row[j] = g[j] * inv
				}
			}
		}
	})
}

// MaxPoolForward implements backend.Backend.
func (b *Backend) MaxPoolForward(p backend.Pool2D, x, y []float32, argmax []int32) {
	oh, ow := p.OutH(), p.OutW()
	b.parallel(p.N*oh, 1, func(lo, hi int) {
		for nr := lo; nr < hi; nr++ {
			n, r := nr/oh, nr%oh
			for q := 0; q < ow; q++ {
				out := ((n*oh+r)*ow + q) * p.C
				for ch := 0; ch < p.C; ch++ {
					best, arg := float32(math.Inf(-1)), int32(-1)
					for kh := 0; kh < p.KH; kh++ {
						ih := r*p.StrideH - p.PadH + kh
						if ih < 0 || ih >= p.H {
							continue
						}
						for kw := 0; kw < p.KW; kw++ {
							iw := q*p.StrideW - p.PadW + kw
							if iw < 0 || iw >= p.W {
								continue
							}
							idx := ((n*p.H+ih)*p.W+iw)*p.C + ch
							if v := x[idx]; v > best || arg < 0 {
								best, arg = v, int32(idx)
							}
						}
					}
					y[out+ch], argmax[out+ch] = best, arg
				}
			}
		}
	})
}

// MaxPoolBackward implements backend.Backend. Windows of different outputs
// overlap, so images are the unit of parallel work.
func (b *Backend) MaxPoolBackward(p backend.Pool2D, dy []float32, argmax []int32, dx []float32) {
	per := p.OutH() * p.OutW() * p.C
	b.parallel(p.N, 1, func(lo, hi int) {
		clear(dx[lo*p.H*p.W*p.C : hi*p.H*p.W*p.C])
		for i := lo * per; i < hi*per; i++ {
			dx[argmax[i]] += dy[i]
		}
	})
}
