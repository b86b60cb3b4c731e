package onnx

import (
	"fmt"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/tensor"
)

// builder appends nodes and initializers to a graph. Values are named
// after the layers that make them, so a viewer such as Netron shows
// torchvision's layer names.
type builder struct {
	g     graphProto
	taken map[string]bool
}

func newBuilder() *builder { return &builder{taken: map[string]bool{}} }

// unique returns name, or name with a numeric suffix if it is taken.
func (b *builder) unique(name string) string {
	n := name
	for i := 2; b.taken[n]; i++ {
		n = fmt.Sprintf("%s_%d", name, i)
	}
	b.taken[n] = true
	return n
}

// weight adds t as a float initializer under name (a parameter's
// torchvision name) and returns its value name.
func (b *builder) weight(name string, t *tensor.Tensor) string {
	name = b.unique(name)
	b.g.initializers = append(b.g.initializers, floatTensor(name, t.Shape, t.Data))
	return name
}

// constFloats adds a float constant of the given dims.
func (b *builder) constFloats(name string, dims []int, v []float32) string {
	name = b.unique(name)
	b.g.initializers = append(b.g.initializers, floatTensor(name, dims, v))
	return name
}

// constInts adds a 1-D int64 constant (shapes, split sizes).
func (b *builder) constInts(name string, v ...int64) string {
	name = b.unique(name)
	b.g.initializers = append(b.g.initializers, int64Tensor(name, v))
	return name
}

// op adds a node with one output named after it.
func (b *builder) op(name, opType string, inputs []string, attrs ...attribute) string {
	name = b.unique(name)
	b.g.nodes = append(b.g.nodes, nodeProto{inputs: inputs, outputs: []string{name}, name: name, op: opType, attrs: attrs})
	return name
}

// opN adds a node with n outputs, named name_0 ... name_{n-1}.
func (b *builder) opN(name, opType string, inputs []string, n int, attrs ...attribute) []string {
	name = b.unique(name)
	outs := make([]string, n)
	for i := range outs {
		outs[i] = b.unique(fmt.Sprintf("%s_%d", name, i))
	}
	b.g.nodes = append(b.g.nodes, nodeProto{inputs: inputs, outputs: outs, name: name, op: opType, attrs: attrs})
	return outs
}

// conv adds a convolution (no bias: the ResNets' convolutions have none,
// batch norm follows them) with the layer's stride, padding, dilation
// and groups.
func (b *builder) conv(name string, c *nn.Conv2d, x string) string {
	w := c.Weight.Value
	inputs := []string{x, b.weight(c.Weight.Name, w)}
	if c.Bias != nil {
		inputs = append(inputs, b.weight(c.Bias.Name, c.Bias.Value))
	}
	return b.op(name, "Conv", inputs, convAttrs(c.Opts, w.Shape[2], w.Shape[3])...)
}

func convAttrs(o autograd.ConvOpts, kh, kw int) []attribute {
	one := func(v int) int { return max(v, 1) }
	return []attribute{
		intsAttr("kernel_shape", kh, kw),
		intsAttr("strides", one(o.Stride), one(o.Stride)),
		intsAttr("pads", o.Pad, o.Pad, o.Pad, o.Pad),
		intsAttr("dilations", one(o.Dilation), one(o.Dilation)),
		intAttr("group", one(o.Groups)),
	}
}

// batchNorm adds bn in eval mode (running statistics) and, with relu, the
// ReLU the engine fuses into it. Its four tensors keep their torchvision
// names (prefix.weight, .bias, .running_mean, .running_var).
func (b *builder) batchNorm(name string, bn *nn.BatchNorm, x string, relu bool) string {
	prefix := bn.Weight.Name[:len(bn.Weight.Name)-len("weight")]
	y := b.op(name, "BatchNormalization", []string{
		x,
		b.weight(bn.Weight.Name, bn.Weight.Value),
		b.weight(bn.Bias.Name, bn.Bias.Value),
		b.weight(prefix+"running_mean", bn.Stats.Mean),
		b.weight(prefix+"running_var", bn.Stats.Var),
	}, floatAttr("epsilon", bn.Stats.Eps))
	if relu {
		return b.op(name+".relu", "Relu", []string{y})
	}
	return y
}

// linear adds x w^T + b for x[N, in] as a Gemm on the [out, in] weight.
func (b *builder) linear(name string, l *nn.Linear, x string) string {
	inputs := []string{x, b.weight(l.Weight.Name, l.Weight.Value)}
	if l.Bias != nil {
		inputs = append(inputs, b.weight(l.Bias.Name, l.Bias.Value))
	}
	return b.op(name, "Gemm", inputs, intAttr("transB", 1))
}
