//go:build unix

package data

import (
	"syscall"
	"time"
)

// processCPUTime is the CPU time the process has used, so that throughput
// per core can be measured on a machine shared with other work.
func processCPUTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
