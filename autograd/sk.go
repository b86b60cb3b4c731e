package autograd

// Operations for selective-kernel (SK) convolutions, SimCLRv2's ResNet
// variant: a per-sample, per-channel scale, a softmax across branches and
// the ResNet-D average pool of SK ResNets' projection shortcuts. They run as
// plain Go loops, not backend kernels: they touch each activation once and
// are cheap next to the convolutions around them.

import (
	"fmt"
	"math"
)

// ScaleChannels multiplies x[N,H,W,C] by s[N,C]: out[n,h,w,c] =
// x[n,h,w,c]*s[n,c], one factor per sample and channel, broadcast over
// space. Both inputs get gradients: dx = dy*s, ds[n,c] = Σ_hw dy*x.
func (t *Tape) ScaleChannels(x, s *Var) *Var {
	xs, ss := x.Value.Shape, s.Value.Shape
	if len(xs) != 4 || len(ss) != 2 || ss[0] != xs[0] || ss[1] != xs[3] {
		panic(fmt.Sprintf("autograd: scale-channels of %v by %v, want NHWC and [N,C]", xs, ss))
	}
	n, hw, c := xs[0], xs[1]*xs[2], xs[3]
	out := t.NewVar(xs...)
	xd, sd, od := x.Value.Data, s.Value.Data, out.Value.Data
	for i := 0; i < n; i++ {
		f := sd[i*c : (i+1)*c]
		for p := 0; p < hw; p++ {
			off := (i*hw + p) * c
			xr, or := xd[off:off+c], od[off:off+c]
			for j, v := range xr {
				or[j] = v * f[j]
			}
		}
	}
	t.record(out, func() {
		dy := t.gradIn(out)
		if dx, done := t.gradOut(x); dx != nil {
			for i := 0; i < n; i++ {
				f := sd[i*c : (i+1)*c]
				for p := 0; p < hw; p++ {
					off := (i*hw + p) * c
					gr, dr := dy[off:off+c], dx[off:off+c]
					for j, g := range gr {
						dr[j] = g * f[j]
					}
				}
			}
			done()
		}
		if ds, done := t.gradOut(s); ds != nil {
			acc := make([]float64, c)
			for i := 0; i < n; i++ {
				clear(acc)
				for p := 0; p < hw; p++ {
					off := (i*hw + p) * c
					gr, xr := dy[off:off+c], xd[off:off+c]
					for j, g := range gr {
						acc[j] += float64(g) * float64(xr[j])
					}
				}
				for j, v := range acc {
					ds[i*c+j] = float32(v)
				}
			}
			done()
		}
	}, x, s)
	return out
}

// SoftmaxBranches normalises x[N, M*C] across its M branches for each
// sample and channel: channel c of branch j is x[n, j*C+c] (the layout of
// M tensors of C channels concatenated, or of tf.split on the channel
// axis), and out[n, j*C+c] = exp(x[n,j*C+c]) / Σ_k exp(x[n,k*C+c]).
func (t *Tape) SoftmaxBranches(x *Var, m int) *Var {
	rows, cols := rowsCols(x)
	if m < 1 || cols%m != 0 {
		panic(fmt.Sprintf("autograd: softmax over %d branches of %v", m, x.Value.Shape))
	}
	c := cols / m
	out := t.NewVar(x.Value.Shape...)
	xd, od := x.Value.Data, out.Value.Data
	for i := 0; i < rows; i++ {
		xr, or := xd[i*cols:(i+1)*cols], od[i*cols:(i+1)*cols]
		for j := 0; j < c; j++ {
			mx := math.Inf(-1)
			for k := 0; k < m; k++ {
				mx = max(mx, float64(xr[k*c+j]))
			}
			var sum float64
			for k := 0; k < m; k++ {
				sum += math.Exp(float64(xr[k*c+j]) - mx)
			}
			for k := 0; k < m; k++ {
				or[k*c+j] = float32(math.Exp(float64(xr[k*c+j])-mx) / sum)
			}
		}
	}
	t.record(out, func() {
		dx, done := t.gradOut(x)
		if dx == nil {
			return
		}
		dy := t.gradIn(out)
		for i := 0; i < rows; i++ {
			yr, gr, dr := od[i*cols:(i+1)*cols], dy[i*cols:(i+1)*cols], dx[i*cols:(i+1)*cols]
			for j := 0; j < c; j++ {
				var dot float64
				for k := 0; k < m; k++ {
					dot += float64(yr[k*c+j]) * float64(gr[k*c+j])
				}
				for k := 0; k < m; k++ {
					dr[k*c+j] = float32(float64(yr[k*c+j]) * (float64(gr[k*c+j]) - dot))
				}
			}
		}
		done()
	}, x)
	return out
}

// AvgPool2D averages k x k windows of x[N,H,W,C] taken every stride
// positions. The input is extended by padEnd zero rows and columns after
// its last ones (none before), so the output is
// (H+padEnd-k)/stride+1 by (W+padEnd-k)/stride+1. With countPad the
// padded positions count in each window's divisor (k*k always: an explicit
// zero pad followed by 'VALID' pooling); without it only the positions
// inside x do (TensorFlow's 'SAME' average pooling).
//
// SimCLRv2's ResNet-D shortcut uses k = 2 with padEnd = 1: stride 2 with
// countPad (FixedPadding(2) then 'VALID'), which for even sizes is a plain
// 2x2 average and for odd ones gives ceil(H/2) like the strided 3x3 path;
// and stride 1 without countPad ('SAME'), which keeps the size.
func (t *Tape) AvgPool2D(x *Var, k, stride, padEnd int, countPad bool) *Var {
	s := x.Value.Shape
	if len(s) != 4 || k < 1 || stride < 1 || padEnd < 0 || s[1]+padEnd < k || s[2]+padEnd < k {
		panic(fmt.Sprintf("autograd: avg pool %dx%d stride %d pad %d of %v", k, k, stride, padEnd, s))
	}
	n, h, w, c := s[0], s[1], s[2], s[3]
	oh, ow := (h+padEnd-k)/stride+1, (w+padEnd-k)/stride+1
	out := t.NewVar(n, oh, ow, c)
	// window returns the in-bounds rows [y0,y1) and columns [x0,x1) of an
	// output position and its divisor.
	window := func(oy, ox int) (y0, y1, x0, x1 int, inv float32) {
		y0, x0 = oy*stride, ox*stride
		y1, x1 = min(y0+k, h), min(x0+k, w)
		cnt := k * k
		if !countPad {
			cnt = (y1 - y0) * (x1 - x0)
		}
		return y0, y1, x0, x1, 1 / float32(cnt)
	}
	xd, od := x.Value.Data, out.Value.Data
	clear(od)
	for i := 0; i < n; i++ {
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				y0, y1, x0, x1, inv := window(oy, ox)
				or := od[((i*oh+oy)*ow+ox)*c:][:c]
				for y := y0; y < y1; y++ {
					for xx := x0; xx < x1; xx++ {
						xr := xd[((i*h+y)*w+xx)*c:][:c]
						for j, v := range xr {
							or[j] += v
						}
					}
				}
				for j := range or {
					or[j] *= inv
				}
			}
		}
	}
	t.record(out, func() {
		dx, done := t.gradOut(x)
		if dx == nil {
			return
		}
		dy := t.gradIn(out)
		clear(dx)
		for i := 0; i < n; i++ {
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					y0, y1, x0, x1, inv := window(oy, ox)
					gr := dy[((i*oh+oy)*ow+ox)*c:][:c]
					for y := y0; y < y1; y++ {
						for xx := x0; xx < x1; xx++ {
							dr := dx[((i*h+y)*w+xx)*c:][:c]
							for j, g := range gr {
								dr[j] += g * inv
							}
						}
					}
				}
			}
		}
		done()
	}, x)
	return out
}
