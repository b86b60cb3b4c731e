package augment

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/simclr-go/simclr/tensor"
)

func mustPipeline(t testing.TB, c Config) *Pipeline {
	t.Helper()
	p, err := NewPipeline(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// everything turns every operation on, solarisation included.
func everything(size int, interp Interpolation) Config {
	c := ImageNetDefaults(size)
	c.Interp = interp
	c.SolarizeP = 0.3
	return c
}

func TestPipelineDeterminism(t *testing.T) {
	src := noise(50, 40, 3)
	p := mustPipeline(t, everything(24, Bicubic))
	n := p.ViewLen()
	a, b := make([]float32, n), make([]float32, n)
	p.Apply(src, a, 7, 1, 2, 0)
	p.ApplyScratch(new(Scratch), src, b, 7, 1, 2, 0)
	if !equal(a, b) {
		t.Fatal("same seed/epoch/index/view gave different views")
	}
	for _, other := range [][4]uint64{{7, 1, 2, 1}, {7, 2, 2, 0}, {7, 1, 3, 0}, {8, 1, 2, 0}} {
		p.Apply(src, b, other[0], other[1], other[2], other[3])
		if equal(a, b) {
			t.Errorf("(seed, epoch, index, view) %v gave the same view as (7, 1, 2, 0)", other)
		}
	}

	// Workers in any order and with any scratch history agree.
	const views = 64
	want := make([][]float32, views)
	for v := range want {
		want[v] = make([]float32, n)
		p.ApplyScratch(new(Scratch), src, want[v], 7, 0, uint64(v), 1)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			got := make([]float32, n)
			for v := views - 1 - w; v >= 0; v -= 4 {
				p.Apply(src, got, 7, 0, uint64(v), 1)
				if !equal(got, want[v]) {
					t.Errorf("view %d differs when computed concurrently", v)
				}
			}
		})
	}
	wg.Wait()
}

func TestPipelineOutputInRange(t *testing.T) {
	src := noise(64, 48, 4)
	for _, interp := range []Interpolation{Bilinear, Bicubic} {
		p := mustPipeline(t, everything(32, interp))
		dst := make([]float32, p.ViewLen())
		for v := range 300 {
			p.Apply(src, dst, 1, 0, 0, uint64(v))
			for i, x := range dst {
				if !(x >= 0 && x <= 1) {
					t.Fatalf("%v view %d: value %d = %g outside [0,1]", interp, v, i, x)
				}
			}
		}
	}
}

// Coins are drawn whatever their probability, so forcing one operation on
// changes nothing else: the forced view is the plain one with that
// operation applied.
func TestPipelineForcedOperations(t *testing.T) {
	src := noise(60, 45, 5)
	base := ImageNetDefaults(28)
	base.FlipP, base.GrayP, base.BlurP = 0, 0, 0
	plain := mustPipeline(t, base)
	ops := map[string]struct {
		set func(*Config)
		op  func(Image)
	}{
		"flip": {func(c *Config) { c.FlipP = 1 }, HFlip},
		"gray": {func(c *Config) { c.GrayP = 1 }, Grayscale},
	}
	for name, o := range ops {
		c := base
		o.set(&c)
		forced := mustPipeline(t, c)
		for v := range 20 {
			want := NewImage(28, 28)
			plain.Apply(src, want.Pix, 2, 0, 0, uint64(v))
			o.op(want)
			got := make([]float32, len(want.Pix))
			forced.Apply(src, got, 2, 0, 0, uint64(v))
			if !equal(got, want.Pix) {
				t.Fatalf("%s forced, view %d: not the plain view with %s applied", name, v, name)
			}
		}
	}
}

func TestGrayscaleEqualChannels(t *testing.T) {
	m := noise(9, 7, 6)
	Grayscale(m)
	for i := 0; i < len(m.Pix); i += 3 {
		if m.Pix[i] != m.Pix[i+1] || m.Pix[i] != m.Pix[i+2] {
			t.Fatalf("pixel %d: %v", i/3, m.Pix[i:i+3])
		}
	}
	c := CIFARDefaults(16)
	c.GrayP = 1
	p := mustPipeline(t, c)
	dst := make([]float32, p.ViewLen())
	p.Apply(noise(20, 20, 7), dst, 0, 0, 0, 0)
	for i := 0; i < len(dst); i += 3 {
		if dst[i] != dst[i+1] || dst[i] != dst[i+2] {
			t.Fatalf("pipeline with GrayP=1: pixel %d: %v", i/3, dst[i:i+3])
		}
	}
}

func TestBlurConstantImage(t *testing.T) {
	s := new(Scratch)
	for _, k := range []int{3, 5, 23, 31} {
		for _, sigma := range []float64{0.1, 0.7, 2, 5} {
			m := NewImage(20, 12) // k=31 exceeds the sides: reflection wraps
			for i := range m.Pix {
				m.Pix[i] = 0.3 + 0.1*float32(i%3)
			}
			GaussianBlur(m, k, sigma, s)
			for i, v := range m.Pix {
				if want := 0.3 + 0.1*float32(i%3); abs32(v-want) > 1e-6 {
					t.Fatalf("k=%d sigma=%g: value %d = %g, want %g", k, sigma, i, v, want)
				}
			}
		}
	}
}

func abs32(v float32) float32 { return max(v, -v) }

func TestBlurTrimmedTapsAreExact(t *testing.T) {
	// With sigma 0.1 every tap but the centre is below 1e-21: the blur
	// must be the identity, as torchvision's full kernel is in float32.
	src := noise(30, 20, 8)
	m := Image{W: src.W, H: src.H, Pix: append([]float32(nil), src.Pix...)}
	GaussianBlur(m, 23, 0.1, nil)
	if !equal(m.Pix, src.Pix) {
		t.Error("sigma 0.1 blur changed the image")
	}
	if BlurKernelSize(224) != 23 || BlurKernelSize(32) != 3 || BlurKernelSize(96) != 9 {
		t.Errorf("kernel sizes %d %d %d", BlurKernelSize(224), BlurKernelSize(32), BlurKernelSize(96))
	}
}

func TestFlipTwiceIsIdentity(t *testing.T) {
	for _, w := range []int{1, 4, 7} {
		src := noise(w, 5, 9)
		m := Image{W: src.W, H: src.H, Pix: append([]float32(nil), src.Pix...)}
		HFlip(m)
		if w > 1 && equal(m.Pix, src.Pix) {
			t.Errorf("w=%d: flip changed nothing", w)
		}
		if got, want := m.Pix[:3], src.Pix[(w-1)*3:w*3]; !equal(got, want) {
			t.Errorf("w=%d: first pixel %v, want the last %v", w, got, want)
		}
		HFlip(m)
		if !equal(m.Pix, src.Pix) {
			t.Errorf("w=%d: flip twice is not the identity", w)
		}
	}
}

func TestPipelineAllocatesOnlyTheRNG(t *testing.T) {
	p := mustPipeline(t, everything(32, Bilinear))
	src := noise(48, 40, 10)
	dst := make([]float32, p.ViewLen())
	s := new(Scratch)
	v := uint64(0)
	got := testing.AllocsPerRun(200, func() {
		p.ApplyScratch(s, src, dst, 1, 0, 0, v)
		v++
	})
	rng := testing.AllocsPerRun(200, func() { tensor.NewRNG(1, "augment", 0, 0, v) })
	pooled := testing.AllocsPerRun(200, func() { p.Apply(src, dst, 1, 0, 0, v); v++ })
	t.Logf("allocs per view: %g (ApplyScratch), %g (Apply), of which tensor.NewRNG %g", got, pooled, rng)
	if got > rng || (pooled > rng && !raceEnabled) {
		t.Errorf("allocs per view %g / %g, more than tensor.NewRNG's %g", got, pooled, rng)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{ImageNetDefaults(224), CIFARDefaults(32), everything(8, Bicubic)} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	in, ci := ImageNetDefaults(224), CIFARDefaults(32)
	if in.ColorStrength != 1 || in.BlurP != 0.5 || ci.ColorStrength != 0.5 || ci.BlurP != 0 ||
		in.ColorP != 0.8 || in.GrayP != 0.2 || in.FlipP != 0.5 || in.Scale != [2]float64{0.08, 1} {
		t.Errorf("presets: %+v %+v", in, ci)
	}
	bad := []func(*Config){
		func(c *Config) { c.Size = 0 },
		func(c *Config) { c.Scale = [2]float64{0.5, 0.2} },
		func(c *Config) { c.Ratio = [2]float64{0, 1} },
		func(c *Config) { c.Interp = 7 },
		func(c *Config) { c.FlipP = 1.5 },
		func(c *Config) { c.GrayP = -0.1 },
		func(c *Config) { c.BlurSigma = [2]float64{0, 1} },
		func(c *Config) { c.BlurKernel = 4 },
		func(c *Config) { c.ColorStrength = -1 },
	}
	for i, f := range bad {
		c := ImageNetDefaults(32)
		f(&c)
		if _, err := NewPipeline(c); err == nil {
			t.Errorf("bad config %d accepted: %+v", i, c)
		}
	}
}

func TestWriteGrid(t *testing.T) {
	p := mustPipeline(t, ImageNetDefaults(32))
	srcs := []Image{noise(40, 30, 11), noise(64, 64, 12)}
	path := filepath.Join(t.TempDir(), "grid.png")
	if err := WriteGrid(path, p, srcs, 3, 1); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Bounds(), image.Rect(0, 0, 4*34+2, 2*34+2); got != want {
		t.Errorf("grid bounds %v, want %v", got, want)
	}
	// Cell (row 1, view 2) is exactly that view.
	view := NewImage(32, 32)
	p.Apply(srcs[1], view.Pix, 1, 0, 1, 2)
	want := view.NRGBA()
	for y := range 32 {
		for x := range 32 {
			r, g, b, _ := m.At(2+3*34+x, 2+34+y).RGBA()
			wr, wg, wb, _ := want.At(x, y).RGBA()
			if r != wr || g != wg || b != wb {
				t.Fatalf("grid pixel (%d,%d) of row 1 view 2 differs", x, y)
			}
		}
	}
}
