package resnet

// Selective-kernel ResNets, SimCLRv2's encoders (Config.SKRatio > 0),
// following google-research/simclr tf2/resnet.py:
//
//   - SKConv replaces the 3x3 convolution (and its batch norm and ReLU) of
//     every bottleneck block, and the first 3x3 convolution of every basic
//     block (the reference has no SK basic block; this is the same
//     substitution, so depths 18 and 34 work too).
//   - Projection shortcuts are ResNet-D's: a 2x2 average pool, then a
//     stride-1 1x1 convolution and batch norm (shortcut.pool).
//   - The ImageNet stem is ResNet-D's deep stem: three 3x3 convolutions
//     (Width/2 stride 2, Width/2, Width), each with batch norm and ReLU,
//     then the max pool. The CIFAR stem is unchanged.
//
// Parameter names. An SK convolution registered as "conv2" of a block
// (bottleneck; "conv1" in a basic block) holds, for F filters and
// M = max(int(F*SKRatio), SKMinDim) attention channels:
//
//	conv2.conv.weight            [2F, in, 3, 3]  both branches' 3x3 convolutions
//	conv2.bn.*                   [2F]            their batch norm (ReLU fused)
//	conv2.attn.fc_reduce.weight  [M, F, 1, 1]    1x1 convolution of the pooled sum
//	conv2.attn.bn.*              [M]             its batch norm (ReLU fused)
//	conv2.attn.fc_select.weight  [2F, M, 1, 1]   per-branch attention logits
//
// and the block has no bn2 (bn1 in a basic block): the batch norm is inside
// the SK convolution. Shortcuts keep torchvision's downsample.0 (the 1x1
// convolution, now stride 1 after the pool) and downsample.1 (batch norm).
// The deep stem is stem.0, stem.1 (convolution and batch norm, Width/2
// stride 2) and stem.2, stem.3 (Width/2, stride 1) before conv1 (a 3x3
// convolution from Width/2 to Width) and bn1.

import (
	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/nn"
)

// SKMinDim is the reference's default floor on an SK convolution's
// attention channels (min_dim).
const SKMinDim = 32

// SKConv is a selective-kernel convolution: one 3x3 convolution makes two
// branches of Filters channels each (conv, batch norm, ReLU, then split);
// their sum is averaged over space, reduced to Mid channels (1x1
// convolution, batch norm, ReLU) and expanded to 2*Filters logits, one per
// branch and channel; a softmax across the two branches gives each sample
// and channel the weights that mix the branches into the output.
type SKConv struct {
	Conv   *nn.Conv2d    // in -> 2*Filters, 3x3, with the stride
	BN     *nn.BatchNorm // 2*Filters, ReLU fused
	Reduce *nn.Conv2d    // Filters -> Mid, 1x1 (a linear layer on pooled features)
	AttnBN *nn.BatchNorm // Mid, ReLU fused
	Select *nn.Conv2d    // Mid -> 2*Filters, 1x1
	// Filters is the output channels; Mid the attention's hidden channels.
	Filters, Mid int
}

// NewSKConv registers an SK convolution from in channels to filters under
// r, with max(int(filters*ratio), minDim) attention channels.
func NewSKConv(r *nn.Registry, in, filters, stride int, ratio float64, minDim int) *SKConv {
	mid := max(int(float64(filters)*ratio), minDim, 1)
	a := r.Sub("attn")
	return &SKConv{
		Conv:    nn.NewConv2d(r.Sub("conv"), in, 2*filters, 3, autograd.ConvOpts{Stride: stride, Pad: 1}, false),
		BN:      nn.NewBatchNorm(r.Sub("bn"), 2*filters, false),
		Reduce:  nn.NewConv2d(a.Sub("fc_reduce"), filters, mid, 1, autograd.ConvOpts{}, false),
		AttnBN:  nn.NewBatchNorm(a.Sub("bn"), mid, false),
		Select:  nn.NewConv2d(a.Sub("fc_select"), mid, 2*filters, 1, autograd.ConvOpts{}, false),
		Filters: filters,
		Mid:     mid,
	}
}

// Forward maps x[N,H,W,in] to [N,OH,OW,Filters]. In training the
// attention's batch norm normalises over the batch alone (one value per
// sample and channel), so it needs N >= 2.
func (s *SKConv) Forward(t *autograd.Tape, x *autograd.Var) *autograd.Var {
	f := s.Filters
	h := s.BN.Forward(t, s.Conv.Forward(t, x), true)
	a, b := t.SliceChannels(h, 0, f), t.SliceChannels(h, f, 2*f)
	// mean over space of a+b, as the mean of both halves of h added.
	p := t.GlobalAvgPool(h)
	z := t.Add(t.SliceChannels(p, 0, f), t.SliceChannels(p, f, 2*f))
	// The 1x1 convolutions of [N,1,1,C] tensors are linear layers; their
	// [out, in, 1, 1] weights have the [out, in] layout Linear reads.
	z = s.AttnBN.Forward(t, t.Linear(z, s.Reduce.Weight.Var, nil), true)
	mix := t.SoftmaxBranches(t.Linear(z, s.Select.Weight.Var, nil), 2)
	return t.Add(t.ScaleChannels(a, t.SliceChannels(mix, 0, f)), t.ScaleChannels(b, t.SliceChannels(mix, f, 2*f)))
}

// skMinDim is the configured attention floor.
func (c Config) skMinDim() int {
	if c.SKMinDim > 0 {
		return c.SKMinDim
	}
	return SKMinDim
}

// deepStem is ResNet-D's stem before conv1: two 3x3 convolutions with batch
// norm and ReLU, the first with stride 2.
type deepStem struct {
	conv [2]*nn.Conv2d
	bn   [2]*nn.BatchNorm
}

func newDeepStem(r *nn.Registry, width int) *deepStem {
	half := max(width/2, 1)
	return &deepStem{
		conv: [2]*nn.Conv2d{
			nn.NewConv2d(r.Sub("0"), 3, half, 3, autograd.ConvOpts{Stride: 2, Pad: 1}, false),
			nn.NewConv2d(r.Sub("2"), half, half, 3, autograd.ConvOpts{Stride: 1, Pad: 1}, false),
		},
		bn: [2]*nn.BatchNorm{nn.NewBatchNorm(r.Sub("1"), half, false), nn.NewBatchNorm(r.Sub("3"), half, false)},
	}
}

func (d *deepStem) forward(t *autograd.Tape, x *autograd.Var) *autograd.Var {
	for i := range d.conv {
		x = d.bn[i].Forward(t, d.conv[i].Forward(t, x), true)
	}
	return x
}

// newSKBlock builds an SK ResNet's block: the SK convolution in place of
// the (strided) 3x3 convolution and its batch norm, and a ResNet-D
// projection shortcut where torchvision has one.
func newSKBlock(r *nn.Registry, in, planes, stride int, bottleneck bool, cfg Config) Block {
	out := planes
	if bottleneck {
		out = 4 * planes
	}
	var down *shortcut
	if stride != 1 || in != out {
		down = &shortcut{
			conv: nn.NewConv2d(r.Sub("downsample").Sub("0"), in, out, 1, autograd.ConvOpts{Stride: 1}, false),
			bn:   nn.NewBatchNorm(r.Sub("downsample").Sub("1"), out, false),
			pool: stride,
		}
	}
	if !bottleneck {
		return &BasicBlock{
			SK:    NewSKConv(r.Sub("conv1"), in, planes, stride, cfg.SKRatio, cfg.skMinDim()),
			Conv2: nn.NewConv2d(r.Sub("conv2"), planes, planes, 3, autograd.ConvOpts{Stride: 1, Pad: 1}, false),
			BN2:   nn.NewBatchNorm(r.Sub("bn2"), planes, cfg.ZeroInitResidual),
			down:  down,
		}
	}
	return &Bottleneck{
		Conv1: nn.NewConv2d(r.Sub("conv1"), in, planes, 1, autograd.ConvOpts{Stride: 1}, false),
		BN1:   nn.NewBatchNorm(r.Sub("bn1"), planes, false),
		SK:    NewSKConv(r.Sub("conv2"), planes, planes, stride, cfg.SKRatio, cfg.skMinDim()),
		Conv3: nn.NewConv2d(r.Sub("conv3"), planes, out, 1, autograd.ConvOpts{Stride: 1}, false),
		BN3:   nn.NewBatchNorm(r.Sub("bn3"), out, cfg.ZeroInitResidual),
		down:  down,
	}
}

// avgPoolD is ResNet-D's shortcut pool as the reference has it: for stride
// 2, a zero row and column after the input (FixedPadding(2)) and a 2x2
// 'VALID' average every 2 positions, so odd sizes give ceil(H/2) like the
// strided 3x3 path; for stride 1, a 2x2 'SAME' average (windows clipped at
// the bottom and right edges, divided by their in-bounds size) that keeps
// the size.
func avgPoolD(t *autograd.Tape, x *autograd.Var, stride int) *autograd.Var {
	if stride == 1 {
		return t.AvgPool2D(x, 2, 1, 1, false)
	}
	return t.AvgPool2D(x, 2, stride, 1, true)
}
