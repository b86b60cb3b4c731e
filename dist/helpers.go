package dist

import (
	"fmt"
	"hash/fnv"
	"time"
)

// DefaultBucketBytes is the size of the gradient buckets Averager sends:
// large enough that per-message latency does not matter, small enough to
// bound the extra buffer.
const DefaultBucketBytes = 32 << 20

// Averager averages gradients over a group with a few large all-reduces:
// the slices are packed, in order, into buckets of at most BucketBytes,
// each bucket is summed over the processes in one collective, divided by
// the group size and unpacked. Every process must pass slices of the same
// lengths in the same order.
type Averager struct {
	Comm        Comm
	BucketBytes int
	buf         []float32
	// Calls counts the all-reduces made so far (one per bucket).
	Calls int
}

// NewAverager returns an Averager over c with buckets of bucketBytes
// (<= 0: DefaultBucketBytes).
func NewAverager(c Comm, bucketBytes int) *Averager {
	if bucketBytes <= 0 {
		bucketBytes = DefaultBucketBytes
	}
	return &Averager{Comm: c, BucketBytes: bucketBytes}
}

// Average replaces every slice by its mean over the group.
func (a *Averager) Average(slices [][]float32) error {
	k := a.Comm.Size()
	if k == 1 {
		return nil
	}
	total := 0
	for _, s := range slices {
		total += len(s)
	}
	capacity := min(total, max(1, a.BucketBytes/4))
	if len(a.buf) < capacity {
		a.buf = make([]float32, capacity)
	}
	scale := 1 / float32(k)
	// A bucket is slices[first:last] plus, for a slice larger than a whole
	// bucket, the part of it from offset start on.
	var pending []span
	fill := 0
	flush := func() error {
		if fill == 0 {
			return nil
		}
		b := a.buf[:fill]
		if err := a.Comm.AllReduceSum(b); err != nil {
			return fmt.Errorf("dist: gradient all-reduce: %w", err)
		}
		a.Calls++
		off := 0
		for _, p := range pending {
			dst := p.s[p.lo:p.hi]
			for i, v := range b[off : off+len(dst)] {
				dst[i] = v * scale
			}
			off += len(dst)
		}
		pending, fill = pending[:0], 0
		return nil
	}
	for _, s := range slices {
		for lo := 0; lo < len(s); {
			if fill == len(a.buf[:capacity]) {
				if err := flush(); err != nil {
					return err
				}
			}
			hi := min(len(s), lo+capacity-fill)
			copy(a.buf[fill:], s[lo:hi])
			pending = append(pending, span{s, lo, hi})
			fill += hi - lo
			lo = hi
		}
	}
	return flush()
}

type span struct {
	s      []float32
	lo, hi int
}

// BroadcastInts copies root's values into every process's v. Each value
// travels as four 16-bit pieces in float32s, which hold them exactly.
func BroadcastInts(c Comm, v []int64, root int) error {
	buf := make([]float32, 4*len(v))
	for i, x := range v {
		u := uint64(x)
		for p := 0; p < 4; p++ {
			buf[4*i+p] = float32((u >> (16 * p)) & 0xffff)
		}
	}
	if err := c.Broadcast(buf, root); err != nil {
		return err
	}
	for i := range v {
		var u uint64
		for p := 0; p < 4; p++ {
			u |= uint64(buf[4*i+p]) << (16 * p)
		}
		v[i] = int64(u)
	}
	return nil
}

// CheckSame fails on every process unless every process passed the same
// data: a cheap guard against processes started with different settings.
// what names the data in the error.
func CheckSame(c Comm, what string, data []byte) error {
	if c.Size() == 1 {
		return nil
	}
	h := fnv.New64a()
	h.Write(data)
	sum := h.Sum64()
	send := make([]float32, 4)
	for p := range send {
		send[p] = float32((sum >> (16 * p)) & 0xffff)
	}
	recv := make([]float32, 4*c.Size())
	if err := c.AllGather(send, recv); err != nil {
		return err
	}
	for r := 0; r < c.Size(); r++ {
		for p := 0; p < 4; p++ {
			if recv[4*r+p] != recv[p] {
				return fmt.Errorf("dist: %s differs between rank 0 and rank %d", what, r)
			}
		}
	}
	return nil
}

// Timed wraps a Comm and adds up the time spent in each kind of
// collective: waiting for the other processes included, which is what a
// step loses to communication. Like the collectives, it is for one
// goroutine at a time.
type Timed struct {
	Comm
	// Time and Calls are by operation: "allreduce", "allreduce64",
	// "allgather", "broadcast", "barrier".
	Time  map[string]time.Duration
	Calls map[string]int
}

// NewTimed wraps c.
func NewTimed(c Comm) *Timed {
	return &Timed{Comm: c, Time: map[string]time.Duration{}, Calls: map[string]int{}}
}

func (t *Timed) since(op string, start time.Time) {
	t.Time[op] += time.Since(start)
	t.Calls[op]++
}

// Reset zeroes the totals.
func (t *Timed) Reset() { clear(t.Time); clear(t.Calls) }

// Total is the time spent in every collective.
func (t *Timed) Total() time.Duration {
	var d time.Duration
	for _, v := range t.Time {
		d += v
	}
	return d
}

// AllReduceSum implements Comm.
func (t *Timed) AllReduceSum(buf []float32) error {
	defer t.since("allreduce", time.Now())
	return t.Comm.AllReduceSum(buf)
}

// AllReduceSumFloat64 implements Comm.
func (t *Timed) AllReduceSumFloat64(buf []float64) error {
	defer t.since("allreduce64", time.Now())
	return t.Comm.AllReduceSumFloat64(buf)
}

// AllGather implements Comm.
func (t *Timed) AllGather(send, recv []float32) error {
	defer t.since("allgather", time.Now())
	return t.Comm.AllGather(send, recv)
}

// Broadcast implements Comm.
func (t *Timed) Broadcast(buf []float32, root int) error {
	defer t.since("broadcast", time.Now())
	return t.Comm.Broadcast(buf, root)
}

// Barrier implements Comm.
func (t *Timed) Barrier() error {
	defer t.since("barrier", time.Now())
	return t.Comm.Barrier()
}

// Abort implements Aborter by passing it on.
func (t *Timed) Abort(code int) { Abort(t.Comm, code) }
