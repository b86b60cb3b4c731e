package data

import (
	"bytes"
	"image"
)

// gifWithoutTransparency returns b with the transparency flag cleared in
// the graphic control extensions before a GIF's first image, so that Go's
// decoder keeps the palette colour of the transparent index, which PIL's
// convert("RGB") shows, and that index (-1 if none). Other data, and GIFs
// without the flag, are returned as they are.
func gifWithoutTransparency(b []byte) (data []byte, transparent int) {
	transparent = -1
	if len(b) < 13 || string(b[:4]) != "GIF8" {
		return b, transparent
	}
	i := 13
	if flags := b[10]; flags&0x80 != 0 {
		i += 3 << (flags&7 + 1) // global colour table
	}
	out := b
	for i+1 < len(b) && b[i] == 0x21 { // extension blocks, up to the first image
		label := b[i+1]
		if label == 0xf9 && i+6 < len(b) && b[i+2] == 4 && b[i+3]&1 != 0 {
			if &out[0] == &b[0] {
				out = bytes.Clone(b)
			}
			out[i+3] &^= 1
			transparent = int(b[i+6])
		}
		i += 2
		for i < len(b) && b[i] != 0 { // data sub-blocks
			i += int(b[i]) + 1
		}
		i++
	}
	return out, transparent
}

// gifCanvas places a GIF's first frame on the logical screen, as PIL's
// Image.open does: the rest of the screen holds the transparent index, or
// index 0 when there is none.
func gifCanvas(m *image.Paletted, w, h, transparent int) *image.Paletted {
	screen := image.Rect(0, 0, w, h)
	if m.Rect == screen {
		return m
	}
	c := image.NewPaletted(screen, m.Palette)
	if transparent > 0 {
		for i := range c.Pix {
			c.Pix[i] = uint8(transparent)
		}
	}
	r := m.Rect.Intersect(screen)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		copy(c.Pix[c.PixOffset(r.Min.X, y):c.PixOffset(r.Max.X, y)], m.Pix[m.PixOffset(r.Min.X, y):])
	}
	return c
}
