package data

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // register JPEG with image.Decode
	_ "image/png"  // register PNG with image.Decode
	"path"
	"strings"
)

// isImageName reports whether a file name has an image extension we decode.
// Hidden files and macOS "._" resource forks are skipped: archives made on a
// Mac carry one next to every image.
func isImageName(name string) bool {
	base := path.Base(name)
	if strings.HasPrefix(base, ".") {
		return false
	}
	switch strings.ToLower(path.Ext(base)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

// decodeRGB decodes a JPEG or PNG into packed 8-bit RGB; name is only for
// the error message.
func decodeRGB(b []byte, name string) (w, h int, rgb []uint8, err error) {
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return 0, 0, nil, fmt.Errorf("data: decoding %s: %w", name, err)
	}
	w, h, rgb = toRGB(img)
	if w <= 0 || h <= 0 {
		return 0, 0, nil, fmt.Errorf("data: decoding %s: empty image", name)
	}
	return w, h, rgb, nil
}

// toRGB converts any image to packed RGB, with fast paths for what the
// JPEG and PNG decoders return. Alpha is dropped (un-premultiplied first),
// as PIL's convert("RGB") does, so results match torchvision pipelines.
func toRGB(img image.Image) (w, h int, rgb []uint8) {
	b := img.Bounds()
	w, h = b.Dx(), b.Dy()
	rgb = make([]uint8, w*h*3)
	o := 0
	switch m := img.(type) {
	case *image.YCbCr:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				yi, ci := m.YOffset(x, y), m.COffset(x, y)
				rgb[o], rgb[o+1], rgb[o+2] = color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				o += 3
			}
		}
	case *image.Gray:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < w; x++ {
				v := row[x]
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
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < w; x++ {
				p := row[4*x : 4*x+4]
				if a := uint32(p[3]); a == 0xff || a == 0 {
					copy(rgb[o:o+3], p[:3])
				} else {
					for k := 0; k < 3; k++ {
						rgb[o+k] = uint8((uint32(p[k])*0xff + a/2) / a)
					}
				}
				o += 3
			}
		}
	case *image.Paletted:
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
	default: // CMYK JPEGs, 16-bit PNGs: rare, so the slow generic path.
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				n := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
				rgb[o], rgb[o+1], rgb[o+2] = n.R, n.G, n.B
				o += 3
			}
		}
	}
	return w, h, rgb
}
