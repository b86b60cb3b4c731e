//go:build !mpi

package auto

import (
	"errors"
	"time"

	"github.com/simclr-go/simclr/dist"
)

// Available reports whether this build can communicate over MPI.
const Available = false

func openMPI(time.Duration) (dist.Comm, func() error, error) {
	return nil, nil, errors.New("built without MPI")
}
