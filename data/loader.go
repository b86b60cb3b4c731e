package data

import (
	"errors"
	"fmt"
	"iter"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/simclr-go/simclr/tensor"
)

// Shard selects this process's part of every global batch in data-parallel
// training: rank Rank of Size processes. The zero value means one process.
type Shard struct{ Rank, Size int }

// Transform writes sample s's views into out (SampleFloats floats). index is
// the sample's dataset index: with epoch and a seed it should key every
// random draw (tensor.NewRNG(seed, "augment", epoch, index)), so the result
// does not depend on which worker ran it or when. It is called from several
// goroutines at once.
type Transform func(s Sample, epoch, index int, out []float32) error

// LoaderOptions configures a Loader.
type LoaderOptions struct {
	// BatchSize is the global batch size, over all shards.
	BatchSize int
	// Shuffle draws a new order every epoch from (Seed, epoch).
	Shuffle bool
	Seed    uint64
	// DropLast leaves out the final partial batch.
	DropLast bool
	// Workers is the number of goroutines decoding and transforming
	// samples; 0 means GOMAXPROCS.
	Workers int
	// Prefetch is how many batches are prepared ahead of the consumer;
	// 0 means 2.
	Prefetch int
	Shard    Shard
	// SampleFloats is how many floats Transform writes per sample.
	SampleFloats int
	// Transform fills a sample's slot of the batch; nil means ToFloats.
	Transform Transform
}

// ToFloats is the default Transform: the image as HWC floats in [0, 1].
// The images must all have SampleFloats/3 pixels.
func ToFloats(s Sample, _, _ int, out []float32) error {
	if len(out) != len(s.RGB) {
		return fmt.Errorf("%dx%d image is %d values, batch slot holds %d", s.W, s.H, len(s.RGB), len(out))
	}
	for i, v := range s.RGB {
		out[i] = float32(v) * (1.0 / 255)
	}
	return nil
}

// Batch is this process's shard of one global batch. It is valid until the
// next call to Next (or Close) on its iterator, after which its buffers are
// reused; copy what must outlive that.
type Batch struct {
	// Data holds len(Labels) samples of SampleFloats floats each.
	Data []float32
	// Labels are the samples' labels (-1 for unlabeled ones).
	Labels []int
	// Indices are the samples' dataset indices.
	Indices []int
	// Index is the batch's number within the epoch.
	Index int
}

// slot is a batch buffer and the bookkeeping of its filling.
type slot struct {
	b       Batch
	pending atomic.Int32
	ready   chan struct{} // receives once the last sample is written
	mu      sync.Mutex
	errPos  int // the lowest failing position, so the error is deterministic
	err     error
}

// Loader batches a dataset with parallel workers, deterministically.
type Loader struct {
	ds    Dataset
	opts  LoaderOptions
	local int // largest local batch: BatchSize / Shard.Size

	mu    sync.Mutex
	stash []*slot // buffers kept between epochs
}

// NewLoader checks the options and returns a Loader over ds.
func NewLoader(ds Dataset, opts LoaderOptions) (*Loader, error) {
	if opts.Shard.Size == 0 {
		opts.Shard.Size = 1
	}
	switch {
	case opts.BatchSize <= 0:
		return nil, fmt.Errorf("data: loader batch of %d images, want at least 1", opts.BatchSize)
	case opts.SampleFloats <= 0:
		return nil, fmt.Errorf("data: loader sample of %d values, want at least 1", opts.SampleFloats)
	case opts.Shard.Size < 0 || opts.Shard.Rank < 0 || opts.Shard.Rank >= opts.Shard.Size:
		return nil, fmt.Errorf("data: loader shard %d of %d does not exist", opts.Shard.Rank, opts.Shard.Size)
	case opts.BatchSize%opts.Shard.Size != 0:
		return nil, fmt.Errorf("data: batch %d does not divide among %d processes", opts.BatchSize, opts.Shard.Size)
	case ds.Len() == 0:
		return nil, errors.New("data: Loader: empty dataset")
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Prefetch <= 0 {
		opts.Prefetch = 2
	}
	if opts.Transform == nil {
		opts.Transform = ToFloats
	}
	return &Loader{ds: ds, opts: opts, local: opts.BatchSize / opts.Shard.Size}, nil
}

// Len returns the number of batches in an epoch (the same on every shard).
func (l *Loader) Len() int {
	n, b := l.ds.Len(), l.opts.BatchSize
	if l.opts.DropLast {
		return n / b
	}
	return (n + b - 1) / b
}

// Order returns the dataset indices of an epoch in global order: the
// shuffle is tensor.NewRNG(Seed, "shuffle", epoch), so it is the same on
// every shard and for any number of workers.
// A Streamed dataset gives its own order instead.
func (l *Loader) Order(epoch int) []int {
	if sd, ok := l.ds.(Streamed); ok {
		if o := sd.StreamOrder(l.opts.Seed, epoch, l.opts.Shuffle); o != nil {
			return o
		}
	}
	n := l.ds.Len()
	if l.opts.Shuffle {
		return tensor.NewRNG(l.opts.Seed, "shuffle", uint64(epoch)).Perm(n)
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	return order
}

// EpochIter iterates over one epoch's batches:
//
//	it := loader.Epoch(e)
//	defer it.Close()
//	for it.Next() {
//		b := it.Batch()
//		...
//	}
//	if err := it.Err(); err != nil { ... }
type EpochIter struct {
	l      *Loader
	epoch  int
	order  []int
	nb     int
	first  int
	next   int
	slots  []*slot
	free   chan *slot
	queue  chan *slot // batches in order, as they are handed to workers
	tasks  chan task
	quit   chan struct{}
	wg     sync.WaitGroup
	cur    *slot
	err    error
	closed bool
	// stream reads a Streamed dataset's samples of this epoch in order;
	// get is stream.Get, or the dataset's Get.
	stream Stream
	get    func(int) (Sample, error)
}

type task struct {
	s *slot
	j int
}

// Epoch starts preparing epoch e's batches in the background. The caller
// must run the iterator to its end or Close it, which stops the goroutines.
func (l *Loader) Epoch(e int) *EpochIter { return l.EpochFrom(e, 0) }

// EpochFrom is Epoch starting at batch first (resuming mid-epoch): the
// batches are those Epoch(e) would give from its first-th on.
func (l *Loader) EpochFrom(e, first int) *EpochIter {
	o := l.opts
	it := &EpochIter{l: l, epoch: e, order: l.Order(e), nb: l.Len(), first: first, next: first, quit: make(chan struct{}), get: l.ds.Get}
	if sd, ok := l.ds.(Streamed); ok && sd.StreamOrder(o.Seed, e, false) != nil {
		it.stream = sd.OpenStream(l.mine(it.order, first))
		it.get = it.stream.Get
	}
	n := o.Prefetch + 1 // the consumer's batch and Prefetch more
	it.free = make(chan *slot, n)
	it.queue = make(chan *slot, n)
	it.tasks = make(chan task, 2*o.Workers)
	l.mu.Lock()
	for len(it.slots) < n && len(l.stash) > 0 {
		it.slots = append(it.slots, l.stash[len(l.stash)-1])
		l.stash = l.stash[:len(l.stash)-1]
	}
	l.mu.Unlock()
	for len(it.slots) < n {
		it.slots = append(it.slots, &slot{
			b: Batch{
				Data:    make([]float32, l.local*o.SampleFloats),
				Labels:  make([]int, l.local),
				Indices: make([]int, l.local),
			},
			ready: make(chan struct{}, 1),
		})
	}
	for _, s := range it.slots {
		it.free <- s
	}
	it.wg.Add(1 + o.Workers)
	go it.dispatch()
	for w := 0; w < o.Workers; w++ {
		go it.work()
	}
	return it
}

// mine returns this shard's samples of the batches from first on, in the
// order they are loaded.
func (l *Loader) mine(order []int, first int) []int {
	var out []int
	for b := first; b < l.Len(); b++ {
		lo, hi := l.batchRange(b, len(order))
		out = append(out, order[lo:hi]...)
	}
	return out
}

// batchRange returns the positions in the epoch's order of this shard's
// part of global batch b: a contiguous part of the batch.
func (l *Loader) batchRange(b, n int) (lo, hi int) {
	o := l.opts
	lo = b * o.BatchSize
	hi = min(lo+o.BatchSize, n)
	g := hi - lo
	return lo + o.Shard.Rank*g/o.Shard.Size, lo + (o.Shard.Rank+1)*g/o.Shard.Size
}

// Batches is Epoch as a range-over-func iterator; breaking out of the loop
// stops the workers. An error ends the sequence as (nil, err).
func (l *Loader) Batches(e int) iter.Seq2[*Batch, error] {
	return func(yield func(*Batch, error) bool) {
		it := l.Epoch(e)
		defer it.Close()
		for it.Next() {
			if !yield(it.Batch(), nil) {
				return
			}
		}
		if err := it.Err(); err != nil {
			yield(nil, err)
		}
	}
}

// dispatch lays out batches in order and hands their samples to workers.
func (it *EpochIter) dispatch() {
	defer it.wg.Done()
	o := it.l.opts
	for b := it.first; b < it.nb; b++ {
		var s *slot
		select {
		case s = <-it.free:
		case <-it.quit:
			return
		}
		lo, hi := it.l.batchRange(b, len(it.order))
		m := hi - lo
		s.b.Index = b
		s.b.Indices = s.b.Indices[:m]
		copy(s.b.Indices, it.order[lo:hi])
		s.b.Labels = s.b.Labels[:m]
		s.b.Data = s.b.Data[:m*o.SampleFloats]
		s.err, s.errPos = nil, m
		s.pending.Store(int32(m))
		it.queue <- s // never blocks: it holds every slot
		if m == 0 {
			s.ready <- struct{}{}
			continue
		}
		for j := 0; j < m; j++ {
			select {
			case it.tasks <- task{s, j}:
			case <-it.quit:
				return
			}
		}
	}
}

// work loads and transforms samples into their slots.
func (it *EpochIter) work() {
	defer it.wg.Done()
	o := it.l.opts
	for {
		var t task
		select {
		case t = <-it.tasks:
		case <-it.quit:
			return
		}
		s, j := t.s, t.j
		idx := s.b.Indices[j]
		smp, err := it.get(idx)
		if err != nil {
			err = fmt.Errorf("data: epoch %d, sample %d: %w", it.epoch, idx, err)
		} else {
			s.b.Labels[j] = smp.Label
			if terr := o.Transform(smp, it.epoch, idx, s.b.Data[j*o.SampleFloats:(j+1)*o.SampleFloats]); terr != nil {
				err = fmt.Errorf("data: transform of %s (sample %d): %w", smp.Name, idx, terr)
			}
		}
		if err != nil {
			s.mu.Lock()
			if j < s.errPos {
				s.errPos, s.err = j, err
			}
			s.mu.Unlock()
		}
		if s.pending.Add(-1) == 0 {
			s.ready <- struct{}{}
		}
	}
}

// Next advances to the next batch, releasing the previous one. It returns
// false at the end of the epoch or on the first error (see Err); either
// way the workers have stopped by then.
func (it *EpochIter) Next() bool {
	if it.closed {
		return false
	}
	if it.cur != nil {
		it.free <- it.cur // never blocks: free has room for every slot
		it.cur = nil
	}
	if it.next == it.nb {
		it.Close()
		return false
	}
	s := <-it.queue
	<-s.ready
	it.next++
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	if err != nil {
		it.err = err
		it.Close()
		return false
	}
	it.cur = s
	return true
}

// Batch returns the current batch (see Batch for how long it is valid).
func (it *EpochIter) Batch() *Batch { return &it.cur.b }

// Err returns the error that ended the epoch, if any.
func (it *EpochIter) Err() error { return it.err }

// Close stops and waits for the epoch's goroutines and keeps its buffers
// for the next epoch. It is safe to call more than once.
func (it *EpochIter) Close() error {
	if it.closed {
		return nil
	}
	it.closed = true
	it.cur = nil
	close(it.quit)
	it.wg.Wait()
	if it.stream != nil {
		it.stream.Close()
	}
	for _, s := range it.slots {
		select { // a batch finished but never consumed
		case <-s.ready:
		default:
		}
	}
	it.l.mu.Lock()
	it.l.stash = append(it.l.stash, it.slots...)
	it.l.mu.Unlock()
	it.slots = nil
	return nil
}
