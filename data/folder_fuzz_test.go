package data

import (
	"strings"
	"testing"

	"github.com/simclr-go/simclr/internal/fuzzcheck"
)

// FuzzOpenImageFolderTar opens arbitrary bytes as an image archive (.tar
// or .tar.gz) and reads every image it indexes. Nothing may panic, and
// every error, from indexing or from Get, must name the archive.
func FuzzOpenImageFolderTar(f *testing.F) {
	f.Fuzz(func(t *testing.T, archive []byte, skipBad bool) {
		p := fuzzcheck.WriteTemp(t, "images.tar", archive)
		d, err := OpenImageFolder(p, FolderOptions{SkipBad: skipBad, Workers: 1})
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error does not name the archive: %v", err)
			}
			return
		}
		defer d.Close()
		if d.Len() == 0 {
			t.Fatal("opened an archive with no images")
		}
		for i := 0; i < d.Len(); i++ {
			s, err := d.Get(i)
			if err != nil {
				if !strings.Contains(err.Error(), p) {
					t.Fatalf("image %d: error does not name the archive: %v", i, err)
				}
				if skipBad {
					t.Fatalf("image %d fails after SkipBad kept it: %v", i, err)
				}
				continue
			}
			if s.W <= 0 || s.H <= 0 || len(s.RGB) != 3*s.W*s.H {
				t.Fatalf("image %d: %dx%d with %d values", i, s.W, s.H, len(s.RGB))
			}
			if l := d.Label(i); l != s.Label || l >= len(d.Classes()) || (l < 0 && d.Classes() != nil) {
				t.Fatalf("image %d: label %d (Get says %d) among %d classes", i, l, s.Label, len(d.Classes()))
			}
		}
	})
}
