package resnet

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/simclr-go/simclr/nn"
)

// TestZeroInitResidual: with ZeroInitResidual the last batch norm of every
// block (bn2 of a basic block, bn3 of a bottleneck, plain or SK) starts
// with gamma 0, and every other batch norm with gamma 1; without it, all
// start at 1.
func TestZeroInitResidual(t *testing.T) {
	last := regexp.MustCompile(`^layer\d\.\d+\.bn[23]\.weight$`)
	for _, c := range []struct {
		depth int
		sk    float64
		last  string
	}{{18, 0, "bn2"}, {50, 0, "bn3"}, {18, 0.0625, "bn2"}, {50, 0.0625, "bn3"}} {
		for _, zero := range []bool{false, true} {
			t.Run(fmt.Sprintf("resnet%d sk=%g zero=%v", c.depth, c.sk, zero), func(t *testing.T) {
				r := nn.NewRegistry(1)
				if _, err := New(r, Config{Depth: c.depth, Width: 4, CIFARStem: true, SKRatio: c.sk, SKMinDim: 4, ZeroInitResidual: zero}); err != nil {
					t.Fatal(err)
				}
				blocks := 0
				for _, bn := range r.BatchNorms() {
					name := bn.Weight.Name
					want := float32(1)
					if zero && last.MatchString(name) && name[len(name)-len(c.last+".weight"):] == c.last+".weight" {
						want = 0
						blocks++
					}
					for _, g := range bn.Weight.Value.Data {
						if g != want {
							t.Fatalf("%s: gamma %g, want %g", name, g, want)
						}
					}
				}
				if want := map[int]int{18: 8, 50: 16}[c.depth]; zero && blocks != want {
					t.Errorf("%d blocks zero-initialised, want %d", blocks, want)
				}
			})
		}
	}
}
