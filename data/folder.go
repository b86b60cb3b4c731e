package data

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
)

// FolderOptions configures OpenImageFolder.
type FolderOptions struct {
	// Split chooses among train/, val/ and test/ folders side by side ("",
	// the default, means train). "test" falls back to a val/ folder when
	// there is no test/ one, as in ImageNet-style trees. A source without
	// split folders is all training images: asking it for another split is
	// a *NoSplitError, so that no evaluation scores the images it trained
	// on.
	Split string
	// Unlabeled ignores class folders: every image (at any depth) is a
	// sample with label -1, for pretraining on a folder of photos.
	Unlabeled bool
	// Root selects a sub-folder of the directory or archive before
	// anything else.
	Root string
	// SkipBad decodes every image while indexing and leaves out those that
	// fail, listing them (SkippedFiles). Checking up front rather than in
	// Get keeps Len and every index stable during training. Without it a
	// bad image is an error from Get that names the file.
	SkipBad bool
	// Workers decode in parallel for SkipBad; 0 means GOMAXPROCS.
	Workers int
	// ShuffleBuffer is how many images a streamed archive's shuffled
	// order mixes at a time (see StreamOrder); 0 means 4096.
	ShuffleBuffer int
	// InMemory is how many bytes of images from gzipped archives are kept
	// in memory, decompressed, to be read at random and shuffled fully;
	// archives beyond it are streamed. 0 means 1 GiB; negative, none.
	InMemory int64
}

// DefaultInMemory is FolderOptions.InMemory's default: a CIFAR-size
// archive is shuffled fully, an ImageNet-size one streams.
const DefaultInMemory = 1 << 30

// ImageFolder is a dataset of image files, decoded lazily on Get. Sources:
//
//   - a directory;
//   - a plain .tar archive, read in place at each member's offset;
//   - a gzipped .tar.gz/.tgz archive: decompressed into memory when its
//     images fit in FolderOptions.InMemory, else read as a stream (see
//     Streamed);
//   - shards, "train-{000000..000146}.tar" (WebDataset's convention) or a
//     glob, each plain or gzipped;
//   - a file list (.txt): one image path per line, relative to the list's
//     folder or absolute, optionally followed by a label.
//
// Layout, after Root: folders that wrap everything are looked through.
// When every top-level folder is a split (train/, val/, test/), Split
// chooses one. Below it, images in class folders (at any depth under the
// class folder) are labeled with classes sorted by name, as torchvision's
// ImageFolder does, numbered alike in every split; images directly in the
// folder make an unlabeled dataset. WebDataset .cls members and file-list
// labels take precedence over folders.
//
// Memory: an index of 32 bytes plus the file's relative path per image;
// image bytes are read when needed.
type ImageFolder struct {
	src      string
	dir      string // directory and file-list sources: paths are relative to it
	archives []archive
	entries  []folderEntry
	names    []byte // the entries' relative paths, concatenated
	classes  []string
	split    string
	skipped  []string
	ignored  int
	ignNames []string

	// A gzipped source keeps archive order: starts[a] is archive a's first
	// index (len(archives)+1 values).
	streamed      bool
	starts        []int
	shuffleBuffer int
	readahead     int         // images a stream reads ahead of requests
	cursors       []*gzCursor // random access into gzipped archives
}

type folderEntry struct {
	off     int64 // member data offset in a plain tar
	size    int64
	name    uint32 // the relative path: names[name : name+nameLen]
	nameLen uint32
	archive int32 // -1: a file
	label   int32
}

// OpenImageFolder indexes a source (see ImageFolder). Call Close when done.
func OpenImageFolder(src string, opts FolderOptions) (*ImageFolder, error) {
	mem := opts.InMemory
	if mem == 0 {
		mem = DefaultInMemory
	}
	l, err := listSource(src, mem)
	if err != nil {
		return nil, err
	}
	lay, err := resolveLayout(src, l, opts)
	if err != nil {
		l.closeAll()
		return nil, err
	}
	d := &ImageFolder{src: src, archives: l.archives, classes: lay.classes, split: lay.split,
		ignored: l.ignored, ignNames: l.ignoredNames, shuffleBuffer: opts.ShuffleBuffer, readahead: streamReadahead}
	if d.shuffleBuffer <= 0 {
		d.shuffleBuffer = 4096
	}
	if len(l.archives) == 0 {
		if st, err := os.Stat(src); err == nil && st.IsDir() {
			d.dir = src
		} else {
			d.dir = filepath.Dir(src)
		}
	}
	for _, a := range l.archives {
		d.streamed = d.streamed || !a.random()
	}
	d.entries = make([]folderEntry, len(lay.keep))
	for k, p := range lay.keep {
		e := l.entries[p]
		if len(d.names)+len(e.rel) > 1<<32-1 {
			d.Close()
			return nil, fmt.Errorf("data: %s: over 4 GB of file names", src)
		}
		d.entries[k] = folderEntry{off: e.off, size: e.size, name: uint32(len(d.names)), nameLen: uint32(len(e.rel)),
			archive: e.archive, label: lay.labels[k]}
		d.names = append(d.names, e.rel...)
	}
	if d.streamed {
		// Archive order: reading a compressed stream in any other order
		// would mean decompressing it again and again.
		d.starts = make([]int, len(d.archives)+1)
		for _, e := range d.entries {
			d.starts[e.archive+1]++
		}
		for a := range d.archives {
			d.starts[a+1] += d.starts[a]
		}
		d.cursors = make([]*gzCursor, len(d.archives))
		for a := range d.cursors {
			d.cursors[a] = &gzCursor{}
		}
	} else {
		// Sorted by (class, name) so indices do not depend on the order of
		// directory listings or archive members.
		sort.SliceStable(d.entries, func(i, j int) bool {
			a, b := &d.entries[i], &d.entries[j]
			if a.label != b.label {
				return a.label < b.label
			}
			if na, nb := d.rel(a), d.rel(b); na != nb {
				return na < nb
			}
			return a.archive < b.archive
		})
	}
	if opts.SkipBad {
		if err := d.verify(opts.Workers); err != nil {
			d.Close()
			return nil, err
		}
		if len(d.entries) == 0 {
			d.Close()
			return nil, fmt.Errorf("data: image folder %s: all %d images failed to decode", src, len(d.skipped))
		}
	}
	return d, nil
}

func (d *ImageFolder) rel(e *folderEntry) string {
	return string(d.names[e.name : e.name+e.nameLen])
}

// name is entry e's Sample.Name: a file path, or "archive:member".
func (d *ImageFolder) name(e *folderEntry) string {
	r := d.rel(e)
	if e.archive >= 0 {
		return d.archives[e.archive].path + ":" + r
	}
	if filepath.IsAbs(r) {
		return filepath.Clean(r)
	}
	return filepath.Join(d.dir, filepath.FromSlash(r))
}

// verify decodes every entry and drops the ones that fail, reading a
// gzipped source once, in order.
func (d *ImageFolder) verify(workers int) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	bad := make([]bool, len(d.entries))
	var wg sync.WaitGroup
	next := make(chan int, workers)
	var st *folderStream
	if d.streamed {
		st = d.openStream(seqInts(len(d.entries)))
		defer st.Close()
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				var err error
				if st != nil {
					_, err = st.Get(i)
				} else {
					_, err = d.Get(i)
				}
				bad[i] = err != nil
			}
		}()
	}
	for i := range d.entries {
		next <- i
	}
	close(next)
	wg.Wait()
	if st != nil {
		if err := st.ioErr(); err != nil {
			return err
		}
	}
	kept := d.entries[:0]
	for i, e := range d.entries {
		if bad[i] {
			d.skipped = append(d.skipped, d.name(&e))
		} else {
			kept = append(kept, e)
		}
	}
	d.entries = kept
	if d.streamed {
		for a := range d.starts {
			d.starts[a] = 0
		}
		for _, e := range d.entries {
			d.starts[e.archive+1]++
		}
		for a := range d.archives {
			d.starts[a+1] += d.starts[a]
		}
	}
	return nil
}

// Len returns the number of images.
func (d *ImageFolder) Len() int { return len(d.entries) }

// Classes returns the class names, sorted; nil if unlabeled.
func (d *ImageFolder) Classes() []string { return d.classes }

// Streamed reports whether the source is read as a stream (gzipped).
func (d *ImageFolder) Streamed() bool { return d.streamed }

// ShuffleBuffer returns the shuffle buffer's size for a streamed source.
func (d *ImageFolder) ShuffleBuffer() int { return d.shuffleBuffer }

// Split returns the split folder the images come from ("" for a source
// without split folders).
func (d *ImageFolder) Split() string { return d.split }

// Skipped returns how many images SkipBad left out.
func (d *ImageFolder) Skipped() int { return len(d.skipped) }

// SkippedFiles returns the names of the images SkipBad left out, in index
// order, for a run to list them.
func (d *ImageFolder) SkippedFiles() []string { return d.skipped }

// Ignored returns how many files were not images of a kind we read, and
// the names of the first few, for a warning.
func (d *ImageFolder) Ignored() (int, []string) { return d.ignored, d.ignNames }

// Label returns image i's label without decoding it.
func (d *ImageFolder) Label(i int) int { return int(d.entries[i].label) }

// Name returns image i's file name without decoding it.
func (d *ImageFolder) Name(i int) string { return d.name(&d.entries[i]) }

// Get reads and decodes image i. Safe for concurrent use. On a gzipped
// source it reads forward from the last image read in the same archive,
// or from the archive's start: read in bulk through a Loader, which
// streams it.
func (d *ImageFolder) Get(i int) (Sample, error) {
	if err := checkIndex(i, len(d.entries)); err != nil {
		return Sample{}, err
	}
	b, err := d.readAt(i)
	if err != nil {
		return Sample{}, err
	}
	return d.decode(i, b)
}

func (d *ImageFolder) decode(i int, b []byte) (Sample, error) {
	e := &d.entries[i]
	name := d.name(e)
	w, h, rgb, err := decodeRGB(b, name)
	if err != nil {
		return Sample{}, err
	}
	return Sample{W: w, H: h, RGB: rgb, Label: int(e.label), Name: name}, nil
}

// readAt reads image i's bytes by random access.
func (d *ImageFolder) readAt(i int) ([]byte, error) {
	e := &d.entries[i]
	if e.archive < 0 {
		b, err := os.ReadFile(d.name(e))
		if err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
		return b, nil
	}
	a := &d.archives[e.archive]
	if a.blob != nil {
		return a.blob[e.off : e.off+e.size], nil
	}
	if a.gz {
		return d.cursors[e.archive].read(a.path, i-d.starts[e.archive], d, e)
	}
	if a.f == nil {
		return nil, fmt.Errorf("data: reading %s: archive closed", d.name(e))
	}
	b := make([]byte, e.size)
	if _, err := a.f.ReadAt(b, e.off); err != nil {
		return nil, fmt.Errorf("data: reading %s: %w", d.name(e), err)
	}
	return b, nil
}

// Close releases the archive files; Get fails afterwards.
func (d *ImageFolder) Close() error {
	var first error
	for i := range d.archives {
		if f := d.archives[i].f; f != nil {
			if err := f.Close(); err != nil && first == nil {
				first = err
			}
			d.archives[i].f = nil
		}
		d.archives[i].blob = nil
	}
	for _, c := range d.cursors {
		c.close()
	}
	return first
}
