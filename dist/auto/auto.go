// Package auto picks the communicator a process runs in: MPI when the
// program was built with the tag mpi and started by mpirun, a single
// process otherwise.
package auto

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/simclr-go/simclr/dist"
)

// TimeoutEnv sets how long a collective may wait for the other processes
// before the job is aborted (a Go duration, "0" disables the watchdog).
const TimeoutEnv = "SIMCLR_COLLECTIVE_TIMEOUT"

// DefaultTimeout covers rank 0 alone writing a checkpoint or running a kNN
// evaluation while the others wait in the next collective.
const DefaultTimeout = 30 * time.Minute

// Timeout is $SIMCLR_COLLECTIVE_TIMEOUT, else DefaultTimeout.
func Timeout() (time.Duration, error) {
	s := os.Getenv(TimeoutEnv)
	if s == "" {
		return DefaultTimeout, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s=%q: want a duration such as 10m, or 0 to disable", TimeoutEnv, s)
	}
	return d, nil
}

// LaunchedSize is the number of processes the launcher started, read from
// its environment (Open MPI's OMPI_COMM_WORLD_SIZE, MPICH's PMI_SIZE); 0
// when the process was not started by mpirun.
func LaunchedSize() int {
	for _, v := range []string{"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"} {
		if n, err := strconv.Atoi(os.Getenv(v)); err == nil && n > 0 {
			return n
		}
	}
	return 0
}

// LocalSize is the number of processes the launcher started on this
// machine (1 when unknown).
func LocalSize() int {
	for _, v := range []string{"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"} {
		if n, err := strconv.Atoi(os.Getenv(v)); err == nil && n > 0 {
			return n
		}
	}
	return 1
}

// Open returns the communicator of this process and a function to call on
// a clean exit (MPI_Finalize). Without MPI support, a process that mpirun
// started as one of several is an error: each would train alone.
func Open() (dist.Comm, func() error, error) {
	n := LaunchedSize()
	if n == 0 {
		return dist.Single{}, func() error { return nil }, nil
	}
	if !Available {
		if n > 1 {
			return nil, nil, fmt.Errorf("started as one of %d processes, but this binary was built without MPI: build it with `go build -tags mpi` (see the README)", n)
		}
		return dist.Single{}, func() error { return nil }, nil
	}
	timeout, err := Timeout()
	if err != nil {
		return nil, nil, err
	}
	return openMPI(timeout)
}
