package data

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const decodeTestdata = "testdata/decode"

// decodeVector is what PIL decodes from one file in testdata/decode,
// recorded by testdata/make_decode_vectors.py.
type decodeVector struct {
	Width, Height int
	Mode          string
	SHA256        string
}

func readDecodeVectors(t testing.TB) map[string]decodeVector {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(decodeTestdata, "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]decodeVector
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("vectors.json: %v", err)
	}
	if len(v) < 20 {
		t.Fatalf("vectors.json: %d files, want at least 20", len(v))
	}
	return v
}

// decodeTestFiles lists the test images, sorted.
func decodeTestFiles(t testing.TB) []string {
	t.Helper()
	var names []string
	for name := range readDecodeVectors(t) {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func readTestImage(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(decodeTestdata, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// inexact gives, for a file whose decoder here is not PIL's, the largest
// mean and maximum absolute difference per value accepted.
func inexact(name string) (meanTol float64, maxTol int, ok bool) {
	if strings.HasSuffix(name, ".jpg") && !jpegExact {
		return jpegMeanTol, jpegMaxTol, true
	}
	return 0, 0, false
}

// TestDecodeMatchesPIL decodes every test image and compares with the
// pixels PIL gives: exactly where the decoder here is PIL's (libjpeg-turbo
// in cgo builds) or equivalent, within bounds where it is not.
func TestDecodeMatchesPIL(t *testing.T) {
	for name, want := range readDecodeVectors(t) {
		t.Run(name, func(t *testing.T) {
			w, h, rgb, err := decodeRGB(readTestImage(t, name), name)
			if err != nil {
				t.Fatal(err)
			}
			if w != want.Width || h != want.Height || len(rgb) != w*h*3 {
				t.Fatalf("got %dx%d (%d bytes), PIL %dx%d", w, h, len(rgb), want.Width, want.Height)
			}
			if meanTol, maxTol, ok := inexact(name); ok {
				mean, max := absDiff(rgb, readReferencePNG(t, name+".rgb.png", w, h))
				t.Logf("mean |diff| %.3f, max %d (bounds %.2f, %d)", mean, max, meanTol, maxTol)
				if mean > meanTol || max > maxTol {
					t.Errorf("mean |diff| %.3f, max %d from PIL's pixels: bounds are %.2f, %d", mean, max, meanTol, maxTol)
				}
				return
			}
			sum := sha256.Sum256(rgb)
			if got := hex.EncodeToString(sum[:]); got != want.SHA256 {
				t.Errorf("pixels differ from PIL's (PIL mode %s): sha256 %s, want %s", want.Mode, got, want.SHA256)
				if _, err := os.Stat(filepath.Join(decodeTestdata, name+".rgb.png")); err == nil {
					mean, max := absDiff(rgb, readReferencePNG(t, name+".rgb.png", w, h))
					t.Errorf("mean |diff| %.3f, max %d", mean, max)
				}
			}
		})
	}
}

// readReferencePNG reads PIL's pixels of a lossy test file, stored as an
// 8-bit RGB PNG.
func readReferencePNG(t testing.TB, name string, w, h int) []uint8 {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(readTestImage(t, name)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if _, ok := img.(*image.RGBA); !ok {
		t.Fatalf("%s: %T, want an 8-bit RGB PNG", name, img)
	}
	gw, gh, rgb := toRGB(img)
	if gw != w || gh != h {
		t.Fatalf("%s: %dx%d, want %dx%d", name, gw, gh, w, h)
	}
	return rgb
}

func absDiff(a, b []uint8) (mean float64, max int) {
	var sum int
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		sum += d
		if d > max {
			max = d
		}
	}
	return float64(sum) / float64(len(a)), max
}

// TestDecodeTruncatedJPEG: a JPEG cut short is an error naming the file,
// as PIL raises "image file is truncated", wherever the cut falls.
func TestDecodeTruncatedJPEG(t *testing.T) {
	for _, name := range decodeTestFiles(t) {
		if !strings.HasSuffix(name, ".jpg") {
			continue
		}
		b := readTestImage(t, name)
		for _, n := range []int{2, 3, 20, len(b) / 2, len(b) - 40, len(b) - 2} {
			_, _, _, err := decodeRGB(b[:n], name)
			if err == nil {
				t.Errorf("%s cut to %d of %d bytes: no error", name, n, len(b))
			} else if !strings.Contains(err.Error(), name) {
				t.Errorf("%s cut to %d bytes: error %q does not name the file", name, n, err)
			}
		}
	}
}

// TestDecodeRefusesHugeImages: a header claiming more pixels than PIL's
// decompression-bomb limit is refused before anything is allocated.
func TestDecodeRefusesHugeImages(t *testing.T) {
	jpg := readTestImage(t, "jpeg_420.jpg")
	sof := bytes.Index(jpg, []byte{0xff, 0xc0})
	if sof < 0 {
		t.Fatal("jpeg_420.jpg: no SOF0 marker")
	}
	jpg = bytes.Clone(jpg)
	binary.BigEndian.PutUint16(jpg[sof+5:], 60000) // height
	binary.BigEndian.PutUint16(jpg[sof+7:], 60000) // width

	pngData := readTestImage(t, "png_gray.png")
	pngData = bytes.Clone(pngData)
	binary.BigEndian.PutUint32(pngData[16:], 1<<20) // IHDR width
	binary.BigEndian.PutUint32(pngData[20:], 1<<20) // IHDR height
	binary.BigEndian.PutUint32(pngData[29:], crc32.ChecksumIEEE(pngData[12:29]))

	for name, b := range map[string][]byte{"huge.jpg": jpg, "huge.png": pngData} {
		_, _, _, err := decodeRGB(b, name)
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "pixels") {
			t.Errorf("%s: error %v, want one naming the file and the pixel limit", name, err)
		}
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty.jpg": nil,
		"text.png":  []byte("not an image"),
		"soi.jpg":   {0xff, 0xd8, 0xff},
	} {
		if _, _, _, err := decodeRGB(b, name); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v, want one naming the file", name, err)
		}
	}
}

func TestIsImageName(t *testing.T) {
	for name, want := range map[string]bool{
		"a/b.jpg": true, "b.JPEG": true, "c.png": true, "d.gif": true, "e.bmp": true,
		"f.tif": true, "g.TIFF": true, "h.webp": true, "i.txt": false, "._j.jpg": false,
		".hidden.png": false, "k.jpg.bak": false,
	} {
		if got := isImageName(name); got != want {
			t.Errorf("isImageName(%q) = %v, want %v", name, got, want)
		}
	}
}

// FuzzDecodeRGB: no input makes decoding panic or crash, and a success
// returns w*h packed RGB pixels.
func FuzzDecodeRGB(f *testing.F) {
	for _, name := range decodeTestFiles(f) {
		f.Add(readTestImage(f, name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Headers claiming big images would only make the fuzzer allocate;
		// the size limit itself is tested above.
		if w, h, err := headerSize(b); err == nil && w*h > 1<<22 {
			t.Skip("large image")
		}
		w, h, rgb, err := decodeRGB(b, "fuzz")
		if err != nil {
			return
		}
		if w <= 0 || h <= 0 || len(rgb) != w*h*3 {
			t.Fatalf("%dx%d with %d bytes of RGB", w, h, len(rgb))
		}
	})
}

// BenchmarkDecode decodes one JPEG per iteration; b.SetBytes counts its
// RGB output.
func BenchmarkDecode(b *testing.B) {
	for _, name := range []string{"jpeg_420.jpg", "jpeg_444.jpg", "jpeg_progressive.jpg"} {
		data := readTestImage(b, name)
		b.Run(name, func(b *testing.B) {
			w, h, _, err := decodeRGB(data, name)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(w * h * 3))
			for b.Loop() {
				if _, _, _, err := decodeRGB(data, name); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeDir decodes, round robin from memory, the images in the
// folder $SIMCLR_DECODE_BENCH_DIR (scripts/bench-decode.sh sets it) and
// reports images per second of wall time and of CPU time (with GOMAXPROCS=1,
// per core even when other work shares the machine).
func BenchmarkDecodeDir(b *testing.B) {
	dir := os.Getenv("SIMCLR_DECODE_BENCH_DIR")
	if dir == "" {
		b.Skip("SIMCLR_DECODE_BENCH_DIR is not set: no folder of images to decode")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var files [][]byte
	var names []string
	for _, e := range entries {
		if !e.Type().IsRegular() || !isImageName(e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		files = append(files, data)
		names = append(names, e.Name())
	}
	if len(files) == 0 {
		b.Fatalf("%s: no images", dir)
	}
	i := 0
	cpu0, cpuOK := processCPUTime()
	for b.Loop() {
		if _, _, _, err := decodeRGB(files[i], names[i]); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(files) {
			i = 0
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
	if cpu1, ok := processCPUTime(); ok && cpuOK {
		b.ReportMetric(float64(b.N)/(cpu1-cpu0).Seconds(), "images/cpu-s")
	}
}
