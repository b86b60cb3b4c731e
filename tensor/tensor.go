// Package tensor holds the engine's float32 tensors and its seeded random
// number streams.
//
// Activations use the NHWC layout (batch, height, width, channels): it is
// the layout oneDNN's convolutions run fastest in without reorders, and the
// natural layout of decoded images. Weights keep PyTorch's layouts (OIHW for
// convolutions, [out, in] for linear layers) so checkpoints exchange with
// torchvision unchanged.
package tensor

import (
	"fmt"
	"strings"
)

// Tensor is a dense, row-major float32 array with a shape.
type Tensor struct {
	Shape []int
	Data  []float32
}

// New returns a zeroed tensor of the given shape.
func New(shape ...int) *Tensor {
	return &Tensor{Shape: append([]int(nil), shape...), Data: make([]float32, Numel(shape))}
}

// FromSlice wraps data (not copied) in a tensor of the given shape.
// It panics when the sizes disagree, which is a programming error.
func FromSlice(data []float32, shape ...int) *Tensor {
	if n := Numel(shape); n != len(data) {
		panic(fmt.Sprintf("tensor: %d values for shape %v (needs %d)", len(data), shape, n))
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: data}
}

// Numel is the number of elements of a shape.
func Numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Len is the number of elements.
func (t *Tensor) Len() int { return len(t.Data) }

// Dim returns the size of dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.Shape)
	}
	return t.Shape[i]
}

// Clone returns a deep copy.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...)}
}

// Zero sets every element to 0.
func (t *Tensor) Zero() { clear(t.Data) }

// SameShape reports whether a and b have identical shapes.
func SameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (t *Tensor) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Tensor%v", t.Shape)
	if len(t.Data) <= 8 {
		fmt.Fprintf(&b, "%v", t.Data)
	}
	return b.String()
}

// NCHWToNHWC converts a tensor stored as [N,C,H,W] to [N,H,W,C].
func NCHWToNHWC(t *Tensor) *Tensor {
	n, c, h, w := t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	out := New(n, h, w, c)
	for i := 0; i < n; i++ {
		for ch := 0; ch < c; ch++ {
			src := t.Data[(i*c+ch)*h*w:]
			for p := 0; p < h*w; p++ {
				out.Data[(i*h*w+p)*c+ch] = src[p]
			}
		}
	}
	return out
}

// NHWCToNCHW converts a tensor stored as [N,H,W,C] to [N,C,H,W].
func NHWCToNCHW(t *Tensor) *Tensor {
	n, h, w, c := t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	out := New(n, c, h, w)
	for i := 0; i < n; i++ {
		for ch := 0; ch < c; ch++ {
			dst := out.Data[(i*c+ch)*h*w:]
			for p := 0; p < h*w; p++ {
				dst[p] = t.Data[(i*h*w+p)*c+ch]
			}
		}
	}
	return out
}
