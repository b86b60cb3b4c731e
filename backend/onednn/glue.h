//go:build cgo

// C side of the oneDNN backend. Everything here is owned by one Backend
// value; the Go side serialises calls that touch a context (see onednn.go).
// No function keeps a pointer it was given after it returns.

#ifndef SIMCLR_ONEDNN_GLUE_H
#define SIMCLR_ONEDNN_GLUE_H

#include <stddef.h>
#include <stdint.h>

#define SG_ERR_LEN 256

typedef struct sg_ctx sg_ctx;
typedef struct sg_conv sg_conv;
typedef struct sg_bn sg_bn;
typedef struct sg_mm sg_mm;

// Convolution shape, in the backend.Conv2D convention (dilation 1 = dense).
typedef struct sg_conv_shape {
	int64_t n, h, w, c, k, r, s;
	int64_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
} sg_conv_shape;

// Context: engine, stream, thread count and the shared growable buffers
// (scratchpad, temporary reordered weights / workspace and, with bf16, the
// bf16 copies of the products' inputs). With bf16 set, convolutions and
// sg_mm products read their f32 inputs rounded to bf16 (round to nearest
// even) and write f32.
int sg_ctx_create(sg_ctx **out, int nthr, int bf16, char *err);
void sg_ctx_destroy(sg_ctx *ctx);
// sg_ctx_sizes reports the bytes held by the shared buffers.
void sg_ctx_sizes(sg_ctx *ctx, size_t *scratch, size_t *tmp);

// Convolutions. The create call only records descriptors; each pass creates
// its primitives on first use. Pass functions return 0 or a dnnl_status_t
// and then fill err. impl receives the implementation string of the pass.
int sg_conv_create(sg_ctx *ctx, const sg_conv_shape *shape, sg_conv **out, char *err);
void sg_conv_destroy(sg_conv *cv);
int sg_conv_fwd(sg_ctx *ctx, sg_conv *cv, const float *x, const float *w,
		const float *b, float *y, char *err);
int sg_conv_bwd_data(sg_ctx *ctx, sg_conv *cv, const float *dy, const float *w,
		float *dx, char *err);
int sg_conv_bwd_weights(sg_ctx *ctx, sg_conv *cv, const float *x,
		const float *dy, float *dw, float *db, char *err);
// pass: 0 forward, 1 forward with bias, 2 backward data, 3 backward weights,
// 4 backward weights with bias. Creates the pass when needed.
int sg_conv_impl(sg_ctx *ctx, sg_conv *cv, int pass, const char **impl, char *err);

// Batch normalisation over x[m, c] (rows are the N*H*W positions).
int sg_bn_create(sg_ctx *ctx, int64_t m, int64_t c, float eps, sg_bn **out, char *err);
void sg_bn_destroy(sg_bn *bn);
int sg_bn_fwd(sg_ctx *ctx, sg_bn *bn, const float *x, const float *gamma,
		const float *beta, float *y, float *mean, float *var, int relu, char *err);
int sg_bn_bwd(sg_ctx *ctx, sg_bn *bn, const float *x, const float *y,
		const float *dy, const float *gamma, const float *mean, const float *var,
		float *dx, float *dgamma, float *dbeta, int relu, char *err);
int sg_bn_inf(sg_ctx *ctx, sg_bn *bn, const float *x, const float *gamma,
		const float *beta, const float *mean, const float *var, float *y,
		int relu, char *err);
// which: 0 forward, 1 forward+relu, 2 backward, 3 inference, 4 inference+relu.
int sg_bn_impl(sg_ctx *ctx, sg_bn *bn, int which, const char **impl, char *err);

// bf16 layer products c[m,n] = op(a) op(b), row-major, f32 in and out; only
// on a bf16 context.
int sg_mm_create(sg_ctx *ctx, int transa, int transb, int64_t m, int64_t n, int64_t k,
		sg_mm **out, char *err);
void sg_mm_destroy(sg_mm *mm);
const char *sg_mm_impl(sg_mm *mm);
int sg_mm_run(sg_ctx *ctx, sg_mm *mm, const float *a, const float *b, float *c, char *err);

// GEMM, row-major, through dnnl_sgemm.
int sg_gemm(int nthr, int transa, int transb, int64_t m, int64_t n, int64_t k,
		float alpha, const float *a, const float *b, float beta, float *c);

// Element-wise and pooling loops (OpenMP).
void sg_relu_fwd(int nthr, const float *x, float *y, int64_t n);
void sg_relu_bwd(int nthr, const float *y, const float *dy, float *dx, int64_t n);
void sg_add_relu(int nthr, const float *a, const float *b, float *y, int64_t n);
void sg_add(int nthr, const float *a, const float *b, float *y, int64_t n);
void sg_axpy(int nthr, float alpha, const float *x, float *y, int64_t n);
void sg_scale(int nthr, float alpha, const float *x, float *y, int64_t n);
void sg_gap_fwd(int nthr, int64_t n, int64_t hw, int64_t c, const float *x, float *y);
void sg_gap_bwd(int nthr, int64_t n, int64_t hw, int64_t c, const float *dy, float *dx);
void sg_maxpool_fwd(int nthr, int64_t n, int64_t h, int64_t w, int64_t c,
		int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
		int64_t oh, int64_t ow, const float *x, float *y, int32_t *argmax);
// sg_maxpool_bwd returns how many argmax entries lie outside their image
// (those are skipped).
int64_t sg_maxpool_bwd(int nthr, int64_t n, int64_t in_per_image,
		int64_t out_per_image, const float *dy, const int32_t *argmax, float *dx);

#endif
