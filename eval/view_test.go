package eval

import (
	"testing"

	"github.com/simclr-go/simclr/augment"
	"github.com/simclr-go/simclr/data"
)

// TestViewCropBox: the official evaluation view keeps the central 87.5% of
// the shorter side (rounded half to even, offsets rounded up, as
// tf2/data_util.py's center_crop), but the whole square for views of 32 px
// or less; the default keeps the whole central square.
func TestViewCropBox(t *testing.T) {
	for _, c := range []struct {
		w, h, size int
		style      ViewStyle
		want       augment.Crop
	}{
		{320, 256, 224, ViewCrop, augment.Crop{X: 48, Y: 16, W: 224, H: 224}},
		{320, 256, 224, ViewSquare, augment.Crop{X: 32, Y: 0, W: 256, H: 256}},
		{500, 375, 224, ViewCrop, augment.Crop{X: 86, Y: 24, W: 328, H: 328}},
		{32, 32, 32, ViewCrop, augment.Crop{X: 0, Y: 0, W: 32, H: 32}},
		{28, 28, 28, ViewSquare, augment.Crop{X: 0, Y: 0, W: 28, H: 28}},
	} {
		if got := ViewCropBox(c.w, c.h, c.size, c.style); got != c.want {
			t.Errorf("%dx%d at %d, %q: %+v, want %+v", c.w, c.h, c.size, c.style, got, c.want)
		}
	}
	if _, err := ParseViewStyle("centre"); err == nil {
		t.Error("ParseViewStyle accepted an unknown view")
	}
}

// TestViewPixels: the cropped view of an image whose border differs from
// its centre shows the centre only.
func TestViewPixels(t *testing.T) {
	const w, h, size = 80, 64, 48
	rgb := make([]uint8, w*h*3)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := uint8(200)
			if x < 12 || x >= w-12 || y < 4 || y >= h-4 { // outside the central 56x56 (offsets 12, 4)
				v = 0
			}
			for c := 0; c < 3; c++ {
				rgb[(y*w+x)*3+c] = v
			}
		}
	}
	out := make([]float32, size*size*3)
	if err := View(size, ViewCrop)(data.Sample{RGB: rgb, W: w, H: h}, 0, 0, out); err != nil {
		t.Fatal(err)
	}
	for i, v := range out {
		if v < 0.78 || v > 0.79 {
			t.Fatalf("value %d = %g: the view shows the border", i, v)
		}
	}
	if err := View(size, ViewSquare)(data.Sample{RGB: rgb, W: w, H: h}, 0, 0, out); err != nil {
		t.Fatal(err)
	}
	if out[0] > 0.1 {
		t.Errorf("the square view's corner is %g, want the dark border", out[0])
	}
}
