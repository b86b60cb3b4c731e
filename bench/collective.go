package bench

import (
	"fmt"
	"time"

	"github.com/simclr-go/simclr/dist"
)

// AllReduceTime is the median of reps all-reduces of n float32 values,
// each started together on every process (after a barrier), so that no
// process's compute is counted as waiting. With one value it is the
// latency of a collective on this network path (what the many small
// batch-norm all-reduces of a step cost); with many, size over time is the
// bandwidth the all-reduce achieves. Every process of c must call it.
func AllReduceTime(c dist.Comm, n, reps int) (time.Duration, error) {
	if n < 1 || reps < 1 {
		return 0, fmt.Errorf("bench: all-reduce timing of %d values, %d times: want at least 1 of each", n, reps)
	}
	buf := make([]float32, n)
	times := make([]float64, reps)
	for i := range times {
		if err := c.Barrier(); err != nil {
			return 0, err
		}
		t0 := time.Now()
		if err := c.AllReduceSum(buf); err != nil {
			return 0, err
		}
		times[i] = time.Since(t0).Seconds()
	}
	return time.Duration(median(times) * float64(time.Second)), nil
}
