//go:build mpi

// Package mpi implements dist.Comm over MPI (MPI_COMM_WORLD) with cgo. It
// is only built with the build tag mpi, so ordinary builds need no MPI:
//
//	go build -tags mpi ./cmd/simclr
//	mpirun -np 4 bin/simclr pretrain ...
//
// The flags come from pkg-config: ompi-c (Open MPI, the default) or, with
// the extra tag mpich, mpich. Other installations can set CGO_CFLAGS and
// CGO_LDFLAGS from `mpicc -showme:compile` and `mpicc -showme:link`.
//
// Failure handling. Collectives return errors (MPI_ERRORS_RETURN) instead
// of aborting inside MPI, and training turns any error into Abort
// (MPI_Abort on MPI_COMM_WORLD), which makes mpirun kill every process of
// the job. Open MPI's mpirun also kills the job when one process exits
// with a non-zero status or without calling MPI_Finalize (a Go panic, a
// crash, os.Exit(1)), so a process that dies does not leave the others
// blocked. What MPI cannot detect is a process that is alive but never
// joins the next collective (a deadlock, a stuck file system): for that
// every collective runs under a watchdog, which aborts the job when the
// collective has not completed after Options.Timeout.
package mpi

/*
#include <stdlib.h>
#include <mpi.h>

static int sg_init(int *provided, int *already) {
	MPI_Initialized(already);
	if (*already) {
		return MPI_Query_thread(provided);
	}
	int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, provided);
	if (rc != MPI_SUCCESS) {
		return rc;
	}
	return MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}
static int sg_rank(int *r) { return MPI_Comm_rank(MPI_COMM_WORLD, r); }
static int sg_size(int *s) { return MPI_Comm_size(MPI_COMM_WORLD, s); }
static int sg_allreduce_f32(float *b, int n) {
	return MPI_Allreduce(MPI_IN_PLACE, b, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}
static int sg_allreduce_f64(double *b, int n) {
	return MPI_Allreduce(MPI_IN_PLACE, b, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}
static int sg_allgather_f32(float *s, int n, float *r) {
	return MPI_Allgather(s, n, MPI_FLOAT, r, n, MPI_FLOAT, MPI_COMM_WORLD);
}
static int sg_bcast_f32(float *b, int n, int root) {
	return MPI_Bcast(b, n, MPI_FLOAT, root, MPI_COMM_WORLD);
}
static int sg_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }
static void sg_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
static int sg_finalize(void) {
	int done;
	MPI_Finalized(&done);
	return done ? MPI_SUCCESS : MPI_Finalize();
}
static void sg_error_string(int code, char *buf, int *len) {
	if (MPI_Error_string(code, buf, len) != MPI_SUCCESS) {
		*len = 0;
	}
}
static int sg_max_string(void) { return MPI_MAX_ERROR_STRING; }
static int sg_thread_multiple(void) { return MPI_THREAD_MULTIPLE; }
static int sg_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
*/
import "C"

import (
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/simclr-go/simclr/dist"
)

// Options configure the communicator.
type Options struct {
	// Timeout is how long a collective may wait for the other processes
	// before the watchdog aborts the job; 0 disables the watchdog. It must
	// cover the longest time one process works alone between collectives
	// (rank 0 writing a checkpoint or running an evaluation).
	Timeout time.Duration
	// AbortCode is the exit status of an abort (0: 3).
	AbortCode int
}

// Comm is MPI_COMM_WORLD as a dist.Comm.
type Comm struct {
	rank, size int
	opts       Options
	multiple   bool // MPI_THREAD_MULTIPLE: the watchdog may call MPI_Abort
	// mu serialises the collectives: MPI needs one at a time per
	// communicator, in the same order everywhere. Copies made by
	// WithTimeout share it.
	mu *sync.Mutex
	// inFlight is the collective under way, for Waiting; shared by
	// copies as mu is.
	inFlight *atomic.Pointer[collective]
}

// collective is one call in progress.
type collective struct {
	op    string
	n     int
	start time.Time
}

var (
	_ dist.Comm    = (*Comm)(nil)
	_ dist.Aborter = (*Comm)(nil)

	initOnce sync.Once
	world    *Comm
	initErr  error
)

// Init initialises MPI (once per process; later calls return the same
// communicator and ignore o) and returns MPI_COMM_WORLD.
func Init(o Options) (*Comm, error) {
	initOnce.Do(func() {
		if o.AbortCode == 0 {
			o.AbortCode = 3
		}
		var provided, already C.int
		if rc := C.sg_init(&provided, &already); rc != C.MPI_SUCCESS {
			initErr = fmt.Errorf("mpi: MPI_Init_thread: %s", errorString(rc))
			return
		}
		if provided < C.sg_thread_serialized() {
			initErr = fmt.Errorf("mpi: the MPI library provides thread level %d, need MPI_THREAD_SERIALIZED (Go runs calls on any OS thread)", int(provided))
			return
		}
		c := &Comm{opts: o, multiple: provided >= C.sg_thread_multiple(), mu: new(sync.Mutex),
			inFlight: new(atomic.Pointer[collective])}
		var r, s C.int
		if rc := C.sg_rank(&r); rc != C.MPI_SUCCESS {
			initErr = fmt.Errorf("mpi: MPI_Comm_rank: %s", errorString(rc))
			return
		}
		if rc := C.sg_size(&s); rc != C.MPI_SUCCESS {
			initErr = fmt.Errorf("mpi: MPI_Comm_size: %s", errorString(rc))
			return
		}
		c.rank, c.size = int(r), int(s)
		world = c
	})
	return world, initErr
}

// Finalize shuts MPI down; no collective may follow. Every process must
// call it on a clean exit.
func Finalize() error {
	if rc := C.sg_finalize(); rc != C.MPI_SUCCESS {
		return fmt.Errorf("mpi: MPI_Finalize: %s", errorString(rc))
	}
	return nil
}

// WithTimeout returns c with another watchdog limit (0: none); it is
// the same MPI_COMM_WORLD and shares c's serialisation.
func WithTimeout(c *Comm, d time.Duration) *Comm {
	n := *c
	n.opts.Timeout = d
	return &n
}

// Rank implements dist.Comm.
func (c *Comm) Rank() int { return c.rank }

// Size implements dist.Comm.
func (c *Comm) Size() int { return c.size }

// ThreadMultiple reports whether MPI runs at MPI_THREAD_MULTIPLE, which lets
// the watchdog call MPI_Abort while a collective is blocked; otherwise it
// exits the process, which Open MPI's mpirun also turns into a job abort.
func (c *Comm) ThreadMultiple() bool { return c.multiple }

// Abort implements dist.Aborter: MPI_Abort(MPI_COMM_WORLD, code), which
// terminates every process of the job. It does not return.
func (c *Comm) Abort(code int) {
	C.sg_abort(C.int(code))
	os.Exit(code) // not reached with a conforming MPI
}

// Waiting names the collective this process is blocked in ("MPI_Allreduce
// of 65 values") and how long it has waited; ok is false between
// collectives. A process that the launcher terminates because it lost
// another host (Open MPI's mpirun when a link or a machine goes away)
// reports it, so that the error says which rank waited for what.
func (c *Comm) Waiting() (op string, waited time.Duration, ok bool) {
	w := c.inFlight.Load()
	if w == nil {
		return "", 0, false
	}
	return fmt.Sprintf("%s of %d values", w.op, w.n), time.Since(w.start), true
}

// call runs one collective under the lock and the watchdog.
func (c *Comm) call(op string, n int, fn func() C.int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inFlight.Store(&collective{op: op, n: n, start: time.Now()})
	defer c.inFlight.Store(nil)
	if c.opts.Timeout > 0 {
		w := time.AfterFunc(c.opts.Timeout, func() { c.expire(op, n) })
		defer w.Stop()
	}
	if rc := fn(); rc != C.MPI_SUCCESS {
		return fmt.Errorf("mpi: rank %d of %d: %s of %d values: %s", c.rank, c.size, op, n, errorString(rc))
	}
	return nil
}

// expire is the watchdog's action: a collective has waited too long.
func (c *Comm) expire(op string, n int) {
	fmt.Fprintf(os.Stderr, "mpi: rank %d of %d: %s of %d values has not completed after %v: another process died, is stuck or cannot be reached; aborting the job (the limit is SIMCLR_COLLECTIVE_TIMEOUT)\n",
		c.rank, c.size, op, n, c.opts.Timeout)
	if c.multiple {
		C.sg_abort(C.int(c.opts.AbortCode))
	}
	os.Exit(c.opts.AbortCode)
}

// maxCount is the largest count one MPI call takes (a C int).
const maxCount = math.MaxInt32

// AllReduceSum implements dist.Comm.
func (c *Comm) AllReduceSum(buf []float32) error {
	for len(buf) > 0 {
		part := buf[:min(len(buf), maxCount)]
		if err := c.call("MPI_Allreduce", len(part), func() C.int {
			return C.sg_allreduce_f32((*C.float)(unsafe.Pointer(&part[0])), C.int(len(part)))
		}); err != nil {
			return err
		}
		buf = buf[len(part):]
	}
	return nil
}

// AllReduceSumFloat64 implements dist.Comm.
func (c *Comm) AllReduceSumFloat64(buf []float64) error {
	for len(buf) > 0 {
		part := buf[:min(len(buf), maxCount)]
		if err := c.call("MPI_Allreduce", len(part), func() C.int {
			return C.sg_allreduce_f64((*C.double)(unsafe.Pointer(&part[0])), C.int(len(part)))
		}); err != nil {
			return err
		}
		buf = buf[len(part):]
	}
	return nil
}

// AllGather implements dist.Comm.
func (c *Comm) AllGather(send, recv []float32) error {
	if len(recv) != c.size*len(send) {
		return fmt.Errorf("mpi: all-gather of %d values from %d processes into %d", len(send), c.size, len(recv))
	}
	if len(send) > maxCount {
		return fmt.Errorf("mpi: all-gather of %d values: more than MPI's count limit", len(send))
	}
	if len(send) == 0 {
		return nil
	}
	return c.call("MPI_Allgather", len(send), func() C.int {
		return C.sg_allgather_f32((*C.float)(unsafe.Pointer(&send[0])), C.int(len(send)), (*C.float)(unsafe.Pointer(&recv[0])))
	})
}

// Broadcast implements dist.Comm.
func (c *Comm) Broadcast(buf []float32, root int) error {
	if root < 0 || root >= c.size {
		return fmt.Errorf("mpi: broadcast from rank %d of %d", root, c.size)
	}
	for len(buf) > 0 {
		part := buf[:min(len(buf), maxCount)]
		if err := c.call("MPI_Bcast", len(part), func() C.int {
			return C.sg_bcast_f32((*C.float)(unsafe.Pointer(&part[0])), C.int(len(part)), C.int(root))
		}); err != nil {
			return err
		}
		buf = buf[len(part):]
	}
	return nil
}

// Barrier implements dist.Comm.
func (c *Comm) Barrier() error {
	return c.call("MPI_Barrier", 0, func() C.int { return C.sg_barrier() })
}

func errorString(rc C.int) string {
	buf := (*C.char)(C.malloc(C.size_t(C.sg_max_string())))
	defer C.free(unsafe.Pointer(buf))
	var n C.int
	C.sg_error_string(rc, buf, &n)
	if n <= 0 {
		return fmt.Sprintf("MPI error %d", int(rc))
	}
	return C.GoStringN(buf, n)
}
