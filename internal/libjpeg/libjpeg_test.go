//go:build cgo

package libjpeg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"strings"
	"sync"
	"testing"
)

// testJPEG encodes a smooth w×h test pattern with Go's encoder (4:2:0).
func testJPEG(t testing.TB, w, h int) ([]byte, *image.RGBA) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x + y) % 64 * 4), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), img
}

func meanAbsDiff(t testing.TB, rgb []byte, img *image.RGBA) float64 {
	t.Helper()
	b := img.Bounds()
	if len(rgb) != b.Dx()*b.Dy()*3 {
		t.Fatalf("%d bytes of RGB for %v", len(rgb), b)
	}
	var sum int
	for i := 0; i < b.Dx()*b.Dy(); i++ {
		for k := 0; k < 3; k++ {
			d := int(rgb[3*i+k]) - int(img.Pix[4*i+k])
			sum += max(d, -d)
		}
	}
	return float64(sum) / float64(len(rgb))
}

func TestDecodeRGB(t *testing.T) {
	data, img := testJPEG(t, 37, 21)
	w, h, comps, err := Header(data)
	if err != nil || w != 37 || h != 21 || comps != 3 {
		t.Fatalf("Header: %dx%d, %d components, %v", w, h, comps, err)
	}
	w, h, rgb, err := DecodeRGB(data)
	if err != nil {
		t.Fatal(err)
	}
	if w != 37 || h != 21 {
		t.Fatalf("%dx%d, want 37x21", w, h)
	}
	if d := meanAbsDiff(t, rgb, img); d > 3 {
		t.Errorf("mean |diff| %.2f from the encoded image, want at most 3", d)
	}
}

// TestDecodeRGBScaled: 1/denom decoding gives ceil(w/denom) × ceil(h/denom)
// pixels close to a box-filtered full decoding.
func TestDecodeRGBScaled(t *testing.T) {
	data, _ := testJPEG(t, 83, 61)
	_, _, full, err := DecodeRGB(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, denom := range []int{2, 4, 8} {
		w, h, rgb, err := DecodeRGBScaled(data, denom)
		if err != nil {
			t.Fatal(err)
		}
		if w != (83+denom-1)/denom || h != (61+denom-1)/denom || len(rgb) != w*h*3 {
			t.Fatalf("1/%d: %dx%d (%d bytes)", denom, w, h, len(rgb))
		}
		var sum, n float64
		for y := 0; y < 61/denom; y++ {
			for x := 0; x < 83/denom; x++ {
				for k := 0; k < 3; k++ {
					var box float64
					for dy := 0; dy < denom; dy++ {
						for dx := 0; dx < denom; dx++ {
							box += float64(full[((y*denom+dy)*83+x*denom+dx)*3+k])
						}
					}
					d := float64(rgb[(y*w+x)*3+k]) - box/float64(denom*denom)
					sum += max(d, -d)
					n++
				}
			}
		}
		if sum/n > 4 {
			t.Errorf("1/%d: mean |diff| %.2f from the box-filtered full decoding", denom, sum/n)
		}
	}
	if _, _, _, err := DecodeRGBScaled(data, 3); err == nil {
		t.Error("scale 1/3: no error")
	}
}

func TestDecodeErrors(t *testing.T) {
	data, _ := testJPEG(t, 40, 40)
	for _, n := range []int{3, 100, len(data) / 2, len(data) - 3} {
		if _, _, _, err := DecodeRGB(data[:n]); !errors.Is(err, ErrTruncated) {
			t.Errorf("cut to %d of %d bytes: %v, want ErrTruncated", n, len(data), err)
		}
	}
	// Go's encoder leaves no padding after the last scanline's data, so
	// only the EOI marker is missing: PIL decodes such a file, and so do we.
	if _, _, _, err := DecodeRGB(data[:len(data)-2]); err != nil {
		t.Errorf("without the EOI marker: %v", err)
	}
	if _, _, _, err := DecodeRGB(nil); err == nil {
		t.Error("empty input: no error")
	}
	if _, _, _, err := DecodeRGB([]byte("not a JPEG at all")); err == nil || !strings.HasPrefix(err.Error(), "libjpeg: ") {
		t.Errorf("not a JPEG: %v, want libjpeg's message", err)
	}
	huge := bytes.Clone(data)
	sof := bytes.Index(huge, []byte{0xff, 0xc0})
	binary.BigEndian.PutUint16(huge[sof+5:], 65000)
	binary.BigEndian.PutUint16(huge[sof+7:], 65000)
	if _, _, _, err := DecodeRGB(huge); err == nil || !strings.Contains(err.Error(), "pixels") {
		t.Errorf("65000x65000 header: %v, want the pixel limit", err)
	}
}

// TestDecodeConcurrently: decoders share no state (run with -race).
func TestDecodeConcurrently(t *testing.T) {
	data, _ := testJPEG(t, 50, 30)
	_, _, want, err := DecodeRGB(data)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				_, _, got, err := DecodeRGB(data)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("concurrent decoding: %v, equal %v", err, bytes.Equal(got, want))
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkDecodeRGBScaled times a 512×384 decoding at each scale.
func BenchmarkDecodeRGBScaled(b *testing.B) {
	data, _ := testJPEG(b, 512, 384)
	for _, denom := range []int{1, 2, 4, 8} {
		b.Run("1/"+string(rune('0'+denom)), func(b *testing.B) {
			for b.Loop() {
				if _, _, _, err := DecodeRGBScaled(data, denom); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
