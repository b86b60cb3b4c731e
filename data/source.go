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
	"sort"
	"strconv"
	"strings"
)

// rawEntry is an image found while listing a source, before the layout
// (splits, classes) is applied.
type rawEntry struct {
	rel     string // slash path inside the source (a file list: the path as listed)
	archive int32  // index into the source's archives; -1 for files
	off     int64  // tar member data offset (plain tar)
	size    int64
	label   int32 // from a file list or a WebDataset .cls member; noLabel otherwise
}

const noLabel = -2

// archive is one tar file of a source: read at member offsets when plain,
// as a stream when gzipped.
type archive struct {
	path string
	gz   bool
	f    *os.File // plain: kept open for ReadAt
	blob []byte   // gzipped and small enough: every image's bytes, decompressed
}

// random reports whether the archive's members can be read at random.
func (a *archive) random() bool { return !a.gz || a.blob != nil }

// listing is what listing a source found.
type listing struct {
	entries  []rawEntry
	archives []archive
	// ignored counts regular files that are not images of a kind we read;
	// ignoredNames holds the first few, for a warning.
	ignored      int
	ignoredNames []string
	labelNames   []string // a file list's class names by label, if it gave labels
	// memLeft is how many more decompressed bytes gzipped archives may
	// keep in memory; an archive that does not fit is streamed instead.
	memLeft  int64
	fileList bool // the source is a file list: its folders mean nothing
}

const maxIgnoredNames = 10

func (l *listing) ignore(name string) {
	l.ignored++
	if len(l.ignoredNames) < maxIgnoredNames {
		l.ignoredNames = append(l.ignoredNames, name)
	}
}

// closeAll closes the plain archives' files.
func (l *listing) closeAll() {
	for _, a := range l.archives {
		if a.f != nil {
			a.f.Close()
		}
	}
}

// sidecar reports whether a name is a non-image member of a WebDataset
// sample (label, caption, metadata), which is not worth a warning.
func sidecar(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".cls", ".json", ".txt", ".cls2", ".idx", ".npy", ".caption":
		return true
	}
	return false
}

// listDir lists image files under dir at any depth, following symlinks to
// files; dot-folders and dot-files are left out.
func listDir(dir string, out *listing) error {
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if p != dir && (strings.HasPrefix(e.Name(), ".") || e.Name() == "__MACOSX") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(e.Name(), ".") {
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
		if !isImageName(e.Name()) {
			out.ignore(rel)
			return nil
		}
		out.entries = append(out.entries, rawEntry{rel: filepath.ToSlash(rel), archive: -1, label: noLabel})
		return nil
	})
	if err != nil {
		return fmt.Errorf("data: listing image folder: %w", err)
	}
	return nil
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

// isGzip reports whether f starts with the gzip magic, and rewinds it.
func isGzip(f *os.File) (bool, error) {
	var magic [2]byte
	_, err := io.ReadFull(f, magic[:])
	if _, serr := f.Seek(0, io.SeekStart); serr != nil {
		return false, serr
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return false, nil
	}
	return magic == [2]byte{0x1f, 0x8b}, err
}

// openTarStream opens a gzipped tar for reading from its start.
func openTarStream(p string) (*tar.Reader, io.Closer, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("data: reading %s: %w", p, err)
	}
	return tar.NewReader(zr), f, nil
}

// maxClsBytes bounds a WebDataset .cls member: it holds one integer.
const maxClsBytes = 64

// listTar appends the image members of a tar or gzipped tar archive (found
// by content, not name). A gzipped archive is read through once to list
// it, but not kept: its members are read again as a stream when needed.
// WebDataset .cls members (the label of the sample with the same key) set
// the labels of their images.
func listTar(p string, out *listing) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("data: image archive: %w", err)
	}
	gz, err := isGzip(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("data: reading %s: %w", p, err)
	}
	a := archive{path: p, gz: gz}
	var tr *tar.Reader
	var cr *countingReader
	if gz {
		defer f.Close()
		zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
		if err != nil {
			return fmt.Errorf("data: reading %s: %w", p, err)
		}
		tr = tar.NewReader(zr)
	} else {
		a.f = f
		cr = &countingReader{r: f}
		tr = tar.NewReader(cr)
	}
	ai := int32(len(out.archives))
	out.archives = append(out.archives, a) // closed with the listing on error
	first := len(out.entries)
	keep := gz && out.memLeft > 0 // decompress into memory while it fits
	var cls map[string]int32      // WebDataset key -> label
	for headers := 0; ; headers++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if headers == 0 {
				return fmt.Errorf("data: %s is neither a directory, a file list (.txt) nor a tar archive (.tar, .tar.gz, .tgz) of images", p)
			}
			return fmt.Errorf("data: reading archive %s: %w", p, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimLeft(h.Name, "/"))
		if name == "." || strings.HasPrefix(name, "../") || hasHiddenDir(name) || strings.HasPrefix(path.Base(name), ".") {
			continue
		}
		if strings.EqualFold(path.Ext(name), ".cls") {
			if h.Size > maxClsBytes {
				return fmt.Errorf("data: archive %s: %s: a .cls label of %d bytes (want one integer)", p, name, h.Size)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return fmt.Errorf("data: reading archive %s: member %s: %w", p, name, err)
			}
			v, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || v < 0 || v > 1<<24 {
				return fmt.Errorf("data: archive %s: %s holds %q, want a class number 0 or more", p, name, b)
			}
			if cls == nil {
				cls = map[string]int32{}
			}
			cls[sampleKey(name)] = int32(v)
			continue
		}
		if !isImageName(name) {
			if !sidecar(name) {
				out.ignore(p + ":" + name)
			}
			continue
		}
		e := rawEntry{rel: name, archive: ai, size: h.Size, label: noLabel}
		switch {
		case !gz:
			e.off = cr.n
		case keep && h.Size <= out.memLeft:
			a := &out.archives[ai]
			e.off = int64(len(a.blob))
			a.blob = append(a.blob, make([]byte, h.Size)...)
			if _, err := io.ReadFull(tr, a.blob[e.off:]); err != nil {
				return fmt.Errorf("data: reading archive %s: member %s: %w", p, name, err)
			}
			out.memLeft -= h.Size
		case keep: // too large to keep: stream it
			keep = false
			out.memLeft += int64(len(out.archives[ai].blob))
			out.archives[ai].blob = nil
		}
		out.entries = append(out.entries, e)
	}
	if !gz && len(out.entries) > first {
		// A truncated plain tar fails here rather than on some later Get.
		last := out.entries[len(out.entries)-1]
		if st, err := f.Stat(); err == nil && st.Size() < last.off+last.size {
			return fmt.Errorf("data: archive %s is truncated", p)
		}
	}
	if keep && out.archives[ai].blob == nil {
		out.archives[ai].blob = []byte{} // an archive of empty images is still in memory
	}
	if cls != nil {
		for i := first; i < len(out.entries); i++ {
			e := &out.entries[i]
			v, ok := cls[sampleKey(e.rel)]
			if !ok {
				return fmt.Errorf("data: archive %s: %s has no .cls label, but other samples have one", p, e.rel)
			}
			e.label = v
		}
	}
	return nil
}

// sampleKey is a member's WebDataset sample key: its path up to the first
// dot of the file name ("a/b.seg.jpg" -> "a/b").
func sampleKey(name string) string {
	dir, base := path.Split(name)
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	return dir + base
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

// listFileList reads a file list: one image path per line (relative to the
// list's folder, or absolute), optionally followed by whitespace and a
// label (a class name or number). Blank lines and lines starting with #
// are skipped. A path with spaces is taken whole when the line ends in an
// image extension.
func listFileList(p string, out *listing) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("data: file list: %w", err)
	}
	defer f.Close()
	out.fileList = true
	type row struct {
		path, label string
		line        int
	}
	var rows []row
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := row{path: line, line: ln}
		if !isImageName(line) {
			if i := strings.LastIndexAny(line, " \t,"); i > 0 {
				r.path, r.label = strings.TrimSpace(strings.TrimRight(line[:i], ",")), strings.TrimSpace(line[i+1:])
			}
		}
		if !isImageName(r.path) {
			return fmt.Errorf("data: file list %s, line %d: %q is not an image file of a kind we read (want PATH or PATH LABEL per line)", p, ln, r.path)
		}
		if len(rows) > 0 && (r.label == "") != (rows[0].label == "") {
			return fmt.Errorf("data: file list %s, line %d: some lines have a label and some do not (line %d)", p, ln, rows[0].line)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("data: reading file list %s: %w", p, err)
	}
	if len(rows) == 0 {
		return fmt.Errorf("data: file list %s lists no images", p)
	}
	labels := map[string]int32{}
	if rows[0].label != "" {
		numeric := true
		maxv := 0
		for _, r := range rows {
			v, err := strconv.Atoi(r.label)
			if err != nil || v < 0 || v > 1<<24 {
				numeric = false
				break
			}
			maxv = max(maxv, v)
		}
		if numeric {
			for v := 0; v <= maxv; v++ {
				out.labelNames = append(out.labelNames, strconv.Itoa(v))
			}
		} else {
			seen := map[string]bool{}
			for _, r := range rows {
				if !seen[r.label] {
					seen[r.label] = true
					out.labelNames = append(out.labelNames, r.label)
				}
			}
			sort.Strings(out.labelNames)
		}
		for i, n := range out.labelNames {
			labels[n] = int32(i)
		}
	}
	for _, r := range rows {
		e := rawEntry{rel: filepath.ToSlash(r.path), archive: -1, label: noLabel}
		if r.label != "" {
			v, ok := labels[r.label]
			if !ok { // a number with leading zeros or a sign
				n, _ := strconv.Atoi(r.label)
				v = int32(n)
			}
			e.label = v
		}
		out.entries = append(out.entries, e)
	}
	return nil
}

// expandShards turns a shard pattern into file names: brace ranges and
// lists in the WebDataset convention ("train-{000000..000146}.tar",
// "{a,b}.tar"), then shell globs. It returns nil when spec has neither.
func expandShards(spec string) ([]string, error) {
	if !strings.ContainsAny(spec, "{*?[") {
		return nil, nil
	}
	names, err := expandBraces(spec)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if !strings.ContainsAny(n, "*?[") {
			if _, err := os.Stat(n); err != nil {
				return nil, fmt.Errorf("data: shard %s of %s: %w", n, spec, err)
			}
			out = append(out, n)
			continue
		}
		m, err := filepath.Glob(n)
		if err != nil {
			return nil, fmt.Errorf("data: pattern %s: %w", n, err)
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("data: no files match %s", n)
		}
		sort.Strings(m)
		out = append(out, m...)
	}
	return out, nil
}

// expandBraces expands the first {..} group of s and recurses on the rest.
func expandBraces(s string) ([]string, error) {
	i := strings.IndexByte(s, '{')
	if i < 0 {
		return []string{s}, nil
	}
	j := strings.IndexByte(s[i:], '}')
	if j < 0 {
		return nil, fmt.Errorf("data: pattern %s: unclosed {", s)
	}
	j += i
	body, rest := s[i+1:j], s[j+1:]
	var alts []string
	if lo, hi, ok := strings.Cut(body, ".."); ok {
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || a < 0 || b < a || b-a > 1<<20 {
			return nil, fmt.Errorf("data: pattern %s: {%s} is not a range of whole numbers low..high", s, body)
		}
		width := 0
		if len(lo) > 1 && lo[0] == '0' {
			width = len(lo)
		}
		for v := a; v <= b; v++ {
			alts = append(alts, fmt.Sprintf("%0*d", width, v))
		}
	} else {
		alts = strings.Split(body, ",")
	}
	tails, err := expandBraces(rest)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range alts {
		for _, t := range tails {
			out = append(out, s[:i]+a+t)
		}
	}
	return out, nil
}

// errNotFound is the error for a missing source.
func errNotFound(src string) error {
	return fmt.Errorf("data: image folder %s does not exist (expected a directory, a .tar/.tar.gz/.tgz archive or shards such as train-{0000..0099}.tar, or a file list .txt, of class/image.jpg or image.jpg files)", src)
}

// listSource lists any kind of source, keeping up to memLimit bytes of
// gzipped archives' images in memory.
func listSource(src string, memLimit int64) (*listing, error) {
	out := &listing{memLeft: memLimit}
	shards, err := expandShards(src)
	if err != nil {
		return nil, err
	}
	if shards == nil {
		st, err := os.Stat(src)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, errNotFound(src)
			}
			return nil, fmt.Errorf("data: image folder: %w", err)
		}
		switch {
		case st.IsDir():
			err = listDir(src, out)
		case strings.EqualFold(filepath.Ext(src), ".txt"):
			err = listFileList(src, out)
		default:
			err = listTar(src, out)
		}
		if err != nil {
			out.closeAll()
			return nil, err
		}
		return out, nil
	}
	for _, s := range shards {
		if err := listTar(s, out); err != nil {
			out.closeAll()
			return nil, err
		}
	}
	return out, nil
}
