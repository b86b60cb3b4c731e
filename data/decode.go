package data

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // register GIF with image.Decode
	_ "image/png" // register PNG with image.Decode
	"path"
	"strings"

	_ "golang.org/x/image/bmp"  // register BMP with image.Decode
	_ "golang.org/x/image/tiff" // register TIFF with image.Decode
	_ "golang.org/x/image/webp" // register WebP with image.Decode
)

// maxPixels is the largest image decoded (width × height): PIL's limit for
// a decompression bomb. Larger ones are refused from their header, before
// any pixel memory is allocated.
const maxPixels = 2 * 89478485

// isImageName reports whether a file name has an image extension we decode.
// Hidden files and macOS "._" resource forks are skipped: archives made on a
// Mac carry one next to every image.
func isImageName(name string) bool {
	base := path.Base(name)
	if strings.HasPrefix(base, ".") {
		return false
	}
	switch strings.ToLower(path.Ext(base)) {
	case ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp":
		return true
	}
	return false
}

// decodeRGB decodes a JPEG, PNG, GIF, BMP, TIFF or WebP image (told apart
// by content, not by name) into packed 8-bit RGB with the pixels PIL's
// Image.open(...).convert("RGB") gives; name is only for the error message.
// Not compared with PIL: 16-bit gray PNGs with a transparent colour, and
// TIFF compressions Go does not read (JPEG-in-TIFF, an error here).
func decodeRGB(b []byte, name string) (w, h int, rgb []uint8, err error) {
	if isJPEG(b) {
		w, h, rgb, err = decodeJPEG(b)
	} else {
		w, h, rgb, err = decodeOther(b)
	}
	if err != nil {
		return 0, 0, nil, &DecodeError{Name: name, Err: err}
	}
	return w, h, rgb, nil
}

// isJPEG reports whether b starts with a JPEG SOI marker.
func isJPEG(b []byte) bool {
	return len(b) >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff
}

// decodeOther decodes any format registered with image.Decode, checking the
// size in the header first.
func decodeOther(b []byte) (w, h int, rgb []uint8, err error) {
	cfg, err := checkSize(b)
	if err != nil {
		return 0, 0, nil, err
	}
	data, transparent := gifWithoutTransparency(b)
	img, format, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return 0, 0, nil, err
	}
	if m, ok := img.(*image.Paletted); ok && format == "gif" {
		img = gifCanvas(m, cfg.Width, cfg.Height, transparent)
	}
	if ycc := lossyWebP(img, format); ycc != nil {
		w, h = ycc.Rect.Dx(), ycc.Rect.Dy()
		rgb = make([]uint8, w*h*3)
		webpToRGB(rgb, ycc)
	} else {
		w, h, rgb = toRGB(img)
	}
	if w <= 0 || h <= 0 {
		return 0, 0, nil, fmt.Errorf("empty image")
	}
	return w, h, rgb, nil
}

// checkSize reads the header and refuses images that claim more than
// maxPixels.
func checkSize(b []byte) (image.Config, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return cfg, err
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return cfg, fmt.Errorf("empty image (%dx%d)", cfg.Width, cfg.Height)
	}
	if cfg.Width > maxPixels/cfg.Height {
		return cfg, fmt.Errorf("%dx%d is more than the %d pixels accepted", cfg.Width, cfg.Height, maxPixels)
	}
	return cfg, nil
}

// toRGB converts a decoded image to packed RGB the way PIL's
// convert("RGB") does: alpha is dropped, not composited; premultiplied
// samples are divided by alpha as PIL does when it reads them; 16-bit
// samples keep their high byte, except 16-bit gray, which PIL reads as
// 32-bit integers and clips to 255.
func toRGB(img image.Image) (w, h int, rgb []uint8) {
	b := img.Bounds()
	w, h = b.Dx(), b.Dy()
	rgb = make([]uint8, w*h*3)
	o := 0
	switch m := img.(type) {
	case *image.YCbCr:
		ycbcrToRGB(rgb, m)
	case *image.NYCbCrA:
		ycbcrToRGB(rgb, &m.YCbCr)
	case *image.Gray:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < w; x++ {
				v := row[x]
				rgb[o], rgb[o+1], rgb[o+2] = v, v, v
				o += 3
			}
		}
	case *image.Gray16:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				v := uint8(min(m.Gray16At(x, y).Y, 255))
				rgb[o], rgb[o+1], rgb[o+2] = v, v, v
				o += 3
			}
		}
	case *image.NRGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < w; x++ {
				copy(rgb[o:o+3], row[4*x:4*x+3])
				o += 3
			}
		}
	case *image.RGBA:
		// Premultiplied samples (TIFF with associated alpha): PIL divides
		// by alpha with truncation, and a fully transparent pixel is black.
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < w; x++ {
				p := row[4*x : 4*x+4]
				switch a := uint32(p[3]); a {
				case 0xff:
					copy(rgb[o:o+3], p[:3])
				case 0:
					rgb[o], rgb[o+1], rgb[o+2] = 0, 0, 0
				default:
					for k := 0; k < 3; k++ {
						rgb[o+k] = uint8(min(uint32(p[k])*0xff/a, 0xff))
					}
				}
				o += 3
			}
		}
	case *image.Paletted:
		// The palette's colour is used even for the transparent index.
		var pal [256][3]uint8
		for i, c := range m.Palette {
			n := color.NRGBAModel.Convert(c).(color.NRGBA)
			pal[i] = [3]uint8{n.R, n.G, n.B}
		}
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < w; x++ {
				c := pal[row[x]]
				rgb[o], rgb[o+1], rgb[o+2] = c[0], c[1], c[2]
				o += 3
			}
		}
	default: // 16-bit colour, CMYK: rare, so the slow generic path.
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				n := color.NRGBA64Model.Convert(img.At(x, y)).(color.NRGBA64)
				rgb[o], rgb[o+1], rgb[o+2] = uint8(n.R>>8), uint8(n.G>>8), uint8(n.B>>8)
				o += 3
			}
		}
	}
	return w, h, rgb
}

// ycbcrToRGB converts with Go's JFIF formula; the chroma of subsampled
// images is repeated, not interpolated.
func ycbcrToRGB(rgb []uint8, m *image.YCbCr) {
	b := m.Bounds()
	o := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			yi, ci := m.YOffset(x, y), m.COffset(x, y)
			rgb[o], rgb[o+1], rgb[o+2] = color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
			o += 3
		}
	}
}
