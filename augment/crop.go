package augment

import (
	"fmt"
	"math"

	"github.com/simclr-go/simclr/tensor"
)

// Crop is a rectangle of a source image: left X, top Y, width W, height H.
type Crop struct{ X, Y, W, H int }

// RandomResizedCropParams draws a crop as torchvision's
// RandomResizedCrop.get_params does: up to 10 tries of an area fraction
// U[scale] and a log-uniform aspect ratio (w/h) in ratio, each kept if it
// fits, else a centre crop with the ratio clamped to the range. Sizes use
// Python's round (half to even) so the same draws give the same crop.
func RandomResizedCropParams(rng *tensor.RNG, w, h int, scale, ratio [2]float64) Crop {
	area := float64(w * h)
	logLo, logHi := math.Log(ratio[0]), math.Log(ratio[1])
	for range 10 {
		target := area * rng.Uniform(scale[0], scale[1])
		aspect := math.Exp(rng.Uniform(logLo, logHi))
		cw := int(math.RoundToEven(math.Sqrt(target * aspect)))
		ch := int(math.RoundToEven(math.Sqrt(target / aspect)))
		if cw > 0 && cw <= w && ch > 0 && ch <= h {
			y := rng.IntN(h - ch + 1)
			x := rng.IntN(w - cw + 1)
			return Crop{X: x, Y: y, W: cw, H: ch}
		}
	}
	inRatio := float64(w) / float64(h)
	cw, ch := w, h
	switch {
	case inRatio < min(ratio[0], ratio[1]):
		ch = int(math.RoundToEven(float64(cw) / min(ratio[0], ratio[1])))
	case inRatio > max(ratio[0], ratio[1]):
		cw = int(math.RoundToEven(float64(ch) * max(ratio[0], ratio[1])))
	}
	return Crop{X: (w - cw) / 2, Y: (h - ch) / 2, W: cw, H: ch}
}

// Interpolation selects the resampling filter of the resize.
type Interpolation int

const (
	// Bilinear is torch's upsample_bilinear2d, align_corners=False, no
	// antialiasing (torchvision's tensor default).
	Bilinear Interpolation = iota
	// Bicubic is torch's upsample_bicubic2d (A = -0.75, border pixels
	// replicated), align_corners=False; SimCLR's TF code resizes this way.
	Bicubic
)

func (i Interpolation) String() string {
	switch i {
	case Bilinear:
		return "bilinear"
	case Bicubic:
		return "bicubic"
	}
	return fmt.Sprintf("Interpolation(%d)", int(i))
}

func (i Interpolation) taps() int {
	if i == Bicubic {
		return 4
	}
	return 2
}

// axis is a precomputed resampling table for one axis: output i reads
// source indices idx[i*n:(i+1)*n] with weights w[i*n:(i+1)*n]. Computing it
// once per view keeps floor/weight arithmetic out of the pixel loops.
type axis struct {
	n   int
	idx []int32
	w   []float32
}

// build fills the table for resizing in source pixels starting at off to
// out pixels, following torch's index and weight arithmetic (in float32, as
// torch computes for float32 tensors). mirror reverses the output order,
// which is a horizontal flip at no cost.
func (a *axis) build(off, in, out int, interp Interpolation, mirror bool) {
	n := interp.taps()
	a.n = n
	if cap(a.idx) < out*n {
		a.idx = make([]int32, out*n)
		a.w = make([]float32, out*n)
	}
	a.idx, a.w = a.idx[:out*n], a.w[:out*n]
	scale := float32(in) / float32(out)
	for i := range out {
		o := i
		if mirror {
			o = out - 1 - i
		}
		idx, w := a.idx[o*n:o*n+n:o*n+n], a.w[o*n:o*n+n:o*n+n]
		real := scale*(float32(i)+0.5) - 0.5
		if interp == Bicubic {
			i0 := min(int(math.Floor(float64(real))), in-1)
			t := min(max(real-float32(i0), 0), 1)
			for k := range 4 {
				idx[k] = int32(off + min(max(i0-1+k, 0), in-1))
			}
			const A = -0.75
			w[0] = cubic2(t+1, A)
			w[1] = cubic1(t, A)
			w[2] = cubic1(1-t, A)
			w[3] = cubic2(2-t, A)
			continue
		}
		real = max(real, 0)
		i0 := min(int(real), in-1)
		l1 := min(max(real-float32(i0), 0), 1)
		i1 := i0
		if i0 < in-1 {
			i1++
		}
		idx[0], idx[1] = int32(off+i0), int32(off+i1)
		w[0], w[1] = 1-l1, l1
	}
}

// cubic1 and cubic2 are torch's cubic convolution kernel on |x| <= 1 and
// 1 < |x| < 2.
func cubic1(x, a float32) float32 { return ((a+2)*x-(a+3))*x*x + 1 }
func cubic2(x, a float32) float32 { return ((a*x-5*a)*x+8*a)*x - 4*a }

// ResizedCrop resizes region c of src to dst (any size) with interp, into
// dst.Pix; flip mirrors the result horizontally. s holds the tables and row
// buffers and may be nil (then they are allocated).
func ResizedCrop(src Image, c Crop, dst Image, interp Interpolation, flip bool, s *Scratch) {
	checkDims(src.W, src.H, len(src.Pix))
	checkDims(dst.W, dst.H, len(dst.Pix))
	if c.W <= 0 || c.H <= 0 || c.X < 0 || c.Y < 0 || c.X+c.W > src.W || c.Y+c.H > src.H {
		panic(fmt.Sprintf("augment: crop %+v outside %dx%d image", c, src.W, src.H))
	}
	if s == nil {
		s = new(Scratch)
	}
	s.xa.build(c.X, c.W, dst.W, interp, flip)
	s.ya.build(c.Y, c.H, dst.H, interp, false)
	n := interp.taps()
	rowLen := dst.W * 3
	s.rows = grow(s.rows, n*rowLen)
	for i := range s.tags {
		s.tags[i] = -1
	}
	// Resample horizontally the source rows each output row needs, keeping
	// the last n in a ring (slot = row mod n is free of collisions because
	// an output row's taps are n consecutive rows, clamped), then combine
	// them vertically: torch's order of operations, with every source row
	// resampled at most once.
	var rows [4][]float32
	for oy := range dst.H {
		yi := s.ya.idx[oy*n : oy*n+n]
		for k, sy := range yi {
			slot := int(sy) % n
			r := s.rows[slot*rowLen : (slot+1)*rowLen : (slot+1)*rowLen]
			if s.tags[slot] != sy {
				srow := src.Pix[int(sy)*src.W*3 : (int(sy)+1)*src.W*3]
				if n == 2 {
					hLinear(r, srow, s.xa.idx, s.xa.w)
				} else {
					hCubic(r, srow, s.xa.idx, s.xa.w)
				}
				s.tags[slot] = sy
			}
			rows[k] = r
		}
		out := dst.Pix[oy*rowLen : (oy+1)*rowLen : (oy+1)*rowLen]
		yw := s.ya.w[oy*n : oy*n+n]
		if n == 2 {
			vLinear(out, rows[0], rows[1], yw[0], yw[1])
		} else {
			vCubic(out, rows[0], rows[1], rows[2], rows[3], yw)
		}
	}
}

func hLinear(r, src []float32, idx []int32, w []float32) {
	for ox := range len(r) / 3 {
		a, b := int(idx[2*ox])*3, int(idx[2*ox+1])*3
		w0, w1 := w[2*ox], w[2*ox+1]
		pa, pb := src[a:a+3:a+3], src[b:b+3:b+3]
		o := r[ox*3 : ox*3+3 : ox*3+3]
		o[0] = w0*pa[0] + w1*pb[0]
		o[1] = w0*pa[1] + w1*pb[1]
		o[2] = w0*pa[2] + w1*pb[2]
	}
}

func hCubic(r, src []float32, idx []int32, w []float32) {
	for ox := range len(r) / 3 {
		i, ww := idx[4*ox:4*ox+4:4*ox+4], w[4*ox:4*ox+4:4*ox+4]
		p0, p1 := src[int(i[0])*3:][:3], src[int(i[1])*3:][:3]
		p2, p3 := src[int(i[2])*3:][:3], src[int(i[3])*3:][:3]
		o := r[ox*3 : ox*3+3 : ox*3+3]
		o[0] = p0[0]*ww[0] + p1[0]*ww[1] + p2[0]*ww[2] + p3[0]*ww[3]
		o[1] = p0[1]*ww[0] + p1[1]*ww[1] + p2[1]*ww[2] + p3[1]*ww[3]
		o[2] = p0[2]*ww[0] + p1[2]*ww[1] + p2[2]*ww[2] + p3[2]*ww[3]
	}
}

// vLinear and vCubic clamp to [0,1]: bilinear weights sum to 1 only up to
// rounding, and bicubic overshoots; torch leaves float outputs unclamped,
// but the next operations assume the range.
func vLinear(out, r0, r1 []float32, w0, w1 float32) {
	r0, r1 = r0[:len(out)], r1[:len(out)]
	for j := range out {
		out[j] = clamp01(w0*r0[j] + w1*r1[j])
	}
}

func vCubic(out, r0, r1, r2, r3 []float32, w []float32) {
	r0, r1, r2, r3 = r0[:len(out)], r1[:len(out)], r2[:len(out)], r3[:len(out)]
	w0, w1, w2, w3 := w[0], w[1], w[2], w[3]
	for j := range out {
		out[j] = clamp01(r0[j]*w0 + r1[j]*w1 + r2[j]*w2 + r3[j]*w3)
	}
}
