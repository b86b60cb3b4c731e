package onnx

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/tensor"
)

// testModel builds a model with random weights and batch-norm state far
// from the initial (gamma 1, beta 0, mean 0, var 1), so that a graph that
// dropped or swapped any of them would give other numbers.
func testModel(t *testing.T, cfg simclr.ModelConfig, withHead bool) *simclr.Model {
	t.Helper()
	var m *simclr.Model
	if withHead {
		var err error
		if m, err = simclr.NewModel(cfg, 3); err != nil {
			t.Fatal(err)
		}
	} else {
		r := nn.NewRegistry(3)
		enc, err := resnet.New(r, cfg.Encoder)
		if err != nil {
			t.Fatal(err)
		}
		m = &simclr.Model{Config: cfg, Params: r, Encoder: enc}
	}
	perturbBatchNorms(m.Params, 7)
	return m
}

func perturbBatchNorms(r *nn.Registry, seed uint64) {
	for i, bn := range r.BatchNorms() {
		rng := tensor.NewRNG(seed, "bn", uint64(i))
		rng.FillUniform(bn.Weight.Value, 0.5, 1.5)
		rng.FillNormal(bn.Bias.Value, 0.2)
		rng.FillNormal(bn.Stats.Mean, 0.2)
		rng.FillUniform(bn.Stats.Var, 0.5, 2)
	}
}

// reference runs s's network with the engine (pure-Go backend, eval mode)
// on NCHW images and returns its output.
func reference(t *testing.T, s Spec, nchw *tensor.Tensor) *tensor.Tensor {
	t.Helper()
	fwd, err := s.Model.LayerForward(s.Layer)
	if err != nil {
		t.Fatal(err)
	}
	tape := autograd.NewTape(purego.New(2))
	tape.Train, tape.NoGrad = false, true
	x := tensor.NCHWToNHWC(nchw)
	if s.InputMean != nil {
		for i := range x.Data {
			c := i % 3
			x.Data[i] = (x.Data[i] - s.InputMean[c]) / s.InputStd[c]
		}
	}
	y := fwd(tape, tape.Input(x))
	if s.FC != nil {
		y = s.FC.Forward(tape, y)
	}
	return y.Value.Clone()
}

// images returns n random NCHW images in [0, 1].
func images(seed uint64, n, side int) *tensor.Tensor {
	x := tensor.New(n, 3, side, side)
	tensor.NewRNG(seed, "onnx-images").FillUniform(x, 0, 1)
	return x
}

// decoded is what the tests read back from an encoded model.
type decoded struct {
	irVersion, opset int64
	nodes            []decodedNode
	initializers     map[string][]int64 // name: dims
	inputs, outputs  map[string][]string
	meta             map[string]string
}

type decodedNode struct {
	op              string
	inputs, outputs []string
}

// decode parses an ONNX model with protowire, independently of the
// encoder's structs.
func decode(b []byte) (*decoded, error) {
	d := &decoded{initializers: map[string][]int64{}, inputs: map[string][]string{}, outputs: map[string][]string{}, meta: map[string]string{}}
	err := fields(b, func(num protowire.Number, v uint64, raw []byte) error {
		switch num {
		case 1:
			d.irVersion = int64(v)
		case 7:
			return fields(raw, d.graphField)
		case 8:
			return fields(raw, func(num protowire.Number, v uint64, _ []byte) error {
				if num == 2 {
					d.opset = int64(v)
				}
				return nil
			})
		case 14:
			var k, val string
			err := fields(raw, func(num protowire.Number, _ uint64, raw []byte) error {
				if num == 1 {
					k = string(raw)
				} else if num == 2 {
					val = string(raw)
				}
				return nil
			})
			d.meta[k] = val
			return err
		}
		return nil
	})
	return d, err
}

func (d *decoded) graphField(num protowire.Number, _ uint64, raw []byte) error {
	switch num {
	case 1:
		var n decodedNode
		err := fields(raw, func(num protowire.Number, _ uint64, raw []byte) error {
			switch num {
			case 1:
				n.inputs = append(n.inputs, string(raw))
			case 2:
				n.outputs = append(n.outputs, string(raw))
			case 4:
				n.op = string(raw)
			}
			return nil
		})
		d.nodes = append(d.nodes, n)
		return err
	case 5:
		var name string
		var dims []int64
		var rawLen, elem int
		err := fields(raw, func(num protowire.Number, v uint64, raw []byte) error {
			switch num {
			case 1:
				for len(raw) > 0 {
					x, n := protowire.ConsumeVarint(raw)
					if n < 0 {
						return protowire.ParseError(n)
					}
					dims, raw = append(dims, int64(x)), raw[n:]
				}
			case 2:
				elem = map[uint64]int{typeFloat: 4, typeInt64: 8}[v]
			case 8:
				name = string(raw)
			case 9:
				rawLen = len(raw)
			}
			return nil
		})
		count := int64(1)
		for _, x := range dims {
			count *= x
		}
		if err == nil && int64(rawLen) != count*int64(elem) {
			err = fmt.Errorf("initializer %s: %d bytes of raw data for dims %v", name, rawLen, dims)
		}
		d.initializers[name] = dims
		return err
	case 11, 12:
		var name string
		var dims []string
		err := fields(raw, func(num protowire.Number, _ uint64, raw []byte) error {
			if num == 1 {
				name = string(raw)
				return nil
			}
			// TypeProto > Tensor > TensorShapeProto > Dimension
			return fields(raw, func(_ protowire.Number, _ uint64, raw []byte) error {
				return fields(raw, func(num protowire.Number, _ uint64, raw []byte) error {
					if num != 2 {
						return nil
					}
					return fields(raw, func(_ protowire.Number, _ uint64, raw []byte) error {
						return fields(raw, func(num protowire.Number, v uint64, raw []byte) error {
							if num == 1 {
								dims = append(dims, fmt.Sprint(v))
							} else {
								dims = append(dims, string(raw))
							}
							return nil
						})
					})
				})
			})
		})
		if num == 11 {
			d.inputs[name] = dims
		} else {
			d.outputs[name] = dims
		}
		return err
	}
	return nil
}

// fields calls fn for each field of a message: varints as v, bytes as
// raw (fixed-width fields are skipped).
func fields(b []byte, fn func(num protowire.Number, v uint64, raw []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v uint64
		var raw []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			raw, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ == protowire.VarintType || typ == protowire.BytesType {
			if err := fn(num, v, raw); err != nil {
				return err
			}
		}
	}
	return nil
}
