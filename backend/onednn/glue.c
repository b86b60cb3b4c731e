//go:build cgo

#include "glue.h"

#include <dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

// ---------------------------------------------------------------------------
// Context and helpers.

struct sg_ctx {
	dnnl_engine_t eng;
	dnnl_stream_t strm;
	dnnl_primitive_attr_t attr; // scratchpad mode user
	int nthr;
	int bf16; // convolutions and layer products read bf16 copies of their inputs
	void *scratch;
	size_t scratch_cap;
	void *tmp;
	size_t tmp_cap;
	// bf16 copies of a product's two f32 inputs (activations or gradients).
	void *a16, *b16;
	size_t a16_cap, b16_cap;
};

#define ALIGN 64

static void seterr(char *err, const char *what, dnnl_status_t st) {
	static const char *names[] = {"success", "out of memory", "invalid arguments",
		"unimplemented", "iterator ends", "runtime error", "not required"};
	const char *name = (int)st >= 0 && (int)st < 7 ? names[st] : "unknown status";
	snprintf(err, SG_ERR_LEN, "%s: dnnl status %d (%s)", what, (int)st, name);
}

#define CHECK(call, what)                                                      \
	do {                                                                   \
		dnnl_status_t st_ = (call);                                    \
		if (st_ != dnnl_success) {                                     \
			seterr(err, what, st_);                                \
			return (int)st_;                                       \
		}                                                              \
	} while (0)

static int grow(void **buf, size_t *cap, size_t need, char *err) {
	if (need <= *cap) return 0;
	need = (need + ALIGN - 1) / ALIGN * ALIGN;
	void *p = aligned_alloc(ALIGN, need);
	if (!p) {
		snprintf(err, SG_ERR_LEN, "out of memory allocating %zu bytes", need);
		return (int)dnnl_out_of_memory;
	}
	free(*buf);
	*buf = p;
	*cap = need;
	return 0;
}

int sg_ctx_create(sg_ctx **out, int nthr, int bf16, char *err) {
	*out = NULL;
	omp_set_num_threads(nthr);
	sg_ctx *ctx = calloc(1, sizeof *ctx);
	if (!ctx) {
		snprintf(err, SG_ERR_LEN, "out of memory");
		return (int)dnnl_out_of_memory;
	}
	ctx->nthr = nthr;
	ctx->bf16 = bf16;
	dnnl_status_t st = dnnl_engine_create(&ctx->eng, dnnl_cpu, 0);
	if (st == dnnl_success) st = dnnl_stream_create(&ctx->strm, ctx->eng, dnnl_stream_default_flags);
	if (st == dnnl_success) st = dnnl_primitive_attr_create(&ctx->attr);
	if (st == dnnl_success) st = dnnl_primitive_attr_set_scratchpad_mode(ctx->attr, dnnl_scratchpad_mode_user);
	if (st != dnnl_success) {
		seterr(err, "creating engine and stream", st);
		sg_ctx_destroy(ctx);
		return (int)st;
	}
	*out = ctx;
	return 0;
}

void sg_ctx_destroy(sg_ctx *ctx) {
	if (!ctx) return;
	if (ctx->attr) dnnl_primitive_attr_destroy(ctx->attr);
	if (ctx->strm) dnnl_stream_destroy(ctx->strm);
	if (ctx->eng) dnnl_engine_destroy(ctx->eng);
	free(ctx->scratch);
	free(ctx->tmp);
	free(ctx->a16);
	free(ctx->b16);
	free(ctx);
}

void sg_ctx_sizes(sg_ctx *ctx, size_t *scratch, size_t *tmp) {
	*scratch = ctx->scratch_cap;
	*tmp = ctx->tmp_cap + ctx->a16_cap + ctx->b16_cap;
}

// bf16_round is backend.RoundBF16 on the bits of a float: round to nearest,
// ties to even; a NaN stays a (quiet) NaN.
static inline uint16_t bf16_round(uint32_t b) {
	uint32_t nan = (b & 0x7fffffffu) > 0x7f800000u;
	uint32_t r = (b + 0x7fffu + ((b >> 16) & 1u)) >> 16;
	uint32_t q = (b | 0x00400000u) >> 16;
	return (uint16_t)(nan ? q : r);
}

// to_bf16 writes x[0:n] rounded to bfloat16 into y. It is memory-bound; the
// clones let GCC vectorise it with AVX-512 where the CPU has it.
__attribute__((target_clones("avx512f", "avx2", "default")))
static void to_bf16(int nthr, const float *restrict x, uint16_t *restrict y, int64_t n) {
	const uint32_t *restrict xb = (const uint32_t *)x;
	#pragma omp parallel for num_threads(nthr) schedule(static) if (n >= 32768)
	for (int64_t i = 0; i < n; i++) y[i] = bf16_round(xb[i]);
}

// bf16_copy converts n floats from x into the growable buffer *buf.
static int bf16_copy(sg_ctx *ctx, void **buf, size_t *cap, const float *x, int64_t n, char *err) {
	int rc = grow(buf, cap, (size_t)n * 2, err);
	if (rc) return rc;
	to_bf16(ctx->nthr, x, (uint16_t *)*buf, n);
	return 0;
}

// A primitive with its descriptor and scratchpad memory object (NULL when it
// needs none; its handle is set to ctx->scratch at every execution).
typedef struct sg_prim {
	dnnl_primitive_desc_t pd;
	dnnl_primitive_t prim;
	dnnl_memory_t scratch;
} sg_prim;

static void prim_destroy(sg_prim *p) {
	if (p->scratch) dnnl_memory_destroy(p->scratch);
	if (p->prim) dnnl_primitive_destroy(p->prim);
	if (p->pd) dnnl_primitive_desc_destroy(p->pd);
	memset(p, 0, sizeof *p);
}

// prim_finish creates the primitive and scratchpad memory of a descriptor
// already in p->pd, growing the context's scratchpad to fit.
static int prim_finish(sg_ctx *ctx, sg_prim *p, char *err, const char *what) {
	CHECK(dnnl_primitive_create(&p->prim, p->pd), what);
	const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(p->pd, dnnl_query_scratchpad_md, 0);
	size_t sz = smd ? dnnl_memory_desc_get_size(smd) : 0;
	if (sz > 0) {
		int rc = grow(&ctx->scratch, &ctx->scratch_cap, sz, err);
		if (rc) return rc;
		CHECK(dnnl_memory_create(&p->scratch, smd, ctx->eng, DNNL_MEMORY_NONE), what);
	}
	return 0;
}

static int prim_init(sg_ctx *ctx, sg_prim *p, const_dnnl_op_desc_t desc,
		const_dnnl_primitive_desc_t hint, char *err, const char *what) {
	CHECK(dnnl_primitive_desc_create(&p->pd, desc, ctx->attr, ctx->eng, hint), what);
	return prim_finish(ctx, p, err, what);
}

// isa_of is the part of an implementation name after its last ':', such as
// "avx512_core".
static const char *isa_of(const char *impl) {
	const char *c = strrchr(impl, ':');
	return c ? c + 1 : "";
}

// prim_init_fwd_conv is prim_init for a forward convolution, choosing the
// first "jit" implementation over the "brgconv" ones that oneDNN 2.6 lists
// first for NHWC f32. On a 2-core AVX-512 machine (CIFAR ResNet-18, batch
// 256, interleaved best-of-8 runs) jit:avx512_core took 712 ms for the
// forward convolutions against 777 ms for brgconv: 35-50% faster on the
// 512-channel layers, 23% on the 3-channel stem, within 5% either way
// elsewhere. Only a jit kernel for the same ISA is preferred; reference and
// GEMM-based implementations never are.
static int prim_init_fwd_conv(sg_ctx *ctx, sg_prim *p, const_dnnl_op_desc_t desc,
		char *err, const char *what) {
	dnnl_primitive_desc_iterator_t it;
	CHECK(dnnl_primitive_desc_iterator_create(&it, desc, ctx->attr, ctx->eng, NULL), what);
	dnnl_primitive_desc_t first = NULL, pick = NULL;
	const char *first_isa = "";
	do {
		dnnl_primitive_desc_t pd = dnnl_primitive_desc_iterator_fetch(it);
		if (!pd) break;
		const char *impl = NULL;
		if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success) impl = "";
		int brg = strncmp(impl, "brg", 3) == 0;
		if (!first) {
			first = pd;
			first_isa = isa_of(impl);
			if (!brg) break; // nothing to prefer it over
			continue;
		}
		if (!brg && strncmp(impl, "jit", 3) == 0 && strcmp(isa_of(impl), first_isa) == 0) {
			pick = pd;
			break;
		}
		dnnl_primitive_desc_destroy(pd);
		if (!brg) break; // past the direct JIT kernels
	} while (dnnl_primitive_desc_iterator_next(it) == dnnl_success);
	dnnl_primitive_desc_iterator_destroy(it);
	if (!first) {
		seterr(err, what, dnnl_unimplemented);
		return (int)dnnl_unimplemented;
	}
	if (pick) {
		dnnl_primitive_desc_destroy(first);
		p->pd = pick;
	} else {
		p->pd = first;
	}
	return prim_finish(ctx, p, err, what);
}

static int reorder_init(sg_ctx *ctx, sg_prim *p, const dnnl_memory_desc_t *from,
		const dnnl_memory_desc_t *to, char *err, const char *what) {
	CHECK(dnnl_reorder_primitive_desc_create(&p->pd, from, ctx->eng, to, ctx->eng, ctx->attr), what);
	return prim_finish(ctx, p, err, what);
}

static const char *impl_of(const sg_prim *p) {
	const char *s = NULL;
	if (!p->pd || dnnl_primitive_desc_query(p->pd, dnnl_query_impl_info_str, 0, &s) != dnnl_success) return "?";
	return s;
}

#define MAX_ARGS 12

typedef struct args {
	int n;
	dnnl_exec_arg_t a[MAX_ARGS];
} args;

static void arg(args *as, int which, dnnl_memory_t m) {
	as->a[as->n].arg = which;
	as->a[as->n].memory = m;
	as->n++;
}

static int run(sg_ctx *ctx, sg_prim *p, args *as, char *err, const char *what) {
	if (p->scratch) {
		CHECK(dnnl_memory_set_data_handle(p->scratch, ctx->scratch), what);
		arg(as, DNNL_ARG_SCRATCHPAD, p->scratch);
	}
	CHECK(dnnl_primitive_execute(p->prim, ctx->strm, as->n, as->a), what);
	CHECK(dnnl_stream_wait(ctx->strm), what);
	return 0;
}

// set points a memory object at caller memory; unset forgets it again, so no
// caller pointer outlives the call.
static void set(dnnl_memory_t m, const void *p) { dnnl_memory_set_data_handle(m, (void *)p); }
static void unset(dnnl_memory_t m) { dnnl_memory_set_data_handle(m, DNNL_MEMORY_NONE); }

// ---------------------------------------------------------------------------
// Convolution.

enum { P_FWD, P_FWD_B, P_BWD_D, P_BWD_W, P_BWD_W_B, P_N };

typedef struct sg_pass {
	int ready;
	sg_prim conv;
	int reorder;          // weights need a reorder between user and conv format
	sg_prim ro;           // user->conv (forward, backward data) or conv->user (backward weights)
	dnnl_memory_t wconv;  // weights in the conv format, handle ctx->tmp
} sg_pass;

struct sg_conv {
	sg_conv_shape sh;
	int bf16;
	dnnl_memory_desc_t src_md, dst_md, wuser_md, wany_md, bias_md;
	// The inputs of the products: the f32 descriptors, or with bf16 their
	// bf16 counterparts (src, diff_dst, weights in any layout).
	dnnl_memory_desc_t in_src_md, in_dst_md, in_wany_md;
	dnnl_dims_t strides, dil, pad_l, pad_r;
	// Memory objects over caller buffers (plain layouts), handles set per call.
	dnnl_memory_t m_src, m_dst, m_wuser, m_bias;
	// With bf16: memory objects over the bf16 copies in ctx->a16 (x) and
	// ctx->b16 (dy).
	dnnl_memory_t m_src16, m_dst16;
	sg_pass pass[P_N];
};

int sg_conv_create(sg_ctx *ctx, const sg_conv_shape *s, sg_conv **out, char *err) {
	*out = NULL;
	sg_conv *cv = calloc(1, sizeof *cv);
	if (!cv) {
		snprintf(err, SG_ERR_LEN, "out of memory");
		return (int)dnnl_out_of_memory;
	}
	*out = cv; // the caller destroys it on error
	cv->sh = *s;
	cv->bf16 = ctx->bf16;
	int64_t oh = (s->h + 2 * s->pad_h - s->dil_h * (s->r - 1) - 1) / s->stride_h + 1;
	int64_t ow = (s->w + 2 * s->pad_w - s->dil_w * (s->s - 1) - 1) / s->stride_w + 1;
	dnnl_dims_t src = {s->n, s->c, s->h, s->w};
	dnnl_dims_t dst = {s->n, s->k, oh, ow};
	dnnl_dims_t bias = {s->k};
	CHECK(dnnl_memory_desc_init_by_tag(&cv->src_md, 4, src, dnnl_f32, dnnl_nhwc), "conv src desc");
	CHECK(dnnl_memory_desc_init_by_tag(&cv->dst_md, 4, dst, dnnl_f32, dnnl_nhwc), "conv dst desc");
	CHECK(dnnl_memory_desc_init_by_tag(&cv->bias_md, 1, bias, dnnl_f32, dnnl_a), "conv bias desc");
	dnnl_data_type_t in = cv->bf16 ? dnnl_bf16 : dnnl_f32;
	CHECK(dnnl_memory_desc_init_by_tag(&cv->in_src_md, 4, src, in, dnnl_nhwc), "conv src desc");
	CHECK(dnnl_memory_desc_init_by_tag(&cv->in_dst_md, 4, dst, in, dnnl_nhwc), "conv dst desc");
	if (s->groups == 1) {
		dnnl_dims_t wd = {s->k, s->c, s->r, s->s};
		CHECK(dnnl_memory_desc_init_by_tag(&cv->wuser_md, 4, wd, dnnl_f32, dnnl_oihw), "conv weights desc");
		CHECK(dnnl_memory_desc_init_by_tag(&cv->wany_md, 4, wd, dnnl_f32, dnnl_format_tag_any), "conv weights desc");
		CHECK(dnnl_memory_desc_init_by_tag(&cv->in_wany_md, 4, wd, in, dnnl_format_tag_any), "conv weights desc");
	} else {
		dnnl_dims_t wd = {s->groups, s->k / s->groups, s->c / s->groups, s->r, s->s};
		CHECK(dnnl_memory_desc_init_by_tag(&cv->wuser_md, 5, wd, dnnl_f32, dnnl_goihw), "conv weights desc");
		CHECK(dnnl_memory_desc_init_by_tag(&cv->wany_md, 5, wd, dnnl_f32, dnnl_format_tag_any), "conv weights desc");
		CHECK(dnnl_memory_desc_init_by_tag(&cv->in_wany_md, 5, wd, in, dnnl_format_tag_any), "conv weights desc");
	}
	cv->strides[0] = s->stride_h;
	cv->strides[1] = s->stride_w;
	cv->dil[0] = s->dil_h - 1;
	cv->dil[1] = s->dil_w - 1;
	cv->pad_l[0] = s->pad_h;
	cv->pad_l[1] = s->pad_w;
	// Right padding that makes the output size exact (as PyTorch's ideep
	// does); it is below pad_h when the last input rows are never read.
	cv->pad_r[0] = (oh - 1) * s->stride_h + s->dil_h * (s->r - 1) + 1 - s->h - s->pad_h;
	cv->pad_r[1] = (ow - 1) * s->stride_w + s->dil_w * (s->s - 1) + 1 - s->w - s->pad_w;
	CHECK(dnnl_memory_create(&cv->m_src, &cv->src_md, ctx->eng, DNNL_MEMORY_NONE), "conv memory");
	CHECK(dnnl_memory_create(&cv->m_dst, &cv->dst_md, ctx->eng, DNNL_MEMORY_NONE), "conv memory");
	CHECK(dnnl_memory_create(&cv->m_wuser, &cv->wuser_md, ctx->eng, DNNL_MEMORY_NONE), "conv memory");
	CHECK(dnnl_memory_create(&cv->m_bias, &cv->bias_md, ctx->eng, DNNL_MEMORY_NONE), "conv memory");
	if (cv->bf16) {
		CHECK(dnnl_memory_create(&cv->m_src16, &cv->in_src_md, ctx->eng, DNNL_MEMORY_NONE), "conv memory");
		CHECK(dnnl_memory_create(&cv->m_dst16, &cv->in_dst_md, ctx->eng, DNNL_MEMORY_NONE), "conv memory");
	}
	return 0;
}

void sg_conv_destroy(sg_conv *cv) {
	if (!cv) return;
	for (int i = 0; i < P_N; i++) {
		prim_destroy(&cv->pass[i].conv);
		prim_destroy(&cv->pass[i].ro);
		if (cv->pass[i].wconv) dnnl_memory_destroy(cv->pass[i].wconv);
	}
	if (cv->m_src) dnnl_memory_destroy(cv->m_src);
	if (cv->m_dst) dnnl_memory_destroy(cv->m_dst);
	if (cv->m_wuser) dnnl_memory_destroy(cv->m_wuser);
	if (cv->m_bias) dnnl_memory_destroy(cv->m_bias);
	if (cv->m_src16) dnnl_memory_destroy(cv->m_src16);
	if (cv->m_dst16) dnnl_memory_destroy(cv->m_dst16);
	free(cv);
}

static const char *pass_name[P_N] = {
	"convolution forward", "convolution forward with bias", "convolution backward data",
	"convolution backward weights", "convolution backward weights with bias"};

static int pass_create(sg_ctx *ctx, sg_conv *cv, int pi, char *err);

// pass_prepare creates pass pi of cv unless it exists; on failure it leaves
// the pass empty, so that nothing leaks and a retry starts afresh.
static int pass_prepare(sg_ctx *ctx, sg_conv *cv, int pi, char *err) {
	sg_pass *p = &cv->pass[pi];
	if (p->ready) return 0;
	int rc = pass_create(ctx, cv, pi, err);
	if (rc) {
		prim_destroy(&p->conv);
		prim_destroy(&p->ro);
		if (p->wconv) dnnl_memory_destroy(p->wconv);
		memset(p, 0, sizeof *p);
	}
	return rc;
}

static int pass_create(sg_ctx *ctx, sg_conv *cv, int pi, char *err) {
	sg_pass *p = &cv->pass[pi];
	const char *what = pass_name[pi];
	const_dnnl_primitive_desc_t hint = NULL;
	if (pi >= P_BWD_D) {
		int rc = pass_prepare(ctx, cv, P_FWD, err);
		if (rc) return rc;
		hint = cv->pass[P_FWD].conv.pd;
	}
	dnnl_convolution_desc_t d;
	int bias = pi == P_FWD_B || pi == P_BWD_W_B;
	switch (pi) {
	case P_FWD:
	case P_FWD_B:
		CHECK(dnnl_dilated_convolution_forward_desc_init(&d, dnnl_forward_training,
				dnnl_convolution_direct, &cv->in_src_md, &cv->in_wany_md,
				bias ? &cv->bias_md : NULL, &cv->dst_md, cv->strides, cv->dil,
				cv->pad_l, cv->pad_r), what);
		break;
	case P_BWD_D:
		CHECK(dnnl_dilated_convolution_backward_data_desc_init(&d, dnnl_convolution_direct,
				&cv->src_md, &cv->in_wany_md, &cv->in_dst_md, cv->strides, cv->dil,
				cv->pad_l, cv->pad_r), what);
		break;
	default:
		CHECK(dnnl_dilated_convolution_backward_weights_desc_init(&d, dnnl_convolution_direct,
				&cv->in_src_md, &cv->wany_md, bias ? &cv->bias_md : NULL, &cv->in_dst_md,
				cv->strides, cv->dil, cv->pad_l, cv->pad_r), what);
		break;
	}
	// The preference for jit over brgconv was measured in f32; in bf16
	// oneDNN's own order (brgconv first) was as fast or faster.
	int rc;
	if (pi <= P_FWD_B && !cv->bf16) rc = prim_init_fwd_conv(ctx, &p->conv, &d, err, what);
	else rc = prim_init(ctx, &p->conv, &d, hint, err, what);
	if (rc) return rc;
	const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(p->conv.pd,
			pi >= P_BWD_W ? dnnl_query_diff_weights_md : dnnl_query_weights_md, 0);
	p->reorder = !dnnl_memory_desc_equal(wmd, &cv->wuser_md);
	if (p->reorder) {
		rc = grow(&ctx->tmp, &ctx->tmp_cap, dnnl_memory_desc_get_size(wmd), err);
		if (rc) return rc;
		CHECK(dnnl_memory_create(&p->wconv, wmd, ctx->eng, DNNL_MEMORY_NONE), what);
		if (pi >= P_BWD_W) rc = reorder_init(ctx, &p->ro, wmd, &cv->wuser_md, err, "weights reorder");
		else rc = reorder_init(ctx, &p->ro, &cv->wuser_md, wmd, err, "weights reorder");
		if (rc) return rc;
	}
	p->ready = 1;
	return 0;
}

int sg_conv_impl(sg_ctx *ctx, sg_conv *cv, int pass, const char **impl, char *err) {
	omp_set_num_threads(ctx->nthr);
	int rc = pass_prepare(ctx, cv, pass, err);
	if (rc) return rc;
	*impl = impl_of(&cv->pass[pass].conv);
	return 0;
}

// weights_in makes the user weights available in the pass's format and
// returns the memory object holding them.
static int weights_in(sg_ctx *ctx, sg_pass *p, sg_conv *cv, dnnl_memory_t *w, char *err) {
	*w = cv->m_wuser;
	if (!p->reorder) return 0;
	CHECK(dnnl_memory_set_data_handle(p->wconv, ctx->tmp), "weights reorder");
	args as = {0};
	arg(&as, DNNL_ARG_FROM, cv->m_wuser);
	arg(&as, DNNL_ARG_TO, p->wconv);
	int rc = run(ctx, &p->ro, &as, err, "weights reorder");
	*w = p->wconv;
	return rc;
}

// input points *m at a product's input: the caller's f32 buffer p (through
// the f32 memory object f32m), or with bf16 its copy rounded into *buf
// (through m16). n is its length.
static int input(sg_ctx *ctx, sg_conv *cv, const float *p, int64_t n, dnnl_memory_t f32m,
		dnnl_memory_t m16, void **buf, size_t *cap, dnnl_memory_t *m, char *err) {
	if (!cv->bf16) {
		set(f32m, p);
		*m = f32m;
		return 0;
	}
	int rc = bf16_copy(ctx, buf, cap, p, n, err);
	if (rc) return rc;
	set(m16, *buf);
	*m = m16;
	return 0;
}

static int64_t src_len(const sg_conv *cv) { return cv->sh.n * cv->sh.h * cv->sh.w * cv->sh.c; }

static int64_t dst_len(const sg_conv *cv) {
	const sg_conv_shape *s = &cv->sh;
	int64_t oh = (s->h + 2 * s->pad_h - s->dil_h * (s->r - 1) - 1) / s->stride_h + 1;
	int64_t ow = (s->w + 2 * s->pad_w - s->dil_w * (s->s - 1) - 1) / s->stride_w + 1;
	return s->n * oh * ow * s->k;
}

// src_in is input for x (the bf16 copy goes to ctx->a16), dst_in for dy
// (ctx->b16).
static int src_in(sg_ctx *ctx, sg_conv *cv, const float *x, dnnl_memory_t *m, char *err) {
	return input(ctx, cv, x, src_len(cv), cv->m_src, cv->m_src16, &ctx->a16, &ctx->a16_cap, m, err);
}

static int dst_in(sg_ctx *ctx, sg_conv *cv, const float *dy, dnnl_memory_t *m, char *err) {
	return input(ctx, cv, dy, dst_len(cv), cv->m_dst, cv->m_dst16, &ctx->b16, &ctx->b16_cap, m, err);
}

int sg_conv_fwd(sg_ctx *ctx, sg_conv *cv, const float *x, const float *w,
		const float *b, float *y, char *err) {
	omp_set_num_threads(ctx->nthr);
	int pi = b ? P_FWD_B : P_FWD;
	int rc = pass_prepare(ctx, cv, pi, err);
	if (rc) return rc;
	sg_pass *p = &cv->pass[pi];
	dnnl_memory_t xm, wm;
	set(cv->m_wuser, w);
	set(cv->m_dst, y);
	if (b) set(cv->m_bias, b);
	rc = src_in(ctx, cv, x, &xm, err);
	if (!rc) rc = weights_in(ctx, p, cv, &wm, err);
	if (!rc) {
		args as = {0};
		arg(&as, DNNL_ARG_SRC, xm);
		arg(&as, DNNL_ARG_WEIGHTS, wm);
		if (b) arg(&as, DNNL_ARG_BIAS, cv->m_bias);
		arg(&as, DNNL_ARG_DST, cv->m_dst);
		rc = run(ctx, &p->conv, &as, err, pass_name[pi]);
	}
	unset(cv->m_src);
	unset(cv->m_wuser);
	unset(cv->m_dst);
	unset(cv->m_bias);
	return rc;
}

int sg_conv_bwd_data(sg_ctx *ctx, sg_conv *cv, const float *dy, const float *w,
		float *dx, char *err) {
	omp_set_num_threads(ctx->nthr);
	int rc = pass_prepare(ctx, cv, P_BWD_D, err);
	if (rc) return rc;
	sg_pass *p = &cv->pass[P_BWD_D];
	dnnl_memory_t dym, wm;
	set(cv->m_wuser, w);
	set(cv->m_src, dx);
	rc = dst_in(ctx, cv, dy, &dym, err);
	if (!rc) rc = weights_in(ctx, p, cv, &wm, err);
	if (!rc) {
		args as = {0};
		arg(&as, DNNL_ARG_DIFF_DST, dym);
		arg(&as, DNNL_ARG_WEIGHTS, wm);
		arg(&as, DNNL_ARG_DIFF_SRC, cv->m_src);
		rc = run(ctx, &p->conv, &as, err, pass_name[P_BWD_D]);
	}
	unset(cv->m_src);
	unset(cv->m_wuser);
	unset(cv->m_dst);
	return rc;
}

int sg_conv_bwd_weights(sg_ctx *ctx, sg_conv *cv, const float *x,
		const float *dy, float *dw, float *db, char *err) {
	omp_set_num_threads(ctx->nthr);
	int pi = db ? P_BWD_W_B : P_BWD_W;
	int rc = pass_prepare(ctx, cv, pi, err);
	if (rc) return rc;
	sg_pass *p = &cv->pass[pi];
	set(cv->m_wuser, dw);
	if (db) set(cv->m_bias, db);
	dnnl_memory_t xm, dym, wm = cv->m_wuser;
	if (p->reorder) {
		wm = p->wconv;
		dnnl_memory_set_data_handle(wm, ctx->tmp);
	}
	rc = src_in(ctx, cv, x, &xm, err);
	if (!rc) rc = dst_in(ctx, cv, dy, &dym, err);
	if (!rc) {
		args as = {0};
		arg(&as, DNNL_ARG_SRC, xm);
		arg(&as, DNNL_ARG_DIFF_DST, dym);
		arg(&as, DNNL_ARG_DIFF_WEIGHTS, wm);
		if (db) arg(&as, DNNL_ARG_DIFF_BIAS, cv->m_bias);
		rc = run(ctx, &p->conv, &as, err, pass_name[pi]);
	}
	if (!rc && p->reorder) {
		args ras = {0};
		arg(&ras, DNNL_ARG_FROM, wm);
		arg(&ras, DNNL_ARG_TO, cv->m_wuser);
		rc = run(ctx, &p->ro, &ras, err, "diff weights reorder");
	}
	unset(cv->m_src);
	unset(cv->m_wuser);
	unset(cv->m_dst);
	unset(cv->m_bias);
	return rc;
}

// ---------------------------------------------------------------------------
// Batch normalisation.

enum { B_FWD, B_FWD_RELU, B_BWD, B_INF, B_INF_RELU, B_N };

struct sg_bn {
	int64_t m, c;
	float eps;
	dnnl_memory_desc_t data_md, stat_md;
	int ready[B_N];
	sg_prim p[B_N];
	dnnl_memory_t ws; // forward+relu workspace, handle ctx->tmp
	// Memory objects over caller buffers, handles set per call.
	dnnl_memory_t m_x, m_y, m_dx, m_dy, m_mean, m_var, m_scale, m_shift, m_dscale, m_dshift;
};

int sg_bn_create(sg_ctx *ctx, int64_t m, int64_t c, float eps, sg_bn **out, char *err) {
	*out = NULL;
	sg_bn *bn = calloc(1, sizeof *bn);
	if (!bn) {
		snprintf(err, SG_ERR_LEN, "out of memory");
		return (int)dnnl_out_of_memory;
	}
	*out = bn;
	bn->m = m;
	bn->c = c;
	bn->eps = eps;
	// The statistics run over all m rows: describe x as an nhwc tensor of m
	// images of 1x1 pixels (the same bytes as any other factoring of m).
	dnnl_dims_t dd = {m, c, 1, 1};
	dnnl_dims_t sd = {c};
	CHECK(dnnl_memory_desc_init_by_tag(&bn->data_md, 4, dd, dnnl_f32, dnnl_nhwc), "batch norm desc");
	CHECK(dnnl_memory_desc_init_by_tag(&bn->stat_md, 1, sd, dnnl_f32, dnnl_a), "batch norm desc");
	dnnl_memory_t *data[] = {&bn->m_x, &bn->m_y, &bn->m_dx, &bn->m_dy};
	for (int i = 0; i < 4; i++)
		CHECK(dnnl_memory_create(data[i], &bn->data_md, ctx->eng, DNNL_MEMORY_NONE), "batch norm memory");
	dnnl_memory_t *stat[] = {&bn->m_mean, &bn->m_var, &bn->m_scale, &bn->m_shift, &bn->m_dscale, &bn->m_dshift};
	for (int i = 0; i < 6; i++)
		CHECK(dnnl_memory_create(stat[i], &bn->stat_md, ctx->eng, DNNL_MEMORY_NONE), "batch norm memory");
	return 0;
}

void sg_bn_destroy(sg_bn *bn) {
	if (!bn) return;
	for (int i = 0; i < B_N; i++) prim_destroy(&bn->p[i]);
	dnnl_memory_t ms[] = {bn->ws, bn->m_x, bn->m_y, bn->m_dx, bn->m_dy, bn->m_mean, bn->m_var,
		bn->m_scale, bn->m_shift, bn->m_dscale, bn->m_dshift};
	for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
		if (ms[i]) dnnl_memory_destroy(ms[i]);
	free(bn);
}

static const char *bn_name[B_N] = {"batch norm forward", "batch norm forward with relu",
	"batch norm backward", "batch norm inference", "batch norm inference with relu"};

static int bn_create(sg_ctx *ctx, sg_bn *bn, int which, char *err);

// bn_prepare creates primitive which of bn unless it exists; on failure it
// leaves it empty.
static int bn_prepare(sg_ctx *ctx, sg_bn *bn, int which, char *err) {
	if (bn->ready[which]) return 0;
	int rc = bn_create(ctx, bn, which, err);
	if (rc) {
		prim_destroy(&bn->p[which]);
		if (which == B_FWD_RELU && bn->ws) {
			dnnl_memory_destroy(bn->ws);
			bn->ws = NULL;
		}
	}
	return rc;
}

static int bn_create(sg_ctx *ctx, sg_bn *bn, int which, char *err) {
	const char *what = bn_name[which];
	unsigned flags = dnnl_use_scale | dnnl_use_shift;
	const_dnnl_primitive_desc_t hint = NULL;
	dnnl_batch_normalization_desc_t d;
	switch (which) {
	case B_FWD:
	case B_FWD_RELU:
		if (which == B_FWD_RELU) flags |= dnnl_fuse_norm_relu;
		CHECK(dnnl_batch_normalization_forward_desc_init(&d, dnnl_forward_training,
				&bn->data_md, bn->eps, flags), what);
		break;
	case B_BWD: {
		int rc = bn_prepare(ctx, bn, B_FWD, err);
		if (rc) return rc;
		hint = bn->p[B_FWD].pd;
		CHECK(dnnl_batch_normalization_backward_desc_init(&d, dnnl_backward,
				&bn->data_md, &bn->data_md, bn->eps, flags), what);
		break;
	}
	default:
		flags |= dnnl_use_global_stats;
		if (which == B_INF_RELU) flags |= dnnl_fuse_norm_relu;
		CHECK(dnnl_batch_normalization_forward_desc_init(&d, dnnl_forward_inference,
				&bn->data_md, bn->eps, flags), what);
		break;
	}
	int rc = prim_init(ctx, &bn->p[which], &d, hint, err, what);
	if (rc) return rc;
	if (which == B_FWD_RELU) {
		const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(bn->p[which].pd, dnnl_query_workspace_md, 0);
		size_t sz = wmd ? dnnl_memory_desc_get_size(wmd) : 0;
		if (sz > 0) {
			rc = grow(&ctx->tmp, &ctx->tmp_cap, sz, err);
			if (rc) return rc;
			CHECK(dnnl_memory_create(&bn->ws, wmd, ctx->eng, DNNL_MEMORY_NONE), what);
		}
	}
	bn->ready[which] = 1;
	return 0;
}

int sg_bn_impl(sg_ctx *ctx, sg_bn *bn, int which, const char **impl, char *err) {
	omp_set_num_threads(ctx->nthr);
	int rc = bn_prepare(ctx, bn, which, err);
	if (rc) return rc;
	*impl = impl_of(&bn->p[which]);
	return 0;
}

static void bn_unset(sg_bn *bn) {
	dnnl_memory_t ms[] = {bn->m_x, bn->m_y, bn->m_dx, bn->m_dy, bn->m_mean, bn->m_var,
		bn->m_scale, bn->m_shift, bn->m_dscale, bn->m_dshift};
	for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) unset(ms[i]);
}

int sg_bn_fwd(sg_ctx *ctx, sg_bn *bn, const float *x, const float *gamma,
		const float *beta, float *y, float *mean, float *var, int relu, char *err) {
	omp_set_num_threads(ctx->nthr);
	int which = relu ? B_FWD_RELU : B_FWD;
	int rc = bn_prepare(ctx, bn, which, err);
	if (rc) return rc;
	set(bn->m_x, x);
	set(bn->m_y, y);
	set(bn->m_scale, gamma);
	set(bn->m_shift, beta);
	set(bn->m_mean, mean);
	set(bn->m_var, var);
	args as = {0};
	arg(&as, DNNL_ARG_SRC, bn->m_x);
	arg(&as, DNNL_ARG_DST, bn->m_y);
	arg(&as, DNNL_ARG_SCALE, bn->m_scale);
	arg(&as, DNNL_ARG_SHIFT, bn->m_shift);
	arg(&as, DNNL_ARG_MEAN, bn->m_mean);
	arg(&as, DNNL_ARG_VARIANCE, bn->m_var);
	if (relu && bn->ws) {
		dnnl_memory_set_data_handle(bn->ws, ctx->tmp);
		arg(&as, DNNL_ARG_WORKSPACE, bn->ws);
	}
	rc = run(ctx, &bn->p[which], &as, err, bn_name[which]);
	bn_unset(bn);
	return rc;
}

static void mask_relu(int nthr, const float *y, const float *dy, float *dx, int64_t n);

int sg_bn_bwd(sg_ctx *ctx, sg_bn *bn, const float *x, const float *y,
		const float *dy, const float *gamma, const float *mean, const float *var,
		float *dx, float *dgamma, float *dbeta, int relu, char *err) {
	omp_set_num_threads(ctx->nthr);
	int rc = bn_prepare(ctx, bn, B_BWD, err);
	if (rc) return rc;
	if (relu) {
		// The gradient through the fused ReLU: dy where y > 0. Written to dx,
		// which the (in-place capable) backward then reads as diff_dst.
		mask_relu(ctx->nthr, y, dy, dx, bn->m * bn->c);
		dy = dx;
	}
	set(bn->m_x, x);
	set(bn->m_dy, dy);
	set(bn->m_dx, dx);
	set(bn->m_scale, gamma);
	set(bn->m_mean, mean);
	set(bn->m_var, var);
	set(bn->m_dscale, dgamma);
	set(bn->m_dshift, dbeta);
	args as = {0};
	arg(&as, DNNL_ARG_SRC, bn->m_x);
	arg(&as, DNNL_ARG_DIFF_DST, bn->m_dy);
	arg(&as, DNNL_ARG_SCALE, bn->m_scale);
	// oneDNN 2.6 lists the shift as an input of the backward pass although
	// the gradient does not depend on it; any readable [c] buffer will do.
	set(bn->m_shift, mean);
	arg(&as, DNNL_ARG_SHIFT, bn->m_shift);
	arg(&as, DNNL_ARG_MEAN, bn->m_mean);
	arg(&as, DNNL_ARG_VARIANCE, bn->m_var);
	arg(&as, DNNL_ARG_DIFF_SRC, bn->m_dx);
	arg(&as, DNNL_ARG_DIFF_SCALE, bn->m_dscale);
	arg(&as, DNNL_ARG_DIFF_SHIFT, bn->m_dshift);
	rc = run(ctx, &bn->p[B_BWD], &as, err, bn_name[B_BWD]);
	bn_unset(bn);
	return rc;
}

int sg_bn_inf(sg_ctx *ctx, sg_bn *bn, const float *x, const float *gamma,
		const float *beta, const float *mean, const float *var, float *y,
		int relu, char *err) {
	omp_set_num_threads(ctx->nthr);
	int which = relu ? B_INF_RELU : B_INF;
	int rc = bn_prepare(ctx, bn, which, err);
	if (rc) return rc;
	set(bn->m_x, x);
	set(bn->m_y, y);
	set(bn->m_scale, gamma);
	set(bn->m_shift, beta);
	set(bn->m_mean, mean);
	set(bn->m_var, var);
	args as = {0};
	arg(&as, DNNL_ARG_SRC, bn->m_x);
	arg(&as, DNNL_ARG_DST, bn->m_y);
	arg(&as, DNNL_ARG_SCALE, bn->m_scale);
	arg(&as, DNNL_ARG_SHIFT, bn->m_shift);
	arg(&as, DNNL_ARG_MEAN, bn->m_mean);
	arg(&as, DNNL_ARG_VARIANCE, bn->m_var);
	rc = run(ctx, &bn->p[which], &as, err, bn_name[which]);
	bn_unset(bn);
	return rc;
}

// ---------------------------------------------------------------------------
// GEMM.

// A bf16 layer product c[m,n] = op(a) op(b): a matmul primitive on bf16
// copies of a and b (in ctx->a16, ctx->b16; a transposed operand is described
// by its strides) with an f32 result.
struct sg_mm {
	int64_t m, n, k;
	sg_prim p;
	dnnl_memory_t m_a, m_b, m_c;
};

int sg_mm_create(sg_ctx *ctx, int transa, int transb, int64_t m, int64_t n, int64_t k,
		sg_mm **out, char *err) {
	*out = NULL;
	sg_mm *mm = calloc(1, sizeof *mm);
	if (!mm) {
		snprintf(err, SG_ERR_LEN, "out of memory");
		return (int)dnnl_out_of_memory;
	}
	*out = mm;
	mm->m = m;
	mm->n = n;
	mm->k = k;
	const char *what = "bf16 matmul";
	dnnl_memory_desc_t a_md, b_md, c_md;
	dnnl_dims_t ad = {m, k}, bd = {k, n}, cd = {m, n};
	dnnl_dims_t as = {transa ? 1 : k, transa ? m : 1};
	dnnl_dims_t bs = {transb ? 1 : n, transb ? k : 1};
	CHECK(dnnl_memory_desc_init_by_strides(&a_md, 2, ad, dnnl_bf16, as), what);
	CHECK(dnnl_memory_desc_init_by_strides(&b_md, 2, bd, dnnl_bf16, bs), what);
	CHECK(dnnl_memory_desc_init_by_tag(&c_md, 2, cd, dnnl_f32, dnnl_ab), what);
	dnnl_matmul_desc_t d;
	CHECK(dnnl_matmul_desc_init(&d, &a_md, &b_md, NULL, &c_md), what);
	int rc = prim_init(ctx, &mm->p, &d, NULL, err, what);
	if (rc) return rc;
	CHECK(dnnl_memory_create(&mm->m_a, &a_md, ctx->eng, DNNL_MEMORY_NONE), what);
	CHECK(dnnl_memory_create(&mm->m_b, &b_md, ctx->eng, DNNL_MEMORY_NONE), what);
	CHECK(dnnl_memory_create(&mm->m_c, &c_md, ctx->eng, DNNL_MEMORY_NONE), what);
	return 0;
}

void sg_mm_destroy(sg_mm *mm) {
	if (!mm) return;
	prim_destroy(&mm->p);
	if (mm->m_a) dnnl_memory_destroy(mm->m_a);
	if (mm->m_b) dnnl_memory_destroy(mm->m_b);
	if (mm->m_c) dnnl_memory_destroy(mm->m_c);
	free(mm);
}

const char *sg_mm_impl(sg_mm *mm) { return impl_of(&mm->p); }

int sg_mm_run(sg_ctx *ctx, sg_mm *mm, const float *a, const float *b, float *c, char *err) {
	omp_set_num_threads(ctx->nthr);
	int rc = bf16_copy(ctx, &ctx->a16, &ctx->a16_cap, a, mm->m * mm->k, err);
	if (!rc) rc = bf16_copy(ctx, &ctx->b16, &ctx->b16_cap, b, mm->k * mm->n, err);
	if (rc) return rc;
	set(mm->m_a, ctx->a16);
	set(mm->m_b, ctx->b16);
	set(mm->m_c, c);
	args as = {0};
	arg(&as, DNNL_ARG_SRC, mm->m_a);
	arg(&as, DNNL_ARG_WEIGHTS, mm->m_b);
	arg(&as, DNNL_ARG_DST, mm->m_c);
	rc = run(ctx, &mm->p, &as, err, "bf16 matmul");
	unset(mm->m_c);
	return rc;
}

int sg_gemm(int nthr, int transa, int transb, int64_t m, int64_t n, int64_t k,
		float alpha, const float *a, const float *b, float beta, float *c) {
	omp_set_num_threads(nthr);
	return (int)dnnl_sgemm(transa ? 'T' : 'N', transb ? 'T' : 'N', m, n, k, alpha,
			a, transa ? m : k, b, transb ? k : n, beta, c, n);
}

// ---------------------------------------------------------------------------
// Element-wise loops. Below PAR elements a parallel region costs more than it
// saves.

#define PAR 32768

static void mask_relu(int nthr, const float *restrict y, const float *restrict dy,
		float *restrict dx, int64_t n) {
	#pragma omp parallel for num_threads(nthr) schedule(static) if (n >= PAR)
	for (int64_t i = 0; i < n; i++) {
		float d = dy[i]; // loaded unconditionally, so the loop vectorises
		dx[i] = y[i] > 0 ? d : 0.0f;
	}
}

void sg_relu_fwd(int nthr, const float *x, float *y, int64_t n) {
	#pragma omp parallel for num_threads(nthr) schedule(static) if (n >= PAR)
	for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0.0f;
}

void sg_relu_bwd(int nthr, const float *y, const float *dy, float *dx, int64_t n) {
	mask_relu(nthr, y, dy, dx, n);
}

void sg_add_relu(int nthr, const float *a, const float *b, float *y, int64_t n) {
	#pragma omp parallel for num_threads(nthr) schedule(static) if (n >= PAR)
	for (int64_t i = 0; i < n; i++) {
		float v = a[i] + b[i];
		y[i] = v > 0 ? v : 0.0f;
	}
}

void sg_axpy(int nthr, float alpha, const float *x, float *y, int64_t n) {
	#pragma omp parallel for num_threads(nthr) schedule(static) if (n >= PAR)
	for (int64_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

void sg_scale(int nthr, float alpha, const float *x, float *y, int64_t n) {
	#pragma omp parallel for num_threads(nthr) schedule(static) if (n >= PAR)
	for (int64_t i = 0; i < n; i++) y[i] = alpha * x[i];
}

void sg_add(int nthr, const float *a, const float *b, float *y, int64_t n) {
	#pragma omp parallel for num_threads(nthr) schedule(static) if (n >= PAR)
	for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void sg_gap_fwd(int nthr, int64_t n, int64_t hw, int64_t c, const float *x, float *y) {
	float inv = 1.0f / (float)hw;
	#pragma omp parallel for num_threads(nthr) schedule(static) if (n * hw * c >= PAR)
	for (int64_t i = 0; i < n; i++) {
		float *yi = y + i * c;
		const float *xi = x + i * hw * c;
		for (int64_t j = 0; j < c; j++) yi[j] = 0;
		for (int64_t p = 0; p < hw; p++)
			for (int64_t j = 0; j < c; j++) yi[j] += xi[p * c + j];
		for (int64_t j = 0; j < c; j++) yi[j] *= inv;
	}
}

void sg_gap_bwd(int nthr, int64_t n, int64_t hw, int64_t c, const float *dy, float *dx) {
	float inv = 1.0f / (float)hw;
	#pragma omp parallel for num_threads(nthr) schedule(static) if (n * hw * c >= PAR)
	for (int64_t i = 0; i < n; i++) {
		const float *dyi = dy + i * c;
		float *dxi = dx + i * hw * c;
		for (int64_t p = 0; p < hw; p++)
			for (int64_t j = 0; j < c; j++) dxi[p * c + j] = dyi[j] * inv;
	}
}

void sg_maxpool_fwd(int nthr, int64_t n, int64_t h, int64_t w, int64_t c,
		int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
		int64_t oh, int64_t ow, const float *restrict x, float *restrict y,
		int32_t *restrict argmax) {
	#pragma omp parallel for num_threads(nthr) schedule(static) collapse(2) if (n * oh * ow * c >= PAR)
	for (int64_t i = 0; i < n; i++) {
		for (int64_t oy = 0; oy < oh; oy++) {
			for (int64_t ox = 0; ox < ow; ox++) {
				float *restrict yo = y + ((i * oh + oy) * ow + ox) * c;
				int32_t *restrict ao = argmax + ((i * oh + oy) * ow + ox) * c;
				// The first element of the window (in row-major window
				// order) initialises the maximum; later ones replace it only
				// when strictly greater, so ties keep the first and a NaN is
				// taken only as the first element, as in purego. A window
				// wholly in the padding gives -inf and index -1.
				int first = 1;
				for (int64_t dy = 0; dy < kh; dy++) {
					int64_t iy = oy * sh - ph + dy;
					if (iy < 0 || iy >= h) continue;
					for (int64_t dx = 0; dx < kw; dx++) {
						int64_t ix = ox * sw - pw + dx;
						if (ix < 0 || ix >= w) continue;
						int32_t base = (int32_t)(((i * h + iy) * w + ix) * c);
						const float *restrict xi = x + base;
						if (first) {
							for (int32_t j = 0; j < (int32_t)c; j++) {
								yo[j] = xi[j];
								ao[j] = base + j;
							}
							first = 0;
							continue;
						}
						for (int32_t j = 0; j < (int32_t)c; j++) {
							// Loads first, unconditional stores and a bit
							// mask, so that GCC vectorises the loop.
							float xv = xi[j], yv = yo[j];
							int32_t av = ao[j];
							int32_t m = -(int32_t)(xv > yv);
							yo[j] = xv > yv ? xv : yv;
							ao[j] = (m & (base + j)) | (~m & av);
						}
					}
				}
				if (first) {
					for (int64_t j = 0; j < c; j++) {
						yo[j] = -INFINITY;
						ao[j] = -1;
					}
				}
			}
		}
	}
}

int64_t sg_maxpool_bwd(int nthr, int64_t n, int64_t in_per_image,
		int64_t out_per_image, const float *restrict dy,
		const int32_t *restrict argmax, float *restrict dx) {
	// Windows of one image overlap, so images are the unit of parallel work;
	// an index outside its own image is counted and skipped.
	int64_t bad = 0;
	#pragma omp parallel for num_threads(nthr) schedule(static) reduction(+ : bad) if (n * in_per_image >= PAR)
	for (int64_t i = 0; i < n; i++) {
		memset(dx + i * in_per_image, 0, (size_t)in_per_image * sizeof(float));
		const float *dyi = dy + i * out_per_image;
		const int32_t *ai = argmax + i * out_per_image;
		int64_t lo = i * in_per_image, hi = lo + in_per_image;
		for (int64_t o = 0; o < out_per_image; o++) {
			int64_t a = ai[o];
			if (a < lo || a >= hi) {
				bad++;
				continue;
			}
			dx[a] += dyi[o];
		}
	}
	return bad;
}
