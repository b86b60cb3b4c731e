//go:build mpi

package auto

import (
	"time"

	"github.com/simclr-go/simclr/dist"
	"github.com/simclr-go/simclr/dist/mpi"
)

// Available reports whether this build can communicate over MPI.
const Available = true

func openMPI(timeout time.Duration) (dist.Comm, func() error, error) {
	c, err := mpi.Init(mpi.Options{Timeout: timeout})
	if err != nil {
		return nil, nil, err
	}
	return c, mpi.Finalize, nil
}
