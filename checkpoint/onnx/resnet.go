package onnx

import (
	"fmt"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/nn"
)

// params indexes a registry's layers by torchvision name, for the parts of
// a ResNet its exported fields do not reach (projection shortcuts and the
// deep stem).
type params struct {
	tensors map[string]*nn.Param
	bns     map[string]*nn.BatchNorm // by name prefix, "layer1.0.downsample.1."
}

func indexParams(r *nn.Registry) params {
	p := params{tensors: map[string]*nn.Param{}, bns: map[string]*nn.BatchNorm{}}
	for _, t := range r.Params() {
		p.tensors[t.Name] = t
	}
	for _, bn := range r.BatchNorms() {
		p.bns[bn.Weight.Name[:len(bn.Weight.Name)-len("weight")]] = bn
	}
	return p
}

// conv returns the convolution whose weight is prefix+"weight", with the
// given options; nil if the registry has none.
func (p params) conv(prefix string, o autograd.ConvOpts) *nn.Conv2d {
	w, ok := p.tensors[prefix+"weight"]
	if !ok {
		return nil
	}
	return &nn.Conv2d{Weight: w, Bias: p.tensors[prefix+"bias"], Opts: o}
}

func (p params) bn(prefix string) (*nn.BatchNorm, error) {
	bn, ok := p.bns[prefix]
	if !ok {
		return nil, fmt.Errorf("onnx: the model has no batch norm %sweight", prefix)
	}
	return bn, nil
}

// encoder adds m's layers from images x[N,3,H,W] to the pooled features
// [N, OutDim], mirroring resnet.ResNet.Forward.
func (b *builder) encoder(m *resnet.ResNet, reg *nn.Registry, x string) (string, error) {
	p := indexParams(reg)
	cfg := m.Config
	if cfg.SKRatio > 0 && !cfg.CIFARStem {
		// ResNet-D's deep stem: stem.0/1 (stride 2) and stem.2/3 before conv1.
		for i, stride := range []int{2, 1} {
			name := fmt.Sprintf("stem.%d.", 2*i)
			c := p.conv(name, autograd.ConvOpts{Stride: stride, Pad: 1})
			if c == nil {
				return "", fmt.Errorf("onnx: selective-kernel model without its deep stem (%sweight)", name)
			}
			bn, err := p.bn(fmt.Sprintf("stem.%d.", 2*i+1))
			if err != nil {
				return "", err
			}
			x = b.batchNorm(fmt.Sprintf("stem.%d", 2*i+1), bn, b.conv(fmt.Sprintf("stem.%d", 2*i), c, x), true)
		}
	}
	h := b.batchNorm("bn1", m.BN1, b.conv("conv1", m.Conv1, x), true)
	if !cfg.CIFARStem {
		h = b.op("maxpool", "MaxPool", []string{h},
			intsAttr("kernel_shape", 3, 3), intsAttr("strides", 2, 2), intsAttr("pads", 1, 1, 1, 1))
	}
	for s, layer := range m.Layers {
		for i, blk := range layer {
			name := fmt.Sprintf("layer%d.%d", s+1, i)
			var err error
			if h, err = b.block(name, blk, p, cfg, h); err != nil {
				return "", err
			}
		}
	}
	h = b.op("avgpool", "GlobalAveragePool", []string{h})
	return b.op("flatten", "Flatten", []string{h}, intAttr("axis", 1)), nil
}

// block adds one residual block: its main path, its shortcut, the sum and
// the ReLU.
func (b *builder) block(name string, blk resnet.Block, p params, cfg resnet.Config, x string) (string, error) {
	var h string
	var stride int
	switch blk := blk.(type) {
	case *resnet.BasicBlock:
		if blk.SK != nil {
			h, stride = b.skConv(name+".conv1", blk.SK, x), blk.SK.Conv.Opts.Stride
		} else {
			h, stride = b.batchNorm(name+".bn1", blk.BN1, b.conv(name+".conv1", blk.Conv1, x), true), blk.Conv1.Opts.Stride
		}
		h = b.batchNorm(name+".bn2", blk.BN2, b.conv(name+".conv2", blk.Conv2, h), false)
	case *resnet.Bottleneck:
		h = b.batchNorm(name+".bn1", blk.BN1, b.conv(name+".conv1", blk.Conv1, x), true)
		if blk.SK != nil {
			h, stride = b.skConv(name+".conv2", blk.SK, h), blk.SK.Conv.Opts.Stride
		} else {
			h, stride = b.batchNorm(name+".bn2", blk.BN2, b.conv(name+".conv2", blk.Conv2, h), true), blk.Conv2.Opts.Stride
		}
		h = b.batchNorm(name+".bn3", blk.BN3, b.conv(name+".conv3", blk.Conv3, h), false)
	default:
		return "", fmt.Errorf("onnx: %s: block type %T has no ONNX form", name, blk)
	}
	short, err := b.shortcut(name+".downsample", p, cfg, max(stride, 1), x)
	if err != nil {
		return "", err
	}
	return b.op(name+".relu", "Relu", []string{b.op(name+".add", "Add", []string{h, short})}), nil
}

// shortcut adds a block's projection shortcut when the model has one
// (name.0 a 1x1 convolution, name.1 its batch norm) and returns x
// otherwise. torchvision's projection strides the convolution;
// selective-kernel models (ResNet-D) average-pool first and convolve with
// stride 1, as models/resnet's avgPoolD: for stride 2 a zero row and
// column after the input and a 2x2 average counting them, for stride 1 a
// 2x2 average over the in-bounds positions that keeps the size.
func (b *builder) shortcut(name string, p params, cfg resnet.Config, stride int, x string) (string, error) {
	convStride := stride
	if cfg.SKRatio > 0 {
		convStride = 1
	}
	c := p.conv(name+".0.", autograd.ConvOpts{Stride: convStride})
	if c == nil {
		return x, nil
	}
	bn, err := p.bn(name + ".1.")
	if err != nil {
		return "", err
	}
	if cfg.SKRatio > 0 {
		countPad := 0
		if stride > 1 {
			countPad = 1
		}
		x = b.op(name+".pool", "AveragePool", []string{x},
			intsAttr("kernel_shape", 2, 2), intsAttr("strides", stride, stride),
			intsAttr("pads", 0, 0, 1, 1), intAttr("count_include_pad", countPad))
	}
	return b.batchNorm(name+".1", bn, b.conv(name+".0", c, x), false), nil
}

// skConv adds a selective-kernel convolution (resnet.SKConv.Forward): the
// two branches from one convolution, attention from their pooled sum, a
// softmax across the branches per channel, and the weighted sum.
func (b *builder) skConv(name string, s *resnet.SKConv, x string) string {
	f := int64(s.Filters)
	h := b.batchNorm(name+".bn", s.BN, b.conv(name+".conv", s.Conv, x), true)
	split := b.constInts(name+".split", f, f)
	branches := b.opN(name+".branches", "Split", []string{h, split}, 2, intAttr("axis", 1))
	pooled := b.opN(name+".pooled", "Split", []string{b.op(name+".avgpool", "GlobalAveragePool", []string{h}), split}, 2, intAttr("axis", 1))
	z := b.op(name+".attn.sum", "Add", pooled)
	z = b.batchNorm(name+".attn.bn", s.AttnBN, b.conv(name+".attn.fc_reduce", s.Reduce, z), true)
	logits := b.conv(name+".attn.fc_select", s.Select, z) // [N, 2F, 1, 1]
	logits = b.op(name+".attn.branches", "Reshape", []string{logits, b.constInts(name+".attn.shape", 0, 2, f, 1, 1)})
	mix := b.op(name+".attn.softmax", "Softmax", []string{logits}, intAttr("axis", 1))
	weights := b.opN(name+".attn.weights", "Split", []string{mix, b.constInts(name+".attn.split", 1, 1)}, 2, intAttr("axis", 1))
	flat := b.constInts(name+".attn.flat", -1, f, 1, 1)
	var terms []string
	for i, br := range branches {
		w := b.op(fmt.Sprintf("%s.attn.weight%d", name, i), "Reshape", []string{weights[i], flat})
		terms = append(terms, b.op(fmt.Sprintf("%s.mix%d", name, i), "Mul", []string{br, w}))
	}
	return b.op(name+".out", "Add", terms)
}
