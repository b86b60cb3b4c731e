package data

import "image"

// lossyWebP returns the planes of a lossy WebP, or nil for other images.
func lossyWebP(img image.Image, format string) *image.YCbCr {
	if format != "webp" {
		return nil
	}
	var m *image.YCbCr
	switch img := img.(type) {
	case *image.YCbCr:
		m = img
	case *image.NYCbCrA: // alpha is dropped, as PIL's convert("RGB") does
		m = &img.YCbCr
	}
	if m == nil || m.SubsampleRatio != image.YCbCrSubsampleRatio420 {
		return nil
	}
	return m
}

// webpToRGB converts the 4:2:0 planes of a lossy WebP to RGB as libwebp
// (PIL's decoder) does by default: chroma upsampled with its "fancy"
// filter (weights 9, 3, 3, 1 between the four nearest chroma samples) and
// converted with its 14-bit fixed-point BT.601 formula. golang.org/x/image
// decodes the planes exactly as libwebp does; image.YCbCr would convert
// them with JFIF's full-range formula and repeat the chroma.
func webpToRGB(rgb []uint8, m *image.YCbCr) {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	cw := (w + 1) / 2
	chromaRow := func(p []uint8, j int) []uint8 {
		j = min(j, (h+1)/2-1)
		o := m.COffset(b.Min.X, b.Min.Y+2*j)
		return p[o : o+cw]
	}
	for y := 0; y < h; y++ {
		// Luma row y lies between chroma rows (y-1)/2 and (y+1)/2, nearer
		// the first for odd y and the second for even y.
		near, far := (y+1)/2, (y-1)/2
		if y == 0 {
			far = 0
		} else if y%2 == 1 {
			near, far = far, near
		}
		nu, fu := chromaRow(m.Cb, near), chromaRow(m.Cb, far)
		nv, fv := chromaRow(m.Cr, near), chromaRow(m.Cr, far)
		yo := m.YOffset(b.Min.X, b.Min.Y+y)
		ys := m.Y[yo : yo+w]
		out := rgb[3*w*y : 3*w*(y+1)]
		// Vertically interpolated chroma at the two columns around x.
		for x := 0; x < w; x++ {
			var u, v int
			switch {
			case x == 0 || (x == w-1 && w%2 == 0):
				c := x / 2
				u = (3*int(nu[c]) + int(fu[c]) + 2) >> 2
				v = (3*int(nv[c]) + int(fv[c]) + 2) >> 2
			default:
				// Odd x uses chroma columns (x-1)/2 (near) and (x+1)/2;
				// even x the other way round.
				l, r := (x-1)/2, (x+1)/2
				u = fancy(nu[l], nu[r], fu[l], fu[r], x%2 == 1)
				v = fancy(nv[l], nv[r], fv[l], fv[r], x%2 == 1)
			}
			yy := int(ys[x])
			out[3*x] = vp8Clip(mulHi(yy, 19077) + mulHi(v, 26149) - 14234)
			out[3*x+1] = vp8Clip(mulHi(yy, 19077) - mulHi(u, 6419) - mulHi(v, 13320) + 8708)
			out[3*x+2] = vp8Clip(mulHi(yy, 19077) + mulHi(u, 33050) - 17685)
		}
	}
}

// fancy interpolates chroma between the near row (nl, nr) and the far row
// (fl, fr) at a pixel nearer the left column (left) or the right one,
// with libwebp's rounding: a diagonal average, then the mean with the
// nearest sample.
func fancy(nl, nr, fl, fr uint8, left bool) int {
	a, b, c, d := int(nl), int(nr), int(fl), int(fr)
	avg := a + b + c + d + 8
	if left {
		// nearest a; its diagonal partner is d, the other diagonal b, c.
		return ((avg+2*(b+c))>>3 + a) >> 1
	}
	return ((avg+2*(a+d))>>3 + b) >> 1
}

func mulHi(v, coeff int) int { return (v * coeff) >> 8 }

// vp8Clip takes a value with 6 fractional bits to 0..255.
func vp8Clip(v int) uint8 {
	if v&^(256<<6-1) == 0 {
		return uint8(v >> 6)
	}
	if v < 0 {
		return 0
	}
	return 255
}
