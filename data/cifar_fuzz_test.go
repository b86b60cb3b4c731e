package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simclr-go/simclr/internal/fuzzcheck"
)

// FuzzCIFARArchive feeds arbitrary bytes as a cifar-10 or cifar-100
// binary archive (.tar.gz or .tar) and opens its test split. It must
// refuse bad archives with an error naming the file, allocate in
// proportion to the input (a tar header may claim any size), and what it
// accepts must be whole 32x32 images with labels among the classes.
func FuzzCIFARArchive(f *testing.F) {
	f.Fuzz(func(t *testing.T, archive []byte, hundred bool) {
		p := fuzzcheck.WriteTemp(t, "cifar-binary.tar.gz", archive)
		open := CIFAR10
		if hundred {
			open = CIFAR100
		}
		var a *Array
		var err error
		fuzzcheck.LimitAlloc(t, archive, allocPerByte(archive), func() {
			a, err = open(CIFAROptions{Path: p, Split: "test"})
		})
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error does not name the archive: %v", err)
			}
			return
		}
		for i := 0; i < a.Len(); i++ {
			s, err := a.Get(i)
			if err != nil {
				t.Fatalf("image %d of %d: %v", i, a.Len(), err)
			}
			if s.W != 32 || s.H != 32 || len(s.RGB) != 32*32*3 || s.Label < 0 || s.Label >= len(a.Classes()) {
				t.Fatalf("image %d: %dx%d, %d values, label %d of %d classes", i, s.W, s.H, len(s.RGB), s.Label, len(a.Classes()))
			}
		}
	})
}

// FuzzCIFARBatch feeds an arbitrary test batch and class-name file, as
// an extracted archive holds them, to the CIFAR-10 or CIFAR-100 reader.
// What it accepts must hold the batch's records: the label, then each
// channel's 1024 pixels, returned interleaved.
func FuzzCIFARBatch(f *testing.F) {
	f.Fuzz(func(t *testing.T, batch, meta []byte, hundred bool) {
		spec, open := cifar10Spec, CIFAR10
		if hundred {
			spec, open = cifar100Spec, CIFAR100
		}
		dir := t.TempDir()
		for name, b := range map[string][]byte{spec.test[0]: batch, spec.meta: meta} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var a *Array
		var err error
		fuzzcheck.LimitAlloc(t, append(batch, meta...), 8, func() {
			a, err = open(CIFAROptions{Path: dir, Split: "test"})
		})
		if err != nil {
			if !strings.Contains(err.Error(), dir) {
				t.Fatalf("error does not name the folder: %v", err)
			}
			return
		}
		rec := spec.labelBytes + 3072
		if a.Len() != len(batch)/rec || len(batch)%rec != 0 {
			t.Fatalf("%d bytes of %d-byte records made %d images", len(batch), rec, a.Len())
		}
		classes := spec.classes
		if names := strings.Fields(string(meta)); len(names) == len(classes) {
			classes = names
		}
		if !equalStrings(a.Classes(), classes) {
			t.Fatalf("classes %q, want %q", a.Classes(), classes)
		}
		for i := 0; i < a.Len(); i++ {
			s, err := a.Get(i)
			if err != nil {
				t.Fatalf("image %d of %d: %v", i, a.Len(), err)
			}
			r := batch[i*rec : (i+1)*rec]
			if s.Label != int(r[spec.labelIdx]) {
				t.Fatalf("image %d: label %d, record has %d", i, s.Label, r[spec.labelIdx])
			}
			chw := r[spec.labelBytes:]
			for p := 0; p < 1024; p++ {
				for c := 0; c < 3; c++ {
					if s.RGB[3*p+c] != chw[c*1024+p] {
						t.Fatalf("image %d pixel %d channel %d: %d, record has %d", i, p, c, s.RGB[3*p+c], chw[c*1024+p])
					}
				}
			}
		}
	})
}
