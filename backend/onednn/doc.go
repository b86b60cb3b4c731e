// Package onednn is the fast CPU backend: a cgo binding to oneDNN 2.6 for
// convolutions, batch normalisation and GEMM, with OpenMP C loops for the
// memory-bound element-wise and pooling operations. Every other operation
// comes from the embedded pure-Go backend.
//
// The package needs cgo and libdnnl (Debian: libdnnl-dev). Built with
// CGO_ENABLED=0 it is empty.
package onednn
