// Package mpitest holds the tests that need several processes under MPI:
// data-parallel training on 2 processes against 1 process with the whole
// batch. They are built with the tag mpi and run by scripts/test-mpi.sh:
//
//	go test -c -tags mpi -o /tmp/mpitest.test ./internal/mpitest
//	mpirun -np 2 /tmp/mpitest.test -test.v
//
// Started without mpirun the test binary skips them.
package mpitest
