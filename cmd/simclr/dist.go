package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/simclr-go/simclr/backend/auto"
	"github.com/simclr-go/simclr/dist"
	distauto "github.com/simclr-go/simclr/dist/auto"
)

// openComm returns the process group this run is part of: MPI when the
// binary was built with -tags mpi and started by mpirun, else one process.
// Under MPI, when neither --threads nor $SIMCLR_THREADS is set, the CPUs
// are shared among the processes on this machine.
//
// The command must defer finish(&err) right away. On an error or a panic
// in a group of several processes, finish reports the rank and aborts the
// whole job (MPI_Abort), so that no process waits forever in a collective
// the failed one will not join; otherwise it shuts MPI down.
func openComm(g *globalFlags) (dist.Comm, func(errp *error), error) {
	comm, finalize, err := distauto.Open()
	if err != nil {
		return nil, nil, err
	}
	if comm.Size() > 1 && g.threads == 0 && os.Getenv(auto.ThreadsEnv) == "" {
		g.threads = max(1, runtime.NumCPU()/distauto.LocalSize())
	}
	finish := func(errp *error) {
		if r := recover(); r != nil {
			if comm.Size() == 1 {
				panic(r)
			}
			fmt.Fprintf(os.Stderr, "simclr: rank %d of %d: panic: %v\n%s", comm.Rank(), comm.Size(), r, debug.Stack())
			dist.Abort(comm, 2)
		}
		if _, stopped := interruptStatus(*errp); *errp != nil && !stopped && comm.Size() > 1 {
			// An interrupted run stopped on every process at the same
			// step: nothing waits, so MPI shuts down as usual.
			fmt.Fprintf(os.Stderr, "simclr: rank %d of %d: %v\n", comm.Rank(), comm.Size(), *errp)
			dist.Abort(comm, 1)
		}
		if ferr := finalize(); *errp == nil {
			*errp = ferr
		}
	}
	return comm, finish, nil
}
