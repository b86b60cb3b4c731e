package train

import (
	"context"
	"fmt"
	"math"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/data"
	"github.com/simclr-go/simclr/eval"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/optim"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/tensor"
)

// Classifier is a pretrained encoder, the first Selector blocks of its
// projection head (SimCLRv2 fine-tunes from the head's first layer), and a
// new linear layer over the classes.
type Classifier struct {
	Model    *simclr.Model
	Selector int
	FC       *nn.Linear
	// Params lists what fine-tuning trains: the encoder, the kept head
	// blocks and FC.
	Params []*nn.Param
	// ClassNames, when set, names FC's outputs; SaveClassifier stores them.
	ClassNames []string
	// Recipe is the recipe the classifier was trained with ("v2" for
	// SimCLRv2's, "" otherwise); SaveClassifier records it, so that a
	// distillation from it defaults to the same.
	Recipe string
}

// ZeroFC sets the classifier layer to zero, as the official code's
// zero_init_logits_layer does: every class starts equally likely and the
// first steps' gradients reach the encoder only through FC's updates.
func (c *Classifier) ZeroFC() {
	c.FC.Weight.Value.Zero()
	c.FC.Bias.Value.Zero()
}

// NewClassifier puts a linear layer for classes on top of model's head
// block selector (0: on the encoder's features h).
func NewClassifier(model *simclr.Model, selector, classes int, seed uint64) (*Classifier, error) {
	hidden := 0
	if model.Head != nil {
		hidden = len(model.Head.BNs)
	}
	if selector < 0 || selector > hidden {
		return nil, fmt.Errorf("head layer %d: the model's head has hidden layers 0..%d", selector, hidden)
	}
	if classes < 2 {
		return nil, fmt.Errorf("%d classes: need at least 2", classes)
	}
	in := model.Encoder.OutDim
	if selector > 0 {
		in = model.Head.Linears[selector-1].Weight.Value.Dim(0)
	}
	reg := nn.NewRegistry(seed)
	c := &Classifier{Model: model, Selector: selector, FC: nn.NewLinear(reg.Sub("fc"), in, classes, true)}
	keep := map[*nn.Param]bool{}
	for i := 0; i < selector; i++ {
		keep[model.Head.Linears[i].Weight] = true
		keep[model.Head.Linears[i].Bias] = true
		keep[model.Head.BNs[i].Weight] = true
		keep[model.Head.BNs[i].Bias] = true
	}
	for _, p := range model.Params.Params() {
		if !isHead(p.Name) || keep[p] {
			c.Params = append(c.Params, p)
		}
	}
	c.Params = append(c.Params, reg.Params()...)
	return c, nil
}

func isHead(name string) bool { return len(name) > 5 && name[:5] == "head." }

// Features runs the encoder and the kept head blocks.
func (c *Classifier) Features(t *autograd.Tape, x *autograd.Var) *autograd.Var {
	h := c.Model.Encoder.Forward(t, x)
	for i := 0; i < c.Selector; i++ {
		h = c.Model.Head.BNs[i].Forward(t, c.Model.Head.Linears[i].Forward(t, h), true)
	}
	return h
}

// Forward gives the class logits.
func (c *Classifier) Forward(t *autograd.Tape, x *autograd.Var) *autograd.Var {
	return c.FC.Forward(t, c.Features(t, x))
}

// FineTuneConfig is a fine-tuning recipe: the whole network trained with
// crop and flip as the only augmentation, cosine learning rate. The zero
// values of Optimizer, LRScaling and WarmupFraction give SimCLR's
// (Nesterov momentum, lr x B/256, no warmup).
type FineTuneConfig struct {
	Batch       int
	Epochs      int
	BaseLR      float64
	Momentum    float64
	WeightDecay float64
	ImageSize   int
	Seed        uint64
	Workers     int
	// Optimizer is "" or OptNesterov (SimCLR's fine-tuning) or OptLARS
	// (SimCLRv2's: LARS, batch norm and biases neither decayed nor
	// adapted, the classifier layer decayed but not adapted).
	Optimizer string `json:",omitempty"`
	// LRScaling is how BaseLR grows with the batch: "" (linear, x B/256)
	// or optim.Sqrt (x sqrt(B), SimCLRv2's).
	LRScaling optim.Scaling `json:",omitempty"`
	// WarmupFraction is the fraction of the steps over which the learning
	// rate rises linearly before its cosine decay (0: none).
	WarmupFraction float64 `json:",omitempty"`
	// StatePath, if set, is where a run stopped by its context saves its
	// state (the classifier, the optimiser's momentum, the step), and
	// where one started with Resume reads it back.
	StatePath string `json:"-"`
	Resume    bool   `json:"-"`
}

// Fine-tuning optimisers (FineTuneConfig.Optimizer).
const (
	OptNesterov = "nesterov"
	OptLARS     = "lars"
)

// DefaultFineTune is SimCLR's fine-tuning recipe for a given batch and image
// size: Nesterov momentum 0.9, lr 0.05 x B/256, no weight decay.
func DefaultFineTune(batch, epochs, size int) FineTuneConfig {
	return FineTuneConfig{Batch: batch, Epochs: epochs, BaseLR: 0.05, Momentum: 0.9, ImageSize: size, Workers: 2}
}

// validate reports optimiser settings that cannot train.
func (cfg FineTuneConfig) validate() error {
	switch {
	case cfg.Optimizer != "" && cfg.Optimizer != OptNesterov && cfg.Optimizer != OptLARS:
		return fmt.Errorf("optimizer %q: want %s or %s", cfg.Optimizer, OptNesterov, OptLARS)
	case cfg.WarmupFraction < 0 || cfg.WarmupFraction > 1:
		return fmt.Errorf("warmup fraction %g outside [0, 1]", cfg.WarmupFraction)
	case cfg.WeightDecay < 0:
		return fmt.Errorf("weight decay %g must not be negative", cfg.WeightDecay)
	}
	scaling := cfg.LRScaling
	if scaling == "" {
		scaling = optim.Linear
	}
	_, err := optim.ScaledLR(cfg.BaseLR, max(cfg.Batch, 1), scaling)
	return err
}

// schedule is the learning rate of each of steps steps at batch size batch.
func (cfg FineTuneConfig) schedule(batch, steps int) optim.WarmupCosine {
	scaling := cfg.LRScaling
	if scaling == "" {
		scaling = optim.Linear
	}
	peak, _ := optim.ScaledLR(cfg.BaseLR, batch, scaling)
	warmup := min(int(math.Round(cfg.WarmupFraction*float64(steps))), steps)
	return optim.WarmupCosine{Peak: peak, Warmup: warmup, Total: steps}
}

// optimizer builds cfg's optimiser over c's parameters; it returns the
// update and the momentum buffers (for the saved state).
func (cfg FineTuneConfig) optimizer(c *Classifier) (step func(lr float32, hasGrad func(*nn.Param) bool), velocity [][]float32) {
	if cfg.Optimizer == OptLARS {
		o := optim.NewLARS(c.Params, float32(cfg.WeightDecay))
		o.Momentum = float32(cfg.Momentum)
		fc := c.FC.Weight
		o.NoAdapt = func(p *nn.Param) bool { return p == fc }
		return o.Step, o.Velocity()
	}
	o := optim.NewSGD(c.Params, float32(cfg.Momentum), float32(cfg.WeightDecay))
	o.Nesterov, o.SkipNoDecay = true, true
	return o.Step, o.Velocity()
}

// FineTune trains c on the labelled dataset ds (cross-entropy, cosine
// learning rate) and reports each step to progress (may be nil). When ctx
// is done it stops at the next step boundary (abandoning the images being
// loaded), saves its state to cfg.StatePath (when set) and returns an
// *InterruptedError; cfg.Resume continues from that state bit-exactly.
func FineTune(ctx context.Context, be backend.Backend, c *Classifier, ds data.Dataset, cfg FineTuneConfig, progress func(step, steps int, loss float64)) error {
	if ds.Classes() == nil {
		return fmt.Errorf("fine-tuning needs labelled data")
	}
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("fine-tuning: %w", err)
	}
	batch := min(cfg.Batch, ds.Len())
	pipe, err := cropFlip(cfg.ImageSize)
	if err != nil {
		return err
	}
	loader, err := views1(ctx, ds, pipe, batch, cfg.Seed, cfg.Workers)
	if err != nil {
		return err
	}
	steps := cfg.Epochs * loader.Len()
	sched := cfg.schedule(batch, steps)
	update, velocity := cfg.optimizer(c)
	state := loopState{kind: "fine-tuning", c: c, velocity: velocity,
		settings: struct {
			FineTuneConfig
			Images, Classes int
		}{cfg, ds.Len(), len(ds.Classes())}}
	step := 0
	if cfg.Resume {
		if step, err = state.load(cfg.StatePath, steps); err != nil {
			return err
		}
	}
	tape := autograd.NewTape(be)
	labels := make([]int32, batch)
	batches := newStepBatches(loader, step)
	defer batches.close()
	for ; step < steps; step++ {
		if ctx.Err() != nil {
			return state.interrupted(ctx, cfg.StatePath, step)
		}
		b, err := batches.next()
		if err != nil {
			if ctx.Err() != nil {
				return state.interrupted(ctx, cfg.StatePath, step)
			}
			return err
		}
		for i, l := range b.Labels {
			labels[i] = int32(l)
		}
		tape.Reset()
		x := tensor.FromSlice(b.Data, batch, cfg.ImageSize, cfg.ImageSize, 3)
		loss := tape.CrossEntropy(c.Forward(tape, tape.Input(x)), labels)
		l := float64(loss.Value.Data[0])
		if math.IsNaN(l) || math.IsInf(l, 0) {
			return &ErrNonFinite{Step: step, Loss: l}
		}
		if err := tape.Backward(loss); err != nil {
			return err
		}
		update(float32(sched.At(step)), func(p *nn.Param) bool { return p.HasGrad(tape) })
		if progress != nil {
			progress(step+1, steps, l)
		}
	}
	return nil
}

// stepBatches gives a loader's batches step after step, over epochs,
// starting at any step.
type stepBatches struct {
	l    *data.Loader
	step int
	it   *data.EpochIter
}

func newStepBatches(l *data.Loader, step int) *stepBatches { return &stepBatches{l: l, step: step} }

// next returns the batch of the next step.
func (s *stepBatches) next() (*data.Batch, error) {
	n := s.l.Len()
	if s.it != nil && s.step%n == 0 {
		s.close() // the epoch is over and its last batch used
	}
	if s.it == nil {
		s.it = s.l.EpochFrom(s.step/n, s.step%n)
	}
	if !s.it.Next() {
		err := s.it.Err()
		s.close()
		if err == nil {
			err = fmt.Errorf("epoch %d ended before batch %d", s.step/n, s.step%n)
		}
		return nil, err
	}
	s.step++
	return s.it.Batch(), nil
}

func (s *stepBatches) close() {
	if s.it != nil {
		s.it.Close()
		s.it = nil
	}
}

// Accuracy is c's top-1 accuracy on ds (centre views, eval mode).
func Accuracy(be backend.Backend, c *Classifier, ds data.Dataset, size, workers int) (float64, error) {
	return AccuracyView(be, c, ds, size, workers, eval.ViewSquare)
}

// AccuracyView is Accuracy on the evaluation views of the given style.
func AccuracyView(be backend.Backend, c *Classifier, ds data.Dataset, size, workers int, view eval.ViewStyle) (float64, error) {
	f, _, err := eval.EmbedWith(autograd.NewTape(be), c.Forward, ds, eval.EmbedOptions{Size: size, Workers: workers, Transform: eval.View(size, view)})
	if err != nil {
		return 0, err
	}
	correct := 0
	for i := 0; i < f.Rows; i++ {
		row := f.Data[i*f.Dim : (i+1)*f.Dim]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		if best == f.Labels[i] {
			correct++
		}
	}
	return float64(correct) / float64(f.Rows), nil
}
