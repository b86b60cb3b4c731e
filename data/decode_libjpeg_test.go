//go:build cgo

package data

import (
	"errors"
	"strings"
	"testing"

	"github.com/simclr-go/simclr/internal/libjpeg"
)

// With cgo, JPEGs are decoded by libjpeg-turbo with PIL's settings.
const (
	jpegExact   = true
	jpegMeanTol = 0
	jpegMaxTol  = 0
)

func TestDecodeTruncatedJPEGIsErrTruncated(t *testing.T) {
	for _, name := range decodeTestFiles(t) {
		if !strings.HasSuffix(name, ".jpg") {
			continue
		}
		b := readTestImage(t, name)
		if _, _, _, err := decodeRGB(b[:len(b)-2], name); !errors.Is(err, libjpeg.ErrTruncated) {
			t.Errorf("%s without its EOI marker: %v, want libjpeg.ErrTruncated", name, err)
		}
	}
}
