package data

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// CIFARBaseURL is where the official CIFAR archives are published.
const CIFARBaseURL = "https://www.cs.toronto.edu/~kriz"

// CIFAROptions says where CIFAR data comes from.
type CIFAROptions struct {
	// Split is "train" (default) or "test".
	Split string
	// Path is an existing cifar-*-binary.tar.gz or the folder it extracts
	// to. Empty means the archive in CacheDir.
	Path string
	// Download fetches the archive into CacheDir when it is not there yet.
	Download bool
	// CacheDir defaults to DefaultCacheDir().
	CacheDir string
	// BaseURL replaces CIFARBaseURL (a mirror, or a test server).
	BaseURL string
	// MD5 replaces the published checksum of the archive (for a mirror
	// serving other bytes, or a test archive).
	MD5 string
	// Client is the HTTP client for downloads; nil means http.DefaultClient.
	Client *http.Client
}

type cifarSpec struct {
	name       string // sample name prefix
	file, md5  string // archive name and published checksum
	dir        string // folder inside the archive
	train      []string
	test       []string
	labelBytes int // label bytes before each image
	labelIdx   int // which of them is the label
	meta       string
	classes    []string
}

var cifar10Spec = cifarSpec{
	name: "cifar10", file: "cifar-10-binary.tar.gz", md5: "c32a1d4ab5d03f1284b67883e8d87530",
	dir:        "cifar-10-batches-bin",
	train:      []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"},
	test:       []string{"test_batch.bin"},
	labelBytes: 1, labelIdx: 0, meta: "batches.meta.txt",
	classes: []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"},
}

// CIFAR-100 records carry a coarse then a fine label; we use the fine one.
var cifar100Spec = cifarSpec{
	name: "cifar100", file: "cifar-100-binary.tar.gz", md5: "03b5dce01913d631647c71ecec9e9cb8",
	dir:   "cifar-100-binary",
	train: []string{"train.bin"}, test: []string{"test.bin"},
	labelBytes: 2, labelIdx: 1, meta: "fine_label_names.txt",
	classes: strings.Fields(`apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle
		bowl boy bridge bus butterfly camel can castle caterpillar cattle chair chimpanzee clock
		cloud cockroach couch crab crocodile cup dinosaur dolphin elephant flatfish forest fox
		girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man
		maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear
		pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket
		rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar
		sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip
		turtle wardrobe whale willow_tree wolf woman worm`),
}

// CIFAR10 loads a CIFAR-10 split (32x32 RGB, 10 classes) into memory from
// the official binary archive, downloading it first if asked.
func CIFAR10(opts CIFAROptions) (*Array, error) { return loadCIFAR(cifar10Spec, opts) }

// CIFAR100 loads a CIFAR-100 split with its 100 fine labels.
func CIFAR100(opts CIFAROptions) (*Array, error) { return loadCIFAR(cifar100Spec, opts) }

func loadCIFAR(spec cifarSpec, opts CIFAROptions) (*Array, error) {
	var files []string
	switch opts.Split {
	case "", "train":
		files = spec.train
		opts.Split = "train"
	case "test":
		files = spec.test
	default:
		return nil, fmt.Errorf("data: %s: unknown split %q (want train or test)", spec.name, opts.Split)
	}
	src := opts.Path
	if src == "" {
		var err error
		if src, err = cachedArchive(spec, opts); err != nil {
			return nil, err
		}
	}
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("data: %s: %w", spec.name, err)
	}
	want := append([]string{spec.meta}, files...)
	var raw map[string][]byte
	if st.IsDir() {
		raw, err = readCIFARDir(src, spec.dir, want)
	} else {
		raw, err = readCIFARArchive(src, want)
	}
	if err != nil {
		return nil, err
	}
	classes := spec.classes
	if m := raw[spec.meta]; m != nil {
		if names := strings.Fields(string(m)); len(names) == len(spec.classes) {
			classes = names
		}
	}
	rec := spec.labelBytes + 3072
	total := 0
	for _, f := range files {
		b, ok := raw[f]
		if !ok {
			return nil, fmt.Errorf("data: %s: %s has no %s (expected the binary version, %s)", spec.name, src, f, spec.file)
		}
		if len(b)%rec != 0 {
			return nil, fmt.Errorf("data: %s: %s in %s is %d bytes, not a multiple of the %d-byte record", spec.name, f, src, len(b), rec)
		}
		total += len(b) / rec
	}
	pix := make([]uint8, total*3072)
	labels := make([]int32, total)
	n := 0
	for _, f := range files {
		b := raw[f]
		for r := 0; r < len(b); r += rec {
			l := int(b[r+spec.labelIdx])
			if l >= len(classes) {
				return nil, fmt.Errorf("data: %s: %s in %s: record %d has label %d, want < %d", spec.name, f, src, r/rec, l, len(classes))
			}
			labels[n] = int32(l)
			chw := b[r+spec.labelBytes : r+rec]
			hwc := pix[n*3072 : (n+1)*3072]
			for p := 0; p < 1024; p++ {
				hwc[3*p], hwc[3*p+1], hwc[3*p+2] = chw[p], chw[1024+p], chw[2048+p]
			}
			n++
		}
		raw[f] = nil // let the collector have it while we convert the rest
	}
	return NewArray(spec.name+"/"+opts.Split, 32, 32, 3, pix, labels, classes)
}

// cachedArchive returns the archive's path in the cache, downloading it if
// it is absent and opts.Download is set.
func cachedArchive(spec cifarSpec, opts CIFAROptions) (string, error) {
	dir := opts.CacheDir
	if dir == "" {
		var err error
		if dir, err = DefaultCacheDir(); err != nil {
			return "", err
		}
	}
	dst := filepath.Join(dir, spec.file)
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("data: %s: %w", spec.name, err)
	}
	if !opts.Download {
		return "", fmt.Errorf("data: %s: %s not found (set Download to fetch it, or Path to a local copy)", spec.name, dst)
	}
	base := opts.BaseURL
	if base == "" {
		base = CIFARBaseURL
	}
	sum := opts.MD5
	if sum == "" {
		sum = spec.md5
	}
	if err := Download(opts.Client, strings.TrimRight(base, "/")+"/"+spec.file, dst, sum); err != nil {
		return "", err
	}
	return dst, nil
}

// readCIFARDir reads the wanted files from an extracted archive: the folder
// itself or its standard sub-folder. Missing files are left out of the map.
func readCIFARDir(dir, sub string, want []string) (map[string][]byte, error) {
	if _, err := os.Stat(filepath.Join(dir, want[1])); err != nil {
		dir = filepath.Join(dir, sub)
	}
	out := map[string][]byte{}
	for _, f := range want {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
		out[f] = b
	}
	return out, nil
}

// readCIFARArchive reads the wanted members (matched by base name) of a
// tar.gz or tar archive.
func readCIFARArchive(src string, want []string) (map[string][]byte, error) {
	f, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var r io.Reader = br
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("data: reading %s: %w", src, err)
		}
		r = zr
	}
	tr := tar.NewReader(r)
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("data: reading archive %s: %w", src, err)
		}
		base := path.Base(h.Name)
		for _, w := range want {
			if base == w && h.Typeflag == tar.TypeReg {
				// Grow as the bytes arrive: the header's size is a claim.
				var b bytes.Buffer
				b.Grow(int(min(h.Size, 1<<20)))
				if _, err := io.CopyN(&b, tr, h.Size); err != nil {
					return nil, fmt.Errorf("data: reading archive %s: member %s: %w", src, h.Name, err)
				}
				out[w] = b.Bytes()
			}
		}
	}
	// Drain so that gzip checks its CRC: a corrupt archive fails here.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, fmt.Errorf("data: reading archive %s: %w", src, err)
	}
	return out, nil
}
