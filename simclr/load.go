package simclr

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/checkpoint"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/tensor"
)

// File formats, in the "format" metadata entry.
const (
	// PretrainFormat is a pretraining checkpoint (train.Pretrainer.Save):
	// the model under torchvision names with the head under "head.", the
	// optimiser state, and the training configuration as JSON in "config".
	PretrainFormat = "simclr-go/pretrain/1"
	// EncoderFormat is an encoder alone under torchvision's names, its
	// architecture in the metadata (SaveEncoder).
	EncoderFormat = "simclr-go/encoder/1"
	// TorchvisionFormat stands for a file without our metadata, such as a
	// torchvision state dict converted to safetensors.
	TorchvisionFormat = "torchvision"
)

// Metadata keys of encoder files.
const (
	MetaFormat    = "format"
	MetaDepth     = "depth"
	MetaWidth     = "width"
	MetaCIFARStem = "cifar_stem"
	MetaImageSize = "image_size"
	// MetaSKRatio and MetaSKMinDim describe a selective-kernel encoder
	// (resnet.Config's SKRatio and SKMinDim); absent for plain ResNets.
	MetaSKRatio  = "sk_ratio"
	MetaSKMinDim = "sk_min_dim"
	MetaFeatures = "feature_dim"
	// MetaInputMean and MetaInputStd, when present, are three
	// comma-separated values each: images in [0, 1] are normalised per
	// channel as (x - mean) / std before the encoder (torchvision's
	// ImageNet weights expect 0.485,0.456,0.406 and 0.229,0.224,0.225).
	MetaInputMean = "input_mean"
	MetaInputStd  = "input_std"
	MetaSource    = "source"
)

// LoadOptions say how to read files that do not describe themselves.
type LoadOptions struct {
	// Depth, Width and Stem ("on", "off", or "" for unknown) describe the
	// encoder. For files without metadata, zero values are inferred from
	// the tensors' names and shapes; for files with metadata, given values
	// must agree with it.
	Depth, Width int
	Stem         string
	// Prefix is stripped from the tensor names of a file without metadata
	// (e.g. "module.encoder."); "" detects one when "conv1.weight" is absent.
	Prefix string
}

// Loaded is a model read from a file.
type Loaded struct {
	// Model holds the encoder and, for pretraining checkpoints, the head;
	// Head is nil for encoder-only files. For a classifier fine-tuned from
	// the head's layer n, Head holds those n hidden layers and no
	// projection.
	Model  *Model
	Config ModelConfig
	Format string
	// ImageSize is the view side the model was trained on; 0 if unknown.
	ImageSize int
	// Step is the pretraining step of a pretraining checkpoint.
	Step int
	// InputMean and InputStd, when set, normalise input images (see
	// MetaInputMean).
	InputMean, InputStd []float32
	// Unused lists the file's tensors the model did not take, other than
	// optimiser state and a torchvision classifier (fc.*).
	Unused []string
	// Meta is the file's metadata.
	Meta map[string]string
	// FC is a classifier's last layer, on the features of head layer
	// Selector (0: the encoder's h); nil for files without a classifier.
	// A torchvision state dict whose fc fits the encoder counts as one.
	FC       *nn.Linear
	Selector int
	// ClassNames names FC's outputs; nil when the file does not hold them.
	ClassNames []string
	// Recipe is RecipeV2 for a model made with SimCLRv2's recipe (a
	// pretraining checkpoint of a --v2 run, or a classifier whose
	// MetaRecipe says so), "" otherwise.
	Recipe string
}

// RecipeV2 names SimCLRv2's recipe (Loaded.Recipe, MetaRecipe).
const RecipeV2 = "v2"

// pretrainConfig mirrors the part of train.Config this package reads.
type pretrainConfig struct {
	Model     ModelConfig `json:"model"`
	ImageSize int         `json:"image_size"`
	V2        bool        `json:"v2"`
}

// LoadModel reads a pretraining checkpoint, an encoder file (SaveEncoder),
// a classifier file (SaveClassifier, either format) or a torchvision-style
// state dict in safetensors format. Every command that needs an encoder
// takes any of them.
func LoadModel(path string, o LoadOptions) (*Loaded, error) {
	f, err := checkpoint.Load(path)
	if err != nil {
		return nil, err
	}
	l, err := LoadFile(f, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

// LoadFile is LoadModel on a file already read.
func LoadFile(f *checkpoint.File, o LoadOptions) (*Loaded, error) {
	l := &Loaded{Format: f.Meta[MetaFormat], Meta: f.Meta}
	prefix := ""
	switch l.Format {
	case PretrainFormat:
		var pc pretrainConfig
		if err := json.Unmarshal([]byte(f.Meta["config"]), &pc); err != nil {
			return nil, fmt.Errorf("reading its configuration: %w", err)
		}
		if err := checkAgainst(pc.Model.Encoder, o); err != nil {
			return nil, err
		}
		l.Config, l.ImageSize = pc.Model, pc.ImageSize
		if pc.V2 {
			l.Recipe = RecipeV2
		}
		l.Step, _ = strconv.Atoi(f.Meta["step"])
		if err := checkFits(pc.Model, true, f); err != nil {
			return nil, err
		}
		m, err := NewModel(pc.Model, 0)
		if err != nil {
			return nil, err
		}
		l.Model = m
	case EncoderFormat:
		cfg, err := encoderMeta(f.Meta)
		if err != nil {
			return nil, err
		}
		if err := checkAgainst(cfg, o); err != nil {
			return nil, err
		}
		l.Config.Encoder = cfg
		l.ImageSize, _ = strconv.Atoi(f.Meta[MetaImageSize])
	case ClassifierFormat:
		if err := classifierModel(f, l, o); err != nil {
			return nil, err
		}
		switch r := f.Meta[MetaRecipe]; r {
		case "", RecipeV2:
			l.Recipe = r
		default:
			return nil, fmt.Errorf("metadata %s %q: want %s or none", MetaRecipe, r, RecipeV2)
		}
	case ClassifierFormatV1:
		if err := classifierModelV1(f, l, o); err != nil {
			return nil, err
		}
	case "":
		l.Format = TorchvisionFormat
		var err error
		if prefix, err = findPrefix(f, o.Prefix); err != nil {
			return nil, err
		}
		cfg, err := InferEncoder(f, prefix)
		if o.Depth > 0 || o.Width > 0 || o.Stem != "" {
			cfg, err = overrideEncoder(cfg, err, o)
		}
		if err != nil {
			return nil, err
		}
		l.Config.Encoder = cfg
	default:
		return nil, fmt.Errorf("unknown format %q (want %s, %s, %s or a torchvision state dict)", l.Format, PretrainFormat, EncoderFormat, ClassifierFormat)
	}
	if l.Model == nil {
		if err := checkFits(l.Config, false, f); err != nil {
			return nil, err
		}
		r := nn.NewRegistry(0)
		enc, err := resnet.New(r, l.Config.Encoder)
		if err != nil {
			return nil, err
		}
		l.Model = &Model{Config: l.Config, Params: r, Encoder: enc}
	}
	unused, err := l.Model.Params.LoadState(f, nn.LoadOptions{Prefix: prefix})
	if err != nil {
		return nil, fmt.Errorf("%w (reading it as a %s)", err, describe(l.Config.Encoder))
	}
	switch l.Format {
	case ClassifierFormat, ClassifierFormatV1:
		err = l.loadFC(f, prefix, true)
	case TorchvisionFormat:
		err = l.loadFC(f, prefix, false)
	}
	if err != nil {
		return nil, err
	}
	for _, u := range unused {
		u = strings.TrimPrefix(u, prefix)
		if !strings.HasPrefix(u, "optimizer.") && !strings.HasPrefix(u, "fc.") {
			l.Unused = append(l.Unused, u)
		}
	}
	if l.InputMean, err = parseTriple(f.Meta[MetaInputMean]); err != nil {
		return nil, err
	}
	if l.InputStd, err = parseTriple(f.Meta[MetaInputStd]); err != nil {
		return nil, err
	}
	if (l.InputMean == nil) != (l.InputStd == nil) {
		return nil, fmt.Errorf("metadata has only one of %s and %s", MetaInputMean, MetaInputStd)
	}
	for _, s := range l.InputStd {
		if !(s > 0) {
			return nil, fmt.Errorf("metadata %s %q: want positive values", MetaInputStd, f.Meta[MetaInputStd])
		}
	}
	return l, nil
}

// maxChannels bounds any layer's width a file may claim: far beyond real
// models, small enough that products of two widths cannot overflow.
const maxChannels = 1 << 24

// checkFits refuses a model that f cannot hold. Loading needs every one of
// the model's tensors from the file, and the model is allocated before it
// is loaded, so a small file claiming a huge width is refused here: the
// file must have at least as many values as the model's last residual
// block and (withHead) its projection head, which bounds the model to a
// small multiple of the file's size.
func checkFits(c ModelConfig, withHead bool, f *checkpoint.File) error {
	e := c.Encoder
	if e.Width <= 0 || e.Width > maxChannels/32 {
		return fmt.Errorf("encoder width %d: want 1 to %d", e.Width, maxChannels/32)
	}
	bottleneck := e.Depth >= 50
	filters := 8 * e.Width // the last stage's
	out := filters
	need := 9 * filters * filters // a basic block's last 3x3 convolution
	if bottleneck {
		out = 4 * filters
		need = filters * out // a bottleneck's last 1x1 convolution
	}
	if e.SKRatio > 0 {
		minDim := e.SKMinDim
		if minDim <= 0 {
			minDim = resnet.SKMinDim
		}
		mid := max(int(float64(filters)*min(e.SKRatio, maxChannels)), minDim, 1)
		if mid > maxChannels {
			return fmt.Errorf("selective-kernel attention of %d channels (ratio %g, minimum %d): want at most %d", mid, e.SKRatio, e.SKMinDim, maxChannels)
		}
		need += 3 * mid * filters // the last block's attention
	}
	if withHead {
		in := out
		for _, w := range append(append([]int{}, c.ProjHidden...), c.ProjOut) {
			if w <= 0 || w > maxChannels {
				return fmt.Errorf("projection head layer of width %d: want 1 to %d", w, maxChannels)
			}
			need += in * w
			in = w
			if need > 1<<50 {
				break // more than any file; stop before the sum can overflow
			}
		}
	}
	have := 0
	for _, t := range f.Floats {
		have += t.Len()
	}
	if need > have {
		return fmt.Errorf("the file's %d values cannot hold a %s (its last block alone needs %d)", have, describe(e), need)
	}
	return nil
}

func describe(c resnet.Config) string {
	stem := "ImageNet stem"
	if c.CIFARStem {
		stem = "CIFAR stem"
	}
	return fmt.Sprintf("resnet%d of width %d with the %s", c.Depth, c.Width, stem)
}

func parseTriple(s string) ([]float32, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return nil, fmt.Errorf("input normalisation %q: want three comma-separated values", s)
	}
	out := make([]float32, 3)
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil {
			return nil, fmt.Errorf("input normalisation %q: %w", s, err)
		}
		out[i] = float32(v)
	}
	return out, nil
}

// FormatTriple writes three values as MetaInputMean expects them.
func FormatTriple(v []float32) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(float64(x), 'g', -1, 32)
	}
	return strings.Join(s, ",")
}

func encoderMeta(m map[string]string) (resnet.Config, error) {
	var c resnet.Config
	var err error
	if c.Depth, err = strconv.Atoi(m[MetaDepth]); err != nil {
		return c, fmt.Errorf("encoder file without a valid %q entry: %q", MetaDepth, m[MetaDepth])
	}
	if c.Width, err = strconv.Atoi(m[MetaWidth]); err != nil {
		return c, fmt.Errorf("encoder file without a valid %q entry: %q", MetaWidth, m[MetaWidth])
	}
	if c.CIFARStem, err = strconv.ParseBool(m[MetaCIFARStem]); err != nil {
		return c, fmt.Errorf("encoder file without a valid %q entry: %q", MetaCIFARStem, m[MetaCIFARStem])
	}
	if s, ok := m[MetaSKRatio]; ok { // a selective-kernel (SimCLRv2) encoder
		if c.SKRatio, err = strconv.ParseFloat(s, 64); err != nil || !(c.SKRatio > 0 && c.SKRatio <= 1) {
			return c, fmt.Errorf("encoder file with an invalid %q entry: %q (want a ratio in (0, 1])", MetaSKRatio, s)
		}
	}
	if s, ok := m[MetaSKMinDim]; ok {
		if c.SKMinDim, err = strconv.Atoi(s); err != nil || c.SKMinDim <= 0 {
			return c, fmt.Errorf("encoder file with an invalid %q entry: %q (want a positive count)", MetaSKMinDim, s)
		}
	}
	return c, nil
}

func stemValue(s string) (bool, error) {
	switch s {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, fmt.Errorf("stem %q: want on or off", s)
}

// checkAgainst reports options that contradict a file's own description.
func checkAgainst(c resnet.Config, o LoadOptions) error {
	if o.Depth > 0 && o.Depth != c.Depth {
		return fmt.Errorf("the file holds a resnet%d, not the depth %d asked for", c.Depth, o.Depth)
	}
	if o.Width > 0 && o.Width != c.Width {
		return fmt.Errorf("the file holds an encoder of width %d, not the width %d asked for", c.Width, o.Width)
	}
	if o.Stem != "" {
		stem, err := stemValue(o.Stem)
		if err != nil {
			return err
		}
		if stem != c.CIFARStem {
			return fmt.Errorf("the file holds a %s, not the stem asked for (%s)", describe(c), o.Stem)
		}
	}
	return nil
}

// overrideEncoder applies explicit options to an inferred configuration.
func overrideEncoder(c resnet.Config, inferErr error, o LoadOptions) (resnet.Config, error) {
	if inferErr != nil && (o.Depth == 0 || o.Width == 0 || o.Stem == "") {
		return c, fmt.Errorf("%w; give depth, width and stem all three", inferErr)
	}
	if o.Depth > 0 {
		c.Depth = o.Depth
	}
	if o.Width > 0 {
		c.Width = o.Width
	}
	if o.Stem != "" {
		stem, err := stemValue(o.Stem)
		if err != nil {
			return c, err
		}
		c.CIFARStem = stem
	}
	return c, nil
}

// findPrefix returns the name prefix of the encoder's tensors: the given
// one, or "" when conv1.weight is present, or the one prefix P for which
// P+"conv1.weight" and P+"layer1.0.conv1.weight" both exist.
func findPrefix(f *checkpoint.File, given string) (string, error) {
	if given != "" {
		if _, ok := f.Floats[given+"conv1.weight"]; !ok {
			return "", fmt.Errorf("no tensor %sconv1.weight: check the prefix %q", given, given)
		}
		return given, nil
	}
	if _, ok := f.Floats["conv1.weight"]; ok {
		return "", nil
	}
	var found []string
	for name := range f.Floats {
		if p, ok := strings.CutSuffix(name, "layer1.0.conv1.weight"); ok {
			if _, ok := f.Floats[p+"conv1.weight"]; ok {
				found = append(found, p)
			}
		}
	}
	sort.Strings(found)
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("no ResNet encoder found: no conv1.weight and layer1.0.conv1.weight tensors, under any prefix")
	}
	return "", fmt.Errorf("several encoders in the file (prefixes %q): choose one with the prefix option", found)
}

// blockCounts maps each depth's blocks per stage, as models/resnet builds
// them.
var blockCounts = map[int][4]int{18: {2, 2, 2, 2}, 34: {3, 4, 6, 3}, 50: {3, 4, 6, 3}, 101: {3, 4, 23, 3}, 152: {3, 8, 36, 3}}

// InferEncoder reads a ResNet's configuration from its tensors under
// prefix: the width from conv1's output channels, the stem from its kernel
// (3: CIFAR, 7: ImageNet), the block kind from conv3's presence and the
// depth from the blocks per stage.
func InferEncoder(f *checkpoint.File, prefix string) (resnet.Config, error) {
	var c resnet.Config
	w, ok := f.Floats[prefix+"conv1.weight"]
	if !ok || len(w.Shape) != 4 || w.Shape[1] != 3 {
		return c, fmt.Errorf("no RGB stem %sconv1.weight [width, 3, k, k] to infer the encoder from", prefix)
	}
	c.Width = w.Shape[0]
	switch w.Shape[2] {
	case 3:
		c.CIFARStem = true
	case 7:
	default:
		return c, fmt.Errorf("%sconv1.weight has a %dx%d kernel; ResNet stems are 3x3 (CIFAR) or 7x7", prefix, w.Shape[2], w.Shape[3])
	}
	_, bottleneck := f.Floats[prefix+"layer1.0.conv3.weight"]
	var blocks [4]int
	for s := range blocks {
		for f.Floats[fmt.Sprintf("%slayer%d.%d.conv1.weight", prefix, s+1, blocks[s])] != nil {
			blocks[s]++
		}
	}
	for depth, b := range blockCounts {
		if b == blocks && (depth >= 50) == bottleneck {
			c.Depth = depth
			return c, nil
		}
	}
	return c, fmt.Errorf("blocks per stage %v (bottleneck %v) match no ResNet depth of %v", blocks, bottleneck, resnet.Depths())
}

// Layer numbers for Forward: 0 is the encoder's output h, 1..n the
// outputs of the head's hidden layers (Linear, BatchNorm, ReLU; as
// SimCLRv2's proj_head selector), LayerZ the projection z.
const LayerZ = -1

// Layers is the number of the head's hidden layers (0 without a head).
func (m *Model) Layers() int {
	if m.Head == nil {
		return 0
	}
	return len(m.Head.BNs)
}

// LayerForward returns the function mapping images [N, H, W, 3] to the
// features of layer (see LayerZ).
func (m *Model) LayerForward(layer int) (func(t *autograd.Tape, x *autograd.Var) *autograd.Var, error) {
	if layer == 0 {
		return m.Encoder.Forward, nil
	}
	if m.Head == nil {
		return nil, fmt.Errorf("layer %d is in the projection head, which this file does not hold (it has the encoder only: use layer 0, h)", layer)
	}
	if layer != LayerZ && (layer < 0 || layer > len(m.Head.BNs)) {
		return nil, fmt.Errorf("layer %d: the head has %d hidden layers, so want 0 (h) to %d, or z", layer, len(m.Head.BNs), len(m.Head.BNs))
	}
	if layer == LayerZ && !m.Head.hasProjection() {
		return nil, fmt.Errorf("z is the projection, which this file does not hold (a classifier keeps the head's first %d hidden layers): use h or 1..%[1]d", len(m.Head.BNs))
	}
	h := m.Head
	return func(t *autograd.Tape, x *autograd.Var) *autograd.Var {
		x = m.Encoder.Forward(t, x)
		if layer == LayerZ {
			return h.Forward(t, x)
		}
		for i := 0; i < layer; i++ {
			x = h.BNs[i].Forward(t, h.Linears[i].Forward(t, x), true)
		}
		return x
	}, nil
}

// Forward is LayerForward with the file's input normalisation, if any.
func (l *Loaded) Forward(layer int) (func(t *autograd.Tape, x *autograd.Var) *autograd.Var, error) {
	fwd, err := l.Model.LayerForward(layer)
	if err != nil || l.InputMean == nil {
		return fwd, err
	}
	mean, std := l.InputMean, l.InputStd
	return func(t *autograd.Tape, x *autograd.Var) *autograd.Var {
		xn := tensor.New(x.Value.Shape...)
		for i, v := range x.Value.Data {
			c := i % 3
			xn.Data[i] = (v - mean[c]) / std[c]
		}
		return fwd(t, t.Input(xn))
	}, nil
}

// EncoderFile returns the encoder's tensors under torchvision's names
// (num_batches_tracked as int64 scalars) with metadata describing it, the
// content SaveEncoder writes. extra adds metadata entries.
func (l *Loaded) EncoderFile(extra map[string]string) *checkpoint.File {
	all := checkpoint.New()
	l.Model.Params.SaveState(all, "")
	f := checkpoint.New()
	for name, t := range all.Floats {
		if !strings.HasPrefix(name, "head.") {
			f.Floats[name] = t
		}
	}
	for name, v := range all.Ints {
		if !strings.HasPrefix(name, "head.") {
			f.Ints[name] = v
		}
	}
	c := l.Config.Encoder
	f.Meta[MetaFormat] = EncoderFormat
	f.Meta[MetaDepth] = strconv.Itoa(c.Depth)
	f.Meta[MetaWidth] = strconv.Itoa(c.Width)
	f.Meta[MetaCIFARStem] = strconv.FormatBool(c.CIFARStem)
	if c.SKRatio > 0 {
		f.Meta[MetaSKRatio] = strconv.FormatFloat(c.SKRatio, 'g', -1, 64)
		if c.SKMinDim > 0 {
			f.Meta[MetaSKMinDim] = strconv.Itoa(c.SKMinDim)
		}
	}
	f.Meta[MetaFeatures] = strconv.Itoa(l.Model.Encoder.OutDim)
	if l.ImageSize > 0 {
		f.Meta[MetaImageSize] = strconv.Itoa(l.ImageSize)
	}
	if l.InputMean != nil {
		f.Meta[MetaInputMean] = FormatTriple(l.InputMean)
		f.Meta[MetaInputStd] = FormatTriple(l.InputStd)
	}
	for k, v := range extra {
		f.Meta[k] = v
	}
	return f
}

// SaveEncoder writes the encoder alone to path (atomically): a file that
// torchvision's resnet load_state_dict(strict=False) takes, missing only
// fc.* (for the CIFAR stem, after replacing conv1 by a 3x3 stride-1
// convolution and maxpool by Identity).
func (l *Loaded) SaveEncoder(path string, extra map[string]string) error {
	return checkpoint.Save(path, l.EncoderFile(extra))
}
