package data

import (
	"errors"
	"fmt"
	"sort"
)

// Sample is one decoded image. RGB holds H*W*3 bytes, row-major HWC; Label
// is -1 for unlabeled data. Name identifies the source (a file path, an
// archive member "archive.tar:dir/x.jpg", or "cifar10/train/123") so that
// errors and logs can point at it.
type Sample struct {
	W, H  int
	RGB   []uint8
	Label int
	Name  string
}

// Dataset is a random-access collection of samples. Get must be safe for
// concurrent use, since the Loader calls it from several goroutines, and
// returns a fresh RGB slice that the caller may keep or modify.
type Dataset interface {
	Len() int
	Get(i int) (Sample, error)
	// Classes returns the class names indexed by label, nil if unlabeled.
	Classes() []string
}

// Labeler is implemented by datasets that know a sample's label without
// decoding it. Split helpers use it to avoid decoding a whole dataset just
// to read its labels.
type Labeler interface {
	Label(i int) int
}

// ErrChecksum is wrapped by download errors when the data does not match
// the expected MD5.
var ErrChecksum = errors.New("checksum mismatch")

// labelOf returns sample i's label, decoding it only if ds cannot tell.
func labelOf(ds Dataset, i int) (int, error) {
	if l, ok := ds.(Labeler); ok {
		return l.Label(i), nil
	}
	s, err := ds.Get(i)
	if err != nil {
		return 0, err
	}
	return s.Label, nil
}

func checkIndex(i, n int) error {
	if i < 0 || i >= n {
		return fmt.Errorf("data: index %d out of range [0, %d)", i, n)
	}
	return nil
}

// Array is an in-memory dataset of equally sized images (CIFAR, MNIST).
// Grayscale data is kept with one channel and expanded on Get, so MNIST
// costs a third of the memory.
type Array struct {
	w, h, c int
	pix     []uint8 // n*h*w*c, HWC per image
	labels  []int32 // nil: unlabeled
	classes []string
	name    string // Sample.Name prefix, e.g. "cifar10/train"
}

// NewArray wraps n images of w*h pixels with c (1 or 3) interleaved
// channels. labels may be nil (unlabeled); name prefixes sample names.
func NewArray(name string, w, h, c int, pix []uint8, labels []int32, classes []string) (*Array, error) {
	if c != 1 && c != 3 {
		return nil, fmt.Errorf("data: %s: %d channels, want 1 or 3", name, c)
	}
	sz := w * h * c
	if sz <= 0 || len(pix)%sz != 0 {
		return nil, fmt.Errorf("data: %s: %d bytes is not a whole number of %dx%dx%d images", name, len(pix), w, h, c)
	}
	n := len(pix) / sz
	if labels != nil && len(labels) != n {
		return nil, fmt.Errorf("data: %s: %d labels for %d images", name, len(labels), n)
	}
	return &Array{w: w, h: h, c: c, pix: pix, labels: labels, classes: classes, name: name}, nil
}

// Len returns the number of images.
func (a *Array) Len() int { return len(a.pix) / (a.w * a.h * a.c) }

// Classes returns the class names, nil if unlabeled.
func (a *Array) Classes() []string { return a.classes }

// Label returns image i's label (-1 if unlabeled).
func (a *Array) Label(i int) int {
	if a.labels == nil {
		return -1
	}
	return int(a.labels[i])
}

// Get returns a copy of image i, so callers may modify it.
func (a *Array) Get(i int) (Sample, error) {
	if err := checkIndex(i, a.Len()); err != nil {
		return Sample{}, err
	}
	sz := a.w * a.h * a.c
	src := a.pix[i*sz : (i+1)*sz]
	rgb := make([]uint8, a.w*a.h*3)
	if a.c == 3 {
		copy(rgb, src)
	} else {
		for p, v := range src {
			rgb[3*p], rgb[3*p+1], rgb[3*p+2] = v, v, v
		}
	}
	return Sample{W: a.w, H: a.h, RGB: rgb, Label: a.Label(i), Name: fmt.Sprintf("%s/%d", a.name, i)}, nil
}

// concat joins datasets end to end.
type concat struct {
	parts   []Dataset
	starts  []int // starts[k]: global index of parts[k]'s first sample
	n       int
	classes []string
}

// Concat joins datasets end to end (e.g. STL-10 train + unlabeled). Classes
// are those of the first labeled part; labeled parts must agree on them.
func Concat(parts ...Dataset) (Dataset, error) {
	c := &concat{parts: parts}
	for _, p := range parts {
		c.starts = append(c.starts, c.n)
		c.n += p.Len()
		if cl := p.Classes(); cl != nil {
			if c.classes == nil {
				c.classes = cl
			} else if !equalStrings(c.classes, cl) {
				return nil, errors.New("data: Concat: parts have different classes")
			}
		}
	}
	for _, p := range parts {
		if _, ok := p.(Labeler); !ok {
			return c, nil
		}
	}
	return concatL{c}, nil
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (c *concat) locate(i int) (Dataset, int) {
	k := sort.Search(len(c.starts), func(k int) bool { return c.starts[k] > i }) - 1
	return c.parts[k], i - c.starts[k]
}

func (c *concat) Len() int          { return c.n }
func (c *concat) Classes() []string { return c.classes }

func (c *concat) Get(i int) (Sample, error) {
	if err := checkIndex(i, c.n); err != nil {
		return Sample{}, err
	}
	p, j := c.locate(i)
	return p.Get(j)
}

// concatL is a concat whose parts all know their labels.
type concatL struct{ *concat }

func (c concatL) Label(i int) int {
	p, j := c.locate(i)
	return p.(Labeler).Label(j)
}
