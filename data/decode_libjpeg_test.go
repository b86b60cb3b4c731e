//go:build cgo

package data

import (
	"bytes"
	"errors"
	"image"
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

// headerSize is the image size a file's header claims, as the decoder
// used for it reads it.
func headerSize(b []byte) (w, h int, err error) {
	if isJPEG(b) {
		w, h, _, err = libjpeg.Header(b)
		return w, h, err
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	return cfg.Width, cfg.Height, err
}

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
