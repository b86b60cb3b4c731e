package main

import (
	"fmt"
	"strconv"

	"github.com/simclr-go/simclr/eval"
	"github.com/simclr-go/simclr/optim"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/train"
)

// evalViewHelp describes --eval-view.
const evalViewHelp = "evaluation view of each test image: square (the whole central square, bilinear) or crop (the official code's: the central 87.5%, bicubic; views of 32 px or less whole)"

// evalView reads --eval-view ("square" is stored as the zero value).
func evalView(s string) eval.ViewStyle {
	v, _ := eval.ParseViewStyle(s) // validated with the other flags
	return v
}

// Recipes finetune and distill follow (--recipe).
const (
	recipeAuto = "auto" // SimCLRv2's for a model a --v2 run made, else SimCLR's
	recipeV1   = "v1"
	recipeV2   = "v2"
)

// ftRecipe is the part of fine-tuning a recipe sets.
type ftRecipe struct {
	optimizer, lrScaling, fcInit string
	lr                           float64
	selector                     int
}

// fineTuneRecipe is SimCLR's fine-tuning (SimCLR appendix B.5: Nesterov
// momentum, lr 0.05 x B/256, new layer initialised as torch does, on the
// encoder's h) or SimCLRv2's for model (SimCLRv2's "Settings and
// Implementation Details" and the official README: LARS, lr 0.005 x
// sqrt(B), or 0.002 x sqrt(B) for wider or selective-kernel ResNets, no
// weight decay nor warmup, a zero-initialised classifier layer, from the
// head's first layer).
func fineTuneRecipe(recipe string, model *simclr.Model) ftRecipe {
	if recipe != recipeV2 {
		return ftRecipe{optimizer: train.OptNesterov, lrScaling: string(optim.Linear), fcInit: "torch", lr: 0.05}
	}
	r := ftRecipe{optimizer: train.OptLARS, lrScaling: string(optim.Sqrt), fcInit: "zero", lr: 0.005, selector: min(1, model.Layers())}
	if enc := model.Config.Encoder; enc.Width > 64 || enc.SKRatio > 0 {
		r.lr = 0.002
	}
	return r
}

// distillRecipe is the part of distillation a recipe sets.
type distillRecipe struct {
	optimizer, lrScaling, alphaOn string
	lr, weightDecay, warmup       float64
	temperature                   float64
	temperatureSquared            bool
}

// distillationRecipe is simclr-go's first distillation (fine-tuning's
// optimiser, alpha on the supervised term, temperature 1) or SimCLRv2's
// ("Settings and Implementation Details" and equation 3: the pretraining
// optimiser, LARS at 0.1 x sqrt(B) with weight decay 1e-4 and warmup over
// 5% of the steps; alpha on the distillation term; temperature 0.1 when
// the student has the teacher's architecture, 1 otherwise; the
// distillation term times the temperature squared, as the official
// colabs' add_kd_loss, without which temperature 0.1 diverges).
func distillationRecipe(recipe string, selfDistill bool) distillRecipe {
	if recipe != recipeV2 {
		return distillRecipe{optimizer: train.OptNesterov, lrScaling: string(optim.Linear), alphaOn: train.AlphaSupervised, lr: 0.05, temperature: 1}
	}
	r := distillRecipe{optimizer: train.OptLARS, lrScaling: string(optim.Sqrt), alphaOn: train.AlphaDistill, lr: 0.1, weightDecay: 1e-4, warmup: 0.05, temperature: 1, temperatureSquared: true}
	if selfDistill {
		r.temperature = 0.1
	}
	return r
}

// pickRecipe resolves --recipe: auto follows what the model records.
func pickRecipe(flag, recorded string) string {
	if flag == recipeAuto {
		if recorded == simclr.RecipeV2 {
			return recipeV2
		}
		return recipeV1
	}
	return flag
}

// orDefault sets *v to the recipe's value when the command line left it
// at its zero value (which every such flag's help calls "the recipe's").
func orDefault[T comparable](v *T, recipe T) {
	var zero T
	if *v == zero {
		*v = recipe
	}
}

// oneOfOrUnset wants v among allowed, or "" (the recipe's).
func (c *checks) oneOfOrUnset(flag, v string, allowed ...string) {
	if v != "" {
		c.oneOf(flag, v, allowed...)
	}
}

// recordResolved writes resolved values into a run's recorded settings.
func recordResolved(settings map[string]string, kv ...any) {
	if settings == nil {
		return
	}
	for i := 0; i+1 < len(kv); i += 2 {
		var v string
		switch x := kv[i+1].(type) {
		case float64:
			v = strconv.FormatFloat(x, 'g', -1, 64)
		default:
			v = fmt.Sprint(x)
		}
		settings[kv[i].(string)] = v
	}
}
