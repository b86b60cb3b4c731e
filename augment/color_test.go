package augment

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// Reference tolerance. The reference "f32" values are torchvision's own
// float32 results; ours are float32 too but may differ in operation order
// (a float64 image mean, a separable instead of a 2-D blur, the compiler
// fusing multiply-adds on some CPUs), which moves results by a few ulps of
// values <= 1, i.e. < 1e-6. 1e-5 leaves margin for that while catching any
// formula error: the smallest plausible one (e.g. luma 0.299 for 0.2989)
// moves these outputs by 1e-4.
const refTol = 1e-5

type colorRef struct {
	Shape  []int `json:"shape"`
	Tensor struct {
		InputF32   []float64 `json:"input_f32"`
		RGB2HSVF32 []float64 `json:"rgb2hsv_f32"`
		RGB2HSVF64 []float64 `json:"rgb2hsv_f64"`
	} `json:"tensor"`
	GaussianBlur struct {
		Shape  []int     `json:"shape"`
		Kernel []float64 `json:"kernel1d_5_sigma1_f32"`
		Input  []float64 `json:"input"`
		Output []float64 `json:"output_f32"`
	} `json:"gaussian_blur"`
}

type opRef struct {
	F64 []float64 `json:"f64"`
	F32 []float64 `json:"f32"`
}

func loadColorRef(t *testing.T) (colorRef, map[string]opRef) {
	t.Helper()
	b, err := os.ReadFile("testdata/color.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref colorRef
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Tensor map[string]json.RawMessage `json:"tensor"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	ops := map[string]opRef{}
	for k, v := range raw.Tensor {
		var o opRef
		if json.Unmarshal(v, &o) == nil && o.F32 != nil {
			ops[k] = o
		}
	}
	return ref, ops
}

func f32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// maxDiff returns the largest |got-want|.
func maxDiff(got []float32, want []float64) float64 {
	var m float64
	for i := range want {
		m = max(m, math.Abs(float64(got[i])-want[i]))
	}
	return m
}

func TestColorOpsMatchTorchvision(t *testing.T) {
	ref, ops := loadColorRef(t)
	h, w := ref.Shape[0], ref.Shape[1]
	cases := map[string]func(Image){
		"rgb_to_grayscale_3":    Grayscale,
		"adjust_brightness_0.6": func(m Image) { AdjustBrightness(m, 0.6) },
		"adjust_brightness_1.3": func(m Image) { AdjustBrightness(m, 1.3) },
		"adjust_contrast_0.7":   func(m Image) { AdjustContrast(m, 0.7) },
		"adjust_contrast_1.4":   func(m Image) { AdjustContrast(m, 1.4) },
		"adjust_saturation_0.0": func(m Image) { AdjustSaturation(m, 0) },
		"adjust_saturation_0.5": func(m Image) { AdjustSaturation(m, 0.5) },
		"adjust_saturation_1.6": func(m Image) { AdjustSaturation(m, 1.6) },
		"adjust_hue_0.1":        func(m Image) { AdjustHue(m, 0.1) },
		"adjust_hue_-0.25":      func(m Image) { AdjustHue(m, -0.25) },
		"adjust_hue_0.5":        func(m Image) { AdjustHue(m, 0.5) },
	}
	for name, op := range cases {
		want, ok := ops[name]
		if !ok {
			t.Fatalf("%s missing from testdata", name)
		}
		m := Image{W: w, H: h, Pix: f32s(ref.Tensor.InputF32)}
		op(m)
		d32, d64 := maxDiff(m.Pix, want.F32), maxDiff(m.Pix, want.F64)
		t.Logf("%-22s max |ours-torch f32| %.2g, |ours-f64| %.2g", name, d32, d64)
		if d32 > refTol || d64 > refTol {
			t.Errorf("%s: got %v, want %v", name, m.Pix, want.F32)
		}
	}
}

func TestRGBToHSVMatchesTorchvision(t *testing.T) {
	ref, _ := loadColorRef(t)
	in := f32s(ref.Tensor.InputF32)
	got := make([]float32, len(in))
	for i := 0; i < len(in); i += 3 {
		got[i], got[i+1], got[i+2] = rgbToHSV(in[i], in[i+1], in[i+2])
		r, g, b := hsvToRGB(got[i], got[i+1], got[i+2])
		if d := maxDiff([]float32{r, g, b}, []float64{float64(in[i]), float64(in[i+1]), float64(in[i+2])}); d > refTol {
			t.Errorf("pixel %d: HSV round trip off by %g", i/3, d)
		}
	}
	if d := maxDiff(got, ref.Tensor.RGB2HSVF32); d > refTol {
		t.Errorf("rgb2hsv: got %v, want %v", got, ref.Tensor.RGB2HSVF32)
	}
	if d := maxDiff(got, ref.Tensor.RGB2HSVF64); d > refTol {
		t.Errorf("rgb2hsv vs f64: off by %g", d)
	}
}

func TestGaussianBlurMatchesTorchvision(t *testing.T) {
	ref, _ := loadColorRef(t)
	gb := ref.GaussianBlur
	k := GaussianKernel1D(5, 1, nil)
	if d := maxDiff(k, gb.Kernel); d > 1e-7 {
		t.Errorf("kernel %v, want %v", k, gb.Kernel)
	}
	// The reference is one 5×5 channel: blur it in all three.
	h, w := gb.Shape[0], gb.Shape[1]
	m := NewImage(w, h)
	for i, v := range gb.Input {
		m.Pix[i*3], m.Pix[i*3+1], m.Pix[i*3+2] = float32(v), float32(v), float32(v)
	}
	GaussianBlur(m, 5, 1, nil)
	for c := range 3 {
		got := make([]float32, w*h)
		for i := range got {
			got[i] = m.Pix[i*3+c]
		}
		d := maxDiff(got, gb.Output)
		t.Logf("channel %d: max |ours-torch| %.2g", c, d)
		if d > refTol {
			t.Errorf("channel %d: got %v, want %v", c, got, gb.Output)
		}
	}
}

func TestJitterDraws(t *testing.T) {
	seen := map[[4]int]bool{}
	for i := range 2000 {
		j := DrawJitter(rngFor(uint64(i)), 0.8, 0.8, 0.8, 0.2)
		seen[j.Order] = true
		var used [4]bool
		for _, o := range j.Order {
			used[o] = true
		}
		if used != [4]bool{true, true, true, true} {
			t.Fatalf("order %v is not a permutation", j.Order)
		}
		for _, f := range []float64{j.Brightness, j.Contrast, j.Saturation} {
			if f < 0.2 || f >= 1.8 {
				t.Fatalf("factor %g outside [0.2, 1.8)", f)
			}
		}
		if j.Hue < -0.2 || j.Hue >= 0.2 {
			t.Fatalf("hue %g outside [-0.2, 0.2)", j.Hue)
		}
	}
	if len(seen) != 24 {
		t.Errorf("%d of 24 orders drawn", len(seen))
	}
	j := DrawJitter(rngFor(1), 0, 0, 0, 0)
	if j.Brightness != 1 || j.Contrast != 1 || j.Saturation != 1 || j.Hue != 0 {
		t.Errorf("strength 0 drew %+v", j)
	}
}

func TestSolarize(t *testing.T) {
	m := Image{W: 2, H: 1, Pix: []float32{0, 0.25, 0.49, 0.5, 0.75, 1}}
	Solarize(m, 0.5)
	want := []float32{0, 0.25, 0.49, 0.5, 0.25, 0}
	for i := range want {
		if m.Pix[i] != want[i] {
			t.Fatalf("got %v, want %v", m.Pix, want)
		}
	}
}

// rgbToHSV is a literal port of torchvision's _rgb2hsv for one pixel,
// keeping its float32 operations (including the fmod(h/6+1, 1)): the
// reference AdjustHue's fused form is checked against.
func rgbToHSV(r, g, b float32) (h, s, v float32) {
	maxc := max(r, g, b)
	minc := min(r, g, b)
	cr := maxc - minc
	if cr == 0 { // torch divides by 1 there: s = 0, h = 0
		return 0, 0, maxc
	}
	s = cr / maxc
	rc := (maxc - r) / cr
	gc := (maxc - g) / cr
	bc := (maxc - b) / cr
	switch {
	case maxc == r:
		h = bc - gc
	case maxc == g:
		h = 2 + rc - bc
	default:
		h = 4 + gc - rc
	}
	h = h/6 + 1
	if h >= 1 {
		h--
	}
	return h, s, maxc
}

// hsvToRGB is a literal port of torchvision's _hsv2rgb for one pixel.
func hsvToRGB(h, s, v float32) (r, g, b float32) {
	h6 := h * 6
	fi := float32(int32(h6)) // h6 >= 0: truncation is floor
	f := h6 - fi
	p := clamp01(v * (1 - s))
	q := clamp01(v * (1 - s*f))
	t := clamp01(v * (1 - s*(1-f)))
	switch int32(fi) % 6 {
	case 0:
		return v, t, p
	case 1:
		return q, v, p
	case 2:
		return p, v, t
	case 3:
		return p, q, v
	case 4:
		return t, p, v
	}
	return v, p, q
}

// refHue is torchvision's adjust_hue through the literal ports.
func refHue(m Image, h float64) {
	for i := 0; i+2 < len(m.Pix); i += 3 {
		p := m.Pix[i : i+3]
		hh, s, v := rgbToHSV(p[0], p[1], p[2])
		hh += float32(h)
		if hh >= 1 {
			hh--
		} else if hh < 0 {
			hh++
		}
		p[0], p[1], p[2] = hsvToRGB(hh, s, v)
	}
}

// hue64 is the exact answer: torchvision's formulas in float64.
func hue64(r, g, b, h float64) (float64, float64, float64) {
	maxc, minc := max(r, g, b), min(r, g, b)
	cr := maxc - minc
	if cr == 0 {
		return r, g, b
	}
	var hh float64
	switch {
	case maxc == r:
		hh = (g - b) / cr
	case maxc == g:
		hh = 2 + (b-r)/cr
	default:
		hh = 4 + (r-g)/cr
	}
	hh = math.Mod(hh/6+h+2, 1) * 6
	sec := math.Floor(hh)
	f := hh - sec
	p, q, t := minc, maxc-cr*f, minc+cr*f
	switch int(sec) % 6 {
	case 0:
		return maxc, t, p
	case 1:
		return q, maxc, p
	case 2:
		return p, maxc, t
	case 3:
		return p, q, maxc
	case 4:
		return t, p, maxc
	}
	return maxc, p, q
}

func TestAdjustHueAccuracy(t *testing.T) {
	// Noise, plus pixels on sector boundaries, grays and pure colours, and
	// 8-bit values (where ties between channels are common).
	src := noise(200, 100, 13)
	special := []float32{0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1,
		0.5, 0.5, 0.25, 0.2, 0.6, 0.6, 0.3, 0.3, 0.3}
	copy(src.Pix, special)
	for i := len(special); i < len(src.Pix)/2; i++ {
		src.Pix[i] = u8[uint8(src.Pix[i]*7)*36]
	}
	var errFused, errRef float64
	for _, h := range []float64{-0.5, -0.3, -0.1, -1e-9, 0.05, 0.2, 1.0 / 3, 0.5} {
		a := Image{W: src.W, H: src.H, Pix: append([]float32(nil), src.Pix...)}
		b := Image{W: src.W, H: src.H, Pix: append([]float32(nil), src.Pix...)}
		AdjustHue(a, h)
		refHue(b, h)
		for i := 0; i < len(a.Pix); i += 3 {
			p := src.Pix[i : i+3]
			r, g, bb := hue64(float64(p[0]), float64(p[1]), float64(p[2]), float64(float32(h)))
			for c, want := range []float64{r, g, bb} {
				errFused = max(errFused, math.Abs(float64(a.Pix[i+c])-want))
				errRef = max(errRef, math.Abs(float64(b.Pix[i+c])-want))
			}
		}
	}
	// torchvision's float32 path stores H as fmod(h/6+1, 1), which rounds
	// H to 2^-24 and so moves outputs by up to ~6*2^-24 = 4e-7 before the
	// other roundings; the fused form has no such step.
	t.Logf("max error vs float64 over %d values: fused %.2g, torchvision float32 formulas %.2g",
		8*len(src.Pix), errFused, errRef)
	if errFused > 1e-6 || errFused > errRef {
		t.Errorf("fused hue error %g (torchvision's float32 formulas: %g)", errFused, errRef)
	}
}
