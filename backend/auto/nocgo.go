//go:build !cgo

package auto

import (
	"fmt"

	"github.com/simclr-go/simclr/backend"
)

var fastNames []string

func newFast(name string, _ int, _ backend.Precision) (backend.Backend, error) {
	return nil, fmt.Errorf("backend %q needs a build with cgo", name)
}
