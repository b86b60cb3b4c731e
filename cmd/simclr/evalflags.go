package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/data"
	"github.com/simclr-go/simclr/eval"
	"github.com/simclr-go/simclr/simclr"
)

// modelHelp documents the model files every evaluation command reads.
const modelHelp = `model file (--checkpoint): a pretraining checkpoint (OUT/checkpoint.safetensors
of simclr pretrain), an encoder written by simclr export or simclr import, a
classifier written by simclr finetune --out or simclr distill --out (its encoder
and the head layers it keeps), or a torchvision-style ResNet state dict in
safetensors format (F32, F16 or BF16).
For the last, depth, width and stem are read from the tensors' shapes;
--depth, --width and --cifar-stem override that, --prefix strips a name
prefix such as "module." (found by itself when unique).`

// layerHelp documents --layer.
const layerHelp = `h (or 0): the encoder's output; 1..n: the output of the projection head's
i-th hidden layer (Linear, BatchNorm, ReLU), as SimCLRv2 selects; z: the
projection (the last two need a pretraining checkpoint, which holds the head; a
classifier holds the hidden layers it was fine-tuned from, no projection)`

// modelFlags select a trained model and how to read it.
type modelFlags struct {
	checkpoint string
	depth      int
	width      int
	stem       string
	prefix     string
}

func (m *modelFlags) register(fl *pflag.FlagSet, name, usage string) {
	fl.StringVar(&m.checkpoint, name, "", usage)
	fl.IntVar(&m.depth, "depth", 0, "ResNet depth of a torchvision-style file (0: from its tensors)")
	fl.IntVar(&m.width, "width", 0, "ResNet width of a torchvision-style file (0: from its tensors)")
	fl.StringVar(&m.stem, "cifar-stem", "auto", "stem of a torchvision-style file: auto (from conv1's kernel), on (3x3, no max pool), off")
	fl.StringVar(&m.prefix, "prefix", "", "name prefix of the encoder's tensors in a torchvision-style file (\"\": found by itself)")
}

func (m *modelFlags) load(flag string) (*simclr.Loaded, error) {
	if m.checkpoint == "" {
		return nil, fmt.Errorf("no model given: set --%s to a checkpoint or encoder file", flag)
	}
	o := simclr.LoadOptions{Depth: m.depth, Width: m.width, Prefix: m.prefix}
	switch m.stem {
	case "auto", "":
	case "on", "off":
		o.Stem = m.stem
	default:
		return nil, fmt.Errorf("--cifar-stem %q: want auto, on or off", m.stem)
	}
	l, err := simclr.LoadModel(m.checkpoint, o)
	if err != nil {
		if o.Depth > 0 || o.Width > 0 || o.Stem != "" {
			return nil, fmt.Errorf("%w\n(--depth, --width or --cifar-stem was given: leave them unset to read the architecture from the file)", err)
		}
		switch strings.ToLower(filepath.Ext(m.checkpoint)) {
		case ".pt", ".pth", ".bin", ".ckpt":
			return nil, fmt.Errorf("%w\n(PyTorch pickles are not read: convert in Python with safetensors.torch.save_file(model.state_dict(), \"model.safetensors\"))", err)
		}
		return nil, err
	}
	if len(l.Unused) > 0 {
		shown := l.Unused
		if len(shown) > 5 {
			shown = append(shown[:5:5], fmt.Sprintf("and %d more", len(l.Unused)-5))
		}
		fmt.Fprintf(os.Stderr, "note: %s holds tensors the encoder does not use: %s\n", m.checkpoint, strings.Join(shown, ", "))
	}
	return l, nil
}

// parseLayer reads --layer (see layerHelp).
func parseLayer(s string) (int, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "h", "0", "encoder":
		return 0, nil
	case "z":
		return simclr.LayerZ, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("--layer %q: want h, z or a head layer number 0..n", s)
	}
	return n, nil
}

func layerName(layer int) string {
	switch layer {
	case 0:
		return "h"
	case simclr.LayerZ:
		return "z"
	}
	return "head layer " + strconv.Itoa(layer)
}

// viewSide is the side images are resized to: the flag, else the size the
// model was trained on, else the images' own side up to 64 px, else 224.
func viewSide(flag int, l *simclr.Loaded, ds data.Dataset) (int, error) {
	switch {
	case flag < 0:
		return 0, fmt.Errorf("--image-size %d: want 0 (automatic) or a positive side", flag)
	case flag > 0:
		return flag, nil
	case l.ImageSize > 0:
		return l.ImageSize, nil
	}
	s, err := ds.Get(0)
	if err != nil {
		return 0, err
	}
	if side := max(s.W, s.H); side <= 64 {
		return side, nil
	}
	return 224, nil
}

// embedder computes features of datasets with one encoder.
type embedder struct {
	be      backend.Backend
	tape    *autograd.Tape
	enc     eval.Encoder
	size    int
	batch   int
	workers int
	quiet   bool
}

func newEmbedder(be backend.Backend, l *simclr.Loaded, layer, size, batch, workers int, quiet bool) (*embedder, error) {
	fwd, err := l.Forward(layer)
	if err != nil {
		return nil, err
	}
	if batch < 1 {
		return nil, fmt.Errorf("--batch %d: want at least 1", batch)
	}
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	return &embedder{be: be, tape: autograd.NewTape(be), enc: fwd, size: size, batch: batch, workers: workers, quiet: quiet}, nil
}

// embed returns the features of ds (what: a description for the progress
// bar) with views from tf (nil: the centre view) and, if names, the
// samples' names.
func (e *embedder) embed(what string, ds data.Dataset, tf data.Transform, epoch int, names bool) (*eval.Features, []string, error) {
	o := eval.EmbedOptions{Size: e.size, Batch: e.batch, Workers: e.workers, Transform: tf, Epoch: epoch, Names: names}
	var bar *progressbar.ProgressBar
	if !e.quiet {
		bar = newBar(ds.Len(), what)
		o.Progress = func(done, _ int) { bar.Set(done) }
	}
	f, n, err := eval.EmbedWith(e.tape, e.enc, ds, o)
	if bar != nil {
		bar.Finish()
	}
	return f, n, err
}

// embedSplit returns the centre-view features of a training set (described
// as trainWhat in the progress bar) and of its test set.
func (e *embedder) embedSplit(trainWhat string, trainSet, testSet data.Dataset) (train, test *eval.Features, err error) {
	if train, _, err = e.embed(trainWhat, trainSet, nil, 0, false); err != nil {
		return nil, nil, err
	}
	if test, _, err = e.embed("test features", testSet, nil, 0, false); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}
