// Package resnet builds the ResNet encoders SimCLR trains: depths 18 to 152,
// any base width (64 is torchvision's; 128 is "2x"), and the CIFAR stem
// (3x3 stride-1 convolution, no max pool) for small images. Parameter names
// match torchvision's resnet models.
package resnet

import (
	"fmt"
	"strconv"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/nn"
)

// Config selects an encoder.
type Config struct {
	Depth int // 18, 34, 50, 101 or 152
	Width int // channels of the first stage; 64 is the standard "1x"
	// CIFARStem uses a 3x3 stride-1 first convolution and no max pool.
	CIFARStem bool
	// ZeroInitResidual starts each block's last batch-norm scale at zero, so
	// every residual block begins as the identity.
	ZeroInitResidual bool
	// SKRatio > 0 makes a SimCLRv2 selective-kernel ResNet (see sk.go): SK
	// convolutions in place of the blocks' 3x3 ones, whose attention has
	// max(int(filters*SKRatio), SKMinDim) channels, ResNet-D shortcuts and,
	// with the ImageNet stem, ResNet-D's deep stem. SimCLRv2 uses 0.0625.
	SKRatio float64
	// SKMinDim is the floor on the SK attention channels; 0 means the
	// reference's 32.
	SKMinDim int
}

// stages gives each depth's block kind and blocks per stage.
var stages = map[int]struct {
	bottleneck bool
	blocks     [4]int
}{
	18:  {false, [4]int{2, 2, 2, 2}},
	34:  {false, [4]int{3, 4, 6, 3}},
	50:  {true, [4]int{3, 4, 6, 3}},
	101: {true, [4]int{3, 4, 23, 3}},
	152: {true, [4]int{3, 8, 36, 3}},
}

// Depths lists the supported depths.
func Depths() []int { return []int{18, 34, 50, 101, 152} }

// Block is one residual block.
type Block interface {
	Forward(t *autograd.Tape, x *autograd.Var) *autograd.Var
}

// ResNet is an encoder: images in, global-average-pooled features out.
type ResNet struct {
	Config Config
	Conv1  *nn.Conv2d
	BN1    *nn.BatchNorm
	// stem is ResNet-D's deep stem before Conv1 (SK ImageNet stem only).
	stem   *deepStem
	Layers [4][]Block
	// OutDim is the feature size: 8*Width, times 4 for bottleneck depths.
	OutDim int
}

// New registers an encoder's parameters under r.
func New(r *nn.Registry, cfg Config) (*ResNet, error) {
	spec, ok := stages[cfg.Depth]
	if !ok {
		return nil, fmt.Errorf("resnet: depth %d not supported (use one of %v)", cfg.Depth, Depths())
	}
	if cfg.Width <= 0 {
		return nil, fmt.Errorf("resnet: width %d must be positive", cfg.Width)
	}
	if cfg.SKRatio < 0 || cfg.SKMinDim < 0 {
		return nil, fmt.Errorf("resnet: SK ratio %g and minimum %d must not be negative", cfg.SKRatio, cfg.SKMinDim)
	}
	m := &ResNet{Config: cfg}
	if cfg.SKRatio > 0 && !cfg.CIFARStem {
		m.stem = newDeepStem(r.Sub("stem"), cfg.Width)
		m.Conv1 = nn.NewConv2d(r.Sub("conv1"), max(cfg.Width/2, 1), cfg.Width, 3, autograd.ConvOpts{Stride: 1, Pad: 1}, false)
	} else if cfg.CIFARStem {
		m.Conv1 = nn.NewConv2d(r.Sub("conv1"), 3, cfg.Width, 3, autograd.ConvOpts{Stride: 1, Pad: 1}, false)
	} else {
		m.Conv1 = nn.NewConv2d(r.Sub("conv1"), 3, cfg.Width, 7, autograd.ConvOpts{Stride: 2, Pad: 3}, false)
	}
	m.BN1 = nn.NewBatchNorm(r.Sub("bn1"), cfg.Width, false)
	expansion := 1
	if spec.bottleneck {
		expansion = 4
	}
	in := cfg.Width
	for s := 0; s < 4; s++ {
		planes := cfg.Width << s
		stride := 1
		if s > 0 {
			stride = 2
		}
		layer := r.Sub("layer" + strconv.Itoa(s+1))
		for i := 0; i < spec.blocks[s]; i++ {
			br := layer.Sub(strconv.Itoa(i))
			st := 1
			if i == 0 {
				st = stride
			}
			var blk Block
			if cfg.SKRatio > 0 {
				blk = newSKBlock(br, in, planes, st, spec.bottleneck, cfg)
			} else if spec.bottleneck {
				blk = newBottleneck(br, in, planes, st, cfg.ZeroInitResidual)
			} else {
				blk = newBasicBlock(br, in, planes, st, cfg.ZeroInitResidual)
			}
			m.Layers[s] = append(m.Layers[s], blk)
			in = planes * expansion
		}
	}
	m.OutDim = in
	return m, nil
}

// Forward maps images x[N,H,W,3] to features [N, OutDim].
func (m *ResNet) Forward(t *autograd.Tape, x *autograd.Var) *autograd.Var {
	if m.stem != nil {
		x = m.stem.forward(t, x)
	}
	h := m.BN1.Forward(t, m.Conv1.Forward(t, x), true)
	if !m.Config.CIFARStem {
		h = t.MaxPool2D(h, 3, 2, 1)
	}
	for _, layer := range m.Layers {
		for _, blk := range layer {
			h = blk.Forward(t, h)
		}
	}
	return t.GlobalAvgPool(h)
}

// shortcut is the projection (1x1 convolution and batch norm) a block uses
// when it changes resolution or width.
type shortcut struct {
	conv *nn.Conv2d
	bn   *nn.BatchNorm
	// pool is the stride of ResNet-D's 2x2 average pool before a stride-1
	// conv; 0 for torchvision's strided 1x1 convolution.
	pool int
}

func newShortcut(r *nn.Registry, in, out, stride int) *shortcut {
	if stride == 1 && in == out {
		return nil
	}
	return &shortcut{
		conv: nn.NewConv2d(r.Sub("0"), in, out, 1, autograd.ConvOpts{Stride: stride}, false),
		bn:   nn.NewBatchNorm(r.Sub("1"), out, false),
	}
}

func (s *shortcut) forward(t *autograd.Tape, x *autograd.Var) *autograd.Var {
	if s == nil {
		return x
	}
	if s.pool > 0 {
		x = avgPoolD(t, x, s.pool)
	}
	return s.bn.Forward(t, s.conv.Forward(t, x), false)
}

// BasicBlock is two 3x3 convolutions with a residual connection (ResNet-18
// and -34).
type BasicBlock struct {
	Conv1, Conv2 *nn.Conv2d
	BN1, BN2     *nn.BatchNorm
	// SK replaces Conv1 and BN1 in SK ResNets.
	SK   *SKConv
	down *shortcut
}

func newBasicBlock(r *nn.Registry, in, planes, stride int, zeroInit bool) *BasicBlock {
	return &BasicBlock{
		Conv1: nn.NewConv2d(r.Sub("conv1"), in, planes, 3, autograd.ConvOpts{Stride: stride, Pad: 1}, false),
		BN1:   nn.NewBatchNorm(r.Sub("bn1"), planes, false),
		Conv2: nn.NewConv2d(r.Sub("conv2"), planes, planes, 3, autograd.ConvOpts{Stride: 1, Pad: 1}, false),
		BN2:   nn.NewBatchNorm(r.Sub("bn2"), planes, zeroInit),
		down:  newShortcut(r.Sub("downsample"), in, planes, stride),
	}
}

// Forward implements Block.
func (b *BasicBlock) Forward(t *autograd.Tape, x *autograd.Var) *autograd.Var {
	var h *autograd.Var
	if b.SK != nil {
		h = b.SK.Forward(t, x)
	} else {
		h = b.BN1.Forward(t, b.Conv1.Forward(t, x), true)
	}
	h = b.BN2.Forward(t, b.Conv2.Forward(t, h), false)
	return t.AddReLU(h, b.down.forward(t, x))
}

// Bottleneck is 1x1, 3x3, 1x1 convolutions with 4x expansion; the stride is
// on the 3x3 convolution (ResNet v1.5, as torchvision).
type Bottleneck struct {
	Conv1, Conv2, Conv3 *nn.Conv2d
	BN1, BN2, BN3       *nn.BatchNorm
	// SK replaces Conv2 and BN2 in SK ResNets.
	SK   *SKConv
	down *shortcut
}

func newBottleneck(r *nn.Registry, in, planes, stride int, zeroInit bool) *Bottleneck {
	out := planes * 4
	return &Bottleneck{
		Conv1: nn.NewConv2d(r.Sub("conv1"), in, planes, 1, autograd.ConvOpts{Stride: 1}, false),
		BN1:   nn.NewBatchNorm(r.Sub("bn1"), planes, false),
		Conv2: nn.NewConv2d(r.Sub("conv2"), planes, planes, 3, autograd.ConvOpts{Stride: stride, Pad: 1}, false),
		BN2:   nn.NewBatchNorm(r.Sub("bn2"), planes, false),
		Conv3: nn.NewConv2d(r.Sub("conv3"), planes, out, 1, autograd.ConvOpts{Stride: 1}, false),
		BN3:   nn.NewBatchNorm(r.Sub("bn3"), out, zeroInit),
		down:  newShortcut(r.Sub("downsample"), in, out, stride),
	}
}

// Forward implements Block.
func (b *Bottleneck) Forward(t *autograd.Tape, x *autograd.Var) *autograd.Var {
	h := b.BN1.Forward(t, b.Conv1.Forward(t, x), true)
	if b.SK != nil {
		h = b.SK.Forward(t, h)
	} else {
		h = b.BN2.Forward(t, b.Conv2.Forward(t, h), true)
	}
	h = b.BN3.Forward(t, b.Conv3.Forward(t, h), false)
	return t.AddReLU(h, b.down.forward(t, x))
}
