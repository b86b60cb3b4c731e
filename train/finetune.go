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

// FineTuneConfig follows SimCLRv2's fine-tuning: the whole network trained
// with Nesterov momentum, lr 0.05 x B/256, no weight decay, crop and flip
// as the only augmentation.
type FineTuneConfig struct {
	Batch       int
	Epochs      int
	BaseLR      float64
	Momentum    float64
	WeightDecay float64
	ImageSize   int
	Seed        uint64
	Workers     int
	// StatePath, if set, is where a run stopped by its context saves its
	// state (the classifier, the optimiser's momentum, the step), and
	// where one started with Resume reads it back.
	StatePath string `json:"-"`
	Resume    bool   `json:"-"`
}

// DefaultFineTune is the SimCLRv2 recipe for a given batch and image size.
func DefaultFineTune(batch, epochs, size int) FineTuneConfig {
	return FineTuneConfig{Batch: batch, Epochs: epochs, BaseLR: 0.05, Momentum: 0.9, ImageSize: size, Workers: 2}
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
	peak, _ := optim.ScaledLR(cfg.BaseLR, batch, optim.Linear)
	sched := optim.WarmupCosine{Peak: peak, Total: steps}
	opt := optim.NewSGD(c.Params, float32(cfg.Momentum), float32(cfg.WeightDecay))
	opt.Nesterov, opt.SkipNoDecay = true, true
	state := loopState{kind: "fine-tuning", c: c, velocity: opt.Velocity(),
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
		opt.Step(float32(sched.At(step)), func(p *nn.Param) bool { return p.HasGrad(tape) })
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
	f, err := eval.Embed(autograd.NewTape(be), c.Forward, ds, size, 256, workers)
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
