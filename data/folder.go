package data

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// FolderOptions configures OpenImageFolder.
type FolderOptions struct {
	// Root selects a sub-folder of the directory or archive, e.g. "train"
	// when an archive holds train/ and val/ side by side.
	Root string
	// SkipBad decodes every image while indexing and leaves out those that
	// fail, counting them (Skipped). Checking up front rather than in Get
	// keeps Len and every index stable during training. Without it a bad
	// image is an error from Get that names the file.
	SkipBad bool
	// Workers decode in parallel for SkipBad; 0 means GOMAXPROCS.
	Workers int
}

// ImageFolder is a dataset of JPEG/PNG files in a directory or a tar
// archive, decoded lazily on Get.
//
// Layout: after Root, folders that wrap everything (a single top-level
// "train/", say) are looked through. Then images directly in the folder make
// an unlabeled dataset, and images in class/image.jpg sub-folders a labeled
// one, with classes sorted by name as torchvision's ImageFolder does. A
// lone class folder is taken as a wrapper, since one class labels nothing.
// Other nesting is an error rather than a guess.
type ImageFolder struct {
	src     string
	entries []folderEntry
	classes []string
	skipped []string // names of the images SkipBad left out

	dir  string   // directory source: its path
	f    *os.File // plain tar: read members with ReadAt
	blob []byte   // gzipped tar: all members' bytes, decompressed once
}

type folderEntry struct {
	name      string // full path, or "archive:member"
	off, size int64  // tar member data in f or blob
	label     int32
}

// OpenImageFolder indexes a directory, or a .tar, .tar.gz or .tgz archive
// (recognised by content, not name). For a gzipped archive the members are
// decompressed into memory once, because a gzip stream cannot be read at
// random; a plain tar is read in place. Call Close when done.
func OpenImageFolder(src string, opts FolderOptions) (*ImageFolder, error) {
	st, err := os.Stat(src)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("data: image folder %s does not exist (expected a directory, or a .tar/.tar.gz/.tgz archive, of class/image.jpg or image.jpg files)", src)
		}
		return nil, fmt.Errorf("data: image folder: %w", err)
	}
	d := &ImageFolder{src: src}
	var raw []folderEntry // name: slash path relative to src
	if st.IsDir() {
		d.dir = src
		raw, err = listDir(src)
	} else {
		raw, err = d.indexTar(src)
	}
	if err != nil {
		d.Close()
		return nil, err
	}
	if err := d.layout(raw, opts.Root); err != nil {
		d.Close()
		return nil, err
	}
	if opts.SkipBad {
		d.verify(opts.Workers)
		if len(d.entries) == 0 {
			d.Close()
			return nil, fmt.Errorf("data: image folder %s: all %d images failed to decode", src, len(d.skipped))
		}
	}
	return d, nil
}

// listDir lists image files under dir, following symlinks to files.
func listDir(dir string) ([]folderEntry, error) {
	var out []folderEntry
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if p != dir && strings.HasPrefix(e.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !isImageName(e.Name()) {
			return nil
		}
		if !e.Type().IsRegular() {
			if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
				return nil
			}
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		out = append(out, folderEntry{name: filepath.ToSlash(rel)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("data: listing image folder: %w", err)
	}
	return out, nil
}

// countingReader tracks the offset in the file so each tar member's data
// offset is known; Seek lets archive/tar skip member data without reading.
type countingReader struct {
	r io.ReadSeeker
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Seek(off int64, whence int) (int64, error) {
	pos, err := c.r.Seek(off, whence)
	if err == nil {
		c.n = pos
	}
	return pos, err
}

// indexTar lists the image members of a tar or gzipped tar archive.
func (d *ImageFolder) indexTar(src string) ([]folderEntry, error) {
	f, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("data: image folder: %w", err)
	}
	var magic [2]byte
	_, err = io.ReadFull(f, magic[:])
	if _, serr := f.Seek(0, io.SeekStart); err == nil {
		err = serr
	}
	gzipped := err == nil && magic == [2]byte{0x1f, 0x8b}
	var tr *tar.Reader
	var cr *countingReader
	if gzipped {
		defer f.Close()
		zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
		if err != nil {
			return nil, fmt.Errorf("data: reading %s: %w", src, err)
		}
		tr = tar.NewReader(zr)
	} else {
		d.f = f
		cr = &countingReader{r: f}
		tr = tar.NewReader(cr)
	}
	var out []folderEntry
	for headers := 0; ; headers++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if headers == 0 {
				return nil, fmt.Errorf("data: %s is neither a directory nor a tar archive (.tar, .tar.gz, .tgz) of images", src)
			}
			return nil, fmt.Errorf("data: reading archive %s: %w", src, err)
		}
		if h.Typeflag != tar.TypeReg || !isImageName(h.Name) {
			continue
		}
		name := path.Clean(strings.TrimLeft(h.Name, "/"))
		if name == "." || strings.HasPrefix(name, "../") || hasHiddenDir(name) {
			continue
		}
		e := folderEntry{name: name, size: h.Size}
		if gzipped {
			e.off = int64(len(d.blob))
			d.blob = append(d.blob, make([]byte, h.Size)...)
			if _, err := io.ReadFull(tr, d.blob[e.off:]); err != nil {
				return nil, fmt.Errorf("data: reading archive %s: member %s: %w", src, h.Name, err)
			}
		} else {
			e.off = cr.n
		}
		out = append(out, e)
	}
	if !gzipped && len(out) > 0 {
		// A truncated plain tar fails here rather than on some later Get.
		last := out[len(out)-1]
		if st, err := f.Stat(); err == nil && st.Size() < last.off+last.size {
			return nil, fmt.Errorf("data: archive %s is truncated", src)
		}
	}
	return out, nil
}

// hasHiddenDir reports whether a slash path goes through a dot-folder or
// the __MACOSX folder that zip tools on a Mac add.
func hasHiddenDir(p string) bool {
	parts := strings.Split(p, "/")
	for _, s := range parts[:len(parts)-1] {
		if strings.HasPrefix(s, ".") || s == "__MACOSX" {
			return true
		}
	}
	return false
}

// layout applies Root, looks through wrapper folders and assigns labels.
func (d *ImageFolder) layout(raw []folderEntry, root string) error {
	expect := "expected image.jpg files, or class/image.jpg sub-folders, of JPEG or PNG images"
	keys := make([][]string, 0, len(raw))
	kept := raw[:0]
	root = strings.Trim(path.Clean("/"+filepath.ToSlash(root)), "/")
	for _, e := range raw {
		rel := e.name
		if root != "" {
			if !strings.HasPrefix(rel, root+"/") {
				continue
			}
			rel = rel[len(root)+1:]
		}
		keys = append(keys, strings.Split(rel, "/"))
		kept = append(kept, e)
	}
	where := d.src
	if root != "" {
		where += " (Root " + root + ")"
	}
	if len(kept) == 0 {
		return fmt.Errorf("data: no images found in %s: %s", where, expect)
	}
	// Look through folders that hold everything.
	for {
		first := keys[0][0]
		all := true
		for _, k := range keys {
			if len(k) < 2 || k[0] != first {
				all = false
				break
			}
		}
		if !all {
			break
		}
		for i := range keys {
			keys[i] = keys[i][1:]
		}
	}
	depth := len(keys[0])
	for i, k := range keys {
		if len(k) != depth || depth > 2 {
			return fmt.Errorf("data: %s: unexpected nesting at %s: %s (set Root to the folder holding the class folders)", where, kept[i].name, expect)
		}
	}
	if depth == 2 {
		seen := map[string]bool{}
		for _, k := range keys {
			if !seen[k[0]] {
				seen[k[0]] = true
				d.classes = append(d.classes, k[0])
			}
		}
		sort.Strings(d.classes)
	}
	label := make(map[string]int32, len(d.classes))
	for i, c := range d.classes {
		label[c] = int32(i)
	}
	d.entries = make([]folderEntry, len(kept))
	for i, e := range kept {
		e.label = -1
		if depth == 2 {
			e.label = label[keys[i][0]]
		}
		if d.dir != "" {
			e.name = filepath.Join(d.dir, filepath.FromSlash(e.name))
		} else {
			e.name = d.src + ":" + e.name
		}
		d.entries[i] = e
	}
	// Sorted by (class, name) so indices do not depend on the order of
	// directory listings or archive members.
	sort.SliceStable(d.entries, func(i, j int) bool {
		a, b := d.entries[i], d.entries[j]
		if a.label != b.label {
			return a.label < b.label
		}
		return a.name < b.name
	})
	return nil
}

// verify decodes every entry and drops the ones that fail.
func (d *ImageFolder) verify(workers int) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	bad := make([]bool, len(d.entries))
	var wg sync.WaitGroup
	next := make(chan int, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				_, err := d.Get(i)
				bad[i] = err != nil
			}
		}()
	}
	for i := range d.entries {
		next <- i
	}
	close(next)
	wg.Wait()
	kept := d.entries[:0]
	for i, e := range d.entries {
		if bad[i] {
			d.skipped = append(d.skipped, e.name)
		} else {
			kept = append(kept, e)
		}
	}
	d.entries = kept
}

// Len returns the number of images.
func (d *ImageFolder) Len() int { return len(d.entries) }

// Classes returns the class folder names, sorted; nil for a flat folder.
func (d *ImageFolder) Classes() []string { return d.classes }

// Skipped returns how many images SkipBad left out.
func (d *ImageFolder) Skipped() int { return len(d.skipped) }

// SkippedFiles returns the names of the images SkipBad left out, in index
// order, for a run to list them.
func (d *ImageFolder) SkippedFiles() []string { return d.skipped }

// Label returns image i's label without decoding it.
func (d *ImageFolder) Label(i int) int { return int(d.entries[i].label) }

// Name returns image i's file name without decoding it.
func (d *ImageFolder) Name(i int) string { return d.entries[i].name }

// Get reads and decodes image i. Safe for concurrent use.
func (d *ImageFolder) Get(i int) (Sample, error) {
	if err := checkIndex(i, len(d.entries)); err != nil {
		return Sample{}, err
	}
	e := &d.entries[i]
	var b []byte
	switch {
	case d.blob != nil:
		b = d.blob[e.off : e.off+e.size]
	case d.f != nil:
		b = make([]byte, e.size)
		if _, err := d.f.ReadAt(b, e.off); err != nil {
			return Sample{}, fmt.Errorf("data: reading %s: %w", e.name, err)
		}
	default:
		var err error
		if b, err = os.ReadFile(e.name); err != nil {
			return Sample{}, fmt.Errorf("data: %w", err)
		}
	}
	w, h, rgb, err := decodeRGB(b, e.name)
	if err != nil {
		return Sample{}, err
	}
	return Sample{W: w, H: h, RGB: rgb, Label: int(e.label), Name: e.name}, nil
}

// Close releases the archive file, if any; Get fails afterwards.
func (d *ImageFolder) Close() error {
	if d.f != nil {
		return d.f.Close()
	}
	return nil
}
