package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/simclr-go/simclr/dist"
)

// waiter is a communicator that can say which collective this process is
// blocked in (dist/mpi's Comm).
type waiter interface {
	Waiting() (desc string, ok bool)
}

// reportWaitingOnSignal makes a SIGINT or SIGTERM that arrives while this
// process waits in a collective print which one, with the rank, to w.
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
				if desc, ok := wc.Waiting(); ok {
					fmt.Fprintf(w, "simclr: %s when %s came: another process died, is stuck or cannot be reached\n",
						desc, signalError{s.(syscall.Signal)}.name())
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
