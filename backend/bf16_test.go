package backend

import (
	"math"
	"testing"
)

func TestRoundBF16(t *testing.T) {
	ulp := float32(math.Ldexp(1, -7)) // bfloat16's spacing in [1, 2)
	inf := float32(math.Inf(1))
	for _, c := range []struct{ in, want float32 }{
		{1, 1},
		{1 + ulp/2, 1},                    // tie: to even (1)
		{1 + ulp + ulp/2, 1 + 2*ulp},      // tie: to even (1+2ulp)
		{1 + ulp/2 + ulp/64, 1 + ulp},     // above the tie: up
		{-(1 + ulp/2 + ulp/64), -1 - ulp}, // sign is kept
		{3.14159265, 3.140625},
		{0, 0},
		{inf, inf},
		{-inf, -inf},
		{math.MaxFloat32, inf}, // beyond bfloat16's largest finite value
		{1e-40, math.Float32frombits(0x00010000)}, // subnormals (0x000116c2) round too
	} {
		if got := RoundBF16(c.in); got != c.want {
			t.Errorf("RoundBF16(%g) = %g, want %g", c.in, got, c.want)
		}
	}
	if neg := RoundBF16(float32(math.Copysign(0, -1))); math.Float32bits(neg) != 0x80000000 {
		t.Errorf("RoundBF16(-0) = %g, want -0", neg)
	}
	for _, bits := range []uint32{0x7fc00000, 0x7f800001, 0x7fffffff, 0xffffffff} {
		if got := RoundBF16(math.Float32frombits(bits)); !math.IsNaN(float64(got)) {
			t.Errorf("RoundBF16(NaN %#x) = %g, want NaN", bits, got)
		}
	}
	// Every result is a bfloat16: its low 16 bits are zero.
	for _, v := range []float32{0.1, -7.77, 1e30, 6e-39} {
		if b := math.Float32bits(RoundBF16(v)); b&0xffff != 0 {
			t.Errorf("RoundBF16(%g) has low bits %#x", v, b&0xffff)
		}
	}
}

func TestParsePrecision(t *testing.T) {
	for _, name := range PrecisionNames() {
		p, err := ParsePrecision(name)
		if err != nil || p.String() != name {
			t.Errorf("ParsePrecision(%q) = %v, %v", name, p, err)
		}
	}
	if _, err := ParsePrecision("fp16"); err == nil {
		t.Error("ParsePrecision(fp16): no error")
	}
}
