package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simclr-go/simclr/internal/fuzzcheck"
)

// FuzzSTL10 feeds arbitrary image, label and class-name files to the
// STL-10 reader, as the train split and (the same images) the unlabeled
// one. It must refuse bad files with an error naming the file, and what it
// accepts must hold the files' images (channel planes stored column-major)
// and labels (1..10 in the file, 0..9 in the dataset).
func FuzzSTL10(f *testing.F) {
	f.Fuzz(func(t *testing.T, x, y, names []byte) {
		dir := t.TempDir()
		for name, b := range map[string][]byte{"train_X.bin": x, "unlabeled_X.bin": x, "train_y.bin": y, "class_names.txt": names} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var d *STL10Dataset
		var err error
		fuzzcheck.LimitAlloc(t, append(x, y...), 8, func() { d, err = STL10(dir, "train+unlabeled") })
		if err != nil {
			if !strings.Contains(err.Error(), dir) {
				t.Fatalf("error names no file: %v", err)
			}
			return
		}
		defer d.Close()
		const plane = stlSide * stlSide
		n := len(x) / (3 * plane)
		if d.Len() != 2*n || len(x)%(3*plane) != 0 || len(y) != n {
			t.Fatalf("%d image bytes and %d labels made %d images", len(x), len(y), d.Len())
		}
		if fields := strings.Fields(string(names)); len(fields) == 10 && !equalStrings(d.Classes(), fields) {
			t.Fatalf("classes %q, file names %q", d.Classes(), fields)
		}
		for i := 0; i < d.Len(); i++ {
			s, err := d.Get(i)
			if err != nil {
				t.Fatalf("image %d of %d: %v", i, d.Len(), err)
			}
			want := -1
			if i < n {
				want = int(y[i]) - 1
			}
			if s.Label != want || d.Label(i) != want {
				t.Fatalf("image %d: label %d (Label %d), file says %d", i, s.Label, d.Label(i), want)
			}
			raw := x[(i%n)*3*plane:]
			for c := 0; c < 3; c++ {
				for px := 0; px < stlSide; px++ {
					for py := 0; py < stlSide; py++ {
						if got, w := s.RGB[3*(py*stlSide+px)+c], raw[c*plane+px*stlSide+py]; got != w {
							t.Fatalf("image %d (%d, %d) channel %d: %d, file has %d", i, px, py, c, got, w)
						}
					}
				}
			}
		}
	})
}
