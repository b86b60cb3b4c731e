package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/simclr-go/simclr/checkpoint/onnx"
	"github.com/simclr-go/simclr/simclr"
)

// onnxHelp is export's help on ONNX files.
const onnxHelp = `With --format onnx (the default for an --out ending in .onnx) the model is
written as an ONNX graph (opset 17) for onnxruntime and the other ONNX
runtimes: an encoder gives its features h ("features" [batch, D]), --head
adds the projection head of a pretraining checkpoint ("projection"), and a
classifier (finetune --out, distill --out) gives its logits ("logits"
[batch, classes]; class names in the metadata when the file has them).
The input "images" is float32 [batch, 3, H, W]: RGB in [0, 1], resized and
centre-cropped to the side the model was trained at (fixed in the graph;
dynamic when the file does not record it). Any mean/std normalisation the
model expects is inside the graph. Batch norm runs with its running
statistics (eval mode).`

// exportFormat resolves --format: as given, or from --out's extension.
func exportFormat(format, out string) (string, error) {
	switch format {
	case "auto":
		if strings.EqualFold(filepath.Ext(out), ".onnx") {
			return "onnx", nil
		}
		return "safetensors", nil
	case "safetensors", "onnx":
		return format, nil
	}
	return "", usagef("--format %q: want safetensors, onnx or auto (onnx for an --out ending in .onnx)", format)
}

// exportONNX writes l to out as ONNX and says what the graph takes and
// gives.
func exportONNX(w io.Writer, l *simclr.Loaded, source, out string, head bool) error {
	s, err := onnx.FromLoaded(l, head)
	if err != nil {
		if head {
			return fmt.Errorf("--head: %w", err)
		}
		return err
	}
	s.ProducerVersion = version
	s.Meta = map[string]string{simclr.MetaSource: filepath.Base(source)}
	if l.Step > 0 {
		s.Meta["pretrain_step"] = strconv.Itoa(l.Step)
	}
	if err := saveTo(out, func() error { return onnx.Save(out, s) }); err != nil {
		return err
	}
	output := fmt.Sprintf("%s [batch, %d]", onnx.FeaturesName, l.Model.Encoder.OutDim)
	switch {
	case s.FC != nil:
		output = fmt.Sprintf("%s [batch, %d]", onnx.LogitsName, l.Classes())
	case s.Layer == simclr.LayerZ:
		output = fmt.Sprintf("%s [batch, %d]", onnx.ProjectionName, l.Config.ProjOut)
	}
	side := "H, W"
	if s.ImageSize > 0 {
		side = fmt.Sprintf("%d, %d", s.ImageSize, s.ImageSize)
	}
	norm := ""
	if s.InputMean != nil {
		norm = ", normalised inside the graph"
	}
	fmt.Fprintf(w, "wrote %s: %s; input %s [batch, 3, %s] RGB in [0, 1]%s; output %s\n",
		out, describeEncoder(l), onnx.InputName, side, norm, output)
	return nil
}
