package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/nn"
	"github.com/simclr-go/simclr/optim"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/train"
)

// TestV2PretrainRecipe: --v2 resolves to SimCLRv2's documented recipe
// (3-layer head, SK 0.0625, lr 0.1 with sqrt scaling, weight decay 1e-4,
// warmup over 5% of the steps) and records it in the configuration; an
// explicit flag, or a key of the --config file, wins over the recipe.
func TestV2PretrainRecipe(t *testing.T) {
	imgs := imageFolder(t, 40)
	var g globalFlags
	cmd, f := newPretrainCmd(&g)
	if err := cmd.ParseFlags([]string{"--data", imgs, "--v2", "--batch", "4", "--epochs", "10", "--image-size", "8", "--depth", "18", "--width", "4"}); err != nil {
		t.Fatal(err)
	}
	applyV2(cmd.Flags(), f)
	s, err := setupPretrain(*f)
	if err != nil {
		t.Fatal(err)
	}
	c := s.cfg
	if len(c.Model.ProjHidden) != 2 || c.Model.Encoder.SKRatio != 0.0625 || c.BaseLR != 0.1 || c.LRScaling != optim.Sqrt ||
		c.WeightDecay != 1e-4 || c.Steps != 100 || c.Warmup != 5 || !c.V2 {
		t.Errorf("v2 recipe: hidden %v, SK %g, lr %g %s, decay %g, steps %d, warmup %d, v2 %v; want 2 hidden, 0.0625, 0.1 sqrt, 1e-4, 100, 5, true",
			c.Model.ProjHidden, c.Model.Encoder.SKRatio, c.BaseLR, c.LRScaling, c.WeightDecay, c.Steps, c.Warmup, c.V2)
	}
	if s.warmupEpochs != 0.5 {
		t.Errorf("warmup recorded as %g epochs, want 0.5", s.warmupEpochs)
	}

	cmd, f = newPretrainCmd(&g)
	conf := filepath.Join(t.TempDir(), "run.yaml")
	if err := os.WriteFile(conf, []byte("weight_decay: 0.001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.ParseFlags([]string{"--data", imgs, "--v2", "--lr", "0.3", "--lr-scaling", "linear", "--warmup-epochs", "2",
		"--batch", "4", "--epochs", "10", "--image-size", "8", "--depth", "18", "--width", "4"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfigFile(cmd, conf, f); err != nil {
		t.Fatal(err)
	}
	applyV2(cmd.Flags(), f)
	if s, err = setupPretrain(*f); err != nil {
		t.Fatal(err)
	}
	if c := s.cfg; c.BaseLR != 0.3 || c.LRScaling != optim.Linear || c.WeightDecay != 0.001 || c.Warmup != 20 {
		t.Errorf("explicit settings lost under --v2: lr %g %s, decay %g, warmup %d; want 0.3 linear, 0.001, 20", c.BaseLR, c.LRScaling, c.WeightDecay, c.Warmup)
	}
}

// TestOfficialPretrainFlags: the defaults are the official code's choices
// (zero-init residuals, the official head and initialisation, the loss
// sum); each flag selects the plain one.
func TestOfficialPretrainFlags(t *testing.T) {
	imgs := imageFolder(t, 16)
	base := []string{"--data", imgs, "--batch", "4", "--steps", "3", "--image-size", "8", "--depth", "18", "--width", "4"}
	var g globalFlags
	cmd, f := newPretrainCmd(&g)
	if err := cmd.ParseFlags(base); err != nil {
		t.Fatal(err)
	}
	s, err := setupPretrain(*f)
	if err != nil {
		t.Fatal(err)
	}
	c := s.cfg
	if !c.Model.Encoder.ZeroInitResidual || c.Model.HeadStyle != simclr.HeadOfficial || c.Model.Init != nn.InitOfficial || c.LossReduction != train.LossSum || c.V2 {
		t.Errorf("defaults: %+v", c)
	}
	cmd, f = newPretrainCmd(&g)
	if err := cmd.ParseFlags(append(base, "--zero-init-residual=false", "--head-style", "plain", "--init", "torchvision", "--loss-reduction", "mean")); err != nil {
		t.Fatal(err)
	}
	if err := f.validate(""); err != nil {
		t.Fatal(err)
	}
	if s, err = setupPretrain(*f); err != nil {
		t.Fatal(err)
	}
	c = s.cfg
	if c.Model.Encoder.ZeroInitResidual || c.Model.HeadStyle != simclr.HeadPlain || c.Model.Init != nn.InitTorchvision || c.LossReduction != "" {
		t.Errorf("plain: %+v", c)
	}
	cmd, f = newPretrainCmd(&g)
	if err := cmd.ParseFlags(append(base, "--head-style", "tf")); err != nil {
		t.Fatal(err)
	}
	if err := f.validate(""); err == nil {
		t.Error("--head-style tf accepted")
	}
}

// TestFineTuneRecipes: a model of a --v2 run fine-tunes with SimCLRv2's
// recipe (LARS, 0.005 x sqrt(B), or 0.002 for SK, a zero classifier, from
// the head's first layer) unless told otherwise; other models with
// SimCLR's; explicit flags win.
func TestFineTuneRecipes(t *testing.T) {
	cfg := simclr.ModelConfig{Encoder: resnet.Config{Depth: 18, Width: 4, CIFARStem: true}, ProjHidden: []int{8, 8}, ProjOut: 4}
	m, err := simclr.NewModel(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	v2 := &simclr.Loaded{Model: m, Recipe: simclr.RecipeV2}
	f := finetuneFlags{recipe: recipeAuto}
	if r := f.resolve(v2); r != recipeV2 || f.optimizer != train.OptLARS || f.lrScaling != "sqrt" || f.lr != 0.005 || f.fcInit != "zero" || f.selector != 1 {
		t.Errorf("v2 model: recipe %s, %s lr %g %s, fc %s, selector %d", r, f.optimizer, f.lr, f.lrScaling, f.fcInit, f.selector)
	}
	m.Config.Encoder.SKRatio = 0.0625
	f = finetuneFlags{recipe: recipeAuto}
	if f.resolve(v2); f.lr != 0.002 {
		t.Errorf("v2 SK model: lr %g, want 0.002", f.lr)
	}
	f = finetuneFlags{recipe: recipeAuto}
	if r := f.resolve(&simclr.Loaded{Model: m}); r != recipeV1 || f.optimizer != train.OptNesterov || f.lrScaling != "linear" || f.lr != 0.05 || f.fcInit != "torch" || f.selector != 0 {
		t.Errorf("v1 model: recipe %s, %s lr %g %s, fc %s, selector %d", r, f.optimizer, f.lr, f.lrScaling, f.fcInit, f.selector)
	}
	var g globalFlags
	cmd := finetuneCmd(&g)
	if err := cmd.ParseFlags([]string{"--lr", "0.1", "--optimizer", "nesterov", "--ft-proj-selector", "0"}); err != nil {
		t.Fatal(err)
	}
	f = finetuneFlags{recipe: recipeAuto, lr: 0.1, optimizer: train.OptNesterov, flags: cmd.Flags()}
	if f.resolve(v2); f.lr != 0.1 || f.optimizer != train.OptNesterov || f.selector != 0 || f.lrScaling != "sqrt" {
		t.Errorf("explicit flags lost: lr %g %s %s, selector %d", f.lr, f.optimizer, f.lrScaling, f.selector)
	}
}

// TestDistillRecipes: SimCLRv2's distillation uses pretraining's optimiser
// and puts alpha on the distillation term, temperature 0.1 for
// self-distillation and 1 for a smaller student, the distillation term
// times the temperature squared; SimCLR-go's first keeps fine-tuning's.
func TestDistillRecipes(t *testing.T) {
	f := distillFlags{recipe: recipeAuto}
	if r := f.resolve(simclr.RecipeV2, true); r != recipeV2 || f.optimizer != train.OptLARS || f.lr != 0.1 || f.lrScaling != "sqrt" ||
		f.weightDecay != 1e-4 || f.warmup != 0.05 || f.alphaOn != train.AlphaDistill || f.temperature != 0.1 || !f.tSquared {
		t.Errorf("v2: %+v", f)
	}
	f = distillFlags{recipe: recipeV2}
	if f.resolve("", false); f.temperature != 1 || f.optimizer != train.OptLARS {
		t.Errorf("v2 big-to-small: temperature %g, %s", f.temperature, f.optimizer)
	}
	f = distillFlags{recipe: recipeAuto, alphaOn: train.AlphaSupervised}
	if r := f.resolve("", true); r != recipeV1 || f.optimizer != train.OptNesterov || f.lr != 0.05 || f.lrScaling != "linear" ||
		f.weightDecay != 0 || f.warmup != 0 || f.alphaOn != train.AlphaSupervised || f.temperature != 1 || f.tSquared {
		t.Errorf("v1: %+v", f)
	}
}

// TestSameArchitecture: self-distillation is recognised whatever the
// encoders' initialisation was.
func TestSameArchitecture(t *testing.T) {
	a := resnet.Config{Depth: 18, Width: 4, SKRatio: 0.0625, ZeroInitResidual: true}
	b := a
	b.ZeroInitResidual = false
	if !sameArchitecture(a, b) {
		t.Error("a zero-initialised encoder is not its own architecture")
	}
	b.Width = 8
	if sameArchitecture(a, b) {
		t.Error("widths 4 and 8 are the same architecture")
	}
}

// TestV2WarmupKeptOnResume: a resumed --v2 run keeps the warmup its
// run.yaml recorded, so that extending it does not move the warmup.
func TestV2WarmupKeptOnResume(t *testing.T) {
	out := t.TempDir()
	if err := os.WriteFile(filepath.Join(out, runFileName), []byte("v2: true\nwarmup_epochs: 2.5\n---\nbackend: purego\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := defaultPretrain()
	f.Out, f.Resume, f.warmupFraction = out, true, v2WarmupFraction
	if err := keepV2Warmup(&f); err != nil {
		t.Fatal(err)
	}
	if f.WarmupEpochs != 2.5 || f.warmupFraction != 0 {
		t.Errorf("warmup %g epochs, fraction %g; want the recorded 2.5 and none", f.WarmupEpochs, f.warmupFraction)
	}
	f = defaultPretrain()
	f.Out, f.warmupFraction = out, v2WarmupFraction // a new run: 5% of its steps
	if err := keepV2Warmup(&f); err != nil || f.warmupFraction != v2WarmupFraction {
		t.Errorf("a fresh run lost the 5%% warmup: %v", err)
	}
}
