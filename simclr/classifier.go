package simclr

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/checkpoint"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/nn"
)

// Classifier file formats, in the "format" metadata entry.
const (
	// ClassifierFormat is a classifier (simclr finetune --out, simclr
	// distill --out) laid out as a torchvision ResNet state dict: the
	// encoder under torchvision's names and the last layer as fc.weight
	// [classes, features] and fc.bias [classes], so that
	// torchvision.models.resnetXX(num_classes=classes).load_state_dict(sd,
	// strict=True) takes a width-64 classifier with the ImageNet stem.
	//
	// A classifier fine-tuned from the projection head's hidden layer n
	// (SimCLRv2's ft_proj_selector, MetaSelector) also holds those n layers
	// between the pooled features and fc, as the pretraining checkpoint
	// names them: head.0 (Linear), head.1 (BatchNorm1d, followed by a ReLU),
	// head.3 and head.4 for the second layer, and so on; fc then takes the
	// last layer's width. strict=True holds for selector 0 alone: for n > 0
	// torchvision's module must hold those layers before loading, and its
	// forward must run them before fc (for one layer of width w):
	//
	//	m = torchvision.models.resnet50()
	//	m.head = nn.Sequential(nn.Linear(2048, w), nn.BatchNorm1d(w), nn.ReLU())
	//	m.fc = nn.Linear(w, classes)
	//	m.load_state_dict(sd, strict=True)
	//	m.fc = nn.Sequential(m.head, m.fc)  # after loading: forward now runs the head
	//
	// A head of the official layout (HeadOfficial) has no head.0.bias: its
	// Linear is nn.Linear(2048, w, bias=False).
	//
	// The metadata holds what encoder files hold (depth, width, stem, image
	// size, input normalisation) and the selector, the number of classes and,
	// when training had them, the class names (MetaClassNames).
	ClassifierFormat = "simclr-go/classifier/2"
	// ClassifierFormatV1 is the first classifier layout: the whole model,
	// every head layer included, under its own names, and its configuration
	// as JSON in the "model" entry. It is read, no longer written.
	ClassifierFormatV1 = "simclr-go/classifier/1"
)

// Metadata keys of classifier files.
const (
	// MetaSelector is the head layer the classifier sits on: 0 for the
	// encoder's features h, n for the head's n-th hidden layer.
	MetaSelector = "selector"
	// MetaClasses is the number of classes.
	MetaClasses = "classes"
	// MetaClassNames is a JSON array of the class names, indexed by the
	// classifier's outputs; absent when training had no names.
	MetaClassNames = "class_names"
	// MetaRecipe is RecipeV2 for a classifier trained with SimCLRv2's
	// recipe; absent otherwise.
	MetaRecipe = "recipe"
)

// Logits returns the function mapping images [N, H, W, 3] in [0, 1] to the
// classifier's logits [N, classes], with the file's input normalisation.
// It fails for files that hold no classifier.
func (l *Loaded) Logits() (func(t *autograd.Tape, x *autograd.Var) *autograd.Var, error) {
	if l.FC == nil {
		return nil, fmt.Errorf("the model is not a classifier (its format is %s): write one with simclr finetune --out or simclr distill --out", l.Format)
	}
	features, err := l.Forward(l.Selector)
	if err != nil {
		return nil, err
	}
	fc := l.FC
	return func(t *autograd.Tape, x *autograd.Var) *autograd.Var {
		return fc.Forward(t, features(t, x))
	}, nil
}

// Classes is the number of classes of a classifier, 0 for other models.
func (l *Loaded) Classes() int {
	if l.FC == nil {
		return 0
	}
	return l.FC.Weight.Value.Dim(0)
}

// ClassName names class i: its name when the file holds the names, else
// the number i.
func (l *Loaded) ClassName(i int) string {
	if i >= 0 && i < len(l.ClassNames) {
		return l.ClassNames[i]
	}
	return strconv.Itoa(i)
}

// ClassifierFile returns the tensors and metadata SaveClassifier writes
// (see ClassifierFormat): the encoder, the head's first Selector hidden
// layers and FC.
func (l *Loaded) ClassifierFile() (*checkpoint.File, error) {
	if l.FC == nil {
		return nil, fmt.Errorf("no classifier layer to save")
	}
	if l.Selector < 0 || l.Selector > l.Model.Layers() {
		return nil, fmt.Errorf("classifier on head layer %d: the model's head has hidden layers 0..%d", l.Selector, l.Model.Layers())
	}
	classes := l.Classes()
	extra := map[string]string{
		MetaFormat:   ClassifierFormat,
		MetaSelector: strconv.Itoa(l.Selector),
		MetaClasses:  strconv.Itoa(classes),
	}
	if l.Recipe != "" {
		extra[MetaRecipe] = l.Recipe
	}
	if l.ClassNames != nil {
		if len(l.ClassNames) != classes {
			return nil, fmt.Errorf("%d class names for %d classes", len(l.ClassNames), classes)
		}
		names, err := json.Marshal(l.ClassNames)
		if err != nil {
			return nil, err
		}
		extra[MetaClassNames] = string(names)
	}
	f := l.EncoderFile(extra)
	all := checkpoint.New()
	l.Model.Params.SaveState(all, "")
	keep := func(name string) bool {
		for i := 0; i < l.Selector; i++ {
			if strings.HasPrefix(name, fmt.Sprintf("head.%d.", 3*i)) || strings.HasPrefix(name, fmt.Sprintf("head.%d.", 3*i+1)) {
				return true
			}
		}
		return false
	}
	for name, t := range all.Floats {
		if keep(name) {
			f.Floats[name] = t
		}
	}
	for name, v := range all.Ints {
		if keep(name) {
			f.Ints[name] = v
		}
	}
	f.Floats["fc.weight"] = l.FC.Weight.Value.Clone()
	f.Floats["fc.bias"] = l.FC.Bias.Value.Clone()
	return f, nil
}

// SaveClassifier writes the classifier to path atomically (see
// ClassifierFormat).
func (l *Loaded) SaveClassifier(path string) error {
	f, err := l.ClassifierFile()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return checkpoint.Save(path, f)
}

// hiddenLayers registers the head's first hidden layers under r with the
// names NewHead gives them, without the projection that follows. In the
// official layout their Linears have no bias.
func hiddenLayers(r *nn.Registry, in int, widths []int, style HeadStyle) *Head {
	h := &Head{}
	for i, w := range widths {
		h.Linears = append(h.Linears, nn.NewLinear(r.Sub(strconv.Itoa(3*i)), in, w, style != HeadOfficial))
		h.BNs = append(h.BNs, nn.NewBatchNorm(r.Sub(strconv.Itoa(3*i+1)), w, false))
		in = w
	}
	return h
}

// hasProjection tells a whole head from the hidden layers a classifier
// keeps.
func (h *Head) hasProjection() bool { return len(h.Linears) > len(h.BNs) }

// classifierModel builds the model of a ClassifierFormat file: the encoder
// its metadata describes and the head's hidden layers its tensors hold.
func classifierModel(f *checkpoint.File, l *Loaded, o LoadOptions) error {
	cfg, err := encoderMeta(f.Meta)
	if err != nil {
		return err
	}
	if err := checkAgainst(cfg, o); err != nil {
		return err
	}
	if l.Selector, err = strconv.Atoi(f.Meta[MetaSelector]); err != nil || l.Selector < 0 {
		return fmt.Errorf("classifier file without a valid %q entry: %q", MetaSelector, f.Meta[MetaSelector])
	}
	l.ImageSize, _ = strconv.Atoi(f.Meta[MetaImageSize])
	if err := checkFits(ModelConfig{Encoder: cfg}, false, f); err != nil {
		return err
	}
	r := nn.NewRegistry(0)
	enc, err := resnet.New(r, cfg)
	if err != nil {
		return err
	}
	l.Config.Encoder = cfg
	l.Model = &Model{Params: r, Encoder: enc}
	if l.Selector > 0 {
		in := enc.OutDim
		for i := 0; i < l.Selector; i++ {
			name := fmt.Sprintf("head.%d.weight", 3*i)
			w, ok := f.Floats[name]
			if !ok || len(w.Shape) != 2 || w.Shape[1] != in {
				return fmt.Errorf("classifier on head layer %d without a %s of shape [width, %d]", l.Selector, name, in)
			}
			l.Config.ProjHidden = append(l.Config.ProjHidden, w.Shape[0])
			in = w.Shape[0]
		}
		if _, ok := f.Floats["head.0.bias"]; !ok {
			l.Config.HeadStyle = HeadOfficial // Linears without bias
		}
		l.Model.Head = hiddenLayers(r.Sub("head"), enc.OutDim, l.Config.ProjHidden, l.Config.HeadStyle)
	}
	l.Model.Config = l.Config
	return nil
}

// classifierModelV1 builds the model of a ClassifierFormatV1 file from its
// configuration entry.
func classifierModelV1(f *checkpoint.File, l *Loaded, o LoadOptions) error {
	var cfg ModelConfig
	if err := json.Unmarshal([]byte(f.Meta["model"]), &cfg); err != nil {
		return fmt.Errorf("model configuration: %w", err)
	}
	if err := checkAgainst(cfg.Encoder, o); err != nil {
		return err
	}
	var err error
	if l.Selector, err = strconv.Atoi(f.Meta[MetaSelector]); err != nil || l.Selector < 0 {
		return fmt.Errorf("classifier file without a valid %q entry: %q", MetaSelector, f.Meta[MetaSelector])
	}
	l.ImageSize, _ = strconv.Atoi(f.Meta[MetaImageSize])
	l.Config = cfg
	if err := checkFits(cfg, cfg.ProjOut != 0, f); err != nil {
		return err
	}
	if cfg.ProjOut == 0 { // fine-tuned from an encoder without its head
		r := nn.NewRegistry(0)
		enc, err := resnet.New(r, cfg.Encoder)
		if err != nil {
			return err
		}
		l.Model = &Model{Config: cfg, Params: r, Encoder: enc}
		return nil
	}
	l.Model, err = NewModel(cfg, 0)
	return err
}

// loadFC reads fc.weight and fc.bias (under prefix) as the classifier on
// layer l.Selector. Unless required, a file without them, or with an fc
// that does not fit, is left an encoder.
func (l *Loaded) loadFC(f *checkpoint.File, prefix string, required bool) error {
	if l.Selector > l.Model.Layers() {
		return fmt.Errorf("classifier on head layer %d: the file's head has hidden layers 0..%d", l.Selector, l.Model.Layers())
	}
	in := l.Model.Encoder.OutDim
	if l.Selector > 0 {
		in = l.Model.Head.Linears[l.Selector-1].Weight.Value.Dim(0)
	}
	w, b := f.Floats[prefix+"fc.weight"], f.Floats[prefix+"fc.bias"]
	if w == nil || b == nil || len(w.Shape) != 2 || w.Shape[1] != in || len(b.Shape) != 1 || b.Shape[0] != w.Shape[0] {
		if !required {
			return nil
		}
		shape := func(name string) string {
			if t := f.Floats[prefix+name]; t != nil {
				return fmt.Sprint(t.Shape)
			}
			return "missing"
		}
		return fmt.Errorf("classifier layer %sfc.weight %s, %sfc.bias %s: want [classes, %d] and [classes]", prefix, shape("fc.weight"), prefix, shape("fc.bias"), in)
	}
	classes := w.Shape[0]
	if s, ok := f.Meta[MetaClasses]; ok && s != strconv.Itoa(classes) {
		return fmt.Errorf("metadata %s %q, but fc.weight has %d rows", MetaClasses, s, classes)
	}
	if s, ok := f.Meta[MetaClassNames]; ok {
		if err := json.Unmarshal([]byte(s), &l.ClassNames); err != nil {
			return fmt.Errorf("metadata %s: %w", MetaClassNames, err)
		}
		if len(l.ClassNames) != classes {
			return fmt.Errorf("metadata %s names %d classes, fc.weight has %d", MetaClassNames, len(l.ClassNames), classes)
		}
	}
	l.FC = nn.NewLinear(nn.NewRegistry(0).Sub("fc"), in, classes, true)
	copy(l.FC.Weight.Value.Data, w.Data)
	copy(l.FC.Bias.Value.Data, b.Data)
	return nil
}
