package augment

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/simclr-go/simclr/tensor"
)

func rngFor(i uint64) *tensor.RNG { return tensor.NewRNG(1, "augment-test", i) }

func TestRandomResizedCropParamsStatistics(t *testing.T) {
	scale, ratio := [2]float64{0.08, 1}, [2]float64{3.0 / 4, 4.0 / 3}
	// bigA: a large area fraction that must come up; on a 1:2 image a crop
	// within the ratio range covers at most 2/3 of it.
	for _, sz := range []struct {
		w, h int
		bigA float64
	}{{224, 224, 0.9}, {500, 375, 0.9}, {32, 32, 0.9}, {300, 600, 0.6}} {
		w, h := sz.w, sz.h
		minA, maxA, minR, maxR := math.Inf(1), 0.0, math.Inf(1), 0.0
		const n = 20000
		for i := range n {
			c := RandomResizedCropParams(rngFor(uint64(i)), w, h, scale, ratio)
			if c.W <= 0 || c.H <= 0 || c.X < 0 || c.Y < 0 || c.X+c.W > w || c.Y+c.H > h {
				t.Fatalf("%dx%d: crop %+v outside the image", w, h, c)
			}
			a := float64(c.W*c.H) / float64(w*h)
			r := float64(c.W) / float64(c.H)
			minA, maxA = min(minA, a), max(maxA, a)
			minR, maxR = min(minR, r), max(maxR, r)
			// Rounding each side to an integer moves the area by up to
			// about one row and one column, and the ratio likewise.
			da := float64(c.W+c.H+1) / float64(w*h)
			dr := 0.6 * (r + 1) / float64(c.H)
			if a < scale[0]-da || a > scale[1]+da {
				t.Fatalf("%dx%d: crop %+v area fraction %g outside %v", w, h, c, a, scale)
			}
			if r < ratio[0]-dr || r > ratio[1]+dr {
				t.Fatalf("%dx%d: crop %+v ratio %g outside %v", w, h, c, r, ratio)
			}
		}
		t.Logf("%dx%d: area fraction [%.3f, %.3f], ratio [%.3f, %.3f]", w, h, minA, maxA, minR, maxR)
		// The draws must span their ranges, not sit in a corner of them.
		if minA > 0.1 || maxA < sz.bigA || minR > 0.8 || maxR < 1.25 {
			t.Errorf("%dx%d: draws do not cover the ranges", w, h)
		}
	}
}

func TestRandomResizedCropFallback(t *testing.T) {
	// Every try fails on a 1000×10 strip, so torchvision's fallback applies:
	// ratio 100 > 4/3 gives h = 10, w = round(10*4/3) = 13, centred.
	c := RandomResizedCropParams(rngFor(0), 1000, 10, [2]float64{0.9, 1}, [2]float64{3.0 / 4, 4.0 / 3})
	if want := (Crop{X: 493, Y: 0, W: 13, H: 10}); c != want {
		t.Errorf("wide fallback %+v, want %+v", c, want)
	}
	c = RandomResizedCropParams(rngFor(0), 10, 1000, [2]float64{0.9, 1}, [2]float64{3.0 / 4, 4.0 / 3})
	if want := (Crop{X: 0, Y: 493, W: 10, H: 13}); c != want {
		t.Errorf("tall fallback %+v, want %+v", c, want)
	}
	// A ratio range that excludes the image's own ratio can still fall
	// back to the whole image when that ratio lies inside it.
	c = RandomResizedCropParams(rngFor(0), 10, 10, [2]float64{2, 3}, [2]float64{0.5, 2})
	if want := (Crop{W: 10, H: 10}); c != want {
		t.Errorf("whole-image fallback %+v, want %+v", c, want)
	}
}

func TestResizeMatchesTorch(t *testing.T) {
	b, err := os.ReadFile("testdata/resize.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		W, H  int
		Input []float64
		Cases []struct {
			Mode   string
			W, H   int
			Output []float64 `json:"output_f32"`
		}
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	src := Image{W: ref.W, H: ref.H, Pix: f32s(ref.Input)}
	for _, c := range ref.Cases {
		interp := Bilinear
		if c.Mode == "bicubic" {
			interp = Bicubic
		}
		dst := NewImage(c.W, c.H)
		ResizedCrop(src, Crop{W: src.W, H: src.H}, dst, interp, false, nil)
		want := make([]float64, len(c.Output))
		for i, v := range c.Output {
			want[i] = min(max(v, 0), 1) // ours clamps bicubic overshoot
		}
		d := maxDiff(dst.Pix, want)
		t.Logf("%s %dx%d -> %dx%d: max |ours-torch| %.2g", c.Mode, ref.W, ref.H, c.W, c.H, d)
		if d > refTol {
			t.Errorf("%s %dx%d: off by %g", c.Mode, c.W, c.H, d)
		}
	}
}

func noise(w, h int, seed uint64) Image {
	g := tensor.NewRNG(seed, "augment-noise")
	m := NewImage(w, h)
	for i := range m.Pix {
		m.Pix[i] = float32(g.Float64())
	}
	return m
}

func TestResizedCropOffsetAndFlip(t *testing.T) {
	src := noise(40, 30, 1)
	c := Crop{X: 7, Y: 5, W: 19, H: 13}
	sub := NewImage(c.W, c.H)
	for y := range c.H {
		copy(sub.Pix[y*c.W*3:(y+1)*c.W*3], src.Pix[((c.Y+y)*src.W+c.X)*3:])
	}
	for _, interp := range []Interpolation{Bilinear, Bicubic} {
		for _, sz := range [][2]int{{11, 9}, {32, 32}} {
			a, b := NewImage(sz[0], sz[1]), NewImage(sz[0], sz[1])
			s := new(Scratch)
			ResizedCrop(src, c, a, interp, false, s)
			ResizedCrop(sub, Crop{W: c.W, H: c.H}, b, interp, false, s)
			if !equal(a.Pix, b.Pix) {
				t.Errorf("%v %v: crop of a larger image differs from the cropped image", interp, sz)
			}
			ResizedCrop(src, c, b, interp, true, s)
			HFlip(b)
			if !equal(a.Pix, b.Pix) {
				t.Errorf("%v %v: fused flip differs from HFlip", interp, sz)
			}
		}
	}
}

func TestResizeIdentity(t *testing.T) {
	src := noise(17, 13, 2)
	for _, interp := range []Interpolation{Bilinear, Bicubic} {
		dst := NewImage(17, 13)
		ResizedCrop(src, Crop{W: 17, H: 13}, dst, interp, false, nil)
		if !equal(src.Pix, dst.Pix) {
			t.Errorf("%v: same-size resize is not the identity", interp)
		}
	}
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
