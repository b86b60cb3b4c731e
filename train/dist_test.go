package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/dist"
)

// shardSource gives rank Rank of Size its part of another source's global
// views: its contiguous Batch/Size images, first views then second views,
// as AugmentedViews with a data.Shard does.
type shardSource struct {
	src         ViewSource
	batch       int // global images per step
	viewLen     int // floats per view
	rank, ranks int
}

func (s shardSource) Views(ctx context.Context, step int, dst []float32) error {
	all := make([]float32, 2*s.batch*s.viewLen)
	if err := s.src.Views(ctx, step, all); err != nil {
		return err
	}
	n := s.batch / s.ranks
	v := n * s.viewLen
	if len(dst) != 2*v {
		return fmt.Errorf("views buffer of %d values, want %d", len(dst), 2*v)
	}
	copy(dst[:v], all[s.rank*v:(s.rank+1)*v])
	copy(dst[v:], all[s.batch*s.viewLen+s.rank*v:s.batch*s.viewLen+(s.rank+1)*v])
	return nil
}

func (s shardSource) StepsPerEpoch() int { return s.src.StepsPerEpoch() }

// parallelRun trains cfg on k in-process ranks for steps steps and returns
// rank 0's losses and every rank's final state. before, if set, runs on
// each rank after SetComm (to resume).
func parallelRun(t *testing.T, cfg Config, k, steps int, o DistOptions, before func(*Pretrainer) error) ([]float64, []*Pretrainer) {
	t.Helper()
	comms := dist.NewLocal(k, 0)
	ps := make([]*Pretrainer, k)
	losses := make([][]float64, k)
	errs := make([]error, k)
	var wg sync.WaitGroup
	for r, c := range comms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[r] = func() error {
				src := shardSource{noiseSource{}, cfg.Batch, cfg.ImageSize * cfg.ImageSize * 3, r, k}
				p, err := NewPretrainer(cfg, purego.New(1), src)
				if err != nil {
					return err
				}
				ps[r] = p
				if err := p.SetComm(c, o); err != nil {
					return err
				}
				if before != nil {
					if err := before(p); err != nil {
						return err
					}
				}
				for i := 0; i < steps; i++ {
					st, err := p.TrainStep()
					if err != nil {
						return err
					}
					losses[r] = append(losses[r], st.Loss)
				}
				return nil
			}()
		}()
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	for r := 1; r < k; r++ {
		for i := range losses[0] {
			if losses[r][i] != losses[0][i] {
				t.Fatalf("step %d: rank %d reports loss %v, rank 0 %v", i, r, losses[r][i], losses[0][i])
			}
		}
	}
	return losses[0], ps
}

// stateDiff is the largest difference between two models' parameters and
// buffers relative to the tensor's largest value, and where it is.
func stateDiff(a, b *Pretrainer) (float64, string) {
	worst, where := 0.0, ""
	sb := b.Model.Params.State()
	for name, ta := range a.Model.Params.State() {
		var d, s float64
		for i, v := range ta.Data {
			d = max(d, math.Abs(float64(v)-float64(sb[name].Data[i])))
			s = max(s, math.Abs(float64(v)))
		}
		if r := d / max(s, 1e-12); r > worst {
			worst, where = r, name
		}
	}
	return worst, where
}

// dpConfig is tinyConfig with a global batch of 8 (4 images per rank).
func dpConfig(steps int) Config {
	c := tinyConfig(steps)
	c.Batch = 8
	return c
}

// TestDataParallelMatchesOneProcess: two processes with 4 images each
// train as one process with the 8 images does: same losses and
// parameters after 4 steps, to float32 rounding (the per-step sums are
// split and added in another order, a relative 1e-7 per operation, and
// four LARS steps carry the differences into the weights). Ranks stay
// bitwise identical. Without global batch norm the run visibly differs,
// so the comparison can fail.
func TestDataParallelMatchesOneProcess(t *testing.T) {
	const steps, k = 4, 2
	cfg := dpConfig(steps)
	one, err := NewPretrainer(cfg, purego.New(1), noiseSource{})
	if err != nil {
		t.Fatal(err)
	}
	var want []float64
	for i := 0; i < steps; i++ {
		st, err := one.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, st.Loss)
	}
	compare := func(o DistOptions) (lossDiff, paramDiff float64, where string) {
		got, ps := parallelRun(t, cfg, k, steps, o, nil)
		for i := range want {
			lossDiff = max(lossDiff, math.Abs(got[i]-want[i])/want[i])
		}
		// With per-process batch norm the running statistics differ
		// between ranks by design; with global batch norm nothing does.
		if d, w := stateDiff(ps[1], ps[0]); d != 0 && !o.LocalBatchNorm {
			t.Errorf("ranks 0 and 1 differ after %d steps (%s by %.3g)", steps, w, d)
		}
		paramDiff, where = stateDiff(ps[0], one)
		return
	}
	ld, pd, where := compare(DistOptions{})
	t.Logf("global BN: loss within %.3g, parameters within %.3g (%s) of one process", ld, pd, where)
	if ld > 1e-5 || pd > 1e-4 {
		t.Errorf("two processes differ from one: loss by %.3g, parameters by %.3g (%s)", ld, pd, where)
	}
	ld, pd, where = compare(DistOptions{LocalBatchNorm: true})
	t.Logf("local BN: loss within %.3g, parameters within %.3g (%s) of one process", ld, pd, where)
	if ld < 1e-3 && pd < 1e-2 {
		t.Errorf("per-process batch norm is as close as global batch norm: the comparison cannot detect it")
	}
}

// TestDataParallelSmallBuckets: gradients averaged in many small
// messages give the same result as in one.
func TestDataParallelSmallBuckets(t *testing.T) {
	cfg := dpConfig(2)
	l1, p1 := parallelRun(t, cfg, 2, 2, DistOptions{}, nil)
	l2, p2 := parallelRun(t, cfg, 2, 2, DistOptions{BucketBytes: 1000}, nil)
	if l1[1] != l2[1] {
		t.Errorf("loss %v with small buckets, %v with one", l2, l1)
	}
	if d, w := stateDiff(p1[0], p2[0]); d != 0 {
		t.Errorf("small buckets change %s by %.3g", w, d)
	}
	if calls := p2[0].par.avg.Calls; calls < 10 {
		t.Errorf("%d all-reduces for 2 steps with 1000-byte buckets", calls)
	}
}

// TestDataParallelResume: two steps, a checkpoint by rank 0, two more
// steps after a restart in which only rank 0 reads the file, are four
// uninterrupted steps, bit for bit.
func TestDataParallelResume(t *testing.T) {
	cfg := dpConfig(4)
	want, full := parallelRun(t, cfg, 2, 4, DistOptions{}, nil)
	path := filepath.Join(t.TempDir(), "ck.safetensors")
	_, first := parallelRun(t, cfg, 2, 2, DistOptions{}, nil)
	if err := first[0].Save(path); err != nil {
		t.Fatal(err)
	}
	got, second := parallelRun(t, cfg, 2, 2, DistOptions{}, func(p *Pretrainer) error {
		if p.IsRoot() {
			return p.Resume(path)
		}
		return p.Resume(filepath.Join(t.TempDir(), "absent")) // only rank 0 reads
	})
	for i := range got {
		if got[i] != want[2+i] {
			t.Errorf("step %d: loss %.9g after resume, %.9g uninterrupted", 2+i, got[i], want[2+i])
		}
	}
	for r := range second {
		if d, w := stateDiff(second[r], full[0]); d != 0 {
			t.Errorf("rank %d: %s differs by %.3g after resume", r, w, d)
		}
	}
}

// TestDataParallelChecks: processes with different settings, a batch that
// does not divide, and a resume that fails on rank 0 are errors on every
// process, not hangs.
func TestDataParallelChecks(t *testing.T) {
	comms := dist.NewLocal(2, 0)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r, c := range comms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := dpConfig(2)
			if r == 1 {
				cfg.Temperature = 0.2
			}
			p, _ := NewPretrainer(cfg, purego.New(1), noiseSource{})
			errs[r] = p.SetComm(c, DistOptions{})
		}()
	}
	wg.Wait()
	for r, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "configuration differs") {
			t.Errorf("rank %d: different configurations gave %v", r, err)
		}
	}

	cfg := dpConfig(2)
	cfg.Batch = 9
	p, _ := NewPretrainer(cfg, purego.New(1), noiseSource{})
	if err := p.SetComm(dist.NewLocal(2, 0)[0], DistOptions{}); err == nil {
		t.Error("a batch of 9 was split among 2 processes")
	}

	comms = dist.NewLocal(2, 0)
	for r, c := range comms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, _ := NewPretrainer(dpConfig(2), purego.New(1), noiseSource{})
			if errs[r] = p.SetComm(c, DistOptions{}); errs[r] == nil {
				errs[r] = p.Resume(filepath.Join(t.TempDir(), "missing.safetensors"))
			}
		}()
	}
	wg.Wait()
	for r, err := range errs {
		if err == nil {
			t.Errorf("rank %d resumed from a missing checkpoint", r)
		}
	}
}

// TestDataParallelRun: in Run, rank 0 alone writes the log and the
// checkpoint, and a Stop on any rank stops every rank after the same step.
func TestDataParallelRun(t *testing.T) {
	cfg := dpConfig(6)
	dirs := []string{t.TempDir(), t.TempDir()}
	steps, errs := runRanks(t, cfg, dirs, func(r int) (context.Context, RunOptions) {
		return context.Background(), RunOptions{Dir: dirs[r], CheckpointEvery: 2,
			// Only rank 1 asks to stop, after step 2 (the third).
			Stop: func(st StepStats) bool { return r == 1 && st.Step == 2 }}
	})
	for r := range errs {
		if errs[r] != nil {
			t.Fatalf("rank %d: %v", r, errs[r])
		}
		if steps[r] != 3 {
			t.Errorf("rank %d stopped after %d steps, want 3", r, steps[r])
		}
	}
	if !fileExists(filepath.Join(dirs[0], CheckpointName)) || !fileExists(filepath.Join(dirs[0], MetricsName)) {
		t.Error("rank 0 wrote no checkpoint or metrics")
	}
	if fileExists(filepath.Join(dirs[1], CheckpointName)) || fileExists(filepath.Join(dirs[1], MetricsName)) {
		t.Error("rank 1 wrote files")
	}
}

// TestDataParallelInterrupt: cancelling one rank's context (a signal that
// reached one process) stops every rank after the same step, with a
// checkpoint of that step, and the other rank reports
// ErrInterruptedElsewhere.
func TestDataParallelInterrupt(t *testing.T) {
	cfg := dpConfig(8)
	dirs := []string{t.TempDir(), t.TempDir()}
	stop := errors.New("test signal")
	steps, errs := runRanks(t, cfg, dirs, func(r int) (context.Context, RunOptions) {
		ctx, cancel := context.WithCancelCause(context.Background())
		return ctx, RunOptions{Dir: dirs[r], Progress: func(st StepStats) {
			if r == 1 && st.Step == 1 {
				cancel(stop)
			}
		}}
	})
	for r, want := range []error{ErrInterruptedElsewhere, stop} {
		var ie *InterruptedError
		if !errors.As(errs[r], &ie) || !errors.Is(errs[r], want) {
			t.Fatalf("rank %d: error %v, want an interruption caused by %v", r, errs[r], want)
		}
		if steps[r] != 2 || ie.Step != 2 {
			t.Errorf("rank %d stopped after %d steps (error says %d), want 2", r, steps[r], ie.Step)
		}
	}
	q, _ := NewPretrainer(cfg, purego.New(1), noiseSource{})
	if err := q.Resume(filepath.Join(dirs[0], CheckpointName)); err != nil || q.Step != 2 {
		t.Errorf("rank 0's checkpoint: step %d, %v; want step 2", q.Step, err)
	}
}

// runRanks runs Run on two in-process ranks with the options setup gives
// each and returns the steps done and errors.
func runRanks(t *testing.T, cfg Config, dirs []string, setup func(rank int) (context.Context, RunOptions)) ([]int, []error) {
	t.Helper()
	k := len(dirs)
	comms := dist.NewLocal(k, 0)
	steps := make([]int, k)
	errs := make([]error, k)
	var wg sync.WaitGroup
	for r, c := range comms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := shardSource{noiseSource{}, cfg.Batch, cfg.ImageSize * cfg.ImageSize * 3, r, k}
			p, err := NewPretrainer(cfg, purego.New(1), src)
			if err == nil {
				err = p.SetComm(c, DistOptions{})
			}
			if err == nil {
				ctx, o := setup(r)
				err = Run(ctx, p, o)
			}
			errs[r] = err
			if p != nil {
				steps[r] = p.Step
			}
		}()
	}
	wg.Wait()
	return steps, errs
}
