package train

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/dist"
	"github.com/simclr-go/simclr/tensor"
)

// memoryConfig is tinyConfig with a memory of 12 entries: each step
// enqueues 8 projections, so the queue is partly filled after step 1 and
// wraps around in step 2.
func memoryConfig(steps int) Config {
	c := tinyConfig(steps)
	c.MemorySize, c.MemoryMomentum = 12, 0.9
	return c
}

func sameTensors(t *testing.T, what string, a, b map[string]*tensor.Tensor) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d tensors vs %d", what, len(a), len(b))
	}
	for name, ta := range a {
		for i, v := range ta.Data {
			if b[name].Data[i] != v {
				t.Fatalf("%s: %s[%d] differs after resume: %g vs %g", what, name, i, b[name].Data[i], v)
			}
		}
	}
}

// TestMemoryResumeIsExact is TestResumeIsExact with the memory on: the
// checkpoint carries the momentum model and the queue, so three steps, a
// restart and three more give the uninterrupted run's losses, parameters,
// momentum model and queue bit for bit; with either kind of positives.
func TestMemoryResumeIsExact(t *testing.T) {
	for _, positives := range []string{"", "momentum"} {
		t.Run("positives="+positives, func(t *testing.T) { testMemoryResume(t, positives) })
	}
}

func testMemoryResume(t *testing.T, positives string) {
	be := purego.New(2)
	cfg := memoryConfig(6)
	cfg.MemoryPositives = positives
	full, err := NewPretrainer(cfg, be, noiseSource{})
	if err != nil {
		t.Fatal(err)
	}
	var want []float64
	for !full.Done() {
		st, err := full.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, st.Loss)
	}

	path := filepath.Join(t.TempDir(), "ck.safetensors")
	first, _ := NewPretrainer(cfg, be, noiseSource{})
	for i := 0; i < 3; i++ {
		if _, err := first.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	if q := first.Memory.Queue; q.Len() != 12 || q.Ptr != 0 {
		t.Fatalf("after 3 steps of 8 rows: queue len %d ptr %d, want 12 and 0", q.Len(), q.Ptr)
	}
	if err := first.Save(path); err != nil {
		t.Fatal(err)
	}
	second, _ := NewPretrainer(cfg, be, noiseSource{})
	if err := second.Resume(path); err != nil {
		t.Fatal(err)
	}
	for i := 3; i < 6; i++ {
		st, err := second.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		if st.Loss != want[i] {
			t.Errorf("step %d: loss %.9g after resume, %.9g uninterrupted", i, st.Loss, want[i])
		}
	}
	sameTensors(t, "model", full.Model.Params.State(), second.Model.Params.State())
	sameTensors(t, "momentum model", full.Memory.Model.Params.State(), second.Memory.Model.Params.State())
	qa, qb := full.Memory.Queue, second.Memory.Queue
	if qa.Ptr != qb.Ptr || qa.Filled != qb.Filled {
		t.Fatalf("queue pointer %d/%d vs %d/%d", qb.Ptr, qb.Filled, qa.Ptr, qa.Filled)
	}
	for i, v := range qa.Data.Data {
		if qb.Data.Data[i] != v {
			t.Fatalf("queue[%d] differs after resume", i)
		}
	}
	for i, c := range full.Memory.Model.Params.Counters() {
		if second.Memory.Model.Params.Counters()[i].Value != c.Value {
			t.Fatalf("%s differs after resume", c.Name)
		}
	}
}

// TestMemoryTraining: the memory changes the loss from the second step
// on (the first has an empty queue: it is NTXent's), no gradient reaches the momentum
// model, and the momentum model moves but lags the online one.
func TestMemoryTraining(t *testing.T) {
	be := purego.New(2)
	plain, _ := NewPretrainer(tinyConfig(3), be, noiseSource{})
	mem, err := NewPretrainer(memoryConfig(3), be, noiseSource{})
	if err != nil {
		t.Fatal(err)
	}
	init := mem.Memory.Model.Params.Params()[0].Value.Clone()
	for i := 0; i < 3; i++ {
		a, err := plain.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		b, err := mem.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && a.Loss != b.Loss {
			t.Errorf("step 0 (empty queue): loss %g with memory, %g without", b.Loss, a.Loss)
		}
		if i == 1 && b.Loss <= a.Loss {
			// Step 0 had an empty queue, so both models are the same
			// now: extra negatives can only raise the loss.
			t.Errorf("step %d: loss %g with memory, not above %g without", i, b.Loss, a.Loss)
		}
		if want := min(8*(i+1), 12); mem.Memory.Queue.Len() != want {
			t.Errorf("after step %d: queue holds %d, want %d", i, mem.Memory.Queue.Len(), want)
		}
	}
	if !mem.Model.Params.Params()[0].HasGrad(mem.tape) {
		t.Error("online model got no gradient")
	}
	for _, p := range mem.Memory.Model.Params.Params() {
		if p.HasGrad(mem.tape) || p.HasGrad(mem.Memory.Tape()) {
			t.Fatalf("momentum %s has a gradient", p.Name)
		}
		for _, g := range p.Grad.Data {
			if g != 0 {
				t.Fatalf("momentum %s has a non-zero gradient", p.Name)
			}
		}
	}
	moved, lags := false, false
	online := mem.Model.Params.Params()[0].Value.Data
	for i, v := range mem.Memory.Model.Params.Params()[0].Value.Data {
		moved = moved || v != init.Data[i]
		lags = lags || v != online[i]
	}
	if !moved || !lags {
		t.Errorf("momentum model moved %v, differs from the online one %v", moved, lags)
	}
}

// TestMemoryMomentumPositives: with MoCo's positives the loss differs from
// the online-positive memory loss from the first step on (the positives
// differ even with an empty queue), and what is enqueued is exactly the
// keys the step's loss used.
func TestMemoryMomentumPositives(t *testing.T) {
	be := purego.New(2)
	online, _ := NewPretrainer(memoryConfig(2), be, noiseSource{})
	cfg := memoryConfig(2)
	cfg.MemoryPositives = "momentum"
	moco, err := NewPretrainer(cfg, be, noiseSource{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		a, err := online.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		b, err := moco.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		if a.Loss == b.Loss {
			t.Errorf("step %d: the same loss %g with online and momentum positives", i, a.Loss)
		}
		q := moco.Memory.Queue.Ordered()
		newest := q[len(q)-len(moco.keys):]
		for j, v := range moco.keys {
			if newest[j] != v {
				t.Fatalf("step %d: queue entry %d is %g, the step's key %g", i, j, newest[j], v)
			}
		}
	}
	bad := memoryConfig(2)
	bad.MemoryPositives = "teacher"
	if _, err := NewPretrainer(bad, be, noiseSource{}); err == nil || !strings.Contains(err.Error(), "teacher") {
		t.Errorf("memory positives \"teacher\": %v", err)
	}
}

// TestMemoryConfig: a config without memory marshals as before (so old
// checkpoints resume), bad memory settings are rejected, and the memory
// refuses data-parallel training.
func TestMemoryConfig(t *testing.T) {
	raw, _ := json.Marshal(tinyConfig(2))
	if strings.Contains(string(raw), "memory") {
		t.Errorf("memory settings in a config without memory: %s", raw)
	}
	for _, mod := range []func(*Config){
		func(c *Config) { c.MemorySize = -1 },
		func(c *Config) { c.MemorySize, c.MemoryMomentum = 8, 1 },
		func(c *Config) { c.MemorySize, c.MemoryMomentum = 8, -0.1 },
	} {
		c := tinyConfig(2)
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("accepted memory size %d momentum %g", c.MemorySize, c.MemoryMomentum)
		}
	}
	p, _ := NewPretrainer(memoryConfig(2), purego.New(1), noiseSource{})
	err := p.SetComm(dist.NewLocal(2, 0)[0], DistOptions{})
	if err == nil || !strings.Contains(err.Error(), "one process") {
		t.Errorf("SetComm with the memory on: %v", err)
	}
	// A checkpoint without the memory does not resume a run with it.
	path := filepath.Join(t.TempDir(), "ck.safetensors")
	q, _ := NewPretrainer(tinyConfig(2), purego.New(1), noiseSource{})
	if err := q.Save(path); err != nil {
		t.Fatal(err)
	}
	if err := p.Resume(path); err == nil {
		t.Error("resumed a memory run from a checkpoint without memory")
	}
}
