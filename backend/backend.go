// Package backend defines the compute interface the engine runs on.
//
// A backend implements coarse operations (a whole convolution, a whole batch
// normalisation) on plain float32 buffers. Activations are NHWC; convolution
// weights are OIHW (PyTorch's layout); linear weights are [out, in].
// Two implementations exist: purego, the reference every fast kernel is
// tested against, and onednn, the fast CPU path. A device backend (CUDA)
// would implement the same interface over device memory; see docs/design.md.
//
// Unless a method says otherwise, outputs are overwritten, never accumulated,
// and inputs and outputs do not overlap.
package backend

import (
	"fmt"
	"math"
)

// Precision is the arithmetic of the products inside convolutions and
// linear layers, where a network spends its time. Tensors stay float32 in
// every precision, and so does everything else: batch normalisation and its
// statistics, softmax, the loss, gradient accumulation and the optimiser,
// which keeps float32 master weights.
type Precision int

const (
	// FP32 computes in float32.
	FP32 Precision = iota
	// BF16 rounds the inputs of each product (activations, weights,
	// gradients) to bfloat16, float32's 8-bit exponent with 8 significant
	// bits, and accumulates in float32: mixed-precision training as CPUs
	// with bf16 dot-product instructions run it.
	BF16
)

// precisionNames are the names of the precisions, in Precision order.
var precisionNames = [...]string{FP32: "fp32", BF16: "bf16"}

// PrecisionNames lists the names ParsePrecision accepts.
func PrecisionNames() []string { return precisionNames[:] }

// String is the precision's name: "fp32" or "bf16".
func (p Precision) String() string {
	if p >= 0 && int(p) < len(precisionNames) {
		return precisionNames[p]
	}
	return fmt.Sprintf("Precision(%d)", int(p))
}

// ParsePrecision reads "fp32" or "bf16".
func ParsePrecision(s string) (Precision, error) {
	for i, n := range precisionNames {
		if s == n {
			return Precision(i), nil
		}
	}
	return 0, fmt.Errorf("precision %q: want one of %v", s, precisionNames)
}

// RoundBF16 rounds v to the nearest bfloat16 (ties to even), returned as
// the float32 it stands for: the rounding every BF16 product applies to its
// inputs. NaN stays NaN; values beyond bfloat16's range become infinities.
func RoundBF16(v float32) float32 {
	b := math.Float32bits(v)
	if b&0x7fffffff > 0x7f800000 {
		return math.Float32frombits((b | 0x00400000) &^ 0xffff) // quiet NaN
	}
	b += 0x7fff + (b>>16)&1
	return math.Float32frombits(b &^ 0xffff)
}

// Conv2D describes a 2-D convolution of x[N,H,W,C] with w[K, C/Groups, R, S]
// (and an optional bias[K]) giving y[N, OutH, OutW, K].
type Conv2D struct {
	N, H, W, C       int
	K, R, S          int
	StrideH, StrideW int
	PadH, PadW       int
	DilH, DilW       int // 1 means a dense kernel, as in PyTorch
	Groups           int
}

// OutH is the output height.
func (p Conv2D) OutH() int { return (p.H+2*p.PadH-p.DilH*(p.R-1)-1)/p.StrideH + 1 }

// OutW is the output width.
func (p Conv2D) OutW() int { return (p.W+2*p.PadW-p.DilW*(p.S-1)-1)/p.StrideW + 1 }

// WeightLen is the number of weight elements.
func (p Conv2D) WeightLen() int { return p.K * (p.C / p.Groups) * p.R * p.S }

// Validate reports a description that no backend can run.
func (p Conv2D) Validate() error {
	switch {
	case p.N <= 0 || p.H <= 0 || p.W <= 0 || p.C <= 0 || p.K <= 0 || p.R <= 0 || p.S <= 0:
		return fmt.Errorf("conv2d: non-positive size in %+v", p)
	case p.StrideH <= 0 || p.StrideW <= 0 || p.DilH <= 0 || p.DilW <= 0 || p.PadH < 0 || p.PadW < 0:
		return fmt.Errorf("conv2d: bad stride, dilation or padding in %+v", p)
	case p.Groups <= 0 || p.C%p.Groups != 0 || p.K%p.Groups != 0:
		return fmt.Errorf("conv2d: %d groups do not divide %d input and %d output channels", p.Groups, p.C, p.K)
	case p.OutH() <= 0 || p.OutW() <= 0:
		return fmt.Errorf("conv2d: %dx%d input too small for kernel %dx%d", p.H, p.W, p.R, p.S)
	}
	return nil
}

// Pool2D describes a max pooling window over x[N,H,W,C]. Padding counts as
// -inf, as in PyTorch.
type Pool2D struct {
	N, H, W, C       int
	KH, KW           int
	StrideH, StrideW int
	PadH, PadW       int
}

// OutH is the output height.
func (p Pool2D) OutH() int { return (p.H+2*p.PadH-p.KH)/p.StrideH + 1 }

// OutW is the output width.
func (p Pool2D) OutW() int { return (p.W+2*p.PadW-p.KW)/p.StrideW + 1 }

// Backend is the set of operations the autograd engine needs.
type Backend interface {
	// Name identifies the backend and, where it matters, its kernels.
	Name() string
	// Threads is the number of threads the backend computes with.
	Threads() int
	// Precision is the arithmetic of the convolutions and of LayerGemm.
	Precision() Precision

	// Conv2DForward computes y = conv(x, w) + b; b may be nil.
	Conv2DForward(p Conv2D, x, w, b, y []float32)
	// Conv2DBackwardData computes dx from dy and w.
	Conv2DBackwardData(p Conv2D, dy, w, dx []float32)
	// Conv2DBackwardWeights computes dw and, when db is not nil, db.
	Conv2DBackwardWeights(p Conv2D, x, dy, dw, db []float32)

	// BatchNormForward normalises the rows of x[M,C] with the batch mean and
	// biased variance, which it writes to mean and variance [C], and computes
	// y = gamma*(x-mean)/sqrt(variance+eps) + beta, then max(y,0) when relu.
	BatchNormForward(m, c int, eps float32, x, gamma, beta, y, mean, variance []float32, relu bool)
	// BatchNormBackward is the gradient of BatchNormForward: given x, its
	// output y, dy and the statistics the forward wrote, it computes dx,
	// dgamma and dbeta.
	BatchNormBackward(m, c int, eps float32, x, y, dy, gamma, mean, variance, dx, dgamma, dbeta []float32, relu bool)
	// BatchNormInference normalises with given statistics (running averages).
	BatchNormInference(m, c int, eps float32, x, gamma, beta, mean, variance, y []float32, relu bool)

	// ReLUForward computes y = max(x, 0).
	ReLUForward(x, y []float32)
	// ReLUBackward computes dx = dy where y > 0, else 0.
	ReLUBackward(y, dy, dx []float32)
	// AddReLUForward computes y = max(a+b, 0): the end of a residual block.
	AddReLUForward(a, b, y []float32)
	// Add computes y = a + b.
	Add(a, b, y []float32)
	// Axpy computes y += alpha*x (gradient accumulation).
	Axpy(alpha float32, x, y []float32)
	// Scale computes y = alpha*x; x and y may be the same slice.
	Scale(alpha float32, x, y []float32)

	// MaxPoolForward computes y and records in argmax, for each output, the
	// flat index into x of the maximum.
	MaxPoolForward(p Pool2D, x, y []float32, argmax []int32)
	// MaxPoolBackward scatters dy into dx through argmax.
	MaxPoolBackward(p Pool2D, dy []float32, argmax []int32, dx []float32)
	// GlobalAvgPoolForward averages x[N,HW,C] over HW into y[N,C].
	GlobalAvgPoolForward(n, hw, c int, x, y []float32)
	// GlobalAvgPoolBackward spreads dy[N,C] evenly into dx[N,HW,C].
	GlobalAvgPoolBackward(n, hw, c int, dy, dx []float32)

	// Gemm computes c = alpha*op(a)*op(b) + beta*c for row-major matrices,
	// op(a) [m,k] and op(b) [k,n]; op transposes when trans is true.
	Gemm(transA, transB bool, m, n, k int, alpha float32, a, b []float32, beta float32, c []float32)
	// LayerGemm computes c = op(a)*op(b) as Gemm does, in the backend's
	// Precision: it is the product of a linear layer with its weights.
	// Gemm itself always computes in float32 (similarities, losses,
	// evaluation).
	LayerGemm(transA, transB bool, m, n, k int, a, b, c []float32)
	// AddRowVector adds v[n] to every row of x[m,n] in place (a bias).
	AddRowVector(m, n int, x, v []float32)
	// SumRows writes the column sums of x[m,n] to s[n] (a bias gradient).
	SumRows(m, n int, x, s []float32)

	// CopyChannels copies, for each of rows positions, width channels from
	// src (srcC channels per position, starting at channel srcOff) into dst
	// (dstC channels per position, starting at dstOff). Concatenation and
	// splitting along channels are built from it.
	CopyChannels(rows, width int, src []float32, srcC, srcOff int, dst []float32, dstC, dstOff int)

	// SoftmaxForward computes the softmax of each row of x[m,n].
	SoftmaxForward(m, n int, x, y []float32)
	// SoftmaxBackward computes dx = y*(dy - sum(dy*y)) per row.
	SoftmaxBackward(m, n int, y, dy, dx []float32)
	// L2NormalizeForward computes y = x/max(|x|, eps) per row and writes the
	// clamped norms to norm[m].
	L2NormalizeForward(m, n int, eps float32, x, y, norm []float32)
	// L2NormalizeBackward computes dx from y, the norms and dy.
	L2NormalizeBackward(m, n int, y, norm, dy, dx []float32)
	// CrossEntropyForward computes the softmax probabilities prob[m,n] of
	// logits and returns the mean over rows of -log prob[i, labels[i]].
	CrossEntropyForward(m, n int, logits []float32, labels []int32, prob []float32) float64
	// CrossEntropyBackward computes dlogits = g*(prob - onehot(labels))/m.
	CrossEntropyBackward(m, n int, prob []float32, labels []int32, g float32, dlogits []float32)
}
