// Package checkpoint reads and writes named tensors as safetensors files,
// the format PyTorch's safetensors.torch.load_file reads. Files are written
// to a temporary name and renamed, so a crash never leaves a half-written
// checkpoint in place of a good one.
package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/simclr-go/simclr/tensor"
)

// File is the content of a checkpoint: float32 tensors, int64 tensors
// (such as batch norm's num_batches_tracked) and string metadata.
type File struct {
	Floats map[string]*tensor.Tensor
	Ints   map[string][]int64
	Meta   map[string]string
}

// New returns an empty File.
func New() *File {
	return &File{Floats: map[string]*tensor.Tensor{}, Ints: map[string][]int64{}, Meta: map[string]string{}}
}

// entry is a tensor's line in the safetensors header.
type entry struct {
	DType   string `json:"dtype"`
	Shape   []int  `json:"shape"`
	Offsets [2]int `json:"data_offsets"`
}

// Save writes f to path atomically. The format is written here rather than
// with a library because torchvision state dicts hold 0-d tensors
// (num_batches_tracked), which the Go safetensors libraries reject.
func Save(path string, f *File) error {
	names := make([]string, 0, len(f.Floats)+len(f.Ints))
	for n := range f.Floats {
		names = append(names, n)
	}
	for n := range f.Ints {
		if _, dup := f.Floats[n]; dup {
			return fmt.Errorf("checkpoint %s: %s is both a float and an int tensor", path, n)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	header := map[string]any{}
	if len(f.Meta) > 0 {
		header["__metadata__"] = f.Meta
	}
	off := 0
	for _, n := range names {
		if t, ok := f.Floats[n]; ok {
			header[n] = entry{"F32", append([]int{}, t.Shape...), [2]int{off, off + 4*t.Len()}}
			off += 4 * t.Len()
			continue
		}
		vals := f.Ints[n]
		shape := []int{len(vals)}
		if len(vals) == 1 {
			shape = []int{} // a scalar, as torch stores num_batches_tracked
		}
		header[n] = entry{"I64", shape, [2]int{off, off + 8*len(vals)}}
		off += 8 * len(vals)
	}
	hdr, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	for len(hdr)%8 != 0 { // the format pads the header with spaces
		hdr = append(hdr, ' ')
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	err = tmp.Chmod(0o644)      // CreateTemp makes it private; a checkpoint is not
	if err == nil {
		err = writeBody(tmp, hdr, names, f)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

func writeBody(w io.Writer, hdr []byte, names []string, f *File) error {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(hdr)))
	b.Write(hdr)
	for _, n := range names {
		if t, ok := f.Floats[n]; ok {
			for _, v := range t.Data {
				binary.Write(&b, binary.LittleEndian, math.Float32bits(v))
			}
		} else {
			binary.Write(&b, binary.LittleEndian, f.Ints[n])
		}
		if b.Len() > 1<<24 {
			if _, err := w.Write(b.Bytes()); err != nil {
				return err
			}
			b.Reset()
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// Load reads a safetensors file. F16, BF16 and F64 tensors are converted
// to float32 (torchvision weights may use them); I64 and I32 go to Ints.
func Load(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	f, err := parse(raw)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: not a valid safetensors file: %w", path, err)
	}
	return f, nil
}

var dtypeSize = map[string]int{"F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8, "I32": 4}

func parse(raw []byte) (*File, error) {
	if len(raw) < 8 {
		return nil, fmt.Errorf("%d bytes, too short for a header", len(raw))
	}
	n := binary.LittleEndian.Uint64(raw)
	if n > uint64(len(raw)-8) {
		return nil, fmt.Errorf("header of %d bytes in a %d-byte file", n, len(raw))
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &header); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	data := raw[8+n:]
	f := New()
	for name, msg := range header {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &f.Meta); err != nil {
				return nil, fmt.Errorf("metadata: %w", err)
			}
			continue
		}
		var e entry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("tensor %s: %w", name, err)
		}
		size, ok := dtypeSize[e.DType]
		if !ok {
			return nil, fmt.Errorf("tensor %s has unsupported type %s", name, e.DType)
		}
		lo, hi := e.Offsets[0], e.Offsets[1]
		count, fits := countFitting(e.Shape, len(data)/size)
		if !fits || lo < 0 || lo > hi || hi > len(data) || hi-lo != count*size {
			return nil, fmt.Errorf("tensor %s: bytes [%d, %d) do not hold %v %s in %d bytes of data", name, lo, hi, e.Shape, e.DType, len(data))
		}
		b := data[lo:hi]
		switch e.DType {
		case "I64", "I32":
			vals := make([]int64, count)
			for i := range vals {
				if size == 8 {
					vals[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
				} else {
					vals[i] = int64(int32(binary.LittleEndian.Uint32(b[4*i:])))
				}
			}
			f.Ints[name] = vals
			continue
		}
		t := tensor.New(e.Shape...)
		for i := range t.Data {
			switch e.DType {
			case "F32":
				t.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			case "F64":
				t.Data[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
			case "BF16":
				t.Data[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
			case "F16":
				t.Data[i] = halfToFloat(binary.LittleEndian.Uint16(b[2*i:]))
			}
		}
		f.Floats[name] = t
	}
	return f, nil
}

// countFitting returns the number of values of shape when every dimension
// is non-negative and the count is at most limit, checking each product
// before it can overflow: a header may claim any shape.
func countFitting(shape []int, limit int) (int, bool) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d > 0 && n > limit/d {
			n = limit + 1 // too many, unless a later dimension is 0
			continue
		}
		n *= d
	}
	return n, n <= limit
}

// Names lists the float tensors' names, sorted.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Floats))
	for n := range f.Floats {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// halfToFloat converts an IEEE 754 half-precision value.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := int32(h>>10) & 0x1f
	frac := uint32(h & 0x3ff)
	switch {
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		for frac&0x400 == 0 {
			frac <<= 1
			exp--
		}
		exp++
		frac &= 0x3ff
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	}
	return math.Float32frombits(sign | uint32(exp+112)<<23 | frac<<13)
}
