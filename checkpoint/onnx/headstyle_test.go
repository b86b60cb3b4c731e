package onnx

import (
	"testing"

	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/simclr"
)

// TestOfficialHeadGraph: the projection of the official head layout ends
// in its shift-free batch norm (head.4, whose zero shift is an
// initializer like any other), after a Linear without a bias.
func TestOfficialHeadGraph(t *testing.T) {
	m := testModel(t, simclr.ModelConfig{Encoder: resnet.Config{Depth: 18, Width: 2, CIFARStem: true}, ProjHidden: []int{8}, ProjOut: 4,
		HeadStyle: simclr.HeadOfficial}, true)
	data, err := Marshal(Spec{Model: m, Layer: simclr.LayerZ, ImageSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	d, err := decode(data)
	if err != nil {
		t.Fatal(err)
	}
	last := d.nodes[len(d.nodes)-1]
	if last.op != "BatchNormalization" || len(last.inputs) != 5 || last.inputs[2] != "head.4.bias" || last.outputs[0] != ProjectionName {
		t.Errorf("last node %s %v -> %v, want the batch norm head.4 giving %s", last.op, last.inputs, last.outputs, ProjectionName)
	}
	for _, name := range []string{"head.0.bias", "head.3.bias"} {
		if _, ok := d.initializers[name]; ok {
			t.Errorf("%s in the graph: the official head's Linears have no bias", name)
		}
	}
	if dims := d.outputs[ProjectionName]; len(dims) != 2 || dims[1] != "4" {
		t.Errorf("projection dims %v", dims)
	}
}
