package augment

import (
	"errors"
	"image"
	"image/draw"
	"image/png"
	"os"
)

// Grid lays out augmented views for inspection: one row per source image,
// its first cell the whole source resized to Size×Size, then views cells
// (view v of source i is what Apply(src, …, seed, 0, i, v) gives), with a
// 2-pixel white gutter.
func Grid(p *Pipeline, srcs []Image, views int, seed uint64) *image.NRGBA {
	const gap = 2
	sz := p.cfg.Size
	cols := views + 1
	out := image.NewNRGBA(image.Rect(0, 0, cols*(sz+gap)+gap, len(srcs)*(sz+gap)+gap))
	draw.Draw(out, out.Bounds(), image.White, image.Point{}, draw.Src)
	cell := NewImage(sz, sz)
	s := new(Scratch)
	for i, src := range srcs {
		for col := range cols {
			if col == 0 {
				ResizedCrop(src, Crop{W: src.W, H: src.H}, cell, p.cfg.Interp, false, s)
			} else {
				p.ApplyScratch(s, src, cell.Pix, seed, 0, uint64(i), uint64(col-1))
			}
			at := image.Pt(gap+col*(sz+gap), gap+i*(sz+gap))
			draw.Draw(out, image.Rectangle{Min: at, Max: at.Add(image.Pt(sz, sz))}, cell.NRGBA(), image.Point{}, draw.Src)
		}
	}
	return out
}

// WriteGrid saves Grid(p, srcs, views, seed) as a PNG file at path.
func WriteGrid(path string, p *Pipeline, srcs []Image, views int, seed uint64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = png.Encode(f, Grid(p, srcs, views, seed))
	return errors.Join(err, f.Close())
}
