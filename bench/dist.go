package bench

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/dist"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/optim"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/tensor"
)

// DistStepResult is the timing of data-parallel steps on one process.
type DistStepResult struct {
	StepResult
	Processes int `json:"processes"`
	// MedianCommS is the time a step spends in collectives (waiting for
	// the slower process included): batch-norm statistics, the
	// projections' all-gather, the loss and the gradient all-reduce.
	MedianCommS float64 `json:"median_comm_s"`
	// MedianGradS is the gradient all-reduce alone, GradMB its size and
	// GradCalls its number of messages (buckets) per step.
	MedianGradS float64 `json:"median_grad_allreduce_s"`
	GradMB      float64 `json:"grad_mb"`
	GradCalls   int     `json:"grad_calls"`
	// CollectivesPerStep counts the collective calls of one step.
	CollectivesPerStep int `json:"collectives_per_step"`
	// TransferS is one gradient all-reduce started together on every
	// process (after a barrier): the transfer cost without waiting.
	TransferS float64 `json:"grad_allreduce_alone_s"`
}

// RunDistStep is RunStep as one of c.Size() data-parallel processes:
// cfg.Batch is the global batch, each process computes Batch/Size images
// (its rows of the same random global batch), with global batch norm,
// NT-Xent over the gathered projections and gradients averaged in
// buckets. Every process must call it; rank 0's log shows the steps.
func RunDistStep(be backend.Backend, c dist.Comm, cfg StepConfig, log io.Writer) (DistStepResult, error) {
	if log == nil || c.Rank() != 0 {
		log = io.Discard
	}
	k := c.Size()
	if cfg.Batch%k != 0 {
		return DistStepResult{}, fmt.Errorf("batch %d does not divide among %d processes", cfg.Batch, k)
	}
	n := cfg.Batch / k
	tc := dist.NewTimed(c)
	model, err := simclr.NewModel(simclr.ModelConfig{
		Encoder:    resnet.Config{Depth: cfg.Depth, Width: cfg.Width, CIFARStem: cfg.CIFARStem},
		ProjHidden: []int{cfg.ProjHidden}, ProjOut: cfg.ProjOut,
	}, cfg.Seed)
	if err != nil {
		return DistStepResult{}, err
	}
	model.SetBatchNormReducer(tc)
	params := model.Params.Params()
	grads := make([][]float32, len(params))
	var gradLen int
	for i, p := range params {
		grads[i] = p.Grad.Data
		gradLen += p.Grad.Len()
		if err := c.Broadcast(p.Value.Data, 0); err != nil {
			return DistStepResult{}, err
		}
	}
	avg := dist.NewAverager(tc, 0)
	opt := optim.NewSGD(params, 0.9, 1e-6)
	lr := float32(0.3 * float64(cfg.Batch) / 256)
	// This process's rows of the global batch [first views; second views].
	global := tensor.New(2*cfg.Batch, cfg.Image, cfg.Image, 3)
	tensor.NewRNG(cfg.Seed, "bench/images").FillNormal(global, 1)
	view := cfg.Image * cfg.Image * 3
	x := tensor.New(2*n, cfg.Image, cfg.Image, 3)
	r := c.Rank()
	copy(x.Data[:n*view], global.Data[r*n*view:(r+1)*n*view])
	copy(x.Data[n*view:], global.Data[(cfg.Batch+r*n)*view:(cfg.Batch+(r+1)*n)*view])
	fmt.Fprintf(log, "# %s threads=%d processes=%d resnet%d width=%d head=%d-%d-%d params=%d batch=%d (%d per process) image=%d\n",
		be.Name(), be.Threads(), k, cfg.Depth, cfg.Width, model.Encoder.OutDim, cfg.ProjHidden, cfg.ProjOut,
		model.Params.NumParams(), cfg.Batch, n, cfg.Image)

	tape := autograd.NewTape(be)
	res := DistStepResult{StepResult: StepResult{Backend: be.Name(), Threads: be.Threads(), Precision: be.Precision().String()}, Processes: k,
		GradMB: float64(4*gradLen) / (1 << 20)}
	var steps, fwds, bwds, opts, comms, gradTimes []float64
	allocsAfterFirst := 0
	for step := 0; step < cfg.Warmup+cfg.Steps; step++ {
		tape.Reset()
		tc.Reset()
		calls0 := avg.Calls
		t0 := time.Now()
		_, z := model.Forward(tape, tape.Input(x))
		loss, _ := simclr.NTXentGlobal(tape, z, cfg.Temperature, tc)
		l := []float64{float64(loss.Value.Data[0])}
		if err := tc.AllReduceSumFloat64(l); err != nil {
			return res, err
		}
		t1 := time.Now()
		if err := tape.Backward(loss); err != nil {
			return res, err
		}
		tg := time.Now()
		if err := avg.Average(grads); err != nil {
			return res, err
		}
		t2 := time.Now()
		opt.Step(lr, func(p *nn.Param) bool { return p.HasGrad(tape) })
		t3 := time.Now()
		if step == 0 {
			allocsAfterFirst = tape.Allocs()
		}
		res.GradCalls = avg.Calls - calls0
		res.CollectivesPerStep = 0
		for _, v := range tc.Calls {
			res.CollectivesPerStep += v
		}
		lossMean := l[0] / float64(k)
		res.Losses = append(res.Losses, lossMean)
		dt := t3.Sub(t0).Seconds()
		comm := tc.Total().Seconds()
		tag := "step"
		if step < cfg.Warmup {
			tag = "warmup"
		} else {
			steps = append(steps, dt)
			fwds = append(fwds, t1.Sub(t0).Seconds())
			bwds = append(bwds, t2.Sub(t1).Seconds())
			opts = append(opts, t3.Sub(t2).Seconds())
			comms = append(comms, comm)
			gradTimes = append(gradTimes, t2.Sub(tg).Seconds())
		}
		fmt.Fprintf(log, "%s %3d loss=%.4f time=%.3fs fwd=%.3f bwd=%.3f (grad all-reduce %.3f) opt=%.3f comm=%.3f img/s=%.2f\n",
			tag, step, lossMean, dt, t1.Sub(t0).Seconds(), t2.Sub(t1).Seconds(), t2.Sub(tg).Seconds(),
			t3.Sub(t2).Seconds(), comm, float64(cfg.Batch)/dt)
	}
	// The gradient all-reduce alone, started together.
	var alone []float64
	for i := 0; i < 5; i++ {
		if err := c.Barrier(); err != nil {
			return res, err
		}
		t0 := time.Now()
		if err := avg.Average(grads); err != nil {
			return res, err
		}
		alone = append(alone, time.Since(t0).Seconds())
	}
	res.TransferS = median(alone)
	res.AllocsAfterWarmup = tape.Allocs() - allocsAfterFirst
	res.MedianStepS = median(steps)
	res.MinStepS, res.MaxStepS = slices.Min(steps), slices.Max(steps)
	res.MedianFwdS, res.MedianBwdS, res.MedianOptS = median(fwds), median(bwds), median(opts)
	res.MedianCommS, res.MedianGradS = median(comms), median(gradTimes)
	res.ImagesPerSec = float64(cfg.Batch) / res.MedianStepS
	res.PeakRSSMB = PeakRSSMB()
	res.ArenaMB = float64(tape.ArenaBytes()) / (1 << 20)
	return res, nil
}
