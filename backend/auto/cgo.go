//go:build cgo

package auto

import (
	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/backend/onednn"
)

var fastNames = []string{"onednn"}

func newFast(_ string, threads int, prec backend.Precision) (backend.Backend, error) {
	return onednn.NewWithPrecision(threads, prec)
}
