//go:build !cgo

package data

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
)

// decodeJPEG decodes with Go's image/jpeg, for builds without cgo. Chroma
// is upsampled with libjpeg's "fancy" filters, as PIL's decoder does, so
// what remains different from PIL is Go's IDCT (the tests bound it).
func decodeJPEG(b []byte) (w, h int, rgb []uint8, err error) {
	if _, err := checkSize(b); err != nil {
		return 0, 0, nil, err
	}
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		return 0, 0, nil, err
	}
	if m, ok := img.(*image.YCbCr); ok {
		if rgb := fancyYCbCrToRGB(m); rgb != nil {
			return m.Rect.Dx(), m.Rect.Dy(), rgb, nil
		}
	}
	w, h, rgb = toRGB(img)
	return w, h, rgb, nil
}

// fancyYCbCrToRGB converts a subsampled image as libjpeg does with its
// default settings: triangle-filtered chroma for 4:2:2, 4:2:0 and 4:4:0,
// then the JFIF formula (Go's color.YCbCrToRGB has libjpeg's constants and
// rounding). Other ratios, and planes of one or two samples across, return
// nil: libjpeg repeats their chroma, as image.YCbCr does.
func fancyYCbCrToRGB(m *image.YCbCr) []uint8 {
	var hs, vs int
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		hs, vs = 2, 1
	case image.YCbCrSubsampleRatio420:
		hs, vs = 2, 2
	case image.YCbCrSubsampleRatio440:
		hs, vs = 1, 2
	default:
		return nil
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	if hs == 2 && (w+1)/2 <= 2 {
		return nil // libjpeg filters only planes wider than two samples
	}
	cb := upsampleFancy(m, m.Cb, hs, vs)
	cr := upsampleFancy(m, m.Cr, hs, vs)
	rgb := make([]uint8, w*h*3)
	for y := 0; y < h; y++ {
		yrow := m.Y[m.YOffset(m.Rect.Min.X, m.Rect.Min.Y+y):]
		for x := 0; x < w; x++ {
			i := y*w + x
			rgb[3*i], rgb[3*i+1], rgb[3*i+2] = color.YCbCrToRGB(yrow[x], cb[i], cr[i])
		}
	}
	return rgb
}

// upsampleFancy returns a full-size copy of chroma plane p (subsampled
// hs×vs) with libjpeg's filters: each output sample weighs its own input
// sample 3 and the next nearest 1 along each subsampled axis, with
// libjpeg's alternating rounding biases. At the image's edges the outside
// neighbour is the edge sample itself.
func upsampleFancy(m *image.YCbCr, p []uint8, hs, vs int) []uint8 {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	cw, ch := (w+hs-1)/hs, (h+vs-1)/vs
	row := func(j int) []uint8 {
		j = max(0, min(j, ch-1))
		o := m.COffset(m.Rect.Min.X, m.Rect.Min.Y+j*vs)
		return p[o:]
	}
	out := make([]uint8, w*h)
	// sums holds a row of vertically filtered samples, scaled by 4 when
	// the plane is subsampled vertically.
	sums := make([]int, cw)
	for y := 0; y < h; y++ {
		j := y / vs
		cur, nb := row(j), row(j)
		if vs == 2 {
			if y%2 == 0 {
				nb = row(j - 1)
			} else {
				nb = row(j + 1)
			}
		}
		for c := range sums {
			if vs == 2 {
				sums[c] = 3*int(cur[c]) + int(nb[c])
			} else {
				sums[c] = int(cur[c])
			}
		}
		o := out[y*w : (y+1)*w]
		if hs == 1 { // 4:4:0
			bias := 1 + y%2
			for x := range o {
				o[x] = uint8((sums[x] + bias) >> 2)
			}
			continue
		}
		// Horizontal triangle filter: output 2c leans on input c-1,
		// output 2c+1 on input c+1.
		for x := range o {
			c := x / 2
			left := x%2 == 0
			var s int
			switch {
			case left && c == 0:
				s = 4 * sums[0]
			case left:
				s = 3*sums[c] + sums[c-1]
			case c == cw-1:
				s = 4 * sums[c]
			default:
				s = 3*sums[c] + sums[c+1]
			}
			if vs == 2 {
				if left {
					o[x] = uint8((s + 8) >> 4)
				} else {
					o[x] = uint8((s + 7) >> 4)
				}
			} else {
				if left {
					o[x] = uint8((s + 1) >> 2)
				} else {
					o[x] = uint8((s + 2) >> 2)
				}
			}
		}
	}
	return out
}
