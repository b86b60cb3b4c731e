// Package auto picks a backend by name: oneDNN when the program was built
// with cgo, the pure-Go reference otherwise or on request.
package auto

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/backend/purego"
)

// ThreadsEnv is the environment variable that sets the default number of
// compute threads.
const ThreadsEnv = "SIMCLR_THREADS"

// DefaultThreads is $SIMCLR_THREADS when set, else the number of CPUs.
func DefaultThreads() (int, error) {
	s := os.Getenv(ThreadsEnv)
	if s == "" {
		return runtime.NumCPU(), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive number of threads", ThreadsEnv, s)
	}
	return n, nil
}

// Names lists the backends this build can run.
func Names() []string { return append([]string{"purego"}, fastNames...) }

// New returns the float32 backend called name ("auto" or "" for the
// fastest available) computing with threads threads (<= 0: DefaultThreads).
func New(name string, threads int) (backend.Backend, error) {
	return NewWithPrecision(name, threads, backend.FP32)
}

// NewWithPrecision is New computing convolutions and linear layers in prec.
func NewWithPrecision(name string, threads int, prec backend.Precision) (backend.Backend, error) {
	if threads <= 0 {
		var err error
		if threads, err = DefaultThreads(); err != nil {
			return nil, err
		}
	}
	switch name {
	case "purego":
		return purego.NewWithPrecision(threads, prec), nil
	case "", "auto":
		if len(fastNames) == 0 {
			return purego.NewWithPrecision(threads, prec), nil
		}
		return newFast(fastNames[0], threads, prec)
	}
	for _, n := range fastNames {
		if n == name {
			return newFast(name, threads, prec)
		}
	}
	return nil, fmt.Errorf("backend %q not available in this build (have %v)", name, Names())
}
