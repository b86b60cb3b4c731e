//go:build !cgo

package data

import (
	"bytes"
	"image/jpeg"
)

// decodeJPEG decodes with Go's image/jpeg, for builds without cgo. Its
// IDCT and chroma upsampling differ from libjpeg's, so pixels are close to
// PIL's but not equal (the tests bound the difference).
func decodeJPEG(b []byte) (w, h int, rgb []uint8, err error) {
	if err := checkSize(b); err != nil {
		return 0, 0, nil, err
	}
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		return 0, 0, nil, err
	}
	w, h, rgb = toRGB(img)
	return w, h, rgb, nil
}
