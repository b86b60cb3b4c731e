package train

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/internal/fuzzcheck"
)

// fuzzConfig is the smallest pretraining run: a ResNet-18 of width 1.
func fuzzConfig() Config {
	c := tinyConfig(4)
	c.Model.Encoder.Width = 1
	c.Model.ProjHidden = []int{4}
	c.Model.ProjOut = 2
	return c
}

// FuzzResume resumes a run from arbitrary bytes. Nothing may panic; an
// error must name the file; and a checkpoint accepted must give, saved
// again and resumed by a fresh run, the same step, parameters and
// optimiser state.
func FuzzResume(f *testing.F) {
	be := purego.New(1)
	f.Fuzz(func(t *testing.T, raw []byte) {
		path := fuzzcheck.WriteTemp(t, "checkpoint.safetensors", raw)
		p, err := NewPretrainer(fuzzConfig(), be, noiseSource{})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Resume(path); err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		again := filepath.Join(t.TempDir(), "again.safetensors")
		if err := p.Save(again); err != nil {
			t.Fatalf("saving a resumed run: %v", err)
		}
		q, err := NewPretrainer(fuzzConfig(), be, noiseSource{})
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Resume(again); err != nil {
			t.Fatalf("resuming from what a resumed run saved: %v", err)
		}
		if q.Step != p.Step {
			t.Fatalf("step %d came back as %d", p.Step, q.Step)
		}
		want, got := p.Model.Params.State(), q.Model.Params.State()
		for name, x := range want {
			if y := got[name]; y == nil || !sameBits(x.Data, y.Data) {
				t.Fatalf("%s did not come back unchanged", name)
			}
		}
		for i := range p.velocity {
			if !sameBits(p.velocity[i], q.velocity[i]) {
				t.Fatalf("optimiser state %d did not come back unchanged", i)
			}
		}
	})
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
