//go:build cgo

package data

import "github.com/simclr-go/simclr/internal/libjpeg"

// decodeJPEG decodes with libjpeg-turbo, as PIL does: the pixels equal
// PIL's exactly.
func decodeJPEG(b []byte) (w, h int, rgb []uint8, err error) {
	return libjpeg.DecodeRGB(b)
}
