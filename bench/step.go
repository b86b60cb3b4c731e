// Package bench times whole SimCLR training steps, the figure that matters
// to a user, and compares them with the PyTorch reference.
package bench

import (
	"fmt"
	"io"
	"slices"
	"syscall"
	"time"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/optim"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/tensor"
)

// StepConfig is one SimCLR-shaped training step: 2N views of random images
// through a ResNet and a projection head, NT-Xent, backward, and an
// SGD-momentum update; the same work as the reference's simclr_step.py.
type StepConfig struct {
	Depth, Width int
	// CIFARStem is the 3x3 stride-1 stem without max pool; false is
	// torchvision's 7x7 stride-2 stem with max pool (the reference's
	// --imagenet-stem).
	CIFARStem   bool
	Batch       int // N images, 2N views
	Image       int
	ProjHidden  int
	ProjOut     int
	Temperature float32
	Warmup      int
	Steps       int
	Seed        uint64
}

// DefaultStep is the reference's default: CIFAR ResNet-18, batch 128.
func DefaultStep() StepConfig {
	return StepConfig{Depth: 18, Width: 64, CIFARStem: true, Batch: 128, Image: 32, ProjHidden: 2048, ProjOut: 128,
		Temperature: 0.5, Warmup: 2, Steps: 8}
}

// StepResult holds the timings of the timed steps.
type StepResult struct {
	Backend      string  `json:"backend"`
	Threads      int     `json:"threads"`
	Precision    string  `json:"precision"`
	MedianStepS  float64 `json:"median_step_s"`
	MinStepS     float64 `json:"min_step_s"`
	MaxStepS     float64 `json:"max_step_s"`
	MedianFwdS   float64 `json:"median_fwd_s"`
	MedianBwdS   float64 `json:"median_bwd_s"`
	MedianOptS   float64 `json:"median_opt_s"`
	ImagesPerSec float64 `json:"images_per_s"`
	// GFLOPPerStep counts a step's convolutions and matrix products: the
	// forward ones, three times (forward, backward data, backward weights).
	GFLOPPerStep float64 `json:"gflop_per_step"`
	// GFLOPS is GFLOPPerStep over the median step time.
	GFLOPS float64 `json:"gflops"`
	// PeakGFLOPS is what PeakGFLOPS measured, when it was run.
	PeakGFLOPS float64 `json:"peak_gflops,omitempty"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	ArenaMB    float64 `json:"arena_mb"`
	// AllocsAfterWarmup counts activation-sized buffers allocated after the
	// first step; it should be zero.
	AllocsAfterWarmup int       `json:"allocs_after_warmup"`
	Losses            []float64 `json:"losses"`
}

// RunStep builds the model and times cfg.Steps steps after cfg.Warmup
// untimed ones, writing a line per step to log (which may be nil).
func RunStep(be backend.Backend, cfg StepConfig, log io.Writer) (StepResult, error) {
	if log == nil {
		log = io.Discard
	}
	model, err := simclr.NewModel(simclr.ModelConfig{
		Encoder:    resnet.Config{Depth: cfg.Depth, Width: cfg.Width, CIFARStem: cfg.CIFARStem},
		ProjHidden: []int{cfg.ProjHidden}, ProjOut: cfg.ProjOut,
	}, cfg.Seed)
	if err != nil {
		return StepResult{}, err
	}
	counter := &flopCounter{Backend: be}
	params := model.Params.Params()
	opt := optim.NewSGD(params, 0.9, 1e-6)
	lr := float32(0.3 * float64(cfg.Batch) / 256)
	x := tensor.New(2*cfg.Batch, cfg.Image, cfg.Image, 3)
	tensor.NewRNG(cfg.Seed, "bench/images").FillNormal(x, 1)
	fmt.Fprintf(log, "# %s threads=%d precision=%s resnet%d width=%d cifar_stem=%t feat=%d head=%d-%d-%d params=%d batch=%d views=%d image=%d\n",
		be.Name(), be.Threads(), be.Precision(), cfg.Depth, cfg.Width, cfg.CIFARStem, model.Encoder.OutDim, model.Encoder.OutDim,
		cfg.ProjHidden, cfg.ProjOut, model.Params.NumParams(), cfg.Batch, 2*cfg.Batch, cfg.Image)

	tape := autograd.NewTape(counter)
	res := StepResult{Backend: be.Name(), Threads: be.Threads(), Precision: be.Precision().String()}
	var steps, fwds, bwds, opts []float64
	allocsAfterFirst := 0
	for step := 0; step < cfg.Warmup+cfg.Steps; step++ {
		tape.Reset()
		counter.counting = step == 0
		t0 := time.Now()
		_, z := model.Forward(tape, tape.Input(x))
		loss, _ := simclr.NTXent(tape, z, cfg.Temperature)
		t1 := time.Now()
		counter.counting = false
		if err := tape.Backward(loss); err != nil {
			return res, err
		}
		t2 := time.Now()
		opt.Step(lr, func(p *nn.Param) bool { return p.HasGrad(tape) })
		t3 := time.Now()
		if step == 0 {
			allocsAfterFirst = tape.Allocs()
		}
		l := float64(loss.Value.Data[0])
		res.Losses = append(res.Losses, l)
		dt := t3.Sub(t0).Seconds()
		tag := "step"
		if step < cfg.Warmup {
			tag = "warmup"
		} else {
			steps = append(steps, dt)
			fwds = append(fwds, t1.Sub(t0).Seconds())
			bwds = append(bwds, t2.Sub(t1).Seconds())
			opts = append(opts, t3.Sub(t2).Seconds())
		}
		fmt.Fprintf(log, "%s %3d loss=%.4f time=%.3fs fwd=%.3f bwd=%.3f opt=%.3f img/s=%.2f\n",
			tag, step, l, dt, t1.Sub(t0).Seconds(), t2.Sub(t1).Seconds(), t3.Sub(t2).Seconds(), float64(cfg.Batch)/dt)
	}
	res.AllocsAfterWarmup = tape.Allocs() - allocsAfterFirst
	res.MedianStepS = median(steps)
	res.MinStepS, res.MaxStepS = slices.Min(steps), slices.Max(steps)
	res.MedianFwdS, res.MedianBwdS, res.MedianOptS = median(fwds), median(bwds), median(opts)
	res.ImagesPerSec = float64(cfg.Batch) / res.MedianStepS
	res.GFLOPPerStep = 3 * counter.flops / 1e9
	res.GFLOPS = res.GFLOPPerStep / res.MedianStepS
	res.PeakRSSMB = PeakRSSMB()
	res.ArenaMB = float64(tape.ArenaBytes()) / (1 << 20)
	return res, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// PeakRSSMB is the process's peak resident memory in MiB.
func PeakRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024 // Linux reports KiB
}
