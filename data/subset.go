package data

import (
	"fmt"
	"math"
	"sort"

	"github.com/simclr-go/simclr/tensor"
)

// SubsetDataset is a view of some of another dataset's samples.
type SubsetDataset struct {
	ds      Dataset
	indices []int
}

// Subset returns the samples of ds at indices, in that order; the slice is
// kept, not copied.
func Subset(ds Dataset, indices []int) (*SubsetDataset, error) {
	for _, i := range indices {
		if i < 0 || i >= ds.Len() {
			return nil, fmt.Errorf("data: subset index %d out of range [0, %d)", i, ds.Len())
		}
	}
	return &SubsetDataset{ds: ds, indices: indices}, nil
}

// Len returns the number of samples in the subset.
func (s *SubsetDataset) Len() int { return len(s.indices) }

// Classes returns the parent's classes.
func (s *SubsetDataset) Classes() []string { return s.ds.Classes() }

// Get returns the parent's sample Indices()[i].
func (s *SubsetDataset) Get(i int) (Sample, error) {
	if err := checkIndex(i, len(s.indices)); err != nil {
		return Sample{}, err
	}
	return s.ds.Get(s.indices[i])
}

// Label returns sample i's label, decoding it only if the parent cannot
// tell (then -1 on a decoding error, which Get would report).
func (s *SubsetDataset) Label(i int) int {
	l, err := labelOf(s.ds, s.indices[i])
	if err != nil {
		return -1
	}
	return l
}

// StreamOrder is the parent's order restricted to the subset, when the
// parent is read as a stream (see Streamed); nil otherwise.
func (s *SubsetDataset) StreamOrder(seed uint64, epoch int, shuffle bool) []int {
	p, ok := s.ds.(Streamed)
	if !ok {
		return nil
	}
	order := p.StreamOrder(seed, epoch, shuffle)
	if order == nil {
		return nil
	}
	if !shuffle {
		return seqInts(len(s.indices)) // indices are ascending, as is the parent's plain order
	}
	at := make([]int32, s.ds.Len()) // parent index -> subset position + 1
	for k, i := range s.indices {
		at[i] = int32(k + 1)
	}
	out := make([]int, 0, len(s.indices))
	for _, i := range order {
		if k := at[i]; k > 0 {
			out = append(out, int(k-1))
		}
	}
	if len(out) < len(s.indices) { // an index listed twice: its later places go last
		seen := make([]bool, len(s.indices))
		for _, k := range out {
			seen[k] = true
		}
		for k, v := range seen {
			if !v {
				out = append(out, k)
			}
		}
	}
	return out
}

// OpenStream opens the parent's stream over the subset's samples.
func (s *SubsetDataset) OpenStream(indices []int) Stream {
	p := s.ds.(Streamed)
	parent := make([]int, len(indices))
	for k, i := range indices {
		parent[k] = s.indices[i]
	}
	return subsetStream{p.OpenStream(parent), s}
}

type subsetStream struct {
	st Stream
	s  *SubsetDataset
}

func (ss subsetStream) Get(i int) (Sample, error) {
	if err := checkIndex(i, len(ss.s.indices)); err != nil {
		return Sample{}, err
	}
	return ss.st.Get(ss.s.indices[i])
}

func (ss subsetStream) Close() error { return ss.st.Close() }

// Indices returns the parent indices (do not modify).
func (s *SubsetDataset) Indices() []int { return s.indices }

// SplitTrainVal splits ds at random into train and validation parts. val
// below 1 is the validation fraction (rounded), 1 or more a count (e.g.
// 5000 for CIFAR-10's usual 45k/5k). The split depends only on seed and
// Len; each part keeps the parent's order, which keeps archive reads local.
func SplitTrainVal(ds Dataset, val float64, seed uint64) (train, valid *SubsetDataset, err error) {
	n := ds.Len()
	var nv int
	switch {
	case val > 0 && val < 1:
		nv = int(math.Round(val * float64(n)))
	case val >= 1 && val == math.Trunc(val):
		nv = int(val)
	default:
		return nil, nil, fmt.Errorf("data: held-out part %v is neither a fraction in (0, 1) nor a whole count", val)
	}
	if nv < 1 || nv >= n {
		return nil, nil, fmt.Errorf("data: holding out %d of %d samples leaves an empty part", nv, n)
	}
	perm := tensor.NewRNG(seed, "split-train-val").Perm(n)
	v, t := perm[:nv], perm[nv:]
	sort.Ints(v)
	sort.Ints(t)
	return &SubsetDataset{ds, t}, &SubsetDataset{ds, v}, nil
}

// BalancedFraction picks round(fraction x count) samples of every class
// (at least one), at random by seed: the 1% and 10% label subsets of
// semi-supervised evaluation. A class's picks are a prefix of one
// permutation per (seed, class), so with the same seed the 1% subset lies
// inside the 10% one. Every sample must be labeled.
func BalancedFraction(ds Dataset, fraction float64, seed uint64) (*SubsetDataset, error) {
	if !(fraction > 0 && fraction <= 1) {
		return nil, fmt.Errorf("data: label fraction %v not in (0, 1]", fraction)
	}
	nc := len(ds.Classes())
	if nc == 0 {
		return nil, fmt.Errorf("data: a label fraction needs labelled images, and these are unlabelled")
	}
	byClass := make([][]int, nc)
	for i := 0; i < ds.Len(); i++ {
		l, err := labelOf(ds, i)
		if err != nil {
			return nil, err
		}
		if l < 0 || l >= nc {
			return nil, fmt.Errorf("data: sample %d has label %d, want 0..%d", i, l, nc-1)
		}
		byClass[l] = append(byClass[l], i)
	}
	var out []int
	for c, idx := range byClass {
		if len(idx) == 0 {
			continue
		}
		k := max(1, int(math.Round(fraction*float64(len(idx)))))
		perm := tensor.NewRNG(seed, "balanced-fraction", uint64(c)).Perm(len(idx))
		for _, p := range perm[:k] {
			out = append(out, idx[p])
		}
	}
	sort.Ints(out)
	return &SubsetDataset{ds, out}, nil
}

// RandomSubset picks n of ds's samples at random by seed, in index order:
// a quick trial's smaller dataset that, unlike the first n samples, spans
// the classes of a folder sorted by class. n at or above ds.Len() keeps
// every sample.
func RandomSubset(ds Dataset, n int, seed uint64) (*SubsetDataset, error) {
	if n < 1 {
		return nil, fmt.Errorf("data: random subset of %d samples: need at least 1", n)
	}
	if n >= ds.Len() {
		return &SubsetDataset{ds, seqInts(ds.Len())}, nil
	}
	pick := tensor.NewRNG(seed, "random-subset").Perm(ds.Len())[:n]
	sort.Ints(pick)
	return &SubsetDataset{ds, pick}, nil
}

func seqInts(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
