package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/optim"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/train"
)

// torchvisionHelp shows how to load an exported encoder in PyTorch.
const torchvisionHelp = `In PyTorch (safetensors.torch.load_file reads the file):

  sd = safetensors.torch.load_file("encoder.safetensors")
  model = torchvision.models.resnet50()     # resnet18, 34, 50, 101, 152 (width 64)
  # CIFAR stem only: model.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
  #                  model.maxpool = torch.nn.Identity()
  model.load_state_dict(sd, strict=False)   # missing: fc.weight, fc.bias
  model.fc = torch.nn.Identity()            # features h

The metadata (safetensors.safe_open(...).metadata()) records depth, width,
cifar_stem, feature_dim and, when known, image_size. Inputs are RGB in [0, 1]
without mean/std normalisation unless input_mean/input_std say otherwise.
Widths other than 64 need torchvision's ResNet with other stage widths.`

func exportCmd(g *globalFlags) *cobra.Command {
	var m modelFlags
	var out, format string
	var head bool
	c := &cobra.Command{
		Use:   "export",
		Short: "Write a trained encoder as torchvision-compatible safetensors, or a model as ONNX",
		Long: `Write the encoder of a model file (without the projection head and optimiser
state) as safetensors under torchvision's names: conv and batch-norm tensors
as float32, num_batches_tracked as int64 scalars, nothing else. simclr embed,
linear-eval and import read it back.

` + torchvisionHelp + `

` + onnxHelp + `

` + modelHelp,
		Example: `  simclr export --checkpoint runs/cifar/checkpoint.safetensors --out cifar-resnet18.safetensors
  simclr export --checkpoint runs/cifar/checkpoint.safetensors --head --out cifar-resnet18-z.onnx
  simclr export --checkpoint runs/v2/student.safetensors --out student.onnx`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validateExport(&m, out); err != nil {
				return err
			}
			kind, err := exportFormat(format, out)
			if err != nil {
				return err
			}
			if head && kind != "onnx" {
				return usagef("--head needs --format onnx: safetensors export writes the encoder alone")
			}
			l, err := m.load("checkpoint")
			if err != nil {
				return err
			}
			if kind == "onnx" {
				return exportONNX(cmd.OutOrStdout(), l, m.checkpoint, out, head)
			}
			extra := map[string]string{simclr.MetaSource: filepath.Base(m.checkpoint)}
			if l.Step > 0 {
				extra["pretrain_step"] = strconv.Itoa(l.Step)
			}
			if err := saveTo(out, func() error { return l.SaveEncoder(out, extra) }); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s (%d features)\n", out, describeEncoder(l), l.Model.Encoder.OutDim)
			return nil
		},
	}
	fl := c.Flags()
	m.register(fl, "checkpoint", "model file to export (see below)")
	fl.StringVar(&out, "out", "", "output file: safetensors, or ONNX")
	fl.StringVar(&format, "format", "auto", "safetensors, onnx, or auto (onnx for an --out ending in .onnx)")
	fl.BoolVar(&head, "head", false, "ONNX: include the projection head (output z; needs a pretraining checkpoint)")
	return c
}

func describeEncoder(l *simclr.Loaded) string {
	c := l.Config.Encoder
	stem := "ImageNet stem"
	if c.CIFARStem {
		stem = "CIFAR stem"
	}
	return fmt.Sprintf("resnet%d, width %d, %s", c.Depth, c.Width, stem)
}

// saveTo makes out's folder and runs save.
func saveTo(out string, save func() error) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return save()
}

type importFlags struct {
	model      modelFlags
	out        string
	as         string
	normalize  string
	imageSize  int
	projLayers int
	projHidden int
	projOut    int
	seed       uint64
}

func importCmd(g *globalFlags) *cobra.Command {
	f := importFlags{as: "encoder", normalize: "keep", projLayers: 2, projOut: 128}
	c := &cobra.Command{
		Use:   "import",
		Short: "Read a torchvision-style ResNet (or an exported encoder) into a file this tool evaluates",
		Long: `Read a ResNet state dict in safetensors format - torchvision's weights
converted with safetensors.torch.save_file(model.state_dict(), path), another
tool's encoder (use --prefix for names like "module.encoder.conv1.weight"), or
a file written by simclr export - check every tensor's name and shape against
the encoder, and write

  --as encoder:  an encoder file (the format of simclr export), for simclr
                 embed, linear-eval and export;
  --as pretrain: a pretraining checkpoint at step 0 with a freshly
                 initialised projection head (--proj-*) and zero optimiser
                 state, the format simclr pretrain writes. Its configuration
                 records pretrain's default optimiser settings; it is read by
                 every command that reads models, but simclr pretrain --resume
                 continues only a run with the identical configuration.

F32, F16, BF16 and F64 tensors are accepted (stored as float32); a
classifier (fc.*) is ignored. Depth, width and stem are read from the
shapes unless given.

--normalize imagenet records that the encoder expects inputs normalised with
ImageNet's mean and deviation, as torchvision's pretrained weights do; embed
and linear-eval then apply it.`,
		Example: `  # in Python: safetensors.torch.save_file(torchvision.models.resnet50(weights="IMAGENET1K_V1").state_dict(), "r50.safetensors")
  simclr import --in r50.safetensors --normalize imagenet --out r50-encoder.safetensors`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runImport(cmd, g, f) },
	}
	fl := c.Flags()
	f.model.register(fl, "in", "safetensors file to read")
	fl.StringVar(&f.out, "out", "", "file to write")
	fl.StringVar(&f.as, "as", f.as, "what to write: encoder or pretrain (see above)")
	fl.StringVar(&f.normalize, "normalize", f.normalize, "input normalisation the encoder expects: keep (what --in records; none if nothing), none (images in [0, 1]), imagenet")
	fl.IntVar(&f.imageSize, "image-size", 0, "view side to record (0: what --in records, if anything; --as pretrain: 32 for the CIFAR stem, else 224)")
	fl.IntVar(&f.projLayers, "proj-layers", f.projLayers, "--as pretrain: projection head layers")
	fl.IntVar(&f.projHidden, "proj-hidden", 0, "--as pretrain: head hidden width (0: the encoder's feature size)")
	fl.IntVar(&f.projOut, "proj-out", f.projOut, "--as pretrain: projection output size")
	fl.Uint64Var(&f.seed, "seed", 0, "--as pretrain: seed of the head's initialisation (recorded as the run's seed)")
	return c
}

func runImport(cmd *cobra.Command, g *globalFlags, f importFlags) error {
	if err := f.validate(); err != nil {
		return err
	}
	l, err := f.model.load("in")
	if err != nil {
		return err
	}
	switch f.normalize {
	case "keep":
	case "none":
		l.InputMean, l.InputStd = nil, nil
	case "imagenet":
		l.InputMean, l.InputStd = []float32{0.485, 0.456, 0.406}, []float32{0.229, 0.224, 0.225}
	default:
		return fmt.Errorf("--normalize %q: want none, imagenet or keep", f.normalize)
	}
	if f.imageSize > 0 {
		l.ImageSize = f.imageSize
	}
	w := cmd.OutOrStdout()
	if l.Format == simclr.TorchvisionFormat && l.InputMean == nil && !l.Config.Encoder.CIFARStem {
		fmt.Fprintln(os.Stderr, "note: torchvision's ImageNet weights expect normalised inputs; if these are such weights, add --normalize imagenet")
	}
	switch f.as {
	case "encoder":
		extra := map[string]string{simclr.MetaSource: filepath.Base(f.model.checkpoint)}
		if err := saveTo(f.out, func() error { return l.SaveEncoder(f.out, extra) }); err != nil {
			return err
		}
	case "pretrain":
		if err := importPretrain(g, l, f); err != nil {
			return err
		}
	default:
		return fmt.Errorf("--as %q: want encoder or pretrain", f.as)
	}
	fmt.Fprintf(w, "read %s (%s): %s, %d features; wrote %s (%s)\n",
		f.model.checkpoint, l.Format, describeEncoder(l), l.Model.Encoder.OutDim, f.out, f.as)
	return nil
}

// importPretrain writes l's encoder as a step-0 pretraining checkpoint
// through train.Pretrainer.Save, so the format is pretrain's own.
func importPretrain(g *globalFlags, l *simclr.Loaded, f importFlags) error {
	if f.projLayers < 1 || f.projOut < 1 || f.projHidden < 0 {
		return fmt.Errorf("--proj-layers %d, --proj-out %d, --proj-hidden %d: want at least 1 layer and positive sizes", f.projLayers, f.projOut, f.projHidden)
	}
	if l.InputMean != nil {
		return usagef("--as pretrain cannot record input normalisation (pretraining feeds images in [0, 1]): add --normalize none, or use --as encoder")
	}
	hidden := make([]int, f.projLayers-1)
	for i := range hidden {
		hidden[i] = f.projHidden
		if hidden[i] == 0 {
			hidden[i] = l.Model.Encoder.OutDim
		}
	}
	size := l.ImageSize
	if size == 0 {
		size = 224
		if l.Config.Encoder.CIFARStem {
			size = 32
		}
	}
	d := defaultPretrain()
	cfg := train.Config{
		Model: simclr.ModelConfig{Encoder: l.Config.Encoder, ProjHidden: hidden, ProjOut: f.projOut},
		Batch: d.Batch, ImageSize: size, Steps: 1, Optimizer: d.Optimizer, BaseLR: d.LR,
		LRScaling: optim.Scaling(d.LRScaling), WeightDecay: d.WeightDecay, Momentum: d.Momentum,
		Temperature: d.Temperature, Seed: f.seed,
	}
	be, err := g.open()
	if err != nil {
		return err
	}
	p, err := train.NewPretrainer(cfg, be, nil)
	if err != nil {
		return err
	}
	enc := l.EncoderFile(nil)
	head := func(name string) bool { return strings.HasPrefix(name, "head.") }
	if _, err := p.Model.Params.LoadState(enc, nn.LoadOptions{Skip: head}); err != nil {
		return err
	}
	return saveTo(f.out, func() error { return p.Save(f.out) })
}
