// Command mkphotos writes synthetic photo-sized JPEGs in class folders, for
// measuring decoding speed and memory at sizes real photo collections have:
//
//	go run ./scripts/mkphotos -n 12000 -w 500 -h 375 -out /tmp/photos
//
// Each image is a smooth random colour field with texture and noise, which
// JPEG compresses about as much as a photograph.
package main

import (
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	"log"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/simclr-go/simclr/tensor"
)

func main() {
	n := flag.Int("n", 1000, "number of images")
	w := flag.Int("w", 500, "width")
	h := flag.Int("h", 375, "height")
	classes := flag.Int("classes", 10, "class folders")
	quality := flag.Int("quality", 90, "JPEG quality")
	noise := flag.Float64("noise", 12, "pixel noise amplitude (levels)")
	out := flag.String("out", "photos", "output folder")
	flag.Parse()
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := write(*out, i, i%*classes, *w, *h, *quality, *noise); err != nil {
					log.Fatal(err)
				}
			}
		}()
	}
	for i := 0; i < *n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

func write(out string, i, class, w, h, quality int, noise float64) error {
	rng := tensor.NewRNG(uint64(i), "mkphotos")
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	var base, fx, fy, ph [3][4]float64
	for c := range 3 {
		for k := range 4 {
			base[c][k] = rng.Uniform(20, 60)
			fx[c][k] = rng.Uniform(0.5, 12) * 2 * math.Pi / float64(w)
			fy[c][k] = rng.Uniform(0.5, 12) * 2 * math.Pi / float64(h)
			ph[c][k] = rng.Uniform(0, 2*math.Pi)
		}
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			o := m.PixOffset(x, y)
			for c := range 3 {
				v := 128.0
				for k := range 4 {
					v += base[c][k] * math.Sin(fx[c][k]*float64(x)+fy[c][k]*float64(y)+ph[c][k])
				}
				v += noise * rng.Normal()
				m.Pix[o+c] = uint8(max(0, min(255, v)))
			}
			m.Pix[o+3] = 255
		}
	}
	dir := filepath.Join(out, fmt.Sprintf("class%02d", class))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%06d.jpg", i)))
	if err != nil {
		return err
	}
	if err := jpeg.Encode(f, m, &jpeg.Options{Quality: quality}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
