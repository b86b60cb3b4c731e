//go:build !mpi

// Package mpi implements dist.Comm over MPI; it needs the build tag mpi
// (go build -tags mpi), and without it the package is empty. See mpi.go.
package mpi
