//go:build cgo

package onednn

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/tensor"
)

// newBF16Pair returns oneDNN and the pure-Go reference in BF16, skipping
// where the CPU has no bf16 instructions (NewWithPrecision refuses there;
// TestBF16Refused checks how).
func newBF16Pair(t *testing.T) (*Backend, *purego.Backend) {
	t.Helper()
	b, err := NewWithPrecision(2, backend.BF16)
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(b.Close)
	return b, purego.NewWithPrecision(2, backend.BF16)
}

// In BF16 both backends multiply the same bfloat16 values (the inputs
// rounded to nearest even) exactly and sum the products in float32, so they
// differ only by the order of the float32 sums: the float32 tolerance tolSum
// holds, and a result rounded anywhere to bfloat16 (relative error ~4e-3)
// would fail it.

func TestBF16ConvAgainstPurego(t *testing.T) {
	fast, ref := newBF16Pair(t)
	for ci, cs := range convCases {
		t.Run(cs.name, func(t *testing.T) {
			p := cs.p
			rng := tensor.NewRNG(3, "onednn-conv-bf16", uint64(ci))
			nx, nw, ny := convSizes(p)
			x, w, bias, dy := randn(rng, nx, 0, 1), randn(rng, nw, 0, 1), randn(rng, p.K, 0, 1), randn(rng, ny, 0, 1)
			got, want := nans(ny), nans(ny)
			fast.Conv2DForward(p, x, w, bias, got)
			ref.Conv2DForward(p, x, w, bias, want)
			closeTo(t, "y", got, want, tolSum)
			got, want = nans(nx), nans(nx)
			fast.Conv2DBackwardData(p, dy, w, got)
			ref.Conv2DBackwardData(p, dy, w, want)
			closeTo(t, "dx", got, want, tolSum)
			gw, ww, gb, wb := nans(nw), nans(nw), nans(p.K), nans(p.K)
			fast.Conv2DBackwardWeights(p, x, dy, gw, gb)
			ref.Conv2DBackwardWeights(p, x, dy, ww, wb)
			closeTo(t, "dw", gw, ww, tolSum)
			closeTo(t, "db", gb, wb, tolSum)
		})
	}
}

// TestBF16Implementations: every pass of the ResNet layers (forward,
// backward data, backward weights) runs a kernel with bf16 instructions,
// never a reference or an f32 one.
func TestBF16Implementations(t *testing.T) {
	fast, _ := newBF16Pair(t)
	t.Logf("backend name: %s", fast.Name())
	passes := []string{"fwd", "fwd+bias", "bwd_data", "bwd_weights", "bwd_weights+bias"}
	convs := resnet18Convs(64)
	convs = append(convs, struct {
		name string
		p    backend.Conv2D
	}{"imagenet_stem_7x7_s2", conv(64, 224, 224, 3, 64, 7, 7, 2, 2, 3, 3, 1, 1, 1)})
	for _, c := range convs {
		var impls []string
		for pass := PassForward; pass <= PassBackwardWeightsBias; pass++ {
			impl, err := fast.ConvImpl(c.p, pass)
			if err != nil {
				t.Fatal(err)
			}
			impls = append(impls, passes[pass]+"="+impl)
			if !nativeBF16(impl) {
				t.Errorf("%s %s: %q is not a bf16 kernel", c.name, passes[pass], impl)
			}
		}
		t.Logf("%-24s %s", c.name, strings.Join(impls, " "))
	}
	for _, tr := range [][2]bool{{false, true}, {true, false}, {false, false}} {
		impl, err := fast.MatMulImpl(tr[0], tr[1], 512, 2048, 512)
		if err != nil {
			t.Fatal(err)
		}
		if !nativeBF16(impl) {
			t.Errorf("matmul transA=%v transB=%v: %q is not a bf16 kernel", tr[0], tr[1], impl)
		}
		t.Logf("matmul transA=%v transB=%v: %s", tr[0], tr[1], impl)
	}
}

func TestBF16LayerGemmAgainstPurego(t *testing.T) {
	fast, ref := newBF16Pair(t)
	for si, sz := range []struct{ m, n, k int }{{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {64, 130, 31}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				t.Run(fmt.Sprintf("%dx%dx%d tA=%v tB=%v", sz.m, sz.n, sz.k, ta, tb), func(t *testing.T) {
					rng := tensor.NewRNG(5, "onednn-layergemm-bf16", uint64(si))
					a, bm := randn(rng, sz.m*sz.k, 0, 1), randn(rng, sz.k*sz.n, 0, 1)
					got, want := nans(sz.m*sz.n), nans(sz.m*sz.n)
					fast.LayerGemm(ta, tb, sz.m, sz.n, sz.k, a, bm, got)
					ref.LayerGemm(ta, tb, sz.m, sz.n, sz.k, a, bm, want)
					closeTo(t, "c", got, want, tolSum)
				})
			}
		}
	}
}

// TestBF16DiffersFromFP32: the bf16 backend's results differ from float32
// ones by about bfloat16's precision, so bf16 is really in use.
func TestBF16DiffersFromFP32(t *testing.T) {
	b16, _ := newBF16Pair(t)
	f32, err := New(2)
	if err != nil {
		t.Fatal(err)
	}
	defer f32.Close()
	p := conv(4, 8, 8, 64, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1)
	rng := tensor.NewRNG(7, "onednn-bf16-vs-fp32")
	nx, nw, ny := convSizes(p)
	x, w := randn(rng, nx, 0, 1), randn(rng, nw, 0, 1)
	y16, y32 := nans(ny), nans(ny)
	b16.Conv2DForward(p, x, w, nil, y16)
	f32.Conv2DForward(p, x, w, nil, y32)
	var d, n float64
	for i := range y32 {
		d += float64(y16[i]-y32[i]) * float64(y16[i]-y32[i])
		n += float64(y32[i]) * float64(y32[i])
	}
	if rel := d / n; rel < 2e-4*2e-4 || rel > 1e-2*1e-2 {
		t.Errorf("bf16 and fp32 convolutions differ by %.3g relative, want about 2^-9 (2e-4..1e-2)", rel)
	}
}

// TestBF16Refused: where oneDNN would emulate bf16 (here, forced by
// ONEDNN_MAX_CPU_ISA in a child process) NewWithPrecision refuses and says
// what the CPU lacks.
func TestBF16Refused(t *testing.T) {
	if os.Getenv("SIMCLR_TEST_BF16_CHILD") == "1" {
		_, err := NewWithPrecision(1, backend.BF16)
		fmt.Printf("error: %v\n", err)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBF16Refused$")
	cmd.Env = append(os.Environ(), "SIMCLR_TEST_BF16_CHILD=1", "ONEDNN_MAX_CPU_ISA=AVX512_CORE")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(string(out), "bf16 needs a CPU with AVX512_BF16 or AMX instructions") {
		t.Errorf("child printed %q, want the refusal", out)
	}
}
