package data

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/simclr-go/simclr/tensor"
)

// toyArray is n 2x2 RGB images; image i's bytes are i*12+k, label i%3.
func toyArray(t testing.TB, n int) *Array {
	pix := make([]uint8, n*12)
	labels := make([]int32, n)
	for i := range pix {
		pix[i] = uint8(i)
	}
	for i := range labels {
		labels[i] = int32(i % 3)
	}
	a, err := NewArray("toy", 2, 2, 3, pix, labels, []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// augment writes two random "views" per sample, seeded by (epoch, index),
// after a random pause so that workers finish out of order.
func augment(s Sample, epoch, index int, out []float32) error {
	time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
	g := tensor.NewRNG(7, "augment", uint64(epoch), uint64(index))
	for i := range out {
		out[i] = float32(s.RGB[i%len(s.RGB)]) + float32(g.Float64())
	}
	return nil
}

type flatBatch struct {
	Data    []float32
	Labels  []int
	Indices []int
	Index   int
}

func collect(t *testing.T, l *Loader, epoch int) []flatBatch {
	t.Helper()
	var out []flatBatch
	for b, err := range l.Batches(epoch) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, flatBatch{slices.Clone(b.Data), slices.Clone(b.Labels), slices.Clone(b.Indices), b.Index})
	}
	return out
}

func newLoader(t *testing.T, ds Dataset, o LoaderOptions) *Loader {
	t.Helper()
	l, err := NewLoader(ds, o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLoaderWorkersAgree(t *testing.T) {
	ds := toyArray(t, 103)
	o := LoaderOptions{BatchSize: 16, Shuffle: true, Seed: 1, SampleFloats: 24, Transform: augment}
	o.Workers = 1
	ref := collect(t, newLoader(t, ds, o), 3)
	if len(ref) != 7 || len(ref[6].Indices) != 103-6*16 {
		t.Fatalf("%d batches, last of %d", len(ref), len(ref[len(ref)-1].Indices))
	}
	seen := map[int]bool{}
	for _, b := range ref {
		for j, i := range b.Indices {
			seen[i] = true
			if b.Labels[j] != i%3 {
				t.Fatalf("index %d label %d", i, b.Labels[j])
			}
		}
	}
	if len(seen) != 103 {
		t.Fatalf("epoch covers %d of 103 samples", len(seen))
	}
	for _, w := range []int{4, 13} {
		o.Workers = w
		o.Prefetch = w / 2
		if got := collect(t, newLoader(t, ds, o), 3); !reflect.DeepEqual(got, ref) {
			t.Fatalf("Workers=%d differs from Workers=1", w)
		}
	}
}

func TestLoaderShuffle(t *testing.T) {
	ds := toyArray(t, 50)
	o := LoaderOptions{BatchSize: 10, Shuffle: true, Seed: 5, SampleFloats: 12, Workers: 2}
	l := newLoader(t, ds, o)
	e0, e1 := collect(t, l, 0), collect(t, l, 1)
	if reflect.DeepEqual(e0[0].Indices, e1[0].Indices) {
		t.Error("epochs 0 and 1 have the same order")
	}
	if again := collect(t, newLoader(t, ds, o), 1); !reflect.DeepEqual(again, e1) {
		t.Error("same seed and epoch, different batches")
	}
	o.Seed = 6
	if other := collect(t, newLoader(t, ds, o), 1); reflect.DeepEqual(other[0].Indices, e1[0].Indices) {
		t.Error("seeds 5 and 6 give the same order")
	}
	// ToFloats: index 3's bytes are 36..47.
	o.Shuffle = false
	b := collect(t, newLoader(t, ds, o), 0)[0]
	if b.Indices[3] != 3 || b.Data[3*12] != 36.0/255 || b.Data[3*12+11] != 47.0/255 {
		t.Errorf("unshuffled ToFloats: index %d data %v", b.Indices[3], b.Data[36:48])
	}
}

func TestLoaderShardsAndDropLast(t *testing.T) {
	ds := toyArray(t, 37)
	for _, drop := range []bool{false, true} {
		o := LoaderOptions{BatchSize: 8, Shuffle: true, Seed: 9, DropLast: drop, SampleFloats: 24, Transform: augment, Workers: 3}
		global := collect(t, newLoader(t, ds, o), 2)
		want := 5
		if drop {
			want = 4
		}
		if len(global) != want {
			t.Fatalf("DropLast %v: %d batches, want %d", drop, len(global), want)
		}
		if !drop && len(global[4].Indices) != 5 {
			t.Fatalf("last batch has %d samples, want 5", len(global[4].Indices))
		}
		for _, size := range []int{2, 4} {
			shards := make([][]flatBatch, size)
			for r := range shards {
				o.Shard = Shard{Rank: r, Size: size}
				shards[r] = collect(t, newLoader(t, ds, o), 2)
				if len(shards[r]) != len(global) {
					t.Fatalf("rank %d/%d: %d batches, want %d", r, size, len(shards[r]), len(global))
				}
			}
			for b, g := range global {
				var cat flatBatch
				for r := range shards {
					s := shards[r][b]
					if !drop && b < 4 || drop {
						if len(s.Indices) != 8/size {
							t.Fatalf("rank %d batch %d: %d samples", r, b, len(s.Indices))
						}
					}
					cat.Data = append(cat.Data, s.Data...)
					cat.Labels = append(cat.Labels, s.Labels...)
					cat.Indices = append(cat.Indices, s.Indices...)
				}
				if !reflect.DeepEqual(cat.Data, g.Data) || !reflect.DeepEqual(cat.Indices, g.Indices) || !reflect.DeepEqual(cat.Labels, g.Labels) {
					t.Fatalf("size %d batch %d: shards do not concatenate to the global batch", size, b)
				}
			}
		}
		o.Shard = Shard{}
	}
}

// failing fails Get for one index with a file-like name.
type failing struct {
	Dataset
	bad int
}

func (f failing) Get(i int) (Sample, error) {
	if i == f.bad {
		return Sample{}, fmt.Errorf("decoding imgs/%d.jpg: %w", i, errors.New("unexpected EOF"))
	}
	return f.Dataset.Get(i)
}

// waitGoroutines waits for the goroutine count to come back to n.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < 100 && runtime.NumGoroutine() > n; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > n {
		t.Errorf("%d goroutines, want %d: leak", g, n)
	}
}

func TestLoaderErrors(t *testing.T) {
	base := runtime.NumGoroutine()
	ds := failing{toyArray(t, 100), 42}
	l := newLoader(t, ds, LoaderOptions{BatchSize: 10, SampleFloats: 12, Workers: 4, Prefetch: 3})
	it := l.Epoch(0)
	n := 0
	for it.Next() {
		n++
	}
	if n != 4 || it.Err() == nil || !strings.Contains(it.Err().Error(), "imgs/42.jpg") {
		t.Fatalf("%d batches, err %v; want 4 and an error naming imgs/42.jpg", n, it.Err())
	}
	if it.Next() {
		t.Error("Next after an error")
	}
	it.Close()
	waitGoroutines(t, base)

	// Transform errors name the sample.
	l = newLoader(t, toyArray(t, 20), LoaderOptions{BatchSize: 4, SampleFloats: 12, Workers: 2,
		Transform: func(s Sample, _, index int, out []float32) error {
			if index == 13 {
				return errors.New("crop too large")
			}
			return ToFloats(s, 0, index, out)
		}})
	var err error
	for _, err = range l.Batches(0) {
	}
	if err == nil || !strings.Contains(err.Error(), "toy/13") || !strings.Contains(err.Error(), "crop too large") {
		t.Fatalf("transform error: %v", err)
	}
	waitGoroutines(t, base)

	// Stopping early (break, or Close mid-epoch) stops the workers.
	l = newLoader(t, toyArray(t, 200), LoaderOptions{BatchSize: 4, SampleFloats: 24, Workers: 4, Transform: augment})
	for range l.Batches(0) {
		break
	}
	it = l.Epoch(1)
	it.Next()
	it.Next()
	it.Close()
	it.Close()
	if it.Next() {
		t.Error("Next after Close")
	}
	waitGoroutines(t, base)

	// A corrupt image in a folder: the loader's error names the file.
	dir := t.TempDir()
	good := encJPEG(t, testImage(2, 2, 1))
	writeFiles(t, dir, map[string][]byte{"a.jpg": good, "b.jpg": good[:20], "c.jpg": good})
	f, err := OpenImageFolder(dir, FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l = newLoader(t, f, LoaderOptions{BatchSize: 2, SampleFloats: 12})
	for _, err = range l.Batches(0) {
	}
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "b.jpg")) {
		t.Fatalf("corrupt file: %v", err)
	}

	for _, o := range []LoaderOptions{
		{BatchSize: 0, SampleFloats: 1},
		{BatchSize: 4},
		{BatchSize: 6, SampleFloats: 1, Shard: Shard{0, 4}},
		{BatchSize: 4, SampleFloats: 1, Shard: Shard{2, 2}},
	} {
		if _, err := NewLoader(ds, o); err == nil {
			t.Errorf("options %+v: no error", o)
		}
	}
}

func TestLoaderReusesBuffers(t *testing.T) {
	l := newLoader(t, toyArray(t, 64), LoaderOptions{BatchSize: 8, SampleFloats: 12, Workers: 2, Prefetch: 2})
	bufs := map[*float32]bool{}
	for e := 0; e < 3; e++ {
		for b, err := range l.Batches(e) {
			if err != nil {
				t.Fatal(err)
			}
			bufs[&b.Data[0]] = true
		}
	}
	if len(bufs) != 3 { // Prefetch + the consumer's
		t.Errorf("%d distinct batch buffers over 3 epochs, want 3", len(bufs))
	}
	// After warm-up an epoch allocates nothing like a batch buffer (32 KiB
	// here): only the order, channels and per-sample decodes.
	fill := func(s Sample, _, _ int, out []float32) error {
		for i := range out {
			out[i] = float32(s.RGB[i%12])
		}
		return nil
	}
	l = newLoader(t, toyArray(t, 64), LoaderOptions{BatchSize: 8, SampleFloats: 1024, Workers: 2, Transform: fill})
	epoch := func() {
		for range l.Batches(0) {
		}
	}
	epoch()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	epoch()
	runtime.ReadMemStats(&m1)
	if d := m1.TotalAlloc - m0.TotalAlloc; d > 16<<10 {
		t.Errorf("an epoch after warm-up allocated %d bytes", d)
	}
}

func TestSubsetAndSplits(t *testing.T) {
	ds := toyArray(t, 300)
	sub, err := Subset(ds, []int{5, 2, 299})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := sub.Get(2); sub.Len() != 3 || s.Name != "toy/299" || sub.Label(1) != 2 {
		t.Errorf("Subset: len %d, %s", sub.Len(), s.Name)
	}
	if _, err := Subset(ds, []int{300}); err == nil {
		t.Error("Subset out of range: no error")
	}

	tr, va, err := SplitTrainVal(ds, 0.1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Len() != 270 || va.Len() != 30 {
		t.Fatalf("split %d/%d", tr.Len(), va.Len())
	}
	all := append(slices.Clone(tr.Indices()), va.Indices()...)
	slices.Sort(all)
	for i, v := range all {
		if v != i {
			t.Fatal("train and val do not partition the dataset")
		}
	}
	tr2, va2, _ := SplitTrainVal(ds, 30, 3)
	if !reflect.DeepEqual(va.Indices(), va2.Indices()) || !reflect.DeepEqual(tr.Indices(), tr2.Indices()) {
		t.Error("same seed: fraction 0.1 and count 30 differ")
	}
	_, va3, _ := SplitTrainVal(ds, 30, 4)
	if reflect.DeepEqual(va.Indices(), va3.Indices()) {
		t.Error("seeds 3 and 4 give the same split")
	}
	for _, v := range []float64{0, 300, 2.5, -1} {
		if _, _, err := SplitTrainVal(ds, v, 1); err == nil {
			t.Errorf("SplitTrainVal(%v): no error", v)
		}
	}

	one, err := BalancedFraction(ds, 0.1, 8)
	if err != nil {
		t.Fatal(err)
	}
	ten, _ := BalancedFraction(ds, 0.5, 8)
	count := map[int]int{}
	for i := 0; i < one.Len(); i++ {
		count[one.Label(i)]++
	}
	if one.Len() != 30 || count[0] != 10 || count[1] != 10 || count[2] != 10 {
		t.Errorf("10%%: %d samples, per class %v", one.Len(), count)
	}
	for _, i := range one.Indices() {
		if _, ok := slices.BinarySearch(ten.Indices(), i); !ok {
			t.Fatal("the 10% subset is not inside the 50% one")
		}
	}
	again, _ := BalancedFraction(ds, 0.1, 8)
	other, _ := BalancedFraction(ds, 0.1, 9)
	if !reflect.DeepEqual(again.Indices(), one.Indices()) || reflect.DeepEqual(other.Indices(), one.Indices()) {
		t.Error("BalancedFraction is not determined by its seed")
	}
	// Through a subset (Labeler passes through) and on unlabeled data.
	if b, err := BalancedFraction(tr, 0.01, 1); err != nil || b.Len() != 3 {
		t.Errorf("BalancedFraction of a split: %v", err)
	}
	un, _ := NewArray("u", 1, 1, 1, make([]uint8, 5), nil, nil)
	if _, err := BalancedFraction(un, 0.1, 1); err == nil {
		t.Error("unlabeled: no error")
	}

	c, err := Concat(ds, sub)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := c.Get(301); c.Len() != 303 || s.Name != "toy/2" || c.(Labeler).Label(302) != 2 {
		t.Errorf("Concat: len %d, %s", c.Len(), s.Name)
	}
}

// The real CIFAR-10 JPEG archive, when present: index and decode all of it.
func BenchmarkCIFAR10TarGz(b *testing.B) {
	const p = "/work/shared/data/cifar10-train.tar.gz"
	if _, err := os.Stat(p); err != nil {
		b.Skip("no", p)
	}
	for b.Loop() {
		t0 := time.Now()
		ds, err := OpenImageFolder(p, FolderOptions{})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		for i := 0; i < ds.Len(); i++ {
			if _, err := ds.Get(i); err != nil {
				b.Fatal(err)
			}
		}
		t2 := time.Now()
		l, err := NewLoader(ds, LoaderOptions{BatchSize: 500, SampleFloats: 32 * 32 * 3, Shuffle: true})
		if err != nil {
			b.Fatal(err)
		}
		for _, err := range l.Batches(0) {
			if err != nil {
				b.Fatal(err)
			}
		}
		t3 := time.Now()
		b.ReportMetric(t1.Sub(t0).Seconds(), "index-s")
		b.ReportMetric(t2.Sub(t1).Seconds(), "decode1-s")
		b.ReportMetric(t3.Sub(t2).Seconds(), "loader-s")
		b.Logf("%d images, %d classes: index %v, decode on 1 goroutine %v, loader epoch (%d workers) %v",
			ds.Len(), len(ds.Classes()), t1.Sub(t0), t2.Sub(t1), runtime.GOMAXPROCS(0), t3.Sub(t2))
	}
}

// TestEpochFrom: starting mid-epoch gives the tail of the full epoch.
func TestEpochFrom(t *testing.T) {
	labels := make([]int32, 20)
	ds, err := NewArray("t", 4, 4, 1, make([]uint8, 20*16), labels, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLoader(ds, LoaderOptions{BatchSize: 4, Shuffle: true, Seed: 9, Workers: 2, SampleFloats: 48})
	if err != nil {
		t.Fatal(err)
	}
	var full [][]int
	for b, err := range l.Batches(2) {
		if err != nil {
			t.Fatal(err)
		}
		full = append(full, append([]int(nil), b.Indices...))
	}
	it := l.EpochFrom(2, 3)
	defer it.Close()
	k := 3
	for it.Next() {
		b := it.Batch()
		if b.Index != k || fmt.Sprint(b.Indices) != fmt.Sprint(full[k]) {
			t.Errorf("batch %d from EpochFrom: %d %v, want %v", k, b.Index, b.Indices, full[k])
		}
		k++
	}
	if k != len(full) {
		t.Errorf("EpochFrom gave batches up to %d, want %d", k, len(full))
	}
}

func TestRandomSubset(t *testing.T) {
	ds := toyArray(t, 300)
	a, err := RandomSubset(ds, 40, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := RandomSubset(ds, 40, 0)
	if a.Len() != 40 || !reflect.DeepEqual(a.Indices(), b.Indices()) || !slices.IsSorted(a.Indices()) {
		t.Fatalf("RandomSubset: %d samples %v (again: %v)", a.Len(), a.Indices(), b.Indices())
	}
	if len(slices.Compact(slices.Clone(a.Indices()))) != 40 {
		t.Error("RandomSubset repeats a sample")
	}
	if a.Indices()[39] < 100 {
		t.Errorf("RandomSubset took only early samples: %v", a.Indices())
	}
	if all, _ := RandomSubset(ds, 500, 0); all.Len() != 300 {
		t.Errorf("RandomSubset(500) of 300: %d samples", all.Len())
	}
	if _, err := RandomSubset(ds, 0, 0); err == nil {
		t.Error("RandomSubset(0): no error")
	}
}
