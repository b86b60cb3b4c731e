package onnx

import (
	"encoding/binary"
	"math"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// The subset of onnx.proto (github.com/onnx/onnx, onnx/onnx.proto) this
// package writes, as plain Go values that encode themselves with the
// protobuf wire format. Field numbers are onnx.proto's.

// Versions: IR 8 is the first that opset 17 may be used with (ONNX 1.12).
const (
	irVersion = 8
	opset     = 17
)

// Tensor element types (TensorProto.DataType).
const (
	typeFloat = 1
	typeInt64 = 7
)

// AttributeProto.AttributeType values.
const (
	attrFloat = 1
	attrInt   = 2
	attrInts  = 7
)

// tensorProto is an initializer: float32 or int64 values, written as
// raw_data (little-endian, as onnx.proto requires).
type tensorProto struct {
	name   string
	dims   []int64
	floats []float32
	ints   []int64
}

func floatTensor(name string, dims []int, data []float32) tensorProto {
	return tensorProto{name: name, dims: int64s(dims), floats: data}
}

func int64Tensor(name string, data []int64) tensorProto {
	return tensorProto{name: name, dims: []int64{int64(len(data))}, ints: data}
}

func int64s(v []int) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

func (t *tensorProto) appendTo(b []byte) []byte {
	b = appendPackedInts(b, 1, t.dims) // dims
	if t.ints != nil {
		b = appendInt(b, 2, typeInt64) // data_type
	} else {
		b = appendInt(b, 2, typeFloat)
	}
	b = appendString(b, 8, t.name)
	b = protowire.AppendTag(b, 9, protowire.BytesType) // raw_data
	if t.ints != nil {
		b = protowire.AppendVarint(b, uint64(8*len(t.ints)))
		for _, v := range t.ints {
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		}
		return b
	}
	b = protowire.AppendVarint(b, uint64(4*len(t.floats)))
	start := len(b)
	b = slices.Grow(b, 4*len(t.floats))[:start+4*len(t.floats)]
	raw := b[start:]
	for i, v := range t.floats {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return b
}

// attribute is an AttributeProto holding one int, float or list of ints.
type attribute struct {
	name string
	kind int
	i    int64
	f    float32
	ints []int64
}

func intAttr(name string, v int) attribute { return attribute{name: name, kind: attrInt, i: int64(v)} }

func floatAttr(name string, v float32) attribute {
	return attribute{name: name, kind: attrFloat, f: v}
}

func intsAttr(name string, v ...int) attribute {
	return attribute{name: name, kind: attrInts, ints: int64s(v)}
}

func (a *attribute) appendTo(b []byte) []byte {
	b = appendString(b, 1, a.name)
	switch a.kind {
	case attrFloat:
		b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.f))
	case attrInt:
		b = appendInt(b, 3, a.i)
	case attrInts:
		b = appendPackedInts(b, 8, a.ints)
	}
	return appendInt(b, 20, int64(a.kind)) // type
}

// nodeProto is one operator application.
type nodeProto struct {
	inputs, outputs []string
	name, op        string
	attrs           []attribute
}

func (n *nodeProto) appendTo(b []byte) []byte {
	for _, s := range n.inputs {
		b = appendString(b, 1, s)
	}
	for _, s := range n.outputs {
		b = appendString(b, 2, s)
	}
	b = appendString(b, 3, n.name)
	b = appendString(b, 4, n.op)
	for i := range n.attrs {
		b = appendMessage(b, 5, n.attrs[i].appendTo)
	}
	return b
}

// dim is a dimension of a graph input or output: a size, or a name for a
// size known only at run time (dim_param).
type dim struct {
	size  int64
	param string
}

// valueInfo is a float tensor input or output of the graph.
type valueInfo struct {
	name string
	dims []dim
}

func (v *valueInfo) appendTo(b []byte) []byte {
	b = appendString(b, 1, v.name)
	return appendMessage(b, 2, func(b []byte) []byte { // TypeProto
		return appendMessage(b, 1, func(b []byte) []byte { // TypeProto.Tensor
			b = appendInt(b, 1, typeFloat)                     // elem_type
			return appendMessage(b, 2, func(b []byte) []byte { // TensorShapeProto
				for _, d := range v.dims {
					b = appendMessage(b, 1, func(b []byte) []byte { // Dimension
						if d.param != "" {
							return appendString(b, 2, d.param)
						}
						return appendInt(b, 1, d.size)
					})
				}
				return b
			})
		})
	})
}

// graphProto is the network: nodes in topological order, weights as
// initializers, one input and one output.
type graphProto struct {
	name         string
	doc          string
	nodes        []nodeProto
	initializers []tensorProto
	inputs       []valueInfo
	outputs      []valueInfo
}

func (g *graphProto) appendTo(b []byte) []byte {
	for i := range g.nodes {
		b = appendMessage(b, 1, g.nodes[i].appendTo)
	}
	b = appendString(b, 2, g.name)
	for i := range g.initializers {
		b = appendMessage(b, 5, g.initializers[i].appendTo)
	}
	b = appendString(b, 10, g.doc)
	for i := range g.inputs {
		b = appendMessage(b, 11, g.inputs[i].appendTo)
	}
	for i := range g.outputs {
		b = appendMessage(b, 12, g.outputs[i].appendTo)
	}
	return b
}

// sizeHint is a generous estimate of the encoded size, so that encoding
// appends into one buffer instead of regrowing one the size of the
// weights many times over.
func (g *graphProto) sizeHint() int {
	n := 1 << 16
	for i := range g.initializers {
		t := &g.initializers[i]
		n += 4*len(t.floats) + 8*len(t.ints) + len(t.name) + 64
	}
	for i := range g.nodes {
		n += 512
		for _, s := range g.nodes[i].inputs {
			n += len(s) + 4
		}
	}
	return n
}

// modelProto is the file's top-level message.
type modelProto struct {
	producer, producerVersion string
	doc                       string
	graph                     graphProto
	meta                      [][2]string // metadata_props, in order
}

func (m *modelProto) marshal() []byte {
	b := make([]byte, 0, m.graph.sizeHint())
	b = appendInt(b, 1, irVersion)
	b = appendString(b, 2, m.producer)
	b = appendString(b, 3, m.producerVersion)
	b = appendString(b, 6, m.doc)
	b = appendMessage(b, 7, m.graph.appendTo)
	b = appendMessage(b, 8, func(b []byte) []byte { // OperatorSetIdProto
		b = appendString(b, 1, "") // the default domain, ai.onnx
		return appendInt(b, 2, opset)
	})
	for _, kv := range m.meta {
		b = appendMessage(b, 14, func(b []byte) []byte { // StringStringEntryProto
			b = appendString(b, 1, kv[0])
			return appendString(b, 2, kv[1])
		})
	}
	return b
}

// Wire helpers. An empty string is left out: the field is absent, which
// onnx.proto's optional fields read as their default.

func appendInt(b []byte, num protowire.Number, v int64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendPackedInts(b []byte, num protowire.Number, v []int64) []byte {
	if len(v) == 0 {
		return b
	}
	var packed []byte
	for _, x := range v {
		packed = protowire.AppendVarint(packed, uint64(x))
	}
	return appendBytes(b, num, packed)
}

// appendMessage appends an embedded message field whose content body
// appends. The content is written in place and moved up by the size of
// its length prefix, so a large graph is not copied into a second buffer.
func appendMessage(b []byte, num protowire.Number, body func([]byte) []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	start := len(b)
	b = body(b)
	n := len(b) - start
	prefix := protowire.SizeVarint(uint64(n))
	b = append(b, make([]byte, prefix)...)
	copy(b[start+prefix:], b[start:start+n])
	protowire.AppendVarint(b[start:start], uint64(n))
	return b
}
