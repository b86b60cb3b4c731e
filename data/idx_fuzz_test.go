package data

import (
	"bytes"
	"compress/gzip"
	"io"
	"strings"
	"testing"

	"github.com/simclr-go/simclr/internal/fuzzcheck"
)

// hasGzipMagic reports whether b starts with gzip's magic bytes.
func hasGzipMagic(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// allocPerByte is what a reader may allocate per input byte: a few times
// the input, or deflate's largest expansion (about 1032:1) when gzipped.
func allocPerByte(inputs ...[]byte) uint64 {
	for _, b := range inputs {
		if hasGzipMagic(b) {
			return 4 * 1032
		}
	}
	return 8
}

// gunzipped returns b's content, decompressed if it is gzipped.
func gunzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	if !hasGzipMagic(b) {
		return b
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("an accepted file does not gunzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("an accepted file does not gunzip: %v", err)
	}
	return out
}

// FuzzReadIDX feeds arbitrary image and label files (gzipped or not) to
// the MNIST reader. It must refuse bad files with an error naming the
// file, allocate in proportion to the input, and what it accepts must hold
// the files' pixels and labels.
func FuzzReadIDX(f *testing.F) {
	classes := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	f.Fuzz(func(t *testing.T, images, labels []byte) {
		imagesPath := fuzzcheck.WriteTemp(t, "images-idx3-ubyte", images)
		labelsPath := ""
		if len(labels) > 0 {
			labelsPath = fuzzcheck.WriteTemp(t, "labels-idx1-ubyte", labels)
		}
		var a *Array
		var err error
		fuzzcheck.LimitAlloc(t, append(images, labels...), allocPerByte(images, labels), func() {
			a, err = ReadIDX("fuzz", imagesPath, labelsPath, classes)
		})
		if err != nil {
			if !strings.Contains(err.Error(), imagesPath) && (labelsPath == "" || !strings.Contains(err.Error(), labelsPath)) {
				t.Fatalf("error names neither file: %v", err)
			}
			return
		}
		raw := gunzipped(t, images)
		n, h, w := be32(raw[4:]), be32(raw[8:]), be32(raw[12:])
		if a.Len() != n {
			t.Fatalf("header says %d images, dataset has %d", n, a.Len())
		}
		var lab []byte
		if labelsPath != "" {
			lab = gunzipped(t, labels)[8:]
		}
		pix := raw[16:]
		for i := 0; i < n; i++ {
			s, err := a.Get(i)
			if err != nil {
				t.Fatalf("image %d of %d: %v", i, n, err)
			}
			if s.W != w || s.H != h || len(s.RGB) != 3*w*h {
				t.Fatalf("image %d is %dx%d with %d values, header says %dx%d", i, s.W, s.H, len(s.RGB), w, h)
			}
			for p := 0; p < w*h; p++ {
				if v := pix[i*w*h+p]; s.RGB[3*p] != v || s.RGB[3*p+1] != v || s.RGB[3*p+2] != v {
					t.Fatalf("image %d pixel %d: %v, file has %d", i, p, s.RGB[3*p:3*p+3], v)
				}
			}
			want := -1
			if lab != nil {
				want = int(lab[i])
			}
			if s.Label != want {
				t.Fatalf("image %d: label %d, file has %d", i, s.Label, want)
			}
		}
	})
}

func be32(b []byte) int { return int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3]) }
