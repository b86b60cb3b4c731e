// Package dist is data-parallel communication: the collective operations
// that training on several processes needs, behind one interface, with a
// single-process implementation (Single), an in-process one for tests
// (NewLocal) and, in dist/mpi (build tag mpi), one over MPI.
//
// Every process of a group must call the same collectives in the same
// order with buffers of the same sizes; a collective returns once every
// process has joined it. Results are identical on every process (sums
// are added in the same order everywhere), which keeps replicated
// parameters bitwise identical.
package dist

import (
	"fmt"
	"os"
)

// Comm is a group of Size() processes, this one being Rank().
type Comm interface {
	Rank() int
	Size() int
	// AllReduceSum replaces buf, on every process, by the element-wise sum
	// of every process's buf.
	AllReduceSum(buf []float32) error
	// AllReduceSumFloat64 is AllReduceSum for float64 (small statistics).
	AllReduceSumFloat64(buf []float64) error
	// AllGather writes every process's send, in rank order, to recv,
	// which holds Size()*len(send) values.
	AllGather(send, recv []float32) error
	// Broadcast copies root's buf into every other process's buf.
	Broadcast(buf []float32, root int) error
	// Barrier returns once every process has called it.
	Barrier() error
}

// Aborter is a Comm that can end every process of the group at once
// (MPI_Abort). Training calls it on an error, so that the other processes,
// blocked in a collective the failed one will never join, exit too.
type Aborter interface {
	Abort(code int)
}

// Abort ends the whole group with exit code code when c can (an Aborter);
// otherwise it exits this process.
func Abort(c Comm, code int) {
	if a, ok := c.(Aborter); ok {
		a.Abort(code)
	}
	os.Exit(code)
}

// Single is a group of one process: every collective is the identity.
type Single struct{}

var _ Comm = Single{}

// Rank implements Comm.
func (Single) Rank() int { return 0 }

// Size implements Comm.
func (Single) Size() int { return 1 }

// AllReduceSum implements Comm.
func (Single) AllReduceSum([]float32) error { return nil }

// AllReduceSumFloat64 implements Comm.
func (Single) AllReduceSumFloat64([]float64) error { return nil }

// AllGather implements Comm.
func (Single) AllGather(send, recv []float32) error {
	if len(recv) != len(send) {
		return fmt.Errorf("dist: all-gather of %d values into %d", len(send), len(recv))
	}
	copy(recv, send)
	return nil
}

// Broadcast implements Comm.
func (Single) Broadcast(_ []float32, root int) error {
	if root != 0 {
		return fmt.Errorf("dist: broadcast from rank %d of 1", root)
	}
	return nil
}

// Barrier implements Comm.
func (Single) Barrier() error { return nil }
