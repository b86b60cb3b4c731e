// Package train holds the training loops: SimCLR pretraining, with its
// checkpoints, resume and metrics log.
package train

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/checkpoint"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/optim"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/tensor"
)

// ViewSource supplies the augmented views of each training step: for step
// s it fills dst [2N, H, W, 3] so that rows i and i+N are two views of the
// same image. The content of a step depends only on the seed and s, which
// is what makes resumed training identical to uninterrupted training.
// Views should give up, with an error, when ctx is done.
type ViewSource interface {
	Views(ctx context.Context, step int, dst []float32) error
	// StepsPerEpoch is the number of batches in one pass over the data.
	StepsPerEpoch() int
}

// Config is everything that determines a pretraining run.
type Config struct {
	Model       simclr.ModelConfig `json:"model"`
	Batch       int                `json:"batch"` // N images per step (2N views)
	ImageSize   int                `json:"image_size"`
	Steps       int                `json:"steps"`
	Optimizer   string             `json:"optimizer"` // "lars" or "sgd"
	BaseLR      float64            `json:"base_lr"`
	LRScaling   optim.Scaling      `json:"lr_scaling"`
	WeightDecay float64            `json:"weight_decay"`
	Momentum    float64            `json:"momentum"`
	Warmup      int                `json:"warmup_steps"`
	Temperature float64            `json:"temperature"`
	Seed        uint64             `json:"seed"`
	// MemorySize, when positive, turns on SimCLRv2's memory: a queue of
	// the momentum model's projections of the last MemorySize views, used
	// as extra negatives (simclr.Memory). Zero is off; omitted from the
	// JSON then, so configurations from before it compare equal.
	MemorySize int `json:"memory_size,omitempty"`
	// MemoryMomentum is m in the momentum model's θ_m ← m·θ_m + (1-m)·θ
	// (0.999 in MoCo). Only used with MemorySize > 0; 0 there makes the
	// momentum model a copy of the online one after every step.
	MemoryMomentum float64 `json:"memory_momentum,omitempty"`
	// MemoryPositives chooses where, with the memory on, a view's positive
	// comes from: "" or "online" (SimCLR's: the online model's projection
	// of its other view; simclr.NTXentMemory) or "momentum" (MoCo's: the
	// momentum model's; simclr.NTXentMomentumKeys, whose keys are then
	// also what is enqueued).
	MemoryPositives string `json:"memory_positives,omitempty"`
	// LossReduction is how NT-Xent's rows are reduced: "" or "mean" (the
	// mean over the 2N rows) or "sum" (the official code's sum of the two
	// directions' means, twice the mean: under LARS it doubles the step of
	// the parameters LARS does not adapt, under SGD of every parameter).
	LossReduction string `json:"loss_reduction,omitempty"`
	// V2 records a run made with SimCLRv2's recipe (pretrain --v2), so that
	// fine-tuning and distillation default to SimCLRv2's recipes for it.
	V2 bool `json:"v2,omitempty"`
}

// Loss reductions (Config.LossReduction).
const (
	LossMean = "mean"
	LossSum  = "sum"
)

// lossScale is the factor between the loss LossReduction asks for and
// the mean over rows.
func (c Config) lossScale() float32 {
	if c.LossReduction == LossSum {
		return 2
	}
	return 1
}

// Validate reports settings that cannot train.
func (c Config) Validate() error {
	switch {
	case c.Batch < 2:
		return fmt.Errorf("batch %d: need at least 2 images per step", c.Batch)
	case c.Steps < 1:
		return fmt.Errorf("%d steps: need at least 1", c.Steps)
	case c.Temperature <= 0:
		return fmt.Errorf("temperature %g must be positive", c.Temperature)
	case c.BaseLR <= 0:
		return fmt.Errorf("learning rate %g must be positive", c.BaseLR)
	case c.Optimizer != "lars" && c.Optimizer != "sgd":
		return fmt.Errorf("optimizer %q: want lars or sgd", c.Optimizer)
	case c.Warmup < 0 || c.Warmup > c.Steps:
		return fmt.Errorf("warmup of %d steps outside [0, %d]", c.Warmup, c.Steps)
	case c.WeightDecay < 0 || c.Momentum < 0 || c.Momentum >= 1:
		return fmt.Errorf("weight decay %g and momentum %g: want decay >= 0 and momentum in [0, 1)", c.WeightDecay, c.Momentum)
	case c.MemorySize < 0:
		return fmt.Errorf("memory size %d must not be negative", c.MemorySize)
	case c.MemoryMomentum < 0 || c.MemoryMomentum >= 1:
		return fmt.Errorf("memory momentum %g outside [0, 1)", c.MemoryMomentum)
	case c.MemoryPositives != "" && c.MemoryPositives != "online" && c.MemoryPositives != "momentum":
		return fmt.Errorf("memory positives %q: want online or momentum", c.MemoryPositives)
	case c.LossReduction != "" && c.LossReduction != LossMean && c.LossReduction != LossSum:
		return fmt.Errorf("loss reduction %q: want %s or %s", c.LossReduction, LossMean, LossSum)
	}
	_, err := optim.ScaledLR(c.BaseLR, c.Batch, c.LRScaling)
	return err
}

// StepStats is what one step reports.
type StepStats struct {
	Step        int     `json:"step"`
	Epoch       float64 `json:"epoch"`
	Loss        float64 `json:"loss"`
	ContrastAcc float64 `json:"contrast_acc"`
	Entropy     float64 `json:"contrast_entropy"`
	LR          float64 `json:"lr"`
	ImagesPerS  float64 `json:"images_per_s"`
	Seconds     float64 `json:"step_seconds"`
}

// Pretrainer runs SimCLR pretraining one step at a time.
type Pretrainer struct {
	Config Config
	Model  *simclr.Model
	// Step is the number of steps done.
	Step int
	// SavedSteps is the number of steps the run that wrote the checkpoint
	// Resume read was set for; more than Config.Steps when the run is
	// extended (see ScheduleChange).
	SavedSteps int
	// savedWarmup is the warmup of that run.
	savedWarmup int

	src    ViewSource
	tape   *autograd.Tape
	views  *tensor.Tensor
	sched  optim.WarmupCosine
	update func(lr float32)
	// velocity is the optimiser's momentum, in parameter order, for
	// checkpoints.
	velocity [][]float32
	// par is the data-parallel state (SetComm); nil for one process.
	par *parallel
	// Memory is SimCLRv2's memory (momentum model and queue) when
	// Config.MemorySize > 0; nil otherwise.
	Memory *simclr.Memory
	// keys are the momentum model's projections of this step's views when
	// Config.MemoryPositives is "momentum" (they live in the memory's
	// arena until its next Encode).
	keys []float32
}

// NewPretrainer builds the model and optimiser for cfg.
func NewPretrainer(cfg Config, be backend.Backend, src ViewSource) (*Pretrainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	model, err := simclr.NewModel(cfg.Model, cfg.Seed)
	if err != nil {
		return nil, err
	}
	peak, _ := optim.ScaledLR(cfg.BaseLR, cfg.Batch, cfg.LRScaling)
	p := &Pretrainer{
		Config: cfg, Model: model, src: src,
		tape:  autograd.NewTape(be),
		views: tensor.New(2*cfg.Batch, cfg.ImageSize, cfg.ImageSize, 3),
		sched: optim.WarmupCosine{Peak: peak, Warmup: cfg.Warmup, Total: cfg.Steps},
	}
	params := model.Params.Params()
	hasGrad := func(q *nn.Param) bool { return q.HasGrad(p.tape) }
	switch cfg.Optimizer {
	case "lars":
		o := optim.NewLARS(params, float32(cfg.WeightDecay))
		o.Momentum = float32(cfg.Momentum)
		p.update, p.velocity = func(lr float32) { o.Step(lr, hasGrad) }, o.Velocity()
	case "sgd":
		o := optim.NewSGD(params, float32(cfg.Momentum), float32(cfg.WeightDecay))
		o.SkipNoDecay = true
		p.update, p.velocity = func(lr float32) { o.Step(lr, hasGrad) }, o.Velocity()
	}
	if cfg.MemorySize > 0 {
		if p.Memory, err = simclr.NewMemory(model, cfg.Model, cfg.MemorySize, cfg.MemoryMomentum, be); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Done reports whether every step has run.
func (p *Pretrainer) Done() bool { return p.Step >= p.Config.Steps }

// ErrNonFinite is returned when the loss is NaN or infinite; the model is
// left as it was before the step.
type ErrNonFinite struct {
	Step int
	Loss float64
}

func (e *ErrNonFinite) Error() string {
	return fmt.Sprintf("loss is %g at step %d: training diverged (try a lower learning rate or a longer warmup)", e.Loss, e.Step)
}

// TrainStep runs the next step: views, forward, NT-Xent, backward, update.
// With the memory on, the loss takes the queue as it was before the step
// as extra negatives; after the optimizer step the momentum model moves
// towards the updated online model, encodes the step's views and its
// projections are enqueued (first views, then second views), so they are
// negatives from the next step on.
func (p *Pretrainer) TrainStep() (StepStats, error) {
	return p.TrainStepContext(context.Background())
}

// TrainStepContext is TrainStep that gives up, changing nothing, when ctx
// is done while the step's images are loading. In data-parallel training
// it never gives up mid-step (the other processes would wait for it in
// the step's collectives): Run stops them all at a step boundary instead.
func (p *Pretrainer) TrainStepContext(ctx context.Context) (StepStats, error) {
	start := time.Now()
	step := p.Step
	if p.par != nil {
		ctx = context.WithoutCancel(ctx)
	}
	if err := p.src.Views(ctx, step, p.views.Data); err != nil {
		return StepStats{}, fmt.Errorf("step %d: %w", step, err)
	}
	p.tape.Reset()
	p.tape.Train = true
	_, z := p.Model.Forward(p.tape, p.tape.Input(p.views))
	loss, cs := p.contrast(z)
	if k := p.Config.lossScale(); k != 1 {
		loss = p.tape.Scale(loss, k)
	}
	l, cs, err := p.globalStats(float64(loss.Value.Data[0]), cs)
	if err != nil {
		return StepStats{}, err
	}
	if math.IsNaN(l) || math.IsInf(l, 0) {
		return StepStats{}, &ErrNonFinite{Step: step, Loss: l}
	}
	if err := p.tape.Backward(loss); err != nil {
		return StepStats{}, err
	}
	if err := p.averageGrads(); err != nil {
		return StepStats{}, err
	}
	lr := p.sched.At(step)
	p.update(float32(lr))
	if p.Memory != nil {
		p.Memory.Update(p.Model)
		if p.keys != nil {
			p.Memory.Queue.Enqueue(p.keys) // the keys this step's loss used
		} else {
			p.Memory.Push(p.views)
		}
	}
	p.Step++
	dt := time.Since(start).Seconds()
	return StepStats{
		Step: step, Epoch: float64(step) / float64(p.src.StepsPerEpoch()),
		Loss: l, ContrastAcc: cs.Accuracy, Entropy: cs.Entropy, LR: lr,
		ImagesPerS: float64(p.Config.Batch) / dt, Seconds: dt,
	}, nil
}

// Checkpoint names and metadata keys.
const (
	formatKey   = "format"
	formatValue = "simclr-go/pretrain/1"
	stepKey     = "step"
	configKey   = "config"
	velocityPfx = "optimizer.velocity."
	// With the memory on: the momentum model's state under momentumPfx,
	// the queue's ring and its pointer and fill count.
	momentumPfx  = "momentum."
	memQueueKey  = "memory.queue"
	memPtrKey    = "memory.ptr"
	memFilledKey = "memory.filled"
)

// Save writes the model, the optimiser state and the step to path
// atomically. Encoder tensors carry torchvision's names; the head's are
// under "head.".
func (p *Pretrainer) Save(path string) error {
	f := checkpoint.New()
	p.Model.Params.SaveState(f, "")
	for i, q := range p.Model.Params.Params() {
		f.Floats[velocityPfx+q.Name] = tensor.FromSlice(append([]float32(nil), p.velocity[i]...), q.Value.Shape...)
	}
	if mem := p.Memory; mem != nil {
		mem.Model.Params.SaveState(f, momentumPfx)
		f.Floats[memQueueKey] = mem.Queue.Data.Clone()
		f.Ints[memPtrKey] = []int64{int64(mem.Queue.Ptr)}
		f.Ints[memFilledKey] = []int64{int64(mem.Queue.Filled)}
	}
	cfg, err := json.Marshal(p.Config)
	if err != nil {
		return err
	}
	f.Meta[formatKey] = formatValue
	f.Meta[stepKey] = strconv.Itoa(p.Step)
	f.Meta[configKey] = string(cfg)
	return checkpoint.Save(path, f)
}

// Resume restores a checkpoint written by Save for the same configuration.
// In data-parallel training (SetComm) rank 0 reads the file and sends the
// state to the other processes.
func (p *Pretrainer) Resume(path string) error {
	if p.par != nil {
		return p.resumeDist(path)
	}
	return p.resumeFile(path)
}

func (p *Pretrainer) resumeFile(path string) error {
	f, err := checkpoint.Load(path)
	if err != nil {
		return err
	}
	if f.Meta[formatKey] != formatValue {
		return fmt.Errorf("%s is not a pretraining checkpoint (format %q)", path, f.Meta[formatKey])
	}
	var saved Config
	if err := json.Unmarshal([]byte(f.Meta[configKey]), &saved); err != nil {
		return fmt.Errorf("%s: reading its configuration: %w", path, err)
	}
	step, err := strconv.Atoi(f.Meta[stepKey])
	if err != nil || step < 0 || step > saved.Steps {
		return fmt.Errorf("%s: bad step %q", path, f.Meta[stepKey])
	}
	if diffs := compatible(saved, p.Config); len(diffs) > 0 {
		return &ConfigMismatchError{Path: path, Diffs: diffs}
	}
	if _, err := p.Model.Params.LoadState(f, nn.LoadOptions{}); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for i, q := range p.Model.Params.Params() {
		v, ok := f.Floats[velocityPfx+q.Name]
		if !ok || v.Len() != len(p.velocity[i]) {
			return fmt.Errorf("%s: no optimiser state for %s", path, q.Name)
		}
		copy(p.velocity[i], v.Data)
	}
	if mem := p.Memory; mem != nil {
		if _, err := mem.Model.Params.LoadState(f, nn.LoadOptions{Prefix: momentumPfx}); err != nil {
			return fmt.Errorf("%s: momentum model: %w", path, err)
		}
		q := mem.Queue
		data, ok := f.Floats[memQueueKey]
		ptr, okP := f.Ints[memPtrKey]
		filled, okF := f.Ints[memFilledKey]
		if !ok || !okP || !okF || data.Len() != q.Data.Len() || len(ptr) != 1 || len(filled) != 1 ||
			ptr[0] < 0 || ptr[0] >= int64(q.K) || filled[0] < 0 || filled[0] > int64(q.K) {
			return fmt.Errorf("%s: missing or malformed memory queue", path)
		}
		copy(q.Data.Data, data.Data)
		q.Ptr, q.Filled = int(ptr[0]), int(filled[0])
	}
	p.Step, p.SavedSteps, p.savedWarmup = step, saved.Steps, saved.Warmup
	return nil
}
