package tensor

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
)

// RNG is a seeded pseudo-random stream. Streams are derived from a seed and a
// purpose string plus indices, never from call order elsewhere in the
// program, so that every random draw (initialisation, shuffling, each
// sample's augmentation) is reproducible on its own.
type RNG struct {
	r *rand.Rand
}

// NewRNG returns the stream for (seed, purpose, idx...).
func NewRNG(seed uint64, purpose string, idx ...uint64) *RNG {
	h := fnv.New64a()
	h.Write([]byte(purpose))
	s2 := h.Sum64()
	for _, i := range idx {
		s2 = mix(s2 ^ mix(i+0x9e3779b97f4a7c15))
	}
	return &RNG{r: rand.New(rand.NewPCG(mix(seed), s2))}
}

// mix is the splitmix64 finaliser: it spreads nearby integers far apart.
func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Float64 returns a uniform value in [0, 1).
func (g *RNG) Float64() float64 { return g.r.Float64() }

// Uniform returns a uniform value in [lo, hi).
func (g *RNG) Uniform(lo, hi float64) float64 { return lo + (hi-lo)*g.r.Float64() }

// Normal returns a standard normal value.
func (g *RNG) Normal() float64 { return g.r.NormFloat64() }

// IntN returns a uniform integer in [0, n).
func (g *RNG) IntN(n int) int { return g.r.IntN(n) }

// Perm returns a random permutation of [0, n).
func (g *RNG) Perm(n int) []int { return g.r.Perm(n) }

// FillNormal fills t with N(0, std²) values.
func (g *RNG) FillNormal(t *Tensor, std float64) {
	for i := range t.Data {
		t.Data[i] = float32(g.r.NormFloat64() * std)
	}
}

// FillUniform fills t with U[lo, hi) values.
func (g *RNG) FillUniform(t *Tensor, lo, hi float64) {
	for i := range t.Data {
		t.Data[i] = float32(lo + (hi-lo)*g.r.Float64())
	}
}

// KaimingNormalFanOut initialises a convolution weight [O, I/groups, KH, KW]
// as torchvision does for ResNets: N(0, 2/fan_out), fan_out = O*KH*KW.
func (g *RNG) KaimingNormalFanOut(w *Tensor) {
	fanOut := w.Shape[0]
	for _, d := range w.Shape[2:] {
		fanOut *= d
	}
	g.FillNormal(w, math.Sqrt(2/float64(fanOut)))
}

// truncStdRatio is the standard deviation of a unit normal truncated to
// [-2, 2]: dividing by it keeps the truncated draw's variance at std².
const truncStdRatio = 0.87962566103423978

// VarianceScalingFanIn initialises a convolution weight [O, I/groups, KH,
// KW] or a linear weight [out, in] as the official SimCLR code does
// (TensorFlow's VarianceScaling(): scale 1, fan in, truncated normal):
// values in two standard deviations of N(0, σ²), with σ chosen so that the
// variance is 1/fan_in, fan_in = I/groups*KH*KW (in for a linear layer).
func (g *RNG) VarianceScalingFanIn(w *Tensor) {
	fanIn := 1
	for _, d := range w.Shape[1:] {
		fanIn *= d
	}
	std := math.Sqrt(1/float64(fanIn)) / truncStdRatio
	for i := range w.Data {
		v := g.r.NormFloat64()
		for v < -2 || v > 2 {
			v = g.r.NormFloat64()
		}
		w.Data[i] = float32(v * std)
	}
}

// KaimingUniformLinear initialises a linear layer [out, in] (and its bias, if
// not nil) as torch.nn.Linear does: U(-1/sqrt(in), 1/sqrt(in)).
func (g *RNG) KaimingUniformLinear(w, b *Tensor) {
	bound := 1 / math.Sqrt(float64(w.Shape[1]))
	g.FillUniform(w, -bound, bound)
	if b != nil {
		g.FillUniform(b, -bound, bound)
	}
}
