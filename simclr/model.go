package simclr

import (
	"fmt"
	"strconv"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/nn"
)

// HeadStyle names the projection head's layout.
type HeadStyle string

// The head layouts.
const (
	// HeadPlain is Linear (with bias), BatchNorm and ReLU per hidden layer,
	// then a Linear with bias. The zero value.
	HeadPlain HeadStyle = ""
	// HeadOfficial is the official SimCLR code's head (tf2/model.py,
	// ProjectionHead): no Linear has a bias (a batch norm follows each);
	// hidden layers are Linear, BatchNorm, ReLU; the last is a Linear then a
	// BatchNorm that scales but does not shift (its "bias" is a buffer held
	// at zero).
	HeadOfficial HeadStyle = "official"
)

// ParseHeadStyle reads a head layout name: "plain" (or "") or "official".
func ParseHeadStyle(s string) (HeadStyle, error) {
	switch s {
	case "", "plain":
		return HeadPlain, nil
	case string(HeadOfficial):
		return HeadOfficial, nil
	}
	return "", fmt.Errorf("head style %q: want plain or official", s)
}

// Head is the projection MLP g(h): hidden layers of Linear, BatchNorm and
// ReLU, then a final Linear (and, in the official layout, a shift-free
// BatchNorm, OutBN). Names follow a torch nn.Sequential under "head." (0
// Linear, 1 BatchNorm1d, 2 ReLU, 3 Linear, ...; OutBN follows the last
// Linear at the next index).
type Head struct {
	Linears []*nn.Linear
	BNs     []*nn.BatchNorm
	// OutBN is the official layout's batch norm after the last Linear; nil
	// in the plain layout and in a classifier's kept hidden layers.
	OutBN *nn.BatchNorm
}

// NewHead registers a head mapping in features through hidden layers of
// the given widths to out features, in the given layout.
func NewHead(r *nn.Registry, in int, hidden []int, out int, style HeadStyle) *Head {
	h := hiddenLayers(r, in, hidden, style)
	if len(hidden) > 0 {
		in = hidden[len(hidden)-1]
	}
	idx := strconv.Itoa(3 * len(hidden))
	h.Linears = append(h.Linears, nn.NewLinear(r.Sub(idx), in, out, style != HeadOfficial))
	if style == HeadOfficial {
		h.OutBN = nn.NewBatchNormScaleOnly(r.Sub(strconv.Itoa(3*len(hidden)+1)), out)
	}
	return h
}

// Forward maps features h[N, in] to projections [N, out].
func (h *Head) Forward(t *autograd.Tape, x *autograd.Var) *autograd.Var {
	for i, bn := range h.BNs {
		x = bn.Forward(t, h.Linears[i].Forward(t, x), true)
	}
	x = h.Linears[len(h.Linears)-1].Forward(t, x)
	if h.OutBN != nil {
		x = h.OutBN.Forward(t, x, false)
	}
	return x
}

// ModelConfig selects the encoder and the projection head.
type ModelConfig struct {
	Encoder    resnet.Config
	ProjHidden []int // widths of the head's hidden layers
	ProjOut    int
	// HeadStyle is the head's layout; omitted from the JSON when plain, so
	// configurations from before it compare equal.
	HeadStyle HeadStyle `json:",omitempty"`
	// Init is how the parameters are first drawn (nn.InitTorchvision or
	// nn.InitOfficial); omitted from the JSON when torchvision's.
	Init nn.Init `json:",omitempty"`
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
	if _, err := ParseHeadStyle(string(cfg.HeadStyle)); err != nil {
		return nil, fmt.Errorf("simclr: %w", err)
	}
	if _, err := nn.ParseInit(string(cfg.Init)); err != nil {
		return nil, fmt.Errorf("simclr: %w", err)
	}
	r := nn.NewRegistry(seed)
	enc, err := resnet.New(r.WithInit(cfg.Init), cfg.Encoder)
	if err != nil {
		return nil, err
	}
	head := NewHead(r.Sub("head").WithInit(cfg.Init), enc.OutDim, cfg.ProjHidden, cfg.ProjOut, cfg.HeadStyle)
	return &Model{Config: cfg, Params: r, Encoder: enc, Head: head}, nil
}

// Forward returns the features h and projections z of images x[N,H,W,3].
func (m *Model) Forward(t *autograd.Tape, x *autograd.Var) (h, z *autograd.Var) {
	h = m.Encoder.Forward(t, x)
	return h, m.Head.Forward(t, h)
}
