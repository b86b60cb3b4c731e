package simclr

import (
	"fmt"
	"strconv"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/nn"
)

// Head is the projection MLP g(h): hidden layers of Linear, BatchNorm and
// ReLU, then a final Linear. Names follow a torch nn.Sequential under
// "head." (0 Linear, 1 BatchNorm1d, 2 ReLU, 3 Linear, ...).
type Head struct {
	Linears []*nn.Linear
	BNs     []*nn.BatchNorm
}

// NewHead registers a head mapping in features through hidden layers of
// the given widths to out features.
func NewHead(r *nn.Registry, in int, hidden []int, out int) *Head {
	h := &Head{}
	idx := 0
	for _, w := range hidden {
		h.Linears = append(h.Linears, nn.NewLinear(r.Sub(strconv.Itoa(idx)), in, w, true))
		h.BNs = append(h.BNs, nn.NewBatchNorm(r.Sub(strconv.Itoa(idx+1)), w, false))
		in, idx = w, idx+3
	}
	h.Linears = append(h.Linears, nn.NewLinear(r.Sub(strconv.Itoa(idx)), in, out, true))
	return h
}

// Forward maps features h[N, in] to projections [N, out].
func (h *Head) Forward(t *autograd.Tape, x *autograd.Var) *autograd.Var {
	for i, bn := range h.BNs {
		x = bn.Forward(t, h.Linears[i].Forward(t, x), true)
	}
	return h.Linears[len(h.Linears)-1].Forward(t, x)
}

// ModelConfig selects the encoder and the projection head.
type ModelConfig struct {
	Encoder    resnet.Config
	ProjHidden []int // widths of the head's hidden layers
	ProjOut    int
}

// Model is SimCLR's f (encoder) and g (projection head).
type Model struct {
	Config  ModelConfig
	Params  *nn.Registry
	Encoder *resnet.ResNet
	Head    *Head
}

// NewModel builds a model with parameters initialised from seed.
func NewModel(cfg ModelConfig, seed uint64) (*Model, error) {
	if cfg.ProjOut <= 0 {
		return nil, fmt.Errorf("simclr: projection output size %d must be positive", cfg.ProjOut)
	}
	r := nn.NewRegistry(seed)
	enc, err := resnet.New(r, cfg.Encoder)
	if err != nil {
		return nil, err
	}
	return &Model{Config: cfg, Params: r, Encoder: enc, Head: NewHead(r.Sub("head"), enc.OutDim, cfg.ProjHidden, cfg.ProjOut)}, nil
}

// Forward returns the features h and projections z of images x[N,H,W,3].
func (m *Model) Forward(t *autograd.Tape, x *autograd.Var) (h, z *autograd.Var) {
	h = m.Encoder.Forward(t, x)
	return h, m.Head.Forward(t, h)
}
