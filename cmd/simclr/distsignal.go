package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/simclr-go/simclr/dist"
)

// waiter is a communicator that can say which collective this process is
// blocked in (dist/mpi's Comm).
type waiter interface {
	Waiting() (op string, waited time.Duration, ok bool)
}

// longWait is how long a collective must have waited for a signal to be
// reported: a run stopped on purpose (Ctrl-C) finds its processes
// between collectives or in one that waits milliseconds.
const longWait = time.Second

// reportWaitingOnSignal makes a SIGINT or SIGTERM that arrives while this
// process has waited in a collective for longWait or more print which
// one, with the rank, to w.
// Open MPI's mpirun terminates every process with SIGTERM when it loses a
// host (a cut link, a machine gone), and its own message names only the
// host: this line says which rank was waiting for what. It only observes:
// the command must handle the signals itself (interruptible), since a
// signal a Go program is notified of no longer ends it. Call stop when
// the run ends.
func reportWaitingOnSignal(c dist.Comm, w io.Writer) (stop func()) {
	wc, ok := c.(waiter)
	if !ok || c.Size() == 1 {
		return func() {}
	}
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				if op, waited, ok := wc.Waiting(); ok && waited >= longWait {
					fmt.Fprintf(w, "simclr: rank %d of %d: %s came after %.1fs waiting in %s for the other processes\n",
						c.Rank(), c.Size(), signalError{s.(syscall.Signal)}.name(), waited.Seconds(), op)
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}
