package data

import (
	"bytes"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// folderFiles is a labeled layout under a wrapper folder "train/": PNG
// images (lossless, so pixels can be compared exactly) and one JPEG.
func folderFiles(t testing.TB) map[string][]byte {
	return map[string][]byte{
		"train/dog/b.png":  encPNG(t, testImage(5, 4, 1)),
		"train/dog/a.png":  encPNG(t, testImage(5, 4, 2)),
		"train/cat/z.jpg":  encJPEG(t, testImage(8, 8, 3)),
		"train/cat/y.png":  encPNG(t, testImage(3, 6, 4)),
		"train/README.txt": []byte("not an image"),
		"train/cat/.x.png": []byte("hidden"),
	}
}

// checkLabeled checks the dataset built from folderFiles; name(rel) is the
// expected Sample.Name of train/rel.
func checkLabeled(t *testing.T, ds Dataset, name func(string) string) {
	t.Helper()
	if got := ds.Classes(); len(got) != 2 || got[0] != "cat" || got[1] != "dog" {
		t.Fatalf("classes %v, want [cat dog]", got)
	}
	want := []struct {
		rel   string
		label int
		w, h  int
		seed  int
	}{{"cat/y.png", 0, 3, 6, 4}, {"cat/z.jpg", 0, 8, 8, 3}, {"dog/a.png", 1, 5, 4, 2}, {"dog/b.png", 1, 5, 4, 1}}
	if ds.Len() != len(want) {
		t.Fatalf("Len %d, want %d", ds.Len(), len(want))
	}
	for i, w := range want {
		s, err := ds.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		if s.Name != name(w.rel) || s.Label != w.label || s.W != w.w || s.H != w.h || len(s.RGB) != w.w*w.h*3 {
			t.Errorf("sample %d: %s label %d %dx%d, want %s label %d %dx%d", i, s.Name, s.Label, s.W, s.H, name(w.rel), w.label, w.w, w.h)
		}
		if l, _ := labelOf(ds, i); l != w.label {
			t.Errorf("Label(%d) = %d", i, l)
		}
		_, _, ref := toRGB(testImage(w.w, w.h, w.seed))
		tol := 0
		if strings.HasSuffix(w.rel, ".jpg") {
			tol = 40 // lossy
		}
		for k := range ref {
			if d := int(s.RGB[k]) - int(ref[k]); d > tol || d < -tol {
				t.Errorf("%s: byte %d = %d, want %d", s.Name, k, s.RGB[k], ref[k])
				break
			}
		}
	}
}

func TestImageFolderDir(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, folderFiles(t))
	ds, err := OpenImageFolder(dir, FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	checkLabeled(t, ds, func(rel string) string { return filepath.Join(dir, "train", filepath.FromSlash(rel)) })
}

func TestImageFolderArchives(t *testing.T) {
	for _, c := range []struct {
		file   string
		gz     bool
		stream bool
	}{{"d.tar", false, false}, {"d.tar.gz", true, false}, {"d.tgz", true, true}} {
		t.Run(c.file, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), c.file)
			if err := os.WriteFile(p, tarBytes(t, folderFiles(t), c.gz), 0o644); err != nil {
				t.Fatal(err)
			}
			opts := FolderOptions{}
			if c.stream {
				opts.InMemory = -1
			}
			ds, err := OpenImageFolder(p, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer ds.Close()
			var view Dataset = ds
			if c.stream {
				// A streamed archive keeps member order (here reversed).
				var err error
				if view, err = Subset(ds, []int{3, 2, 1, 0}); err != nil {
					t.Fatal(err)
				}
			}
			checkLabeled(t, view, func(rel string) string { return p + ":train/" + rel })
		})
	}
}

func TestImageFolderFlatAndRoot(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{
		"imgs/b.png": encPNG(t, testImage(2, 2, 1)),
		"imgs/a.jpg": encJPEG(t, testImage(2, 2, 2)),
	})
	// A lone folder is a wrapper, not a class.
	ds, err := OpenImageFolder(dir, FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Classes() != nil || ds.Len() != 2 {
		t.Fatalf("classes %v, len %d; want unlabeled, 2", ds.Classes(), ds.Len())
	}
	for i, n := range []string{"a.jpg", "b.png"} {
		s, err := ds.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		if s.Label != -1 || s.Name != filepath.Join(dir, "imgs", n) {
			t.Errorf("sample %d: %s label %d", i, s.Name, s.Label)
		}
	}

	// train/ and val/ side by side: splits.
	writeFiles(t, dir, map[string][]byte{
		"split/train/cat/1.png": encPNG(t, testImage(2, 2, 1)),
		"split/train/dog/1.png": encPNG(t, testImage(2, 2, 1)),
		"split/val/cat/1.png":   encPNG(t, testImage(2, 2, 1)),
	})
	ds, err = OpenImageFolder(filepath.Join(dir, "split"), FolderOptions{})
	if err != nil || ds.Len() != 2 || ds.Split() != "train" {
		t.Errorf("split layout: %v", err)
	}
	ds, err = OpenImageFolder(filepath.Join(dir, "split"), FolderOptions{Root: "train"})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 2 || len(ds.Classes()) != 2 {
		t.Errorf("Root train: len %d classes %v", ds.Len(), ds.Classes())
	}
}

func TestImageFolderErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	_, err := OpenImageFolder(missing, FolderOptions{})
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "expected") {
		t.Errorf("missing: %v", err)
	}
	empty := t.TempDir()
	writeFiles(t, empty, map[string][]byte{"notes.bin": []byte("x")})
	_, err = OpenImageFolder(empty, FolderOptions{})
	if err == nil || !strings.Contains(err.Error(), "no images") || !strings.Contains(err.Error(), "expected") {
		t.Errorf("empty: %v", err)
	}
	notTar := filepath.Join(empty, "notes.bin")
	_, err = OpenImageFolder(notTar, FolderOptions{})
	if err == nil || !strings.Contains(err.Error(), "neither a directory") {
		t.Errorf("not a tar: %v", err)
	}
	mixed := t.TempDir()
	writeFiles(t, mixed, map[string][]byte{"a.png": encPNG(t, testImage(2, 2, 1)), "cat/b.png": encPNG(t, testImage(2, 2, 1))})
	if _, err = OpenImageFolder(mixed, FolderOptions{}); err == nil {
		t.Error("mixed flat and class layout: no error")
	}
}

func TestImageFolderCorrupt(t *testing.T) {
	good := encJPEG(t, testImage(16, 16, 1))
	files := map[string][]byte{
		"cat/good.jpg": good,
		"cat/bad.jpg":  good[:len(good)/2], // truncated
		"dog/good.png": encPNG(t, testImage(4, 4, 2)),
	}
	dir := t.TempDir()
	writeFiles(t, dir, files)
	tarPath := filepath.Join(t.TempDir(), "x.tar")
	gzPath := filepath.Join(t.TempDir(), "x.tar.gz")
	if err := os.WriteFile(tarPath, tarBytes(t, files, false), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gzPath, tarBytes(t, files, true), 0o644); err != nil {
		t.Fatal(err)
	}
	for k, src := range []string{dir, tarPath, gzPath, gzPath} {
		stream := int64(0)
		if k == 3 {
			stream = -1
		}
		ds, err := OpenImageFolder(src, FolderOptions{InMemory: stream})
		if err != nil {
			t.Fatal(err)
		}
		if ds.Len() != 3 {
			t.Fatalf("%s: Len %d", src, ds.Len())
		}
		bad := 0
		for i := 0; i < ds.Len(); i++ {
			if strings.HasSuffix(ds.Name(i), "bad.jpg") {
				bad = i
			}
		}
		_, err = ds.Get(bad)
		if err == nil || !strings.Contains(err.Error(), "bad.jpg") {
			t.Errorf("%s: corrupt JPEG: err %v, want one naming bad.jpg", src, err)
		}
		ds.Close()

		ds, err = OpenImageFolder(src, FolderOptions{SkipBad: true, Workers: 2, InMemory: stream})
		if err != nil {
			t.Fatal(err)
		}
		if ds.Len() != 2 || ds.Skipped() != 1 || len(ds.Classes()) != 2 {
			t.Errorf("%s: SkipBad: Len %d Skipped %d classes %v", src, ds.Len(), ds.Skipped(), ds.Classes())
		}
		for i := 0; i < ds.Len(); i++ {
			if _, err := ds.Get(i); err != nil {
				t.Error(err)
			}
		}
		ds.Close()
	}
	// A tar cut short is caught while indexing.
	b := tarBytes(t, files, false)
	cut := filepath.Join(t.TempDir(), "cut.tar")
	if err := os.WriteFile(cut, b[:len(b)-1500], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenImageFolder(cut, FolderOptions{}); err == nil {
		t.Error("truncated tar: no error")
	}
}

func TestToRGB(t *testing.T) {
	gray := image.NewGray(image.Rect(0, 0, 2, 1))
	gray.Pix = []uint8{10, 200}
	pal := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.RGBA{1, 2, 3, 255}, color.RGBA{4, 5, 6, 255}})
	pal.Pix = []uint8{1, 0}
	rgba := image.NewRGBA(image.Rect(0, 0, 2, 1))
	rgba.Pix = []uint8{10, 20, 30, 255, 50, 25, 0, 127} // premultiplied
	g16 := image.NewGray16(image.Rect(0, 0, 1, 1))
	g16.SetGray16(0, 0, color.Gray16{Y: 0x8000})
	sub := testImage(4, 4, 1).SubImage(image.Rect(1, 1, 3, 2))
	for _, c := range []struct {
		name string
		img  image.Image
		want []uint8
	}{
		{"gray", gray, []uint8{10, 10, 10, 200, 200, 200}},
		{"paletted", pal, []uint8{4, 5, 6, 1, 2, 3}},
		{"rgba", rgba, []uint8{10, 20, 30, 100, 50, 0}},
		{"gray16", g16, []uint8{255, 255, 255}}, // PIL clips 16-bit gray at 255
		{"subimage", sub, []uint8{49, 13, 9, 58, 13, 10}},
	} {
		_, _, got := toRGB(c.img)
		if !bytes.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	// A grayscale JPEG decodes to image.Gray and comes out as 3 channels.
	g := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range g.Pix {
		g.Pix[i] = 100
	}
	w, h, rgb, err := decodeRGB(encJPEG(t, g), "g.jpg")
	if err != nil || w != 8 || h != 8 || len(rgb) != 192 || rgb[0] != rgb[1] || rgb[1] != rgb[2] {
		t.Errorf("gray JPEG: %dx%d len %d err %v", w, h, len(rgb), err)
	}
}
