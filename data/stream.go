package data

import (
	"archive/tar"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"

	"github.com/simclr-go/simclr/tensor"
)

// Streamed is implemented by datasets that are read fast only in one order,
// such as a gzipped archive, which cannot be read at random without
// decompressing it again from its start. The Loader takes each epoch's
// order from StreamOrder and reads the epoch through one Stream.
type Streamed interface {
	Dataset
	// StreamOrder returns an epoch's global order, or nil when the dataset
	// reads as fast in any order (the Loader then shuffles it freely).
	StreamOrder(seed uint64, epoch int, shuffle bool) []int
	// OpenStream returns a reader of the given samples, which the caller
	// will Get about in that order. Get of any other sample falls back to
	// the dataset's Get. Close it when done.
	OpenStream(indices []int) Stream
}

// Stream reads a planned sequence of a Streamed dataset's samples. Get is
// safe for concurrent use.
type Stream interface {
	Get(i int) (Sample, error)
	Close() error
}

// shuffleBuffer mixes a sequence as WebDataset's shuffle does: it holds k
// items and emits one drawn at random each time a new one arrives, so an
// item leaves at most k places after it was read and a reader keeps at
// most about k items in memory.
func shuffleBuffer(seq []int, k int, rng *tensor.RNG) []int {
	out := make([]int, 0, len(seq))
	buf := make([]int, 0, min(k, len(seq)))
	for _, x := range seq {
		if len(buf) < k {
			buf = append(buf, x)
			continue
		}
		j := rng.IntN(k)
		out = append(out, buf[j])
		buf[j] = x
	}
	for _, j := range rng.Perm(len(buf)) {
		out = append(out, buf[j])
	}
	return out
}

// StreamOrder returns the order of an epoch of a gzipped source: archives
// (shards) in an order drawn from (seed, epoch), each read front to back,
// through a shuffle buffer of FolderOptions.ShuffleBuffer images. Without
// shuffle it is index order. It is nil for a source read at random.
func (d *ImageFolder) StreamOrder(seed uint64, epoch int, shuffle bool) []int {
	if !d.streamed {
		return nil
	}
	if !shuffle {
		return seqInts(len(d.entries))
	}
	seq := make([]int, 0, len(d.entries))
	for _, a := range tensor.NewRNG(seed, "shard-order", uint64(epoch)).Perm(len(d.archives)) {
		for i := d.starts[a]; i < d.starts[a+1]; i++ {
			seq = append(seq, i)
		}
	}
	return shuffleBuffer(seq, d.shuffleBuffer, tensor.NewRNG(seed, "shuffle-buffer", uint64(epoch)))
}

// OpenStream starts reading the given images in the background, archive by
// archive in the order they are first needed, keeping an image's bytes
// until Get takes them.
func (d *ImageFolder) OpenStream(indices []int) Stream { return d.openStream(indices) }

// streamReadahead is how many images a stream reads ahead of what is asked.
const streamReadahead = 256

// folderStream reads a gzipped ImageFolder's archives once, in order.
type folderStream struct {
	d    *ImageFolder
	mu   sync.Mutex
	cond *sync.Cond
	// need marks images planned and not yet read; left counts them per
	// archive, so an archive is left as soon as its last one is read.
	need []uint64
	left []int
	buf  map[int][]byte // read, not yet taken
	// waitFor counts the Gets waiting for each unread image; blocked is
	// their sum: the reader reads ahead past its limit while it is not 0.
	waitFor map[int]int
	blocked int
	peak    int  // the most images held at once
	done    bool // the reader has stopped
	closed  bool
	err     error
	wg      sync.WaitGroup
}

func (d *ImageFolder) openStream(indices []int) *folderStream {
	s := &folderStream{d: d, need: make([]uint64, (len(d.entries)+63)/64), left: make([]int, len(d.archives)), buf: map[int][]byte{}, waitFor: map[int]int{}}
	s.cond = sync.NewCond(&s.mu)
	var plan []int
	for _, i := range indices {
		if i < 0 || i >= len(d.entries) || s.need[i/64]&(1<<(i%64)) != 0 {
			continue
		}
		s.need[i/64] |= 1 << (i % 64)
		a := d.entries[i].archive
		if s.left[a] == 0 {
			plan = append(plan, int(a))
		}
		s.left[a]++
	}
	s.wg.Add(1)
	go s.read(plan)
	return s
}

func (s *folderStream) needed(i int) bool { return s.need[i/64]&(1<<(i%64)) != 0 }

// read is the reader goroutine.
func (s *folderStream) read(plan []int) {
	defer s.wg.Done()
	var err error
	for _, a := range plan {
		if err = s.readArchive(a); err != nil {
			break
		}
	}
	s.mu.Lock()
	s.done, s.err = true, err
	s.cond.Broadcast()
	s.mu.Unlock()
}

// memberName is the cleaned name listTar gives a tar member.
func memberName(h *tar.Header) string {
	return path.Clean(strings.TrimLeft(h.Name, "/"))
}

func (s *folderStream) readArchive(a int) error {
	d := s.d
	p := d.archives[a].path
	var tr *tar.Reader
	if !d.archives[a].random() {
		r, c, err := openTarStream(p)
		if err != nil {
			return err
		}
		defer c.Close()
		tr = r
	}
	next, end := d.starts[a], d.starts[a+1]
	for next < end {
		s.mu.Lock()
		for !s.closed && s.left[a] > 0 && s.blocked == 0 && len(s.buf) >= d.readahead {
			s.cond.Wait()
		}
		stop := s.closed || s.left[a] == 0
		s.mu.Unlock()
		if stop {
			return nil
		}
		i := next
		if tr != nil {
			h, err := tr.Next()
			if err == io.EOF {
				return fmt.Errorf("data: archive %s ended before %s: was it changed since it was opened?", p, d.name(&d.entries[next]))
			}
			if err != nil {
				return fmt.Errorf("data: reading archive %s: %w", p, err)
			}
			if h.Typeflag != tar.TypeReg || memberName(h) != d.rel(&d.entries[next]) {
				continue
			}
		}
		next++
		s.mu.Lock()
		want := s.needed(i)
		s.mu.Unlock()
		if !want {
			continue
		}
		var b []byte
		var err error
		if tr != nil {
			b = make([]byte, d.entries[i].size)
			if _, err = io.ReadFull(tr, b); err != nil {
				err = fmt.Errorf("data: reading %s: %w", d.name(&d.entries[i]), err)
			}
		} else {
			b, err = d.readAt(i)
		}
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.need[i/64] &^= 1 << (i % 64)
		s.left[a]--
		s.buf[i] = b
		s.peak = max(s.peak, len(s.buf))
		if w := s.waitFor[i]; w > 0 {
			s.blocked -= w
			delete(s.waitFor, i)
		}
		s.cond.Broadcast()
		s.mu.Unlock()
	}
	return nil
}

// Get returns image i, waiting for the reader to reach it if it is planned.
func (s *folderStream) Get(i int) (Sample, error) {
	if err := checkIndex(i, len(s.d.entries)); err != nil {
		return Sample{}, err
	}
	s.mu.Lock()
	waiting := false // registered in waitFor, until the reader reads i
	for {
		if b, ok := s.buf[i]; ok {
			delete(s.buf, i)
			s.cond.Broadcast()
			s.mu.Unlock()
			return s.d.decode(i, b)
		}
		if !s.needed(i) {
			s.mu.Unlock()
			return s.d.Get(i)
		}
		if s.err != nil || s.done || s.closed {
			err := s.err
			s.mu.Unlock()
			if err == nil {
				err = fmt.Errorf("data: %s: stream closed", s.d.Name(i))
			}
			return Sample{}, err
		}
		if !waiting {
			waiting = true
			s.waitFor[i]++
			s.blocked++
			s.cond.Broadcast()
		}
		s.cond.Wait()
	}
}

// ioErr returns the error that stopped the reader, if any.
func (s *folderStream) ioErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// buffered returns how many images are read and not yet taken.
func (s *folderStream) buffered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buf)
}

// Close stops the reader and drops what it holds.
func (s *folderStream) Close() error {
	s.mu.Lock()
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	s.wg.Wait()
	s.mu.Lock()
	s.buf = nil
	s.mu.Unlock()
	return nil
}

// gzCursor reads a gzipped archive forward for Get: a request at or after
// the last one continues where it stopped; an earlier one starts over.
type gzCursor struct {
	mu   sync.Mutex
	tr   *tar.Reader
	c    io.Closer
	next int // ordinal, within its archive, of the next entry to match
}

func (g *gzCursor) read(p string, k int, d *ImageFolder, e *folderEntry) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.tr == nil || k < g.next {
		g.closeLocked()
		tr, c, err := openTarStream(p)
		if err != nil {
			return nil, err
		}
		g.tr, g.c, g.next = tr, c, 0
	}
	start, end := d.starts[e.archive], d.starts[e.archive+1]
	for {
		if start+g.next >= end {
			g.closeLocked()
			return nil, fmt.Errorf("data: archive %s: %s not found: was it changed since it was opened?", p, d.name(e))
		}
		h, err := g.tr.Next()
		if err != nil {
			g.closeLocked()
			if err == io.EOF {
				return nil, fmt.Errorf("data: archive %s ended before %s: was it changed since it was opened?", p, d.name(e))
			}
			return nil, fmt.Errorf("data: reading archive %s: %w", p, err)
		}
		if h.Typeflag != tar.TypeReg || memberName(h) != d.rel(&d.entries[start+g.next]) {
			continue
		}
		g.next++
		if g.next-1 < k {
			continue
		}
		b := make([]byte, h.Size)
		if _, err := io.ReadFull(g.tr, b); err != nil {
			g.closeLocked()
			return nil, fmt.Errorf("data: reading %s: %w", d.name(e), err)
		}
		return b, nil
	}
}

func (g *gzCursor) closeLocked() {
	if g.c != nil {
		g.c.Close()
	}
	g.tr, g.c, g.next = nil, nil, 0
}

func (g *gzCursor) close() {
	g.mu.Lock()
	g.closeLocked()
	g.mu.Unlock()
}
