package data

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// manyFiles is n small PNGs in 4 class folders, named so that archive
// order (tarBytes writes names in reverse) mixes nothing by class.
func manyFiles(t testing.TB, n int) map[string][]byte {
	files := map[string][]byte{}
	for i := 0; i < n; i++ {
		files[fmt.Sprintf("c%d/%04d.png", i%4, i)] = encPNG(t, testImage(3, 2, i))
	}
	return files
}

func writeTar(t testing.TB, p string, files map[string][]byte, gz bool) string {
	t.Helper()
	if err := os.WriteFile(p, tarBytes(t, files, gz), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// epochBatches returns an epoch's batches as (indices, data) copies.
func epochBatches(t *testing.T, l *Loader, epoch, first int) (idx [][]int, pix [][]float32) {
	t.Helper()
	it := l.EpochFrom(epoch, first)
	defer it.Close()
	for it.Next() {
		b := it.Batch()
		idx = append(idx, slices.Clone(b.Indices))
		pix = append(pix, slices.Clone(b.Data))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return idx, pix
}

// A gzipped archive streams through a shuffle buffer: every epoch visits
// every image once, in an order fixed by (seed, epoch) whatever the
// workers, resumes mid-epoch exactly, and holds a bounded number of images.
func TestGzipStreamEpochs(t *testing.T) {
	const n, k = 203, 32
	p := writeTar(t, filepath.Join(t.TempDir(), "d.tar.gz"), manyFiles(t, n), true)
	ds, err := OpenImageFolder(p, FolderOptions{ShuffleBuffer: k, InMemory: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	ds.readahead = 8
	if ds.Len() != n || len(ds.Classes()) != 4 {
		t.Fatalf("len %d classes %v", ds.Len(), ds.Classes())
	}
	opts := LoaderOptions{BatchSize: 16, Shuffle: true, Seed: 3, SampleFloats: 18}
	var ref [][]int
	for _, workers := range []int{1, 4} {
		opts.Workers = workers
		l, err := NewLoader(ds, opts)
		if err != nil {
			t.Fatal(err)
		}
		idx, _ := epochBatches(t, l, 1, 0)
		all := slices.Concat(idx...)
		sorted := slices.Sorted(slices.Values(all))
		if !reflect.DeepEqual(sorted, seqInts(n)) {
			t.Fatalf("workers %d: epoch is not a permutation of the %d images", workers, n)
		}
		if ref == nil {
			ref = idx
		} else if !reflect.DeepEqual(idx, ref) {
			t.Errorf("order differs with %d workers", workers)
		}
		tail, _ := epochBatches(t, l, 1, 5)
		if !reflect.DeepEqual(tail, ref[5:]) {
			t.Errorf("EpochFrom(1, 5) is not the epoch's tail")
		}
		other, _ := epochBatches(t, l, 2, 0)
		if reflect.DeepEqual(other, ref) {
			t.Errorf("epochs 1 and 2 have the same order")
		}
	}
	// The order mixes beyond a batch but each image leaves the buffer at
	// most k places after the reader met it.
	order := ds.StreamOrder(3, 1, true)
	if slices.Equal(order, seqInts(n)) {
		t.Error("shuffled order is index order")
	}
	for pos, i := range order {
		if i > pos+k {
			t.Fatalf("image %d at place %d: more than %d places early", i, pos, k)
		}
	}
	st := ds.openStream(order)
	for _, i := range order {
		if _, err := st.Get(i); err != nil {
			t.Fatal(err)
		}
	}
	if st.peak > k+ds.readahead+1 {
		t.Errorf("stream held %d images at once, want at most %d", st.peak, k+ds.readahead+1)
	}
	st.Close()
	if st.buffered() != 0 {
		t.Error("stream keeps images after Close")
	}
}

// Random access into a gzipped archive reads forward, or starts over.
func TestGzipRandomGet(t *testing.T) {
	files := manyFiles(t, 40)
	p := writeTar(t, filepath.Join(t.TempDir(), "d.tgz"), files, true)
	ds, err := OpenImageFolder(p, FolderOptions{InMemory: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	for _, i := range []int{5, 30, 31, 2, 39, 0} {
		s, err := ds.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		rel := ds.Name(i)[len(p)+1:]
		want, _, _, _ := decodeRGB(files[rel], rel)
		if s.Name != ds.Name(i) || s.W != want {
			t.Errorf("Get(%d) = %s %dx%d", i, s.Name, s.W, s.H)
		}
	}
	// A subset (--limit, --val) of a stream streams too.
	sub, err := RandomSubset(ds, 17, 1)
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLoader(sub, LoaderOptions{BatchSize: 5, Shuffle: true, SampleFloats: 18, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := epochBatches(t, l, 0, 0)
	if got := slices.Sorted(slices.Values(slices.Concat(idx...))); !reflect.DeepEqual(got, seqInts(17)) {
		t.Errorf("subset epoch: %v", got)
	}
}

// A plain tar is read in place, with the unpacked folder's order, so the
// batches (and so training) are the same.
func TestPlainTarMatchesFolder(t *testing.T) {
	files := manyFiles(t, 60)
	dir := t.TempDir()
	writeFiles(t, dir, files)
	p := writeTar(t, filepath.Join(t.TempDir(), "d.tar"), files, false)
	opts := LoaderOptions{BatchSize: 8, Shuffle: true, Seed: 5, SampleFloats: 18, Workers: 3}
	var ref [][]float32
	for _, src := range []string{dir, p} {
		ds, err := OpenImageFolder(src, FolderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ds.StreamOrder(0, 0, true) != nil {
			t.Errorf("%s is streamed", src)
		}
		l, err := NewLoader(ds, opts)
		if err != nil {
			t.Fatal(err)
		}
		_, pix := epochBatches(t, l, 0, 0)
		if ref == nil {
			ref = pix
		} else if !reflect.DeepEqual(pix, ref) {
			t.Error("the tar's batches differ from the folder's")
		}
		ds.Close()
	}
}

// Shards in WebDataset's convention: labels from .cls members, a brace
// pattern, plain and gzipped shards mixed.
func TestWebDatasetShards(t *testing.T) {
	dir := t.TempDir()
	for s := 0; s < 3; s++ {
		files := map[string][]byte{}
		for j := 0; j < 5; j++ {
			key := fmt.Sprintf("sample%d%d", s, j)
			files[key+".png"] = encPNG(t, testImage(2, 2, s*5+j))
			files[key+".cls"] = []byte(fmt.Sprint((s + j) % 3))
			files[key+".json"] = []byte("{}")
		}
		writeTar(t, filepath.Join(dir, fmt.Sprintf("train-%03d.tar", s)), files, s == 1)
	}
	ds, err := OpenImageFolder(filepath.Join(dir, "train-{000..002}.tar"), FolderOptions{ShuffleBuffer: 4, InMemory: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	if ds.Len() != 15 || !reflect.DeepEqual(ds.Classes(), []string{"0", "1", "2"}) {
		t.Fatalf("len %d classes %v", ds.Len(), ds.Classes())
	}
	if n, _ := ds.Ignored(); n != 0 {
		t.Errorf("WebDataset sidecars counted as ignored files: %d", n)
	}
	l, err := NewLoader(ds, LoaderOptions{BatchSize: 4, Shuffle: true, SampleFloats: 12, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	it := l.Epoch(0)
	seen := 0
	for it.Next() {
		b := it.Batch()
		for j, i := range b.Indices {
			name := ds.Name(i)
			base := name[strings.LastIndexByte(name, ':')+1:] // sampleSK.png
			s, k := int(base[6]-'0'), int(base[7]-'0')
			if b.Labels[j] != (s+k)%3 {
				t.Errorf("%s: label %d, want %d", ds.Name(i), b.Labels[j], (s+k)%3)
			}
			seen++
		}
	}
	if it.Err() != nil || seen != 15 {
		t.Errorf("epoch: %d samples, %v", seen, it.Err())
	}
	if _, err := OpenImageFolder(filepath.Join(dir, "train-{000..003}.tar"), FolderOptions{}); err == nil {
		t.Error("a missing shard: no error")
	}
}

// A gzipped archive whose images fit in memory is decompressed once and
// read at random, as a plain tar, so it is shuffled fully; a larger one
// streams.
func TestGzipInMemory(t *testing.T) {
	files := manyFiles(t, 30)
	p := writeTar(t, filepath.Join(t.TempDir(), "d.tar.gz"), files, true)
	small, err := OpenImageFolder(p, FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if small.Streamed() {
		t.Error("a small archive is streamed")
	}
	total := 0
	for _, b := range files {
		total += len(b)
	}
	big, err := OpenImageFolder(p, FolderOptions{InMemory: int64(total - 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	if !big.Streamed() {
		t.Error("an archive over the memory limit is not streamed")
	}
	for i := 0; i < small.Len(); i++ {
		a, err := small.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		if a.Name != big.Name(small.Len()-1-i) { // big keeps archive order: names reversed
			t.Errorf("image %d: %s vs %s", i, a.Name, big.Name(small.Len()-1-i))
		}
	}
}

func TestWebDatasetBadLabels(t *testing.T) {
	dir := t.TempDir()
	img := encPNG(t, testImage(2, 2, 1))
	for name, files := range map[string]map[string][]byte{
		"notnumber.tar": {"a.png": img, "a.cls": []byte("cat")},
		"missing.tar":   {"a.png": img, "a.cls": []byte("1"), "b.png": img},
	} {
		p := writeTar(t, filepath.Join(dir, name), files, false)
		_, err := OpenImageFolder(p, FolderOptions{})
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
