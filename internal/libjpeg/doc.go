// Package libjpeg decodes JPEG images with libjpeg-turbo (through cgo) into
// packed 8-bit RGB exactly as PIL does, so that pixels match those a
// torchvision pipeline (Image.open(f).convert("RGB")) sees.
//
// PIL's settings are kept: the library's defaults (accurate integer IDCT,
// fancy upsampling, block smoothing), the output colour space chosen by the
// number of components (gray, RGB, CMYK), gray expanded to three equal
// channels, and CMYK taken as Adobe-inverted and converted with PIL's
// formula. EXIF orientation is not applied, as PIL's Image.open does not.
//
// Errors from libjpeg are returned, never fatal; data that ends before the
// image does is an error (ErrTruncated), as in PIL by default. Without cgo
// the package is empty; callers select it with the cgo build tag.
package libjpeg
