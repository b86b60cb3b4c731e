package augment

import (
	"image"
	"image/color"
	"testing"
)

func TestFromHWCAndCHW(t *testing.T) {
	const w, h = 3, 2
	hwc := make([]uint8, w*h*3)
	chw := make([]uint8, w*h*3)
	for y := range h {
		for x := range w {
			for c := range 3 {
				v := uint8(40*c + 7*x + 90*y)
				hwc[(y*w+x)*3+c] = v
				chw[(c*h+y)*w+x] = v
			}
		}
	}
	a := FromHWC(hwc, w, h, nil)
	b := FromCHW(chw, w, h, make([]float32, 100))
	if !equal(a.Pix, b.Pix) || a.W != w || b.H != h {
		t.Fatalf("HWC %v, CHW %v", a.Pix, b.Pix)
	}
	for i, v := range hwc {
		if a.Pix[i] != float32(v)/255 {
			t.Fatalf("value %d: %g, want %g", i, a.Pix[i], float32(v)/255)
		}
	}
}

func TestFromImage(t *testing.T) {
	const w, h = 5, 4
	want := func(x, y int) (r, g, b uint8) { return uint8(50 * x), uint8(60 * y), uint8(13*x + 17*y) }
	rgba := image.NewRGBA(image.Rect(0, 0, w, h))
	nrgba := image.NewNRGBA(image.Rect(0, 0, w, h))
	gray := image.NewGray(image.Rect(0, 0, w, h))
	rgba64 := image.NewRGBA64(image.Rect(0, 0, w, h)) // takes the generic path
	for y := range h {
		for x := range w {
			r, g, b := want(x, y)
			rgba.Set(x, y, color.RGBA{r, g, b, 255})
			nrgba.Set(x, y, color.NRGBA{r, g, b, 255})
			rgba64.Set(x, y, color.RGBA{r, g, b, 255})
			gray.SetGray(x, y, color.Gray{r})
		}
	}
	check := func(name string, m Image, px func(x, y int) (r, g, b uint8)) {
		t.Helper()
		if m.W != w || m.H != h {
			t.Fatalf("%s: %dx%d", name, m.W, m.H)
		}
		for y := range h {
			for x := range w {
				r, g, b := px(x, y)
				p := m.Pix[(y*w+x)*3:][:3]
				if p[0] != u8[r] || p[1] != u8[g] || p[2] != u8[b] {
					t.Fatalf("%s (%d,%d): %v, want %d %d %d", name, x, y, p, r, g, b)
				}
			}
		}
	}
	check("RGBA", FromImage(rgba, nil), want)
	check("NRGBA", FromImage(nrgba, nil), want)
	check("RGBA64", FromImage(rgba64, nil), want)
	check("Gray", FromImage(gray, nil), func(x, y int) (uint8, uint8, uint8) {
		r, _, _ := want(x, y)
		return r, r, r
	})
	// A sub-image keeps its own origin out of the result.
	sub := rgba.SubImage(image.Rect(1, 1, 4, 3)).(*image.RGBA)
	m := FromImage(sub, nil)
	if m.W != 3 || m.H != 2 || m.Pix[0] != u8[50] || m.Pix[1] != u8[60] {
		t.Errorf("sub-image: %dx%d %v", m.W, m.H, m.Pix[:3])
	}

	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio420} {
		yc := image.NewYCbCr(image.Rect(0, 0, w, h), ratio)
		for i := range yc.Y {
			yc.Y[i] = uint8(30 * i)
		}
		for i := range yc.Cb {
			yc.Cb[i], yc.Cr[i] = uint8(100+9*i), uint8(200-11*i)
		}
		check("YCbCr "+ratio.String(), FromImage(yc, nil), func(x, y int) (uint8, uint8, uint8) {
			return color.RGBAModel.Convert(yc.At(x, y)).(color.RGBA).R,
				color.RGBAModel.Convert(yc.At(x, y)).(color.RGBA).G,
				color.RGBAModel.Convert(yc.At(x, y)).(color.RGBA).B
		})
	}
}

func TestNRGBARoundTrip(t *testing.T) {
	src := make([]uint8, 4*3*3)
	for i := range src {
		src[i] = uint8(i * 7)
	}
	m := FromHWC(src, 4, 3, nil)
	back := m.NRGBA()
	for i := range 12 {
		for c := range 3 {
			if back.Pix[i*4+c] != src[i*3+c] {
				t.Fatalf("pixel %d channel %d: %d, want %d", i, c, back.Pix[i*4+c], src[i*3+c])
			}
		}
	}
}
