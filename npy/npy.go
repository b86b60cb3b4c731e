// Package npy reads and writes NumPy's .npy format (version 1.0): a magic
// string, a header dictionary in Python syntax and the raw little-endian
// values in C order. It covers what this project exchanges: float32 and
// int64 arrays of any shape.
//
// The format is small enough to write here rather than add a module for
// it; numpy.load reads what this package writes (see TestNumPy).
package npy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

const magic = "\x93NUMPY"

// Array is a decoded .npy file: its shape and its values, in Float32 or
// Int64 according to the file's type.
type Array struct {
	Shape   []int
	Float32 []float32 // descr '<f4'
	Int64   []int64   // descr '<i8'
}

func numel(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("npy: negative dimension in shape %v", shape)
		}
		n *= d
	}
	return n, nil
}

func header(descr string, shape []int) []byte {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	s := strings.Join(dims, ", ")
	if len(shape) == 1 {
		s += "," // a Python 1-tuple
	}
	h := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, s)
	// magic (6) + version (2) + length (2) + header + '\n', a multiple of 64.
	total := 10 + len(h) + 1
	pad := (64 - total%64) % 64
	h += strings.Repeat(" ", pad) + "\n"
	var b bytes.Buffer
	b.WriteString(magic)
	b.Write([]byte{1, 0})
	binary.Write(&b, binary.LittleEndian, uint16(len(h)))
	b.WriteString(h)
	return b.Bytes()
}

func checkLen(n int, shape []int) error {
	want, err := numel(shape)
	if err != nil {
		return err
	}
	if want != n {
		return fmt.Errorf("npy: %d values do not fill shape %v (%d)", n, shape, want)
	}
	return nil
}

// WriteFloat32 writes data with the given shape (C order) as '<f4'.
func WriteFloat32(w io.Writer, data []float32, shape ...int) error {
	if err := checkLen(len(data), shape); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.Write(header("<f4", shape))
	var buf [4]byte
	for _, v := range data {
		binary.LittleEndian.PutUint32(buf[:], math.Float32bits(v))
		bw.Write(buf[:])
	}
	return bw.Flush()
}

// WriteInt64 writes data with the given shape (C order) as '<i8'.
func WriteInt64(w io.Writer, data []int64, shape ...int) error {
	if err := checkLen(len(data), shape); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.Write(header("<i8", shape))
	var buf [8]byte
	for _, v := range data {
		binary.LittleEndian.PutUint64(buf[:], uint64(v))
		bw.Write(buf[:])
	}
	return bw.Flush()
}

// WriteFile writes to path through a temporary file renamed into place,
// so an interrupted write never leaves a truncated array behind.
func WriteFile(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	err = tmp.Chmod(0o644)      // CreateTemp makes files private; these are results to share
	if err == nil {
		err = write(tmp)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}

var (
	descrRE   = regexp.MustCompile(`'descr':\s*'([^']*)'`)
	fortranRE = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	shapeRE   = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

// Read decodes a .npy stream of '<f4' or '<i8' values in C order
// (versions 1.0 to 3.0).
func Read(r io.Reader) (*Array, error) {
	limit := -1 // bytes a header may claim without proof: the file size, when known
	if st, ok := r.(interface{ Stat() (os.FileInfo, error) }); ok {
		if fi, err := st.Stat(); err == nil && fi.Mode().IsRegular() {
			limit = int(fi.Size())
		}
	}
	br := bufio.NewReader(r)
	pre := make([]byte, 8)
	if _, err := io.ReadFull(br, pre); err != nil {
		return nil, fmt.Errorf("npy: reading the preamble: %w", err)
	}
	if string(pre[:6]) != magic {
		return nil, errors.New("npy: not a .npy file (bad magic)")
	}
	var hlen int
	switch pre[6] {
	case 1:
		var l uint16
		if err := binary.Read(br, binary.LittleEndian, &l); err != nil {
			return nil, fmt.Errorf("npy: %w", err)
		}
		hlen = int(l)
	case 2, 3:
		var l uint32
		if err := binary.Read(br, binary.LittleEndian, &l); err != nil {
			return nil, fmt.Errorf("npy: %w", err)
		}
		hlen = int(l)
	default:
		return nil, fmt.Errorf("npy: unsupported format version %d.%d", pre[6], pre[7])
	}
	h, err := readAtMost(br, hlen, limit)
	if err != nil {
		return nil, fmt.Errorf("npy: reading the %d-byte header: %w", hlen, err)
	}
	hs := string(h)
	d, f, s := descrRE.FindStringSubmatch(hs), fortranRE.FindStringSubmatch(hs), shapeRE.FindStringSubmatch(hs)
	if d == nil || f == nil || s == nil {
		return nil, fmt.Errorf("npy: malformed header %q", strings.TrimSpace(hs))
	}
	a := &Array{Shape: []int{}}
	for _, part := range strings.Split(s[1], ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		v, err := strconv.Atoi(part)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("npy: bad shape (%s)", s[1])
		}
		a.Shape = append(a.Shape, v)
	}
	n := 1
	for _, v := range a.Shape {
		if v > 0 && n > math.MaxInt/8/v {
			n = math.MaxInt / 8 // more than any stream holds; ReadFull below says so
			break
		}
		n *= v
	}
	if f[1] == "True" && len(a.Shape) > 1 {
		return nil, errors.New("npy: Fortran-order arrays are not supported")
	}
	switch d[1] {
	case "<f4":
		raw, err := readAtMost(br, 4*n, limit)
		if err != nil {
			return nil, fmt.Errorf("npy: reading %d float32 values: %w", n, err)
		}
		a.Float32 = make([]float32, n)
		for i := range a.Float32 {
			a.Float32[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case "<i8":
		raw, err := readAtMost(br, 8*n, limit)
		if err != nil {
			return nil, fmt.Errorf("npy: reading %d int64 values: %w", n, err)
		}
		a.Int64 = make([]int64, n)
		for i := range a.Int64 {
			a.Int64[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
	default:
		return nil, fmt.Errorf("npy: type %s not supported (want <f4 or <i8)", d[1])
	}
	return a, nil
}

// readAtMost reads exactly n bytes. Unless n is within limit (the file's
// size, when known) the buffer grows as bytes arrive rather than trusting
// n: a header may claim more than the stream holds.
func readAtMost(r io.Reader, n, limit int) ([]byte, error) {
	if n <= limit {
		b := make([]byte, n)
		if got, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("%d of %d bytes: %w", got, n, err)
		}
		return b, nil
	}
	var b bytes.Buffer
	b.Grow(min(n, 1<<20))
	got, err := io.CopyN(&b, r, int64(n))
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, fmt.Errorf("%d of %d bytes: %w", got, n, err)
	}
	return b.Bytes(), nil
}

// ReadFile reads the .npy file at path.
func ReadFile(path string) (*Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}
