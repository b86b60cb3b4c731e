package dist

import (
	"fmt"
	"time"
)

// NewLocal returns a group of k in-process communicators, one per
// goroutine that plays a process: the tests' stand-in for MPI. Each
// collective sends this rank's contribution to every other rank over
// buffered channels and combines what it receives in rank order, so every
// rank computes the same sums, bit for bit. A collective that waits longer
// than timeout for a peer fails instead of hanging (0: one minute).
func NewLocal(k int, timeout time.Duration) []Comm {
	if timeout <= 0 {
		timeout = time.Minute
	}
	links := make([][]chan any, k) // links[from][to]
	for i := range links {
		links[i] = make([]chan any, k)
		for j := range links[i] {
			links[i][j] = make(chan any, 64)
		}
	}
	comms := make([]Comm, k)
	for r := range comms {
		comms[r] = &local{rank: r, size: k, links: links, timeout: timeout}
	}
	return comms
}

type local struct {
	rank, size int
	links      [][]chan any
	timeout    time.Duration
	seq        uint64 // collectives so far: a mismatch is reported, not mixed up
}

// message is one rank's contribution to one collective.
type message struct {
	seq  uint64
	op   string
	data any
}

func (l *local) Rank() int { return l.rank }
func (l *local) Size() int { return l.size }

// exchange sends data to every other rank (or only from root when root >=
// 0) and returns every rank's contribution, this one's included, by rank.
func (l *local) exchange(op string, data any, root int) ([]any, error) {
	l.seq++
	all := make([]any, l.size)
	all[l.rank] = data
	if root < 0 || root == l.rank {
		for to := 0; to < l.size; to++ {
			if to != l.rank {
				l.links[l.rank][to] <- message{l.seq, op, data}
			}
		}
	}
	for from := 0; from < l.size; from++ {
		if from == l.rank || (root >= 0 && from != root) {
			continue
		}
		select {
		case v := <-l.links[from][l.rank]:
			m := v.(message)
			if m.seq != l.seq || m.op != op {
				return nil, fmt.Errorf("dist: rank %d in %s #%d got %s #%d from rank %d: the ranks' collectives differ", l.rank, op, l.seq, m.op, m.seq, from)
			}
			all[from] = m.data
		case <-time.After(l.timeout):
			return nil, fmt.Errorf("dist: rank %d waited %v for rank %d in %s #%d", l.rank, l.timeout, from, op, l.seq)
		}
	}
	return all, nil
}

func (l *local) AllReduceSum(buf []float32) error {
	all, err := l.exchange("allreduce-f32", append([]float32(nil), buf...), -1)
	if err != nil {
		return err
	}
	for _, v := range all {
		if len(v.([]float32)) != len(buf) {
			return fmt.Errorf("dist: all-reduce of %d and %d values", len(buf), len(v.([]float32)))
		}
	}
	copy(buf, all[0].([]float32))
	for _, v := range all[1:] {
		for i, x := range v.([]float32) {
			buf[i] += x
		}
	}
	return nil
}

func (l *local) AllReduceSumFloat64(buf []float64) error {
	all, err := l.exchange("allreduce-f64", append([]float64(nil), buf...), -1)
	if err != nil {
		return err
	}
	for _, v := range all {
		if len(v.([]float64)) != len(buf) {
			return fmt.Errorf("dist: all-reduce of %d and %d values", len(buf), len(v.([]float64)))
		}
	}
	copy(buf, all[0].([]float64))
	for _, v := range all[1:] {
		for i, x := range v.([]float64) {
			buf[i] += x
		}
	}
	return nil
}

func (l *local) AllGather(send, recv []float32) error {
	if len(recv) != l.size*len(send) {
		return fmt.Errorf("dist: all-gather of %d values from %d ranks into %d", len(send), l.size, len(recv))
	}
	all, err := l.exchange("allgather", append([]float32(nil), send...), -1)
	if err != nil {
		return err
	}
	for r, v := range all {
		s := v.([]float32)
		if len(s) != len(send) {
			return fmt.Errorf("dist: all-gather of %d and %d values", len(send), len(s))
		}
		copy(recv[r*len(send):], s)
	}
	return nil
}

func (l *local) Broadcast(buf []float32, root int) error {
	if root < 0 || root >= l.size {
		return fmt.Errorf("dist: broadcast from rank %d of %d", root, l.size)
	}
	var data any = []float32(nil)
	if l.rank == root {
		data = append([]float32(nil), buf...)
	}
	all, err := l.exchange("broadcast", data, root)
	if err != nil {
		return err
	}
	if l.rank != root {
		s := all[root].([]float32)
		if len(s) != len(buf) {
			return fmt.Errorf("dist: broadcast of %d values into %d", len(s), len(buf))
		}
		copy(buf, s)
	}
	return nil
}

func (l *local) Barrier() error {
	_, err := l.exchange("barrier", nil, -1)
	return err
}
