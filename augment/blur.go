package augment

import (
	"fmt"
	"math"
)

// BlurKernelSize is SimCLR's kernel size for a side of n pixels: 10% of
// it, made odd as the reference code does (int(0.1*n)//2*2+1; 23 for 224).
func BlurKernelSize(n int) int { return int(0.1*float64(n))/2*2 + 1 }

// GaussianKernel1D writes torchvision's normalised 1-D Gaussian kernel of
// odd size k (taps at integer offsets from the centre, computed in float32)
// into dst, reusing it when large enough.
func GaussianKernel1D(k int, sigma float64, dst []float32) []float32 {
	if k <= 0 || k%2 == 0 || !(sigma > 0) {
		panic(fmt.Sprintf("augment: Gaussian kernel size %d sigma %g", k, sigma))
	}
	dst = grow(dst, k)
	half := float32(k-1) * 0.5
	sg := float32(sigma)
	var sum float32
	for i := range dst {
		x := (float32(i) - half) / sg
		dst[i] = float32(math.Exp(float64(-0.5 * x * x)))
		sum += dst[i]
	}
	for i := range dst {
		dst[i] /= sum
	}
	return dst
}

// GaussianBlur blurs m in place with a k×k Gaussian of the given sigma and
// reflect padding, as torchvision's tensor gaussian_blur, but separably (a
// horizontal then a vertical pass: 2k instead of k² products per value,
// equal up to rounding, and with negligible tails dropped). Results are clamped to [0,1] against the kernel's
// rounding. s holds the buffers and may be nil.
func GaussianBlur(m Image, k int, sigma float64, s *Scratch) {
	checkDims(m.W, m.H, len(m.Pix))
	if s == nil {
		s = new(Scratch)
	}
	s.kern = GaussianKernel1D(k, sigma, s.kern)
	r := k / 2
	// Drop tail taps whose total weight is below 2^-30: they move no output
	// by more than that (far below float32 resolution of mid-range values),
	// and tiny weights make denormal products, which cost ~100× a normal
	// multiply. For small sigma this also shortens the kernel a lot.
	var tail float32
	for r > 0 && tail+2*s.kern[k/2-r] < 1.0/(1<<30) {
		tail += 2 * s.kern[k/2-r]
		r--
	}
	if r == 0 {
		return // a one-tap kernel is the identity
	}
	w := s.kern[k/2 : k/2+r+1] // centre tap, then offsets 1..r
	W, H := m.W, m.H
	s.pad = grow(s.pad, (W+2*r)*3)
	s.tmp = grow(s.tmp, W*H*3)
	pad := s.pad
	for y := range H {
		row := m.Pix[y*W*3 : (y+1)*W*3]
		copy(pad[r*3:], row)
		for i := 1; i <= r; i++ {
			l, rr := reflect(-i, W), reflect(W-1+i, W)
			copy(pad[(r-i)*3:(r-i)*3+3], row[l*3:l*3+3])
			copy(pad[(r+W-1+i)*3:(r+W-1+i)*3+3], row[rr*3:rr*3+3])
		}
		blurRow(s.tmp[y*W*3:(y+1)*W*3], pad, w)
	}
	// Vertical pass over whole rows: out = w0*row[y] + Σ wk*(row[y-k]+row[y+k]).
	rowLen := W * 3
	for y := range H {
		out := m.Pix[y*rowLen : (y+1)*rowLen : (y+1)*rowLen]
		c := s.tmp[y*rowLen : (y+1)*rowLen : (y+1)*rowLen]
		w0 := w[0]
		for j := range out {
			out[j] = w0 * c[j]
		}
		k := 1
		for ; k+1 <= r; k += 2 {
			a0, b0 := tmpRow(s.tmp, reflect(y-k, H), rowLen), tmpRow(s.tmp, reflect(y+k, H), rowLen)
			a1, b1 := tmpRow(s.tmp, reflect(y-k-1, H), rowLen), tmpRow(s.tmp, reflect(y+k+1, H), rowLen)
			w0, w1 := w[k], w[k+1]
			a0, b0, a1, b1 = a0[:len(out)], b0[:len(out)], a1[:len(out)], b1[:len(out)]
			for j := range out {
				out[j] += w0*(a0[j]+b0[j]) + w1*(a1[j]+b1[j])
			}
		}
		if k <= r {
			a, b := tmpRow(s.tmp, reflect(y-k, H), rowLen), tmpRow(s.tmp, reflect(y+k, H), rowLen)
			a, b = a[:len(out)], b[:len(out)]
			wk := w[k]
			for j := range out {
				out[j] += wk * (a[j] + b[j])
			}
		}
		for j, v := range out {
			out[j] = clamp01(v)
		}
	}
}

// blurRow convolves one reflect-padded interleaved RGB row: output value j
// (pixel j/3) is w0*pad[c] + Σ wk*(pad[c-3k]+pad[c+3k]), c = j+3r. Folding
// the symmetric taps halves the products; looping over the row for each
// tap pair (the vertical pass's pattern) keeps the inner loop free of
// bounds checks and ran ~2× faster than accumulating per output.
func blurRow(out, pad, w []float32) {
	n := len(out)
	r := len(w) - 1
	c := pad[3*r : 3*r+n]
	w0 := w[0]
	for j := range out {
		out[j] = w0 * c[j]
	}
	k := 1
	for ; k+1 <= r; k += 2 {
		a0, b0 := pad[3*(r-k):3*(r-k)+n], pad[3*(r+k):3*(r+k)+n]
		a1, b1 := pad[3*(r-k-1):3*(r-k-1)+n], pad[3*(r+k+1):3*(r+k+1)+n]
		w0, w1 := w[k], w[k+1]
		for j := range out {
			out[j] += w0*(a0[j]+b0[j]) + w1*(a1[j]+b1[j])
		}
	}
	if k <= r {
		a, b := pad[3*(r-k):3*(r-k)+n], pad[3*(r+k):3*(r+k)+n]
		wk := w[k]
		for j := range out {
			out[j] += wk * (a[j] + b[j])
		}
	}
}

func tmpRow(t []float32, y, rowLen int) []float32 { return t[y*rowLen : (y+1)*rowLen] }

// reflect maps an index outside [0,n) back in by mirroring about the edge
// pixels (torch's "reflect" padding, which does not repeat the edge),
// repeatedly when the kernel is wider than the image, where torch refuses.
func reflect(i, n int) int {
	if n == 1 {
		return 0
	}
	p := 2 * (n - 1)
	i %= p
	if i < 0 {
		i += p
	}
	if i >= n {
		i = p - i
	}
	return i
}
