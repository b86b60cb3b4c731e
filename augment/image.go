// Package augment implements SimCLR's data augmentations (Chen et al. 2020,
// appendix A): random resized crop, horizontal flip, colour distortion,
// random grayscale, Gaussian blur and (SimCLRv2/BYOL) solarisation.
//
// The operations follow torchvision's tensor code path, so that their
// numbers can be checked against it, and work on float32 HWC images because
// that is the layout of the engine's NHWC tensors: an augmented view is
// written straight into its slot of a batch.
package augment

import (
	"fmt"
	"image"
	"image/color"
)

// Image is an RGB image: W×H pixels of 3 float32 channels in [0,1], stored
// HWC and row-major, so pixel (x,y) channel c is Pix[(y*W+x)*3+c].
type Image struct {
	W, H int
	Pix  []float32
}

// NewImage returns a black w×h image.
func NewImage(w, h int) Image { return Image{W: w, H: h, Pix: make([]float32, w*h*3)} }

// u8 maps a byte to float32(v)/255, the value torchvision's to-float
// conversion gives; a table avoids a division per channel.
var u8 = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(i) / 255
	}
	return
}()

// grow returns buf[:n], reallocating only when buf is too small, so callers
// that decode many images can reuse one buffer.
func grow(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n)
	}
	return buf[:n]
}

func checkDims(w, h, have int) {
	if w <= 0 || h <= 0 || have < w*h*3 {
		panic(fmt.Sprintf("augment: %dx%d image needs %d values, have %d", w, h, w*h*3, have))
	}
}

// FromHWC converts interleaved uint8 RGB (the layout of decoded images) to
// an Image, reusing buf when it is large enough.
func FromHWC(pix []uint8, w, h int, buf []float32) Image {
	checkDims(w, h, len(pix))
	n := w * h * 3
	out := grow(buf, n)
	pix = pix[:n]
	for i, v := range pix {
		out[i] = u8[v]
	}
	return Image{W: w, H: h, Pix: out}
}

// FromCHW converts planar uint8 RGB (CIFAR's binary format: 1024 R, then G,
// then B bytes for 32×32) to an Image, reusing buf when large enough.
func FromCHW(pix []uint8, w, h int, buf []float32) Image {
	checkDims(w, h, len(pix))
	np := w * h
	out := grow(buf, np*3)
	r, g, b := pix[:np], pix[np:2*np], pix[2*np:3*np]
	for i := range np {
		o := out[i*3 : i*3+3 : i*3+3]
		o[0], o[1], o[2] = u8[r[i]], u8[g[i]], u8[b[i]]
	}
	return Image{W: w, H: h, Pix: out}
}

// FromImage converts a decoded Go image, reusing buf when large enough.
// *image.RGBA, *image.NRGBA, *image.YCbCr and *image.Gray take fast paths;
// grayscale is replicated to 3 channels. Alpha is dropped: NRGBA keeps its
// colour values (as PIL's convert("RGB") does), RGBA (premultiplied) and
// other types come out composited over black.
func FromImage(src image.Image, buf []float32) Image {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		panic("augment: empty image")
	}
	out := grow(buf, w*h*3)
	switch m := src.(type) {
	case *image.RGBA:
		rgbaLike(out, m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), w, h)
	case *image.NRGBA:
		rgbaLike(out, m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), w, h)
	case *image.Gray:
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:w]
			o := out[y*w*3 : (y+1)*w*3]
			for x, v := range row {
				f := u8[v]
				o[x*3], o[x*3+1], o[x*3+2] = f, f, f
			}
		}
	case *image.YCbCr:
		i := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				ci := m.COffset(x, y)
				r, g, bb := color.YCbCrToRGB(m.Y[m.YOffset(x, y)], m.Cb[ci], m.Cr[ci])
				out[i], out[i+1], out[i+2] = u8[r], u8[g], u8[bb]
				i += 3
			}
		}
	default:
		i := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, bb, _ := src.At(x, y).RGBA()
				out[i], out[i+1], out[i+2] = float32(r)/0xffff, float32(g)/0xffff, float32(bb)/0xffff
				i += 3
			}
		}
	}
	return Image{W: w, H: h, Pix: out}
}

// rgbaLike copies the RGB bytes of a 4-byte-per-pixel layout.
func rgbaLike(out []float32, pix []uint8, stride, off, w, h int) {
	for y := range h {
		row := pix[off+y*stride:][: w*4 : w*4]
		o := out[y*w*3 : (y+1)*w*3 : (y+1)*w*3]
		for x := range w {
			o[x*3], o[x*3+1], o[x*3+2] = u8[row[x*4]], u8[row[x*4+1]], u8[row[x*4+2]]
		}
	}
}

// NRGBA converts to an 8-bit image (values clamped and rounded) for saving.
func (m Image) NRGBA() *image.NRGBA {
	out := image.NewNRGBA(image.Rect(0, 0, m.W, m.H))
	for i := range m.W * m.H {
		for c := range 3 {
			out.Pix[i*4+c] = toByte(m.Pix[i*3+c])
		}
		out.Pix[i*4+3] = 255
	}
	return out
}

func toByte(v float32) uint8 {
	switch {
	case !(v > 0): // also NaN
		return 0
	case v >= 1:
		return 255
	}
	return uint8(v*255 + 0.5)
}

// HFlip mirrors m left to right in place. The pipeline does not call it: it
// flips for free by mirroring the crop's resampling table.
func HFlip(m Image) {
	for y := range m.H {
		row := m.Pix[y*m.W*3 : (y+1)*m.W*3]
		for l, r := 0, m.W-1; l < r; l, r = l+1, r-1 {
			a, b := row[l*3:l*3+3:l*3+3], row[r*3:r*3+3:r*3+3]
			a[0], b[0] = b[0], a[0]
			a[1], b[1] = b[1], a[1]
			a[2], b[2] = b[2], a[2]
		}
	}
}
