package main

import (
	"math"
	"strconv"
	"strings"

	"github.com/simclr-go/simclr/eval"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/selection"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/train"
)

// Each command checks all its settings with these before it opens data or
// builds a model, so that a typo costs nothing and exits with status 2.

func (m *modelFlags) check(c *checks, flag string) {
	c.required(flag, m.checkpoint, "a checkpoint or encoder file")
	c.depth("depth", m.depth, "from the file")
	c.autoOrIn("width", m.width, 1, maxWidth, "from the file")
	c.oneOf("cifar-stem", m.stem, "auto", "on", "off")
}

// check covers the dataset flags splitFlags registers.
func (s *splitFlags) check(c *checks) {
	c.required("data", s.data.Data, "a dataset ("+datasetHelp+")")
	c.heldOut("val", s.val)
	c.autoOrIn("limit", s.data.Limit, 1, maxCount, "all images")
	if s.val > 0 && s.testData != "" {
		c.failf("--val %s and --test-data %s both choose the test images: give one", fmtFloat(s.val), s.testData)
	}
}

func (s *splitFlags) datasets() []input {
	return []input{datasetInput("data", s.data.Data), datasetInput("test-data", s.testData)}
}

func (c *checks) layer(s string) {
	if _, err := parseLayer(s); err != nil {
		c.add(err)
	}
}

func (f *knnFlags) validate() error {
	var c checks
	f.model.check(&c, "checkpoint")
	f.split.check(&c)
	c.layer(f.layer)
	c.intIn("k", f.k, 1, maxK)
	c.floatIn("temperature", f.temperature, 0, maxTemp, "(]")
	c.imageSide("image-size", f.imageSize)
	c.intIn("batch", f.batch, 1, maxBatch)
	c.workers("workers", f.workers)
	return c.err()
}

func (f *linearFlags) validate() error {
	var c checks
	f.model.check(&c, "checkpoint")
	c.required("data", f.data.Data, "a labelled dataset ("+datasetHelp+")")
	c.heldOut("val", f.val)
	c.autoOrIn("limit", f.data.Limit, 1, maxCount, "all images")
	if f.val > 0 && f.testData != "" {
		c.failf("--val %s and --test-data %s both choose the test images: give one", fmtFloat(f.val), f.testData)
	}
	c.layer(f.layer)
	c.imageSide("image-size", f.imageSize)
	c.intIn("batch", f.batch, 1, maxBatch)
	c.workers("workers", f.workers)
	if _, err := parseL2s(f.l2); err != nil {
		c.add(err)
	}
	c.floatIn("hold-out", f.holdOut, 0, 1, "()")
	c.intIn("max-iter", f.maxIter, 1, 1_000_000)
	c.intIn("augment", f.augment, 0, 100)
	return c.err()
}

// parseL2s reads --l2: comma-separated penalties >= 0.
func parseL2s(s string) ([]float64, error) {
	var l2s []float64
	for _, v := range strings.Split(s, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || !(x >= 0) || math.IsInf(x, 0) {
			return nil, usagef("--l2 %q: want comma-separated penalties >= 0, e.g. 1e-4,1e-3,1e-2", s)
		}
		l2s = append(l2s, x)
	}
	return l2s, nil
}

func (f *embedFlags) validate() error {
	var c checks
	f.model.check(&c, "checkpoint")
	c.required("data", f.data.Data, "a dataset ("+datasetHelp+")")
	c.required("out", f.out, "a path prefix, e.g. --out runs/cifar/test")
	c.autoOrIn("limit", f.data.Limit, 1, maxCount, "all images")
	c.layer(f.layer)
	c.imageSide("image-size", f.imageSize)
	c.intIn("batch", f.batch, 1, maxBatch)
	c.workers("workers", f.workers)
	if f.out != "" {
		inputs := []input{{"checkpoint", f.model.checkpoint}}
		for _, ext := range embedOutputs {
			c.outputFile("out", f.out+ext, inputs, datasetInput("data", f.data.Data))
		}
	}
	return c.err()
}

// embedOutputs are the files embed writes, as suffixes of --out.
var embedOutputs = []string{".features.npy", ".labels.npy", ".files.txt"}

// validateExport checks export's settings.
func validateExport(m *modelFlags, out string) error {
	var c checks
	m.check(&c, "checkpoint")
	c.required("out", out, "the file to write, e.g. --out encoder.safetensors")
	c.outputFile("out", out, []input{{"checkpoint", m.checkpoint}})
	return c.err()
}

func (f *importFlags) validate() error {
	var c checks
	f.model.check(&c, "in")
	c.required("out", f.out, "the file to write, e.g. --out encoder.safetensors")
	c.oneOf("as", f.as, "encoder", "pretrain")
	c.oneOf("normalize", f.normalize, "keep", "none", "imagenet")
	c.imageSide("image-size", f.imageSize)
	c.intIn("proj-layers", f.projLayers, 1, maxLayers)
	c.autoOrIn("proj-hidden", f.projHidden, 1, maxFeatures, "the encoder's feature size")
	c.intIn("proj-out", f.projOut, 1, maxFeatures)
	c.outputFile("out", f.out, []input{{"in", f.model.checkpoint}})
	return c.err()
}

func (f *pretrainFlags) validate(configPath string) error {
	var c checks
	c.required("data", f.Data, "a dataset ("+datasetHelp+")")
	c.autoOrIn("limit", f.Limit, 1, maxCount, "all images")
	c.heldOut("val", f.Val)
	c.depth("depth", f.Depth, "")
	c.intIn("width", f.Width, 1, maxWidth)
	c.oneOf("cifar-stem", f.CIFARStem, "auto", "on", "off")
	c.intIn("proj-layers", f.ProjLayers, 1, maxLayers)
	c.floatIn("sk-ratio", f.SKRatio, 0, 1, "[]")
	c.autoOrIn("proj-hidden", f.ProjHidden, 1, maxFeatures, "the encoder's feature size")
	c.intIn("proj-out", f.ProjOut, 1, maxFeatures)
	c.intIn("batch", f.Batch, 2, maxBatch)
	c.floatIn("epochs", f.Epochs, 0, maxEpochs, "(]")
	c.autoOrIn("steps", f.Steps, 1, maxSteps, "from --epochs")
	c.oneOf("optimizer", f.Optimizer, "lars", "sgd")
	c.floatIn("lr", f.LR, 0, maxLR, "(]")
	c.oneOf("lr-scaling", f.LRScaling, "linear", "sqrt")
	c.floatIn("weight-decay", f.WeightDecay, 0, 1, "[]")
	c.floatIn("momentum", f.Momentum, 0, 1, "[)")
	c.floatIn("warmup-epochs", f.WarmupEpochs, 0, maxEpochs, "[]")
	c.floatIn("temperature", f.Temperature, 0, maxTemp, "(]")
	c.intIn("memory-size", f.MemorySize, 0, 1<<24)
	c.floatIn("memory-momentum", f.MemoryMomentum, 0, 1, "[)")
	c.oneOf("memory-positives", f.MemoryPositives, "momentum", "online")
	c.oneOf("head-style", f.HeadStyle, "plain", string(simclr.HeadOfficial))
	c.oneOf("eval-view", f.EvalView, "square", string(eval.ViewCrop))
	c.oneOf("init", f.Init, "torchvision", string(nn.InitOfficial))
	c.oneOf("loss-reduction", f.LossReduction, train.LossMean, train.LossSum)
	c.imageSide("image-size", f.ImageSize)
	c.autoOrFloatIn("color-strength", f.ColorStrength, 0, 10, "(]", "automatic")
	c.oneOf("blur", f.Blur, "auto", "on", "off")
	c.floatIn("solarize", f.Solarize, 0, 1, "[]")
	c.floatIn("crop-min-scale", f.CropMinScale, 0, 1, "(]")
	c.floatIn("color-p", f.ColorP, 0, 1, "[]")
	c.floatIn("gray-p", f.GrayP, 0, 1, "[]")
	c.floatIn("flip-p", f.FlipP, 0, 1, "[]")
	c.workers("workers", f.Workers)
	c.required("out", f.Out, "the run folder")
	c.intIn("checkpoint-every", f.CheckpointEvery, 0, maxSteps)
	c.intIn("knn-every", f.KNNEvery, 0, maxSteps)
	c.intIn("knn-k", f.KNNK, 1, maxK)
	c.duration("time-budget", f.TimeBudget, 1e9, "no limit")
	if f.KNNEvery > 0 && f.Val == 0 {
		c.failf("--knn-every %d needs held-out images for the probe: set --val", f.KNNEvery)
	}
	c.outputDir("out", f.Out, false, []input{{"config", configPath}}, datasetInput("data", f.Data))
	return c.err()
}

func (f *finetuneFlags) validate() error {
	var c checks
	f.model.check(&c, "checkpoint")
	f.split.check(&c)
	c.floatIn("fraction", f.fraction, 0, 1, "(]")
	c.intIn("ft-proj-selector", f.selector, 0, maxLayers)
	c.intIn("batch", f.batch, 2, maxBatch)
	c.intIn("epochs", f.epochs, 1, maxEpochs)
	c.oneOf("recipe", f.recipe, recipeAuto, recipeV1, recipeV2)
	c.autoOrFloatIn("lr", f.lr, 0, maxLR, "(]", "the recipe's")
	c.oneOfOrUnset("optimizer", f.optimizer, train.OptNesterov, train.OptLARS)
	c.oneOfOrUnset("lr-scaling", f.lrScaling, "linear", "sqrt")
	c.oneOfOrUnset("fc-init", f.fcInit, "torch", "zero")
	c.oneOf("eval-view", f.evalView, "square", string(eval.ViewCrop))
	c.imageSide("image-size", f.imageSize)
	c.workers("workers", f.workers)
	c.outputFile("out", f.out, []input{{"checkpoint", f.model.checkpoint}, {"labels-file", f.labels}}, f.split.datasets()...)
	return c.err()
}

func (f *distillFlags) validate() error {
	var c checks
	c.required("teacher", f.teacher, "a classifier written by simclr finetune --out")
	f.split.check(&c)
	c.depth("student-depth", f.depth, "the teacher's")
	c.autoOrIn("student-width", f.width, 1, maxWidth, "the teacher's")
	if f.init != "" && (f.depth != 0 || f.width != 0) {
		c.failf("--student-init sets the student's architecture: drop --student-depth / --student-width")
	}
	c.oneOf("recipe", f.recipe, recipeAuto, recipeV1, recipeV2)
	c.autoOrFloatIn("temperature", f.temperature, 0, maxTemp, "(]", "the recipe's")
	c.oneOfOrUnset("optimizer", f.optimizer, train.OptNesterov, train.OptLARS)
	c.oneOfOrUnset("lr-scaling", f.lrScaling, "linear", "sqrt")
	c.oneOfOrUnset("alpha-on", f.alphaOn, train.AlphaSupervised, train.AlphaDistill)
	c.oneOf("eval-view", f.evalView, "square", string(eval.ViewCrop))
	c.floatIn("weight-decay", f.weightDecay, 0, 1, "[]")
	c.floatIn("warmup-fraction", f.warmup, 0, 1, "[]")
	c.floatIn("fraction", f.fraction, 0, 1, "[]")
	if f.fraction > 0 && f.labels != "" {
		c.failf("--fraction %s and --labels-file %s both choose the labelled images: give one", fmtFloat(f.fraction), f.labels)
	}
	c.floatIn("alpha", f.alpha, 0, 1, "[]")
	c.intIn("batch", f.batch, 2, maxBatch)
	c.intIn("epochs", f.epochs, 1, maxEpochs)
	c.autoOrFloatIn("lr", f.lr, 0, maxLR, "(]", "the recipe's")
	c.workers("workers", f.workers)
	c.outputFile("out", f.out, []input{{"teacher", f.teacher}, {"student-init", f.init}, {"labels-file", f.labels}}, f.split.datasets()...)
	return c.err()
}

func (f *semiFlags) validate() error {
	var c checks
	if (f.checkpoint == "") == (f.pretrainConfig == "") {
		c.failf("give one of --checkpoint (a pretrained model) and --pretrain-config (settings to pretrain one)")
	}
	f.split.check(&c)
	if _, err := parseFractions(f.fractions); err != nil {
		c.add(err)
	}
	if f.selectMethod != "" {
		c.oneOf("select", f.selectMethod, selection.Methods...)
		c.intIn("budget", f.budget, 1, maxCount)
		if f.split.val > 0 {
			c.failf("--select chooses among all images of --data, --val holds some out: test on --test-data or the dataset's test split instead")
		}
	} else if f.budget != 0 {
		c.failf("--budget %d: the number of images --select chooses; set --select too", f.budget)
	}
	c.intIn("ft-proj-selector", f.selector, 0, maxLayers)
	c.intIn("ft-epochs", f.ftEpochs, 1, maxEpochs)
	c.intIn("ft-batch", f.ftBatch, 2, maxBatch)
	c.intIn("distill-epochs", f.distillEpochs, 1, maxEpochs)
	c.intIn("distill-batch", f.distillBatch, 2, maxBatch)
	c.floatIn("alpha", f.alpha, 0, 1, "[]")
	c.autoOrFloatIn("temperature", f.temperature, 0, maxTemp, "(]", "the recipe's")
	c.oneOf("recipe", f.recipe, recipeAuto, recipeV1, recipeV2)
	c.oneOfOrUnset("alpha-on", f.alphaOn, train.AlphaSupervised, train.AlphaDistill)
	c.oneOf("eval-view", f.evalView, "square", string(eval.ViewCrop))
	c.required("out", f.out, "the output folder")
	c.outputDir("out", f.out, false, []input{{"checkpoint", f.checkpoint}, {"pretrain-config", f.pretrainConfig}}, f.split.datasets()...)
	return c.err()
}

func (f *demoFlags) validate() error {
	var c checks
	c.duration("budget", f.budget, 1e9, "")
	c.intIn("width", f.width, 1, maxWidth)
	c.intIn("batch", f.batch, 2, maxBatch)
	c.workers("workers", f.workers)
	c.autoOrIn("limit", f.limit, 1, maxCount, "all images")
	c.oneOf("head-style", f.headStyle, "plain", string(simclr.HeadOfficial))
	c.oneOf("init", f.init, "torchvision", string(nn.InitOfficial))
	c.oneOf("loss-reduction", f.lossReduction, train.LossMean, train.LossSum)
	c.required("out", f.out, "the report folder")
	c.outputDir("out", f.out, true, nil, datasetInput("fashion-dir", "fashion-mnist:"+f.dir))
	return c.err()
}

func (f *predictFlags) validate() error {
	var c checks
	f.model.check(&c, "model")
	c.required("data", f.data.Data, "the images to classify ("+datasetHelp+")")
	c.autoOrIn("limit", f.data.Limit, 1, maxCount, "all images")
	c.intIn("top-k", f.topK, 1, maxK)
	c.imageSide("image-size", f.imageSize)
	c.intIn("batch", f.batch, 1, maxBatch)
	c.workers("workers", f.workers)
	c.outputFile("out", f.out, []input{{"model", f.model.checkpoint}}, datasetInput("data", f.data.Data))
	return c.err()
}
