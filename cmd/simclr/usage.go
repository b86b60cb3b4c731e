package main

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// usageError is a mistake in the command line: simclr exits with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef formats a usage error; messages name the flag, the value and what
// is allowed, e.g. "--batch 0: want at least 1".
func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// Upper bounds of settings: far beyond any real run, so that a typo such as
// an extra digit or a missing unit stops at once instead of allocating
// memory or looping for years.
const (
	maxBatch    = 1 << 20 // images per step
	maxSteps    = 1_000_000_000
	maxEpochs   = 1_000_000
	maxSide     = 8192 // image side in pixels
	minSide     = 8
	maxWorkers  = 4096 // goroutines, threads
	maxWidth    = 4096 // ResNet channels of the first stage
	maxFeatures = 1 << 16
	maxLayers   = 16
	maxCount    = 1_000_000_000 // images (--limit, --val)
	maxK        = 1 << 20
	maxLR       = 1000
	maxTemp     = 100
	maxBudget   = 365 * 24 * time.Hour
)

// resnetDepths are the depths the ResNet builder knows.
var resnetDepths = []int{18, 34, 50, 101, 152}

// checks collects every invalid setting of a command, so that one run
// reports them all.
type checks struct{ errs []error }

func (c *checks) add(err error) {
	if err != nil {
		c.errs = append(c.errs, err)
	}
}

func (c *checks) failf(format string, a ...any) { c.errs = append(c.errs, fmt.Errorf(format, a...)) }

// err is nil when every check passed, else a usage error listing them.
func (c *checks) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	return usageError{errors.Join(c.errs...)}
}

// intIn wants lo <= v <= hi.
func (c *checks) intIn(flag string, v, lo, hi int) {
	switch {
	case v >= lo && v <= hi:
	case hi == math.MaxInt:
		c.failf("--%s %d: want at least %d", flag, v, lo)
	default:
		c.failf("--%s %d: want %d to %d", flag, v, lo, hi)
	}
}

// autoOrIn wants 0 (automatic, or off: what says which) or lo <= v <= hi.
func (c *checks) autoOrIn(flag string, v, lo, hi int, what string) {
	if v != 0 && (v < lo || v > hi) {
		c.failf("--%s %d: want 0 (%s) or %d to %d", flag, v, what, lo, hi)
	}
}

// floatIn wants v in the interval from lo to hi; open says which ends
// are excluded ("()", "(]", "[)" or "[]").
func (c *checks) floatIn(flag string, v, lo, hi float64, ends string) {
	ok := (v > lo || ends[0] == '[' && v == lo) && (v < hi || ends[1] == ']' && v == hi)
	if !ok { // NaN lands here too
		c.failf("--%s %s: want a value in %c%s, %s%c", flag, fmtFloat(v), ends[0], fmtFloat(lo), fmtFloat(hi), ends[1])
	}
}

// autoOrFloatIn wants 0 (automatic, or off) or v in the interval.
func (c *checks) autoOrFloatIn(flag string, v, lo, hi float64, ends, what string) {
	if v == 0 {
		return
	}
	n := len(c.errs)
	c.floatIn(flag, v, lo, hi, ends)
	if len(c.errs) > n {
		c.errs[n] = fmt.Errorf("%w, or 0 (%s)", c.errs[n], what)
	}
}

// oneOf wants v among allowed.
func (c *checks) oneOf(flag, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		c.failf("--%s %q: want %s", flag, v, orList(allowed))
	}
}

// depth wants a ResNet depth, or 0 when auto names what 0 means.
func (c *checks) depth(flag string, v int, auto string) {
	if slices.Contains(resnetDepths, v) || (auto != "" && v == 0) {
		return
	}
	ds := make([]string, len(resnetDepths))
	for i, d := range resnetDepths {
		ds[i] = strconv.Itoa(d)
	}
	if auto != "" {
		ds = append([]string{"0 (" + auto + ")"}, ds...)
	}
	c.failf("--%s %d: want %s", flag, v, orList(ds))
}

// duration wants lo <= v <= maxBudget.
func (c *checks) duration(flag string, v, lo time.Duration, zero string) {
	switch {
	case v == 0 && zero != "":
	case v < lo || v > maxBudget:
		what := fmt.Sprintf("a duration from %v to %v", lo, maxBudget)
		if zero != "" {
			what += " or 0 (" + zero + ")"
		}
		c.failf("--%s %v: want %s", flag, v, what)
	}
}

// required reports a missing setting.
func (c *checks) required(flag, v, what string) {
	if v == "" {
		c.failf("--%s is missing: set it to %s", flag, what)
	}
}

// heldOut checks --val: 0 (none), a fraction in (0, 1), or a whole count.
func (c *checks) heldOut(flag string, v float64) {
	if v == 0 || (v > 0 && v < 1) || (v >= 1 && v <= maxCount && v == math.Trunc(v)) {
		return
	}
	c.failf("--%s %s: want a fraction in (0, 1), a whole count of images up to %d, or 0 (none)", flag, fmtFloat(v), maxCount)
}

// workers checks a count of data-loading goroutines.
func (c *checks) workers(flag string, v int) { c.autoOrIn(flag, v, 1, maxWorkers, "one per CPU") }

// imageSide checks a view side where 0 picks it automatically.
func (c *checks) imageSide(flag string, v int) { c.autoOrIn(flag, v, minSide, maxSide, "automatic") }

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// orList writes "a, b or c".
func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
