package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Fashion-MNIST's class names, in label order.
var fashionMNISTClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// FashionMNISTDir is where Debian's dataset-fashion-mnist package puts the
// files.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// MNIST loads a split ("train" or "test") of MNIST from dir, which holds the
// four IDX files (train-images-idx3-ubyte etc., gzipped or not). Images are
// 28x28 grayscale, returned as RGB.
func MNIST(dir, split string) (*Array, error) {
	return loadMNIST("mnist", dir, split, []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"})
}

// FashionMNIST loads a split of Fashion-MNIST, which uses MNIST's file
// names and format; dir "" means FashionMNISTDir.
func FashionMNIST(dir, split string) (*Array, error) {
	if dir == "" {
		dir = FashionMNISTDir
	}
	return loadMNIST("fashion-mnist", dir, split, fashionMNISTClasses)
}

func loadMNIST(name, dir, split string, classes []string) (*Array, error) {
	prefix := map[string]string{"": "train", "train": "train", "test": "t10k"}[split]
	if prefix == "" {
		return nil, fmt.Errorf("data: %s: unknown split %q (want train or test)", name, split)
	}
	if split == "" {
		split = "train"
	}
	find := func(kind string) (string, error) {
		idx := map[string]string{"images": "idx3", "labels": "idx1"}[kind]
		// Mirrors spell the names with "-" or "." before idx.
		for _, sep := range []string{"-", "."} {
			for _, ext := range []string{"", ".gz"} {
				p := filepath.Join(dir, prefix+"-"+kind+sep+idx+"-ubyte"+ext)
				if _, err := os.Stat(p); err == nil {
					return p, nil
				}
			}
		}
		return "", fmt.Errorf("data: %s: no %s-%s-idx*-ubyte[.gz] in %s", name, prefix, kind, dir)
	}
	img, err := find("images")
	if err != nil {
		return nil, err
	}
	lab, err := find("labels")
	if err != nil {
		return nil, err
	}
	return ReadIDX(name+"/"+split, img, lab, classes)
}

// ReadIDX loads an IDX image file (unsigned bytes, N x H x W) and,
// unless labelsPath is "", its IDX label file (N bytes). Either may be
// gzipped. name prefixes sample names; classes may be nil.
func ReadIDX(name, imagesPath, labelsPath string, classes []string) (*Array, error) {
	dims, pix, err := readIDXFile(imagesPath)
	if err != nil {
		return nil, err
	}
	if len(dims) != 3 {
		return nil, fmt.Errorf("data: %s: %d dimensions, want 3 (N x H x W) for images", imagesPath, len(dims))
	}
	if dims[1] == 0 || dims[2] == 0 || dims[1] > (1<<31)/dims[2] {
		return nil, fmt.Errorf("data: %s: images of %dx%d pixels", imagesPath, dims[2], dims[1])
	}
	var labels []int32
	if labelsPath != "" {
		ldims, lb, err := readIDXFile(labelsPath)
		if err != nil {
			return nil, err
		}
		if len(ldims) != 1 || ldims[0] != dims[0] {
			return nil, fmt.Errorf("data: %s: shape %v does not match %d images in %s", labelsPath, ldims, dims[0], imagesPath)
		}
		labels = make([]int32, len(lb))
		for i, l := range lb {
			if classes != nil && int(l) >= len(classes) {
				return nil, fmt.Errorf("data: %s: label %d at %d, want < %d", labelsPath, l, i, len(classes))
			}
			labels[i] = int32(l)
		}
	} else {
		classes = nil
	}
	return NewArray(name, dims[2], dims[1], 1, pix, labels, classes)
}

// readIDXFile reads an IDX file of unsigned bytes: magic 0,0,0x08,ndim,
// then ndim big-endian uint32 sizes, then the data.
func readIDXFile(p string) ([]int, []byte, error) {
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("data: IDX file %s does not exist", p)
		}
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	// The bytes the header may claim without proof: the file's, unless
	// gzipped (then the data must arrive before memory is spent on it).
	limit := int64(-1)
	if m, err := br.Peek(2); err == nil && m[0] == 0x1f && m[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("data: %s: %w", p, err)
		}
		r = zr
	} else if st, err := f.Stat(); err == nil {
		limit = st.Size()
	}
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, nil, fmt.Errorf("data: %s: reading IDX header: %w", p, err)
	}
	if magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || magic[3] == 0 {
		return nil, nil, fmt.Errorf("data: %s is not an IDX file of unsigned bytes (magic % x)", p, magic)
	}
	dims := make([]int, magic[3])
	total := int64(1)
	const maxTotal = 1 << 34
	for i := range dims {
		var d uint32
		if err := binary.Read(r, binary.BigEndian, &d); err != nil {
			return nil, nil, fmt.Errorf("data: %s: reading IDX header: %w", p, err)
		}
		dims[i] = int(d)
		if d > 0 && total > maxTotal/int64(d) {
			total = maxTotal + 1 // too large, unless a later dimension is 0
			continue
		}
		total *= int64(d)
	}
	if total > maxTotal {
		return nil, nil, fmt.Errorf("data: %s: IDX shape %v too large", p, dims)
	}
	if limit >= 0 && total > limit {
		return nil, nil, fmt.Errorf("data: %s: shape %v needs %d bytes, the file has %d", p, dims, total, limit)
	}
	var b bytes.Buffer
	if limit >= 0 {
		b.Grow(int(total))
	} else {
		b.Grow(int(min(total, 1<<20)))
	}
	if _, err := io.CopyN(&b, r, total); err != nil {
		return nil, nil, fmt.Errorf("data: %s: shape %v but data is short: %w", p, dims, err)
	}
	if limit < 0 { // gzipped: read to the end, where gzip checks its CRC
		if _, err := io.Copy(io.Discard, r); err != nil {
			return nil, nil, fmt.Errorf("data: %s: %w", p, err)
		}
	}
	return dims, b.Bytes(), nil
}
