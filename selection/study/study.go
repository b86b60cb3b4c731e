// Package study measures how well the images each selection method picks
// train a classifier, on a pool whose labels are known: the question a
// person about to label a few images asks of the methods.
//
// For every method, budget and seed, the picks are chosen from the pool's
// features alone (as selection.Select always does), a linear classifier
// is fitted to the picked images' features and labels, and it is scored
// on held-out test features. Class-balanced random picks, which no one
// without labels could make, are the reference a method should reach.
package study

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/eval"
	"github.com/simclr-go/simclr/selection"
)

// Balanced is the method name of class-balanced random picks: the same
// number of images of every class (as near as the budget allows), drawn
// with the labels.
const Balanced = "balanced"

// Methods lists every method Run knows: the selection methods, then
// Balanced.
var Methods = append(slices.Clone(selection.Methods), Balanced)

// Config says what to compare.
type Config struct {
	// Methods are names from Methods.
	Methods []string
	// Budgets are the numbers of images to pick.
	Budgets []int
	// Seeds are the seeds of the repetitions: each method and budget runs
	// once per seed.
	Seeds []uint64
	// L2 is the classifier's penalty (eval.LogRegOptions.L2), the same for
	// every method: with a handful of labelled images there is nothing to
	// choose it on.
	L2 float64
	// Gemm computes selection's distance products (nil: pure Go).
	Gemm selection.Gemm
}

// Trial is one method's picks at one budget and seed, and what they gave.
type Trial struct {
	Method string  `json:"method"`
	Budget int     `json:"budget"`
	Seed   uint64  `json:"seed"`
	Top1   float64 `json:"top1"`
	// Classes is how many classes the picks cover.
	Classes int `json:"classes_covered"`
	// Picks are the chosen rows of the pool.
	Picks []int `json:"picks"`
}

// Run picks, fits and scores every method at every budget and seed of c,
// in that order, telling done of each finished trial (nil: no one). The
// pool's labels are read only to fit the classifier and for Balanced.
func Run(be backend.Backend, pool, test *eval.Features, classes int, c Config, done func(Trial)) ([]Trial, error) {
	if err := c.check(pool, test, classes); err != nil {
		return nil, err
	}
	var trials []Trial
	for _, m := range c.Methods {
		for _, b := range c.Budgets {
			for _, s := range c.Seeds {
				picks, err := choose(m, pool, classes, b, s, c.Gemm)
				if err != nil {
					return trials, fmt.Errorf("%s, budget %d, seed %d: %w", m, b, s, err)
				}
				top1, err := score(be, pool, test, classes, picks, c.L2)
				if err != nil {
					return trials, fmt.Errorf("%s, budget %d, seed %d: %w", m, b, s, err)
				}
				t := Trial{Method: m, Budget: b, Seed: s, Top1: top1, Classes: covered(pool.Labels, picks), Picks: picks}
				trials = append(trials, t)
				if done != nil {
					done(t)
				}
			}
		}
	}
	return trials, nil
}

func (c Config) check(pool, test *eval.Features, classes int) error {
	if pool == nil || test == nil || pool.Rows == 0 || test.Rows == 0 {
		return fmt.Errorf("study: empty pool or test set")
	}
	if pool.Dim != test.Dim {
		return fmt.Errorf("study: pool features have %d dimensions, test features %d", pool.Dim, test.Dim)
	}
	if len(pool.Labels) != pool.Rows || len(test.Labels) != test.Rows {
		return fmt.Errorf("study: the pool and the test set need a label for every image")
	}
	if classes < 2 {
		return fmt.Errorf("study: %d classes: want at least 2", classes)
	}
	for _, m := range c.Methods {
		if !slices.Contains(Methods, m) {
			return fmt.Errorf("study: unknown method %q (want one of %v)", m, Methods)
		}
	}
	for _, b := range c.Budgets {
		if b < 1 || b > pool.Rows {
			return fmt.Errorf("study: budget %d outside 1..%d (the pool's size)", b, pool.Rows)
		}
	}
	if len(c.Methods) == 0 || len(c.Budgets) == 0 || len(c.Seeds) == 0 {
		return fmt.Errorf("study: no methods, budgets or seeds")
	}
	if c.L2 < 0 || math.IsNaN(c.L2) || math.IsInf(c.L2, 0) {
		return fmt.Errorf("study: L2 penalty %g: want a finite value of at least 0", c.L2)
	}
	return nil
}

// choose returns the rows method m picks. Only Balanced reads labels.
func choose(m string, pool *eval.Features, classes, budget int, seed uint64, gemm selection.Gemm) ([]int, error) {
	if m == Balanced {
		return balanced(pool.Labels, classes, budget, seed), nil
	}
	picks, err := selection.Select(selection.Method(m), pool.Data, pool.Dim, selection.Options{Budget: budget, Seed: seed, Gemm: gemm})
	if err != nil {
		return nil, err
	}
	rows := make([]int, len(picks))
	for i, p := range picks {
		rows[i] = p.Index
	}
	return rows, nil
}

// balanced draws budget rows at random, budget/classes of each class and
// one more of as many randomly chosen classes as the remainder.
func balanced(labels []int, classes, budget int, seed uint64) []int {
	r := rand.New(rand.NewPCG(seed, 0xba1a7ced))
	byClass := make([][]int, classes)
	for i, y := range labels {
		if y >= 0 && y < classes {
			byClass[y] = append(byClass[y], i)
		}
	}
	want := make([]int, classes)
	for c := range want {
		want[c] = budget / classes
	}
	for _, c := range r.Perm(classes)[:budget%classes] {
		want[c]++
	}
	var rows []int
	short := 0
	for c, rowsOf := range byClass {
		n := min(want[c], len(rowsOf))
		short += want[c] - n
		for _, k := range r.Perm(len(rowsOf))[:n] {
			rows = append(rows, rowsOf[k])
		}
	}
	if short > 0 { // classes too small: the rest at random from the others
		taken := make(map[int]bool, len(rows))
		for _, i := range rows {
			taken[i] = true
		}
		for _, i := range r.Perm(len(labels)) {
			if short == 0 {
				break
			}
			if !taken[i] {
				rows, short = append(rows, i), short-1
			}
		}
	}
	return rows
}

// score fits a logistic regression on the picked rows and returns its
// top-1 accuracy on test.
func score(be backend.Backend, pool, test *eval.Features, classes int, picks []int, l2 float64) (float64, error) {
	train := &eval.Features{Rows: len(picks), Dim: pool.Dim, Data: make([]float32, 0, len(picks)*pool.Dim), Labels: make([]int, 0, len(picks))}
	for _, i := range picks {
		train.Data = append(train.Data, pool.Data[i*pool.Dim:(i+1)*pool.Dim]...)
		train.Labels = append(train.Labels, pool.Labels[i])
	}
	m, err := eval.FitLogReg(be, train, classes, eval.LogRegOptions{L2: l2})
	if err != nil {
		return 0, err
	}
	s, err := m.Scores(be, test)
	if err != nil {
		return 0, err
	}
	return eval.TopK(s, test.Labels, classes, 1), nil
}

func covered(labels []int, picks []int) int {
	seen := map[int]bool{}
	for _, i := range picks {
		seen[labels[i]] = true
	}
	return len(seen)
}

// Summary is one method at one budget over its seeds.
type Summary struct {
	Method string `json:"method"`
	Budget int    `json:"budget"`
	Seeds  int    `json:"seeds"`
	// Mean and Std (population) of the top-1 accuracies; Min and Max.
	Mean float64 `json:"mean_top1"`
	Std  float64 `json:"std_top1"`
	Min  float64 `json:"min_top1"`
	Max  float64 `json:"max_top1"`
	// Classes is the mean number of classes the picks cover.
	Classes float64 `json:"classes_covered"`
}

// Summarize groups trials by method and budget, in the order they first
// appear.
func Summarize(trials []Trial) []Summary {
	type key struct {
		m string
		b int
	}
	var order []key
	groups := map[key][]Trial{}
	for _, t := range trials {
		k := key{t.Method, t.Budget}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], t)
	}
	out := make([]Summary, 0, len(order))
	for _, k := range order {
		g := groups[k]
		s := Summary{Method: k.m, Budget: k.b, Seeds: len(g), Min: math.Inf(1), Max: math.Inf(-1)}
		for _, t := range g {
			s.Mean += t.Top1
			s.Classes += float64(t.Classes)
			s.Min, s.Max = min(s.Min, t.Top1), max(s.Max, t.Top1)
		}
		n := float64(len(g))
		s.Mean /= n
		s.Classes /= n
		for _, t := range g {
			s.Std += (t.Top1 - s.Mean) * (t.Top1 - s.Mean)
		}
		s.Std = math.Sqrt(s.Std / n)
		out = append(out, s)
	}
	return out
}
