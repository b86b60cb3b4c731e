package augment

import (
	"math"

	"github.com/simclr-go/simclr/tensor"
)

// Luma weights of torchvision's tensor rgb_to_grayscale (ITU-R 601-2 with
// torchvision's rounding of the red weight).
const (
	lumaR float32 = 0.2989
	lumaG float32 = 0.587
	lumaB float32 = 0.114
)

// gray is computed in torch's order, (0.2989r + 0.587g) + 0.114b.
func gray(p []float32) float32 { return lumaR*p[0] + lumaG*p[1] + lumaB*p[2] }

// clamp01 clamps to [0,1] on the float's bits, with integer min/max, which
// compile to conditional moves: no branch to mispredict on noisy images,
// and no NaN/signed-zero fix-ups as in the builtin float min/max (~1.5× and
// up to 5× faster than those and branches, measured). Non-negative floats
// order as their bits do; negative ones (sign bit set) are negative int32s.
func clamp01(v float32) float32 {
	b := int32(math.Float32bits(v))
	b = min(max(b, 0), 0x3f800000) // 0x3f800000 is 1.0
	return math.Float32frombits(uint32(b))
}

// Grayscale replaces each pixel by its luma in all 3 channels.
func Grayscale(m Image) {
	pix := m.Pix[:m.W*m.H*3]
	for i := 0; i+2 < len(pix); i += 3 {
		p := pix[i : i+3 : i+3]
		g := gray(p)
		p[0], p[1], p[2] = g, g, g
	}
}

// AdjustBrightness scales every value by f and clamps (torchvision's blend
// with black).
func AdjustBrightness(m Image, f float64) {
	a := float32(f)
	pix := m.Pix[:m.W*m.H*3]
	for i, v := range pix {
		pix[i] = clamp01(a * v)
	}
}

// AdjustContrast blends with the mean luma of the whole image:
// clamp(f*x + (1-f)*mean).
func AdjustContrast(m Image, f float64) {
	pix := m.Pix[:m.W*m.H*3]
	var sum float64 // float64: a float32 running sum drifts on large images
	for i := 0; i+2 < len(pix); i += 3 {
		sum += float64(gray(pix[i : i+3 : i+3]))
	}
	mean := float32(sum / float64(m.W*m.H))
	a, bm := float32(f), float32(1-f)*mean
	for i, v := range pix {
		pix[i] = clamp01(a*v + bm)
	}
}

// AdjustSaturation blends each pixel with its own luma:
// clamp(f*x + (1-f)*gray(x)).
func AdjustSaturation(m Image, f float64) {
	a, b := float32(f), float32(1-f)
	pix := m.Pix[:m.W*m.H*3]
	for i := 0; i+2 < len(pix); i += 3 {
		p := pix[i : i+3 : i+3]
		g := b * gray(p)
		p[0] = clamp01(a*p[0] + g)
		p[1] = clamp01(a*p[1] + g)
		p[2] = clamp01(a*p[2] + g)
	}
}

// AdjustHue rotates hue by h (a fraction of a turn, |h| <= 0.5) as
// torchvision's RGB->HSV, H = (H+h) mod 1, HSV->RGB does, fused per pixel
// and simplified: a hue rotation keeps max and min (v and v(1-s)), so the
// outputs are max, min and two values between, placed by the new hue's
// sector. It agrees with torchvision's formulas to float32 rounding (see
// TestAdjustHueAccuracy).
//
// Which channel is largest and which sector a hue falls in are coin tosses
// on textured images, so both are chosen with integer selects and table
// lookups rather than branches; this ran ~2× faster than a branching form.
func AdjustHue(m Image, h float64) {
	d6 := 6 * float32(h)
	pix := m.Pix[:m.W*m.H*3]
	for i := 0; i+2 < len(pix); i += 3 {
		p := pix[i : i+3 : i+3]
		// Values are >= 0, where float bits order as the floats do.
		ri, gi, bi := math.Float32bits(p[0]), math.Float32bits(p[1]), math.Float32bits(p[2])
		maxi, mini := max(ri, gi, bi), min(ri, gi, bi)
		if maxi == mini {
			continue // gray: hue is undefined and the pixel unchanged
		}
		c := 2 // channel holding the max; ties go to r, then g, as in torch
		if gi == maxi {
			c = 1
		}
		if ri == maxi {
			c = 0
		}
		maxc, minc := math.Float32frombits(maxi), math.Float32frombits(mini)
		cr := maxc - minc
		// Hue in sixths of a turn, in [-1, 5), plus the shift: [-4, 8).
		hs := (p[hueA[c]]-p[hueB[c]])/cr + hueOff[c] + d6
		// Wrap into [0, 6): q = floor((hs+6)/6) is 0, 1 or 2.
		q := int32(hs+6) * 43 >> 8 // x*43>>8 = x/6 for 0 <= x < 128
		hs -= 6 * float32(q-1)
		if hs < 0 { // hs+6 rounded up to 6: hs is -0 to within rounding
			hs = 0
		}
		sec := int32(hs)
		f := hs - float32(sec)
		// Every output is max - cr*x with x in [0,1], so stays in [0, max].
		vals := [4]float32{maxc, minc, maxc - cr*f, maxc - cr*(1-f)} // v, p, q, t
		sel := hueSel[sec&7]
		p[0], p[1], p[2] = vals[sel&3], vals[sel>>2&3], vals[sel>>4&3]
	}
}

// hueA, hueB and hueOff give the hue in sixths by which channel is the
// max: (g-b)/cr for r, 2+(b-r)/cr for g, 4+(r-g)/cr for b.
var (
	hueA   = [4]int{1, 2, 0, 0}
	hueB   = [4]int{2, 0, 1, 0}
	hueOff = [4]float32{0, 2, 4, 0}
)

// hueSel packs, per sector, which of (v, p, q, t) = 0..3 each of R, G, B
// takes (2 bits each): torchvision's _hsv2rgb table.
var hueSel = [8]uint8{
	0 | 3<<2 | 1<<4, // sector 0: v t p
	2 | 0<<2 | 1<<4, // 1: q v p
	1 | 0<<2 | 3<<4, // 2: p v t
	1 | 2<<2 | 0<<4, // 3: p q v
	3 | 1<<2 | 0<<4, // 4: t p v
	0 | 1<<2 | 2<<4, // 5: v p q
}

// Solarize inverts values at or above threshold (torchvision's solarize).
func Solarize(m Image, threshold float32) {
	pix := m.Pix[:m.W*m.H*3]
	for i, v := range pix {
		if v >= threshold {
			pix[i] = 1 - v
		}
	}
}

// Jitter is one draw of ColorJitter: the order of the four operations
// (0 brightness, 1 contrast, 2 saturation, 3 hue) and their factors. A
// factor at its identity (1, or 0 for hue) skips the operation, as
// torchvision skips an operation whose range is empty.
type Jitter struct {
	Order                                 [4]int
	Brightness, Contrast, Saturation, Hue float64
}

// DrawJitter draws a Jitter as torchvision's ColorJitter.get_params does
// for brightness, contrast and saturation ranges [max(0,1-x), 1+x] and hue
// [-hue, hue]: a random order, then the factors of the enabled operations.
func DrawJitter(rng *tensor.RNG, brightness, contrast, saturation, hue float64) Jitter {
	j := Jitter{Order: [4]int{0, 1, 2, 3}, Brightness: 1, Contrast: 1, Saturation: 1}
	for i := 3; i > 0; i-- { // Fisher-Yates without Perm's allocation
		k := rng.IntN(i + 1)
		j.Order[i], j.Order[k] = j.Order[k], j.Order[i]
	}
	if brightness > 0 {
		j.Brightness = rng.Uniform(max(0, 1-brightness), 1+brightness)
	}
	if contrast > 0 {
		j.Contrast = rng.Uniform(max(0, 1-contrast), 1+contrast)
	}
	if saturation > 0 {
		j.Saturation = rng.Uniform(max(0, 1-saturation), 1+saturation)
	}
	if hue > 0 {
		j.Hue = rng.Uniform(-hue, hue)
	}
	return j
}

// Apply runs the jitter's operations in its order.
func (j Jitter) Apply(m Image) {
	for _, op := range j.Order {
		switch {
		case op == 0 && j.Brightness != 1:
			AdjustBrightness(m, j.Brightness)
		case op == 1 && j.Contrast != 1:
			AdjustContrast(m, j.Contrast)
		case op == 2 && j.Saturation != 1:
			AdjustSaturation(m, j.Saturation)
		case op == 3 && j.Hue != 0:
			AdjustHue(m, j.Hue)
		}
	}
}
