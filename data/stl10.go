package data

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const stlSide = 96

var stl10Classes = []string{"airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"}

// STL10 opens a split of STL-10's binary release: "train" (5,000 labeled),
// "test" (8,000), "unlabeled" (100,000, label -1) or "train+unlabeled"
// (SimCLR's pre-training set). dir is the extracted stl10_binary folder (or
// its parent). Images are read from the files on demand, since the
// unlabeled split alone is 2.7 GB; call Close when done.
func STL10(dir, split string) (*STL10Dataset, error) {
	if _, err := os.Stat(filepath.Join(dir, "train_X.bin")); err != nil {
		if _, err2 := os.Stat(filepath.Join(dir, "stl10_binary", "train_X.bin")); err2 == nil {
			dir = filepath.Join(dir, "stl10_binary")
		}
	}
	classes := stl10Classes
	if b, err := os.ReadFile(filepath.Join(dir, "class_names.txt")); err == nil {
		if names := strings.Fields(string(b)); len(names) == len(classes) {
			classes = names
		}
	}
	d := &STL10Dataset{classes: classes}
	var parts []string
	switch split {
	case "train", "test", "unlabeled":
		parts = []string{split}
	case "train+unlabeled":
		parts = []string{"train", "unlabeled"}
	default:
		return nil, fmt.Errorf("data: stl10: unknown split %q (want train, test, unlabeled or train+unlabeled)", split)
	}
	for _, p := range parts {
		if err := d.add(dir, p); err != nil {
			d.Close()
			return nil, err
		}
	}
	if split == "unlabeled" {
		d.classes = nil
	}
	return d, nil
}

// STL10Dataset reads STL-10 images from its binary files.
type STL10Dataset struct {
	files   []*os.File
	names   []string
	starts  []int // first global index of each file
	labels  []int8
	classes []string
}

func (d *STL10Dataset) add(dir, split string) error {
	xp := filepath.Join(dir, split+"_X.bin")
	f, err := os.Open(xp)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("data: stl10: %s does not exist (expected the extracted stl10_binary folder)", xp)
		}
		return fmt.Errorf("data: stl10: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("data: stl10: %w", err)
	}
	const sz = 3 * stlSide * stlSide
	if st.Size()%sz != 0 {
		f.Close()
		return fmt.Errorf("data: stl10: %s is %d bytes, not a whole number of 96x96x3 images", xp, st.Size())
	}
	n := int(st.Size() / sz)
	d.files = append(d.files, f)
	d.names = append(d.names, "stl10/"+split)
	d.starts = append(d.starts, len(d.labels))
	if split == "unlabeled" {
		for i := 0; i < n; i++ {
			d.labels = append(d.labels, -1)
		}
		return nil
	}
	yp := filepath.Join(dir, split+"_y.bin")
	y, err := os.ReadFile(yp)
	if err != nil {
		return fmt.Errorf("data: stl10: %w", err)
	}
	if len(y) != n {
		return fmt.Errorf("data: stl10: %s has %d labels for %d images", yp, len(y), n)
	}
	for i, l := range y {
		if l < 1 || int(l) > len(d.classes) {
			return fmt.Errorf("data: stl10: %s: label %d at %d, want 1..%d", yp, l, i, len(d.classes))
		}
		d.labels = append(d.labels, int8(l-1))
	}
	return nil
}

// Len returns the number of images.
func (d *STL10Dataset) Len() int { return len(d.labels) }

// Classes returns the ten class names; nil for the unlabeled split alone.
func (d *STL10Dataset) Classes() []string { return d.classes }

// Label returns image i's label, 0..9, or -1 for unlabeled images.
func (d *STL10Dataset) Label(i int) int { return int(d.labels[i]) }

// Get reads image i. The files store each channel column-major (x outer, y
// inner), which is transposed here into row-major HWC.
func (d *STL10Dataset) Get(i int) (Sample, error) {
	if err := checkIndex(i, len(d.labels)); err != nil {
		return Sample{}, err
	}
	k := len(d.starts) - 1
	for d.starts[k] > i {
		k--
	}
	j := i - d.starts[k]
	const plane = stlSide * stlSide
	raw := make([]byte, 3*plane)
	name := fmt.Sprintf("%s/%d", d.names[k], j)
	if _, err := d.files[k].ReadAt(raw, int64(j)*3*plane); err != nil {
		return Sample{}, fmt.Errorf("data: reading %s: %w", name, err)
	}
	rgb := make([]uint8, 3*plane)
	for c := 0; c < 3; c++ {
		src := raw[c*plane : (c+1)*plane]
		for x := 0; x < stlSide; x++ {
			col := src[x*stlSide : (x+1)*stlSide]
			for y, v := range col {
				rgb[3*(y*stlSide+x)+c] = v
			}
		}
	}
	return Sample{W: stlSide, H: stlSide, RGB: rgb, Label: int(d.labels[i]), Name: name}, nil
}

// Close closes the files.
func (d *STL10Dataset) Close() error {
	var first error
	for _, f := range d.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
