package nn

import (
	"fmt"
	"sort"
	"strings"

	"github.com/simclr-go/simclr/checkpoint"
)

// SaveState adds every parameter, buffer and counter to f, with prefix
// before each name.
func (r *Registry) SaveState(f *checkpoint.File, prefix string) {
	for _, p := range r.store.params {
		f.Floats[prefix+p.Name] = p.Value.Clone()
	}
	for _, b := range r.store.buffers {
		f.Floats[prefix+b.Name] = b.Tensor.Clone()
	}
	for _, c := range r.store.counters {
		f.Ints[prefix+c.Name] = []int64{c.Value}
	}
}

// LoadOptions say how strictly a state must match.
type LoadOptions struct {
	// Prefix is stripped from the file's names before matching.
	Prefix string
	// Skip, if set, leaves out the registry's names it returns true for
	// (e.g. the projection head when only the encoder is wanted).
	Skip func(name string) bool
	// AllowMissing accepts registry names absent from the file; they keep
	// their current values.
	AllowMissing bool
}

// LoadState copies tensors from f into the registry, by name. A shape
// mismatch is always an error; a name in the registry but not in the file
// is one unless AllowMissing. It returns the file's names under Prefix that
// the registry did not use.
func (r *Registry) LoadState(f *checkpoint.File, o LoadOptions) (unused []string, err error) {
	used := map[string]bool{}
	var missing []string
	load := func(name string, dst []float32, shape []int) error {
		t, ok := f.Floats[o.Prefix+name]
		if !ok {
			missing = append(missing, name)
			return nil
		}
		used[o.Prefix+name] = true
		if len(t.Shape) != len(shape) || t.Len() != len(dst) {
			return fmt.Errorf("nn: %s has shape %v in the file, the model needs %v", name, t.Shape, shape)
		}
		for i := range shape {
			if t.Shape[i] != shape[i] {
				return fmt.Errorf("nn: %s has shape %v in the file, the model needs %v", name, t.Shape, shape)
			}
		}
		copy(dst, t.Data)
		return nil
	}
	skip := func(name string) bool { return o.Skip != nil && o.Skip(name) }
	for _, p := range r.store.params {
		if !skip(p.Name) {
			if err := load(p.Name, p.Value.Data, p.Value.Shape); err != nil {
				return nil, err
			}
		}
	}
	for _, b := range r.store.buffers {
		if !skip(b.Name) {
			if err := load(b.Name, b.Tensor.Data, b.Tensor.Shape); err != nil {
				return nil, err
			}
		}
	}
	for _, c := range r.store.counters {
		if skip(c.Name) {
			continue
		}
		if v, ok := f.Ints[o.Prefix+c.Name]; ok && len(v) == 1 {
			c.Value = v[0]
			used[o.Prefix+c.Name] = true
		}
	}
	if len(missing) > 0 && !o.AllowMissing {
		sort.Strings(missing)
		if len(missing) > 5 {
			missing = append(missing[:5], fmt.Sprintf("and %d more", len(missing)-5))
		}
		return nil, fmt.Errorf("nn: the file lacks %s", strings.Join(missing, ", "))
	}
	for name := range f.Floats {
		if strings.HasPrefix(name, o.Prefix) && !used[name] {
			unused = append(unused, name)
		}
	}
	sort.Strings(unused)
	return unused, nil
}
