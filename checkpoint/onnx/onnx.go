// Package onnx writes trained models as ONNX files (opset 17) that
// onnxruntime, TensorRT, OpenVINO and the other ONNX runtimes execute: the
// ResNet encoder (depths 18-152, any width, CIFAR or ImageNet stem,
// selective kernels), optionally with layers of its projection head, and
// optionally with a classifier's linear layer on top.
//
// # Input contract
//
// The graph has one input, "images": float32 [N, 3, H, W] (NCHW), RGB
// values in [0, 1] (bytes divided by 255, grayscale images repeated over
// the three channels), the layout and scale simclr's own evaluation feeds
// its encoders. N is dynamic ("batch"). H and W are fixed to the side the
// model was trained at when it is known (Spec.ImageSize) and dynamic
// otherwise ("height", "width"): the encoder ends in global average
// pooling, so other sizes run, but features match training only at its
// size. Images are resized and centre-cropped to that side beforehand, as
// simclr embed does. When the model expects normalised inputs (an
// encoder imported with --normalize imagenet), the normalisation
// (x - mean) / std is a node of the graph, so the input stays [0, 1].
//
// The one output is "features" [N, D] (the encoder's h), "hidden<k>" (the
// head's k-th hidden layer, after its ReLU), "projection" (z), or
// "logits" [N, classes] for a classifier (softmax gives probabilities).
//
// Batch norm runs in eval mode with the running statistics, as
// BatchNormalization nodes; weights are initializers under torchvision's
// tensor names, stored as raw little-endian data. The file is encoded with
// google.golang.org/protobuf's wire package, field numbers from onnx.proto.
package onnx

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/simclr-go/simclr/internal/atomicfile"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/simclr"
)

// Names of the graph's input and outputs.
const (
	InputName      = "images"
	FeaturesName   = "features"
	ProjectionName = "projection"
	LogitsName     = "logits"
)

// Spec says which network to write.
type Spec struct {
	// Model holds the encoder and, when Layer reaches into it, the head.
	Model *simclr.Model
	// Layer is where the network ends, as for simclr.Model.LayerForward:
	// 0 the encoder's features h, 1 to n the head's hidden layers,
	// simclr.LayerZ the projection z.
	Layer int
	// FC, when set, is a classifier's linear layer on Layer's output; the
	// network then gives logits.
	FC *nn.Linear
	// InputMean and InputStd, when set (three values each), normalise
	// the [0, 1] input inside the graph (see simclr.Loaded.InputMean).
	InputMean, InputStd []float32
	// ImageSize fixes the input's height and width; 0 leaves them
	// dynamic.
	ImageSize int
	// ClassNames, when set, names FC's outputs in the metadata
	// (class_names, a JSON array).
	ClassNames []string
	// Meta adds entries to the model's metadata (metadata_props), such
	// as the source file.
	Meta map[string]string
	// ProducerVersion is the writing program's version, recorded in the
	// file with simclr-go as its producer.
	ProducerVersion string
}

// Marshal encodes the network s describes as an ONNX model.
func Marshal(s Spec) ([]byte, error) {
	m, err := build(s)
	if err != nil {
		return nil, err
	}
	return m.marshal(), nil
}

// Save writes the network s describes to path as an ONNX model: to a
// temporary file in the same folder, synced and renamed, so an existing
// file at path is replaced only by a complete one.
func Save(path string, s Spec) error {
	data, err := Marshal(s)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return fmt.Errorf("onnx: %w", err)
	}
	return nil
}

func build(s Spec) (*modelProto, error) {
	if s.Model == nil || s.Model.Encoder == nil {
		return nil, fmt.Errorf("onnx: no model to write")
	}
	if s.ImageSize < 0 {
		return nil, fmt.Errorf("onnx: image size %d: want 0 (dynamic) or a positive side", s.ImageSize)
	}
	if (s.InputMean == nil) != (s.InputStd == nil) || (s.InputMean != nil && (len(s.InputMean) != 3 || len(s.InputStd) != 3)) {
		return nil, fmt.Errorf("onnx: input normalisation needs three means and three deviations, have %v and %v", s.InputMean, s.InputStd)
	}
	head := s.Model.Head
	hidden := 0
	if head != nil {
		hidden = len(head.BNs)
	}
	switch {
	case s.Layer != 0 && head == nil:
		return nil, fmt.Errorf("onnx: layer %d is in the projection head, which the model does not hold", s.Layer)
	case s.Layer == simclr.LayerZ && len(head.Linears) == hidden:
		return nil, fmt.Errorf("onnx: the model's head has no projection layer (a classifier keeps only the hidden layers it was fine-tuned from)")
	case s.Layer != simclr.LayerZ && (s.Layer < 0 || s.Layer > hidden):
		return nil, fmt.Errorf("onnx: layer %d: the head has hidden layers 1 to %d (or z)", s.Layer, hidden)
	}
	if s.ClassNames != nil && (s.FC == nil || len(s.ClassNames) != s.FC.Weight.Value.Dim(0)) {
		return nil, fmt.Errorf("onnx: %d class names for a network with %s", len(s.ClassNames), describeOutputs(s.FC))
	}

	b := newBuilder()
	x := b.unique(InputName)
	if s.InputMean != nil {
		x = b.op("normalize.sub", "Sub", []string{x, b.constFloats("normalize.mean", []int{1, 3, 1, 1}, s.InputMean)})
		x = b.op("normalize.div", "Div", []string{x, b.constFloats("normalize.std", []int{1, 3, 1, 1}, s.InputStd)})
	}
	y, err := b.encoder(s.Model.Encoder, s.Model.Params, x)
	if err != nil {
		return nil, err
	}
	outName, outDim := FeaturesName, s.Model.Encoder.OutDim
	switch {
	case s.Layer == simclr.LayerZ:
		for i, bn := range head.BNs {
			y = b.batchNorm(fmt.Sprintf("head.%d", 3*i+1), bn, b.linear(fmt.Sprintf("head.%d", 3*i), head.Linears[i], y), true)
		}
		last := head.Linears[len(head.Linears)-1]
		y = b.linear(fmt.Sprintf("head.%d", 3*hidden), last, y)
		if head.OutBN != nil { // the official layout's shift-free batch norm
			y = b.batchNorm(fmt.Sprintf("head.%d", 3*hidden+1), head.OutBN, y, false)
		}
		outName, outDim = ProjectionName, last.Weight.Value.Dim(0)
	case s.Layer > 0:
		for i := 0; i < s.Layer; i++ {
			y = b.batchNorm(fmt.Sprintf("head.%d", 3*i+1), head.BNs[i], b.linear(fmt.Sprintf("head.%d", 3*i), head.Linears[i], y), true)
		}
		outName, outDim = "hidden"+strconv.Itoa(s.Layer), head.Linears[s.Layer-1].Weight.Value.Dim(0)
	}
	if s.FC != nil {
		if in := s.FC.Weight.Value.Dim(1); in != outDim {
			return nil, fmt.Errorf("onnx: the classifier takes %d features, the network gives %d", in, outDim)
		}
		y = b.linear("fc", s.FC, y)
		outName, outDim = LogitsName, s.FC.Weight.Value.Dim(0)
	}
	// The node making y, the last, names its output as the graph's.
	last := &b.g.nodes[len(b.g.nodes)-1]
	if last.outputs[0] != y {
		return nil, fmt.Errorf("onnx: internal error: the graph ends in %s, not %s", last.outputs[0], y)
	}
	last.outputs[0] = b.unique(outName)

	side := []dim{{param: "height"}, {param: "width"}}
	if s.ImageSize > 0 {
		side = []dim{{size: int64(s.ImageSize)}, {size: int64(s.ImageSize)}}
	}
	b.g.name = "simclr"
	b.g.doc = contract(s)
	b.g.inputs = []valueInfo{{name: InputName, dims: append([]dim{{param: "batch"}, {size: 3}}, side...)}}
	b.g.outputs = []valueInfo{{name: last.outputs[0], dims: []dim{{param: "batch"}, {size: int64(outDim)}}}}
	meta, err := metadata(s, outName)
	if err != nil {
		return nil, err
	}
	return &modelProto{
		producer: "simclr-go", producerVersion: s.ProducerVersion,
		doc:   b.g.doc,
		graph: b.g,
		meta:  meta,
	}, nil
}

func describeOutputs(fc *nn.Linear) string {
	if fc == nil {
		return "no classifier"
	}
	return fmt.Sprintf("%d classes", fc.Weight.Value.Dim(0))
}

// contract is the input contract, as the model's doc string.
func contract(s Spec) string {
	size := "any height and width"
	if s.ImageSize > 0 {
		size = fmt.Sprintf("%dx%d", s.ImageSize, s.ImageSize)
	}
	norm := "normalisation is not needed"
	if s.InputMean != nil {
		norm = fmt.Sprintf("the graph normalises them with mean %s and std %s", simclr.FormatTriple(s.InputMean), simclr.FormatTriple(s.InputStd))
	}
	return fmt.Sprintf("input %q: float32 [batch, 3, H, W], RGB in [0, 1], %s; %s", InputName, size, norm)
}

// metadata lists the model's description and s.Meta, sorted by key.
func metadata(s Spec, output string) ([][2]string, error) {
	c := s.Model.Encoder.Config
	m := map[string]string{
		simclr.MetaDepth:     strconv.Itoa(c.Depth),
		simclr.MetaWidth:     strconv.Itoa(c.Width),
		simclr.MetaCIFARStem: strconv.FormatBool(c.CIFARStem),
		"output":             output,
	}
	if c.SKRatio > 0 {
		m["sk_ratio"] = strconv.FormatFloat(c.SKRatio, 'g', -1, 64)
	}
	if s.ImageSize > 0 {
		m[simclr.MetaImageSize] = strconv.Itoa(s.ImageSize)
	}
	if s.InputMean != nil {
		m[simclr.MetaInputMean] = simclr.FormatTriple(s.InputMean)
		m[simclr.MetaInputStd] = simclr.FormatTriple(s.InputStd)
	}
	if s.FC != nil {
		m[simclr.MetaClasses] = strconv.Itoa(s.FC.Weight.Value.Dim(0))
		m[simclr.MetaSelector] = strconv.Itoa(s.Layer)
	}
	if s.ClassNames != nil {
		names, err := json.Marshal(s.ClassNames)
		if err != nil {
			return nil, fmt.Errorf("onnx: class names: %w", err)
		}
		m[simclr.MetaClassNames] = string(names)
	}
	for k, v := range s.Meta {
		m[k] = v
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][2]string, len(keys))
	for i, k := range keys {
		out[i] = [2]string{k, m[k]}
	}
	return out, nil
}
