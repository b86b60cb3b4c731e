//go:build cgo

package onednn

// #cgo CFLAGS: -O3 -fopenmp
// #cgo LDFLAGS: -ldnnl -fopenmp
// #include <stdlib.h>
// #include "glue.h"
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/backend/purego"
)

// Backend implements backend.Backend with oneDNN. The operations it does not
// override come from the embedded pure-Go backend.
//
// Primitives are created on the first call for a shape and cached for the
// life of the Backend; the scratchpad and the buffer for weights in a
// primitive's own layout are shared by all shapes and only grow when a new
// primitive needs more, so a training step allocates nothing after the
// first. Calls into oneDNN are serialised by a mutex (each already uses
// every thread); the element-wise loops and Gemm run unlocked.
//
// Every call sets the OpenMP thread count of the calling thread, since Go
// may run it on any OS thread. After a parallel region libgomp's idle
// workers spin for a while (OMP_WAIT_POLICY, GOMP_SPINCOUNT) before they
// sleep, competing briefly with goroutines that run next.
type Backend struct {
	*purego.Backend
	threads int
	name    string
	st      *state
}

var _ backend.Backend = (*Backend)(nil)

// state is the C side of a Backend, freed by Close or, failing that, when
// the Backend becomes unreachable.
type state struct {
	mu    sync.Mutex
	ctx   *C.sg_ctx
	convs map[backend.Conv2D]*C.sg_conv
	bns   map[bnKey]*C.sg_bn
	mms   map[mmKey]*C.sg_mm
	err   [C.SG_ERR_LEN]C.char
}

// mmKey is the shape of a bf16 layer product.
type mmKey struct {
	transA, transB bool
	m, n, k        int
}

type bnKey struct {
	m, c int
	eps  float32
}

// New returns a float32 backend computing with the given number of OpenMP
// threads; threads <= 0 means one per CPU.
func New(threads int) (*Backend, error) { return NewWithPrecision(threads, backend.FP32) }

// NewWithPrecision is New computing convolutions and LayerGemm in prec.
//
// With BF16, oneDNN's bf16 kernels run on bf16 copies of the float32
// inputs, rounded to nearest even by a loop of this package, and write
// float32: activations, weights and gradients stay float32 tensors. (The
// floating-point math mode attribute that would let f32 primitives compute
// in bf16 is ignored by oneDNN 2.6's convolutions, which keep their f32
// kernels.) BF16 needs a CPU with bf16 dot-product instructions
// (AVX512_BF16 or AMX); elsewhere oneDNN emulates them, slower than float32,
// or has no kernel, and NewWithPrecision refuses.
func NewWithPrecision(threads int, prec backend.Precision) (*Backend, error) {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	if prec != backend.FP32 && prec != backend.BF16 {
		return nil, fmt.Errorf("onednn: no precision %v", prec)
	}
	st := &state{convs: map[backend.Conv2D]*C.sg_conv{}, bns: map[bnKey]*C.sg_bn{}, mms: map[mmKey]*C.sg_mm{}}
	if rc := C.sg_ctx_create(&st.ctx, C.int(threads), cbool(prec == backend.BF16), &st.err[0]); rc != 0 {
		return nil, fmt.Errorf("onednn: %s", C.GoString(&st.err[0]))
	}
	b := &Backend{Backend: purego.NewWithPrecision(threads, prec), threads: threads, st: st}
	runtime.AddCleanup(b, func(st *state) { st.free() }, st)
	// Name the implementation oneDNN picks for a typical 3x3 convolution.
	impl, err := b.ConvImpl(backend.Conv2D{N: 64, H: 32, W: 32, C: 64, K: 64, R: 3, S: 3,
		StrideH: 1, StrideW: 1, PadH: 1, PadW: 1, DilH: 1, DilW: 1, Groups: 1}, PassForward)
	if prec == backend.BF16 && (err != nil || !nativeBF16(impl)) {
		st.free()
		if err != nil {
			return nil, fmt.Errorf("onednn: bf16 needs a CPU with AVX512_BF16 or AMX instructions; oneDNN has no bf16 convolution here: %w", err)
		}
		return nil, fmt.Errorf("onednn: bf16 needs a CPU with AVX512_BF16 or AMX instructions; here oneDNN would emulate them (%s), slower than fp32", impl)
	}
	if err != nil {
		st.free()
		return nil, err
	}
	b.name = "onednn(" + impl + ")"
	return b, nil
}

// nativeBF16 reports whether an implementation name (such as
// "brgconv:avx512_core_bf16") runs on bf16 instructions.
func nativeBF16(impl string) bool {
	_, isa, _ := strings.Cut(impl, ":")
	return strings.Contains(isa, "bf16") || strings.Contains(isa, "amx")
}

// Close frees the oneDNN primitives and buffers. The Backend must not be
// used afterwards.
func (b *Backend) Close() { b.st.free() }

func (st *state) free() {
	st.mu.Lock()
	defer st.mu.Unlock()
	for k, cv := range st.convs {
		C.sg_conv_destroy(cv)
		delete(st.convs, k)
	}
	for k, bn := range st.bns {
		C.sg_bn_destroy(bn)
		delete(st.bns, k)
	}
	for k, mm := range st.mms {
		C.sg_mm_destroy(mm)
		delete(st.mms, k)
	}
	if st.ctx != nil {
		C.sg_ctx_destroy(st.ctx)
		st.ctx = nil
	}
}

// Name implements backend.Backend: "onednn(" and the implementation oneDNN
// chose for a 64-channel 3x3 convolution, e.g. "brgconv:avx512_core", or
// "brgconv:avx512_core_bf16" in BF16.
func (b *Backend) Name() string { return b.name }

// Threads implements backend.Backend.
func (b *Backend) Threads() int { return b.threads }

// ---------------------------------------------------------------------------
// Convolution.

// Pass selects one of the primitives of a convolution for ConvImpl.
type Pass int

// The convolution passes.
const (
	PassForward Pass = iota
	PassForwardBias
	PassBackwardData
	PassBackwardWeights
	PassBackwardWeightsBias
)

// ConvImpl reports the implementation oneDNN chose for a pass of p (for
// logs and tests), creating the primitive if needed.
func (b *Backend) ConvImpl(p backend.Conv2D, pass Pass) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	if pass < PassForward || pass > PassBackwardWeightsBias {
		return "", fmt.Errorf("onednn: no convolution pass %d", pass)
	}
	st := b.st
	st.mu.Lock()
	defer st.mu.Unlock()
	cv, err := st.conv(p)
	if err != nil {
		return "", err
	}
	var impl *C.char
	if rc := C.sg_conv_impl(st.ctx, cv, C.int(pass), &impl, &st.err[0]); rc != 0 {
		return "", fmt.Errorf("onednn: %w", st.error(p))
	}
	return C.GoString(impl), nil
}

// conv returns the cached C convolution for p; st.mu is held.
func (st *state) conv(p backend.Conv2D) (*C.sg_conv, error) {
	if st.ctx == nil {
		return nil, errors.New("onednn: backend used after Close")
	}
	if cv, ok := st.convs[p]; ok {
		return cv, nil
	}
	sh := C.sg_conv_shape{
		n: C.int64_t(p.N), h: C.int64_t(p.H), w: C.int64_t(p.W), c: C.int64_t(p.C),
		k: C.int64_t(p.K), r: C.int64_t(p.R), s: C.int64_t(p.S),
		stride_h: C.int64_t(p.StrideH), stride_w: C.int64_t(p.StrideW),
		pad_h: C.int64_t(p.PadH), pad_w: C.int64_t(p.PadW),
		dil_h: C.int64_t(p.DilH), dil_w: C.int64_t(p.DilW), groups: C.int64_t(p.Groups),
	}
	var cv *C.sg_conv
	if rc := C.sg_conv_create(st.ctx, &sh, &cv, &st.err[0]); rc != 0 {
		C.sg_conv_destroy(cv)
		return nil, fmt.Errorf("onednn: %w", st.error(p))
	}
	st.convs[p] = cv
	return cv, nil
}

// error is the message C left in st.err, for the given shape.
func (st *state) error(shape any) error {
	return fmt.Errorf("%s for %+v", C.GoString(&st.err[0]), shape)
}

// lockConv validates p, locks the state and returns p's convolution. It
// panics on errors: after Validate they are programming errors.
func (b *Backend) lockConv(op string, p backend.Conv2D) *C.sg_conv {
	if err := p.Validate(); err != nil {
		panic(fmt.Sprintf("onednn: %s: %v", op, err))
	}
	b.st.mu.Lock()
	cv, err := b.st.conv(p)
	if err != nil {
		b.st.mu.Unlock()
		panic(fmt.Sprintf("%v (in %s)", err, op))
	}
	return cv
}

// need panics unless s holds at least n values.
func need(op, what string, s []float32, n int) {
	if len(s) < n {
		panic(fmt.Sprintf("onednn: %s: %s has %d values, need %d", op, what, len(s), n))
	}
}

// ptr is the address of s[0] for C, or nil for an empty slice.
func ptr(s []float32) *C.float {
	if len(s) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&s[0]))
}

func convSizes(p backend.Conv2D) (x, w, y int) {
	return p.N * p.H * p.W * p.C, p.WeightLen(), p.N * p.OutH() * p.OutW() * p.K
}

// Conv2DForward implements backend.Backend.
func (b *Backend) Conv2DForward(p backend.Conv2D, x, w, bias, y []float32) {
	const op = "Conv2DForward"
	nx, nw, ny := convSizes(p)
	need(op, "x", x, nx)
	need(op, "w", w, nw)
	need(op, "y", y, ny)
	if bias != nil {
		need(op, "bias", bias, p.K)
	}
	cv := b.lockConv(op, p)
	defer b.st.mu.Unlock()
	if rc := C.sg_conv_fwd(b.st.ctx, cv, ptr(x), ptr(w), ptr(bias), ptr(y), &b.st.err[0]); rc != 0 {
		panic(fmt.Sprintf("onednn: %s: %v", op, b.st.error(p)))
	}
}

// Conv2DBackwardData implements backend.Backend.
func (b *Backend) Conv2DBackwardData(p backend.Conv2D, dy, w, dx []float32) {
	const op = "Conv2DBackwardData"
	nx, nw, ny := convSizes(p)
	need(op, "dy", dy, ny)
	need(op, "w", w, nw)
	need(op, "dx", dx, nx)
	cv := b.lockConv(op, p)
	defer b.st.mu.Unlock()
	if rc := C.sg_conv_bwd_data(b.st.ctx, cv, ptr(dy), ptr(w), ptr(dx), &b.st.err[0]); rc != 0 {
		panic(fmt.Sprintf("onednn: %s: %v", op, b.st.error(p)))
	}
}

// Conv2DBackwardWeights implements backend.Backend.
func (b *Backend) Conv2DBackwardWeights(p backend.Conv2D, x, dy, dw, db []float32) {
	const op = "Conv2DBackwardWeights"
	nx, nw, ny := convSizes(p)
	need(op, "x", x, nx)
	need(op, "dy", dy, ny)
	need(op, "dw", dw, nw)
	if db != nil {
		need(op, "db", db, p.K)
	}
	cv := b.lockConv(op, p)
	defer b.st.mu.Unlock()
	if rc := C.sg_conv_bwd_weights(b.st.ctx, cv, ptr(x), ptr(dy), ptr(dw), ptr(db), &b.st.err[0]); rc != 0 {
		panic(fmt.Sprintf("onednn: %s: %v", op, b.st.error(p)))
	}
}

// ---------------------------------------------------------------------------
// Batch normalisation.

// BNImpl reports the implementation oneDNN chose for batch norm over
// [m, c]: which is 0 forward, 1 forward+ReLU, 2 backward, 3 inference,
// 4 inference+ReLU.
func (b *Backend) BNImpl(m, c int, eps float32, which int) (string, error) {
	if which < 0 || which > 4 {
		return "", fmt.Errorf("onednn: no batch norm primitive %d", which)
	}
	st := b.st
	st.mu.Lock()
	defer st.mu.Unlock()
	bn, err := st.bn(m, c, eps)
	if err != nil {
		return "", err
	}
	var impl *C.char
	if rc := C.sg_bn_impl(st.ctx, bn, C.int(which), &impl, &st.err[0]); rc != 0 {
		return "", fmt.Errorf("onednn: %w", st.error(bnKey{m, c, eps}))
	}
	return C.GoString(impl), nil
}

func (st *state) bn(m, c int, eps float32) (*C.sg_bn, error) {
	if st.ctx == nil {
		return nil, errors.New("onednn: backend used after Close")
	}
	if m <= 0 || c <= 0 {
		return nil, fmt.Errorf("onednn: batch norm over %dx%d", m, c)
	}
	k := bnKey{m, c, eps}
	if bn, ok := st.bns[k]; ok {
		return bn, nil
	}
	var bn *C.sg_bn
	if rc := C.sg_bn_create(st.ctx, C.int64_t(m), C.int64_t(c), C.float(eps), &bn, &st.err[0]); rc != 0 {
		C.sg_bn_destroy(bn)
		return nil, fmt.Errorf("onednn: %w", st.error(k))
	}
	st.bns[k] = bn
	return bn, nil
}

func (b *Backend) lockBN(op string, m, c int, eps float32) *C.sg_bn {
	b.st.mu.Lock()
	bn, err := b.st.bn(m, c, eps)
	if err != nil {
		b.st.mu.Unlock()
		panic(fmt.Sprintf("%v (in %s)", err, op))
	}
	return bn
}

func cbool(v bool) C.int {
	if v {
		return 1
	}
	return 0
}

// BatchNormForward implements backend.Backend.
func (b *Backend) BatchNormForward(m, c int, eps float32, x, gamma, beta, y, mean, variance []float32, relu bool) {
	const op = "BatchNormForward"
	need(op, "x", x, m*c)
	need(op, "y", y, m*c)
	for _, s := range [][]float32{gamma, beta, mean, variance} {
		need(op, "parameter", s, c)
	}
	bn := b.lockBN(op, m, c, eps)
	defer b.st.mu.Unlock()
	if rc := C.sg_bn_fwd(b.st.ctx, bn, ptr(x), ptr(gamma), ptr(beta), ptr(y), ptr(mean), ptr(variance),
		cbool(relu), &b.st.err[0]); rc != 0 {
		panic(fmt.Sprintf("onednn: %s: %v", op, b.st.error(bnKey{m, c, eps})))
	}
}

// BatchNormBackward implements backend.Backend. With relu, dy is masked by
// y > 0 into dx, which oneDNN's backward then reads and overwrites in place.
func (b *Backend) BatchNormBackward(m, c int, eps float32, x, y, dy, gamma, mean, variance, dx, dgamma, dbeta []float32, relu bool) {
	const op = "BatchNormBackward"
	need(op, "x", x, m*c)
	if relu {
		need(op, "y", y, m*c)
	}
	need(op, "dy", dy, m*c)
	need(op, "dx", dx, m*c)
	for _, s := range [][]float32{gamma, mean, variance, dgamma, dbeta} {
		need(op, "parameter", s, c)
	}
	bn := b.lockBN(op, m, c, eps)
	defer b.st.mu.Unlock()
	if rc := C.sg_bn_bwd(b.st.ctx, bn, ptr(x), ptr(y), ptr(dy), ptr(gamma), ptr(mean), ptr(variance),
		ptr(dx), ptr(dgamma), ptr(dbeta), cbool(relu), &b.st.err[0]); rc != 0 {
		panic(fmt.Sprintf("onednn: %s: %v", op, b.st.error(bnKey{m, c, eps})))
	}
}

// BatchNormInference implements backend.Backend.
func (b *Backend) BatchNormInference(m, c int, eps float32, x, gamma, beta, mean, variance, y []float32, relu bool) {
	const op = "BatchNormInference"
	need(op, "x", x, m*c)
	need(op, "y", y, m*c)
	for _, s := range [][]float32{gamma, beta, mean, variance} {
		need(op, "parameter", s, c)
	}
	bn := b.lockBN(op, m, c, eps)
	defer b.st.mu.Unlock()
	if rc := C.sg_bn_inf(b.st.ctx, bn, ptr(x), ptr(gamma), ptr(beta), ptr(mean), ptr(variance), ptr(y),
		cbool(relu), &b.st.err[0]); rc != 0 {
		panic(fmt.Sprintf("onednn: %s: %v", op, b.st.error(bnKey{m, c, eps})))
	}
}

// ---------------------------------------------------------------------------
// GEMM and the C loops.

// Gemm implements backend.Backend with dnnl_sgemm (row-major).
func (b *Backend) Gemm(transA, transB bool, m, n, k int, alpha float32, a, bm []float32, beta float32, c []float32) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		b.Backend.Gemm(transA, transB, m, n, k, alpha, a, bm, beta, c)
		return
	}
	need("Gemm", "a", a, m*k)
	need("Gemm", "b", bm, k*n)
	need("Gemm", "c", c, m*n)
	if rc := C.sg_gemm(C.int(b.threads), cbool(transA), cbool(transB), C.int64_t(m), C.int64_t(n), C.int64_t(k),
		C.float(alpha), ptr(a), ptr(bm), C.float(beta), ptr(c)); rc != 0 {
		panic(fmt.Sprintf("onednn: Gemm %dx%dx%d: dnnl status %d", m, n, k, int(rc)))
	}
}

// LayerGemm implements backend.Backend: Gemm in float32, a oneDNN matmul
// on bf16 copies of a and b in BF16.
func (b *Backend) LayerGemm(transA, transB bool, m, n, k int, a, bm, c []float32) {
	if b.Precision() == backend.FP32 || m == 0 || n == 0 || k == 0 {
		b.Gemm(transA, transB, m, n, k, 1, a, bm, 0, c)
		return
	}
	need("LayerGemm", "a", a, m*k)
	need("LayerGemm", "b", bm, k*n)
	need("LayerGemm", "c", c, m*n)
	key := mmKey{transA, transB, m, n, k}
	st := b.st
	st.mu.Lock()
	defer st.mu.Unlock()
	mm, err := st.mm(key)
	if err != nil {
		panic(fmt.Sprintf("%v (in LayerGemm)", err))
	}
	if rc := C.sg_mm_run(st.ctx, mm, ptr(a), ptr(bm), ptr(c), &st.err[0]); rc != 0 {
		panic(fmt.Sprintf("onednn: LayerGemm: %v", st.error(key)))
	}
}

// MatMulImpl reports the implementation oneDNN chose for a bf16 LayerGemm
// of the given shape (for logs and tests); it needs a BF16 backend.
func (b *Backend) MatMulImpl(transA, transB bool, m, n, k int) (string, error) {
	if b.Precision() != backend.BF16 {
		return "", errors.New("onednn: float32 LayerGemm runs dnnl_sgemm, not a matmul primitive")
	}
	st := b.st
	st.mu.Lock()
	defer st.mu.Unlock()
	mm, err := st.mm(mmKey{transA, transB, m, n, k})
	if err != nil {
		return "", err
	}
	return C.GoString(C.sg_mm_impl(mm)), nil
}

// mm returns the cached bf16 product for k; st.mu is held.
func (st *state) mm(k mmKey) (*C.sg_mm, error) {
	if st.ctx == nil {
		return nil, errors.New("onednn: backend used after Close")
	}
	if k.m <= 0 || k.n <= 0 || k.k <= 0 {
		return nil, fmt.Errorf("onednn: matmul of %+v", k)
	}
	if mm, ok := st.mms[k]; ok {
		return mm, nil
	}
	var mm *C.sg_mm
	if rc := C.sg_mm_create(st.ctx, cbool(k.transA), cbool(k.transB), C.int64_t(k.m), C.int64_t(k.n), C.int64_t(k.k),
		&mm, &st.err[0]); rc != 0 {
		C.sg_mm_destroy(mm)
		return nil, fmt.Errorf("onednn: %w", st.error(k))
	}
	st.mms[k] = mm
	return mm, nil
}

// ReLUForward implements backend.Backend.
func (b *Backend) ReLUForward(x, y []float32) {
	need("ReLUForward", "y", y, len(x))
	if len(x) > 0 {
		C.sg_relu_fwd(C.int(b.threads), ptr(x), ptr(y), C.int64_t(len(x)))
	}
}

// ReLUBackward implements backend.Backend.
func (b *Backend) ReLUBackward(y, dy, dx []float32) {
	need("ReLUBackward", "dy", dy, len(y))
	need("ReLUBackward", "dx", dx, len(y))
	if len(y) > 0 {
		C.sg_relu_bwd(C.int(b.threads), ptr(y), ptr(dy), ptr(dx), C.int64_t(len(y)))
	}
}

// AddReLUForward implements backend.Backend.
func (b *Backend) AddReLUForward(x1, x2, y []float32) {
	need("AddReLUForward", "b", x2, len(x1))
	need("AddReLUForward", "y", y, len(x1))
	if len(x1) > 0 {
		C.sg_add_relu(C.int(b.threads), ptr(x1), ptr(x2), ptr(y), C.int64_t(len(x1)))
	}
}

// Add implements backend.Backend.
func (b *Backend) Add(x1, x2, y []float32) {
	need("Add", "b", x2, len(x1))
	need("Add", "y", y, len(x1))
	if len(x1) > 0 {
		C.sg_add(C.int(b.threads), ptr(x1), ptr(x2), ptr(y), C.int64_t(len(x1)))
	}
}

// Axpy implements backend.Backend.
func (b *Backend) Axpy(alpha float32, x, y []float32) {
	need("Axpy", "y", y, len(x))
	if len(x) > 0 {
		C.sg_axpy(C.int(b.threads), C.float(alpha), ptr(x), ptr(y), C.int64_t(len(x)))
	}
}

// Scale implements backend.Backend; x and y may be the same slice.
func (b *Backend) Scale(alpha float32, x, y []float32) {
	need("Scale", "y", y, len(x))
	if len(x) > 0 {
		C.sg_scale(C.int(b.threads), C.float(alpha), ptr(x), ptr(y), C.int64_t(len(x)))
	}
}

// GlobalAvgPoolForward implements backend.Backend.
func (b *Backend) GlobalAvgPoolForward(n, hw, c int, x, y []float32) {
	need("GlobalAvgPoolForward", "x", x, n*hw*c)
	need("GlobalAvgPoolForward", "y", y, n*c)
	if n*hw*c > 0 {
		C.sg_gap_fwd(C.int(b.threads), C.int64_t(n), C.int64_t(hw), C.int64_t(c), ptr(x), ptr(y))
	}
}

// GlobalAvgPoolBackward implements backend.Backend.
func (b *Backend) GlobalAvgPoolBackward(n, hw, c int, dy, dx []float32) {
	need("GlobalAvgPoolBackward", "dy", dy, n*c)
	need("GlobalAvgPoolBackward", "dx", dx, n*hw*c)
	if n*hw*c > 0 {
		C.sg_gap_bwd(C.int(b.threads), C.int64_t(n), C.int64_t(hw), C.int64_t(c), ptr(dy), ptr(dx))
	}
}

// MaxPoolForward implements backend.Backend. Ties keep the first maximum in
// window order, as PyTorch and purego do.
func (b *Backend) MaxPoolForward(p backend.Pool2D, x, y []float32, argmax []int32) {
	oh, ow := p.OutH(), p.OutW()
	nx, ny := p.N*p.H*p.W*p.C, p.N*oh*ow*p.C
	need("MaxPoolForward", "x", x, nx)
	need("MaxPoolForward", "y", y, ny)
	if len(argmax) < ny {
		panic(fmt.Sprintf("onednn: MaxPoolForward: argmax has %d values, need %d", len(argmax), ny))
	}
	if nx >= 1<<31 {
		panic("onednn: MaxPoolForward: input too large for int32 argmax")
	}
	if ny <= 0 {
		return
	}
	C.sg_maxpool_fwd(C.int(b.threads), C.int64_t(p.N), C.int64_t(p.H), C.int64_t(p.W), C.int64_t(p.C),
		C.int64_t(p.KH), C.int64_t(p.KW), C.int64_t(p.StrideH), C.int64_t(p.StrideW),
		C.int64_t(p.PadH), C.int64_t(p.PadW), C.int64_t(oh), C.int64_t(ow),
		ptr(x), ptr(y), (*C.int32_t)(unsafe.Pointer(&argmax[0])))
}

// MaxPoolBackward implements backend.Backend.
func (b *Backend) MaxPoolBackward(p backend.Pool2D, dy []float32, argmax []int32, dx []float32) {
	in, out := p.H*p.W*p.C, p.OutH()*p.OutW()*p.C
	need("MaxPoolBackward", "dy", dy, p.N*out)
	need("MaxPoolBackward", "dx", dx, p.N*in)
	if len(argmax) < p.N*out {
		panic(fmt.Sprintf("onednn: MaxPoolBackward: argmax has %d values, need %d", len(argmax), p.N*out))
	}
	if p.N*in <= 0 || out <= 0 {
		return
	}
	if bad := C.sg_maxpool_bwd(C.int(b.threads), C.int64_t(p.N), C.int64_t(in), C.int64_t(out),
		ptr(dy), (*C.int32_t)(unsafe.Pointer(&argmax[0])), ptr(dx)); bad != 0 {
		panic(fmt.Sprintf("onednn: MaxPoolBackward: %d argmax indices outside their image", int64(bad)))
	}
}
