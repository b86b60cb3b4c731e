package onnx

import (
	"fmt"

	"github.com/simclr-go/simclr/simclr"
)

// FromLoaded describes the network of a model file read by
// simclr.LoadModel: a classifier's logits when the file holds a
// classifier (finetune and distill write them), else the encoder's
// features h, or with head the projection z of a pretraining checkpoint.
// The input contract follows the file: the image size it was trained at
// (dynamic when it does not say) and its input normalisation.
func FromLoaded(l *simclr.Loaded, head bool) (Spec, error) {
	s := Spec{Model: l.Model, InputMean: l.InputMean, InputStd: l.InputStd, ImageSize: l.ImageSize}
	switch {
	case l.FC != nil && head:
		return s, fmt.Errorf("the file is a classifier (%d classes), whose output is its logits; its projection head is in the pretraining checkpoint it was fine-tuned from", l.Classes())
	case l.FC != nil:
		s.FC, s.Layer, s.ClassNames = l.FC, l.Selector, l.ClassNames
	case head:
		if l.Model.Head == nil {
			return s, fmt.Errorf("the file (format %s) holds the encoder alone; the projection head is in pretraining checkpoints", l.Format)
		}
		s.Layer = simclr.LayerZ
	}
	return s, nil
}
