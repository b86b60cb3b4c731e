package bench

import (
	"sync"
	"testing"
	"time"

	"github.com/simclr-go/simclr/dist"
)

func TestAllReduceTime(t *testing.T) {
	comms := dist.NewLocal(3, 10*time.Second)
	var wg sync.WaitGroup
	errs := make([]error, len(comms))
	times := make([]time.Duration, len(comms))
	for r, c := range comms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			times[r], errs[r] = AllReduceTime(c, 1000, 5)
		}()
	}
	wg.Wait()
	for r := range comms {
		if errs[r] != nil {
			t.Fatalf("rank %d: %v", r, errs[r])
		}
		if times[r] <= 0 {
			t.Errorf("rank %d: all-reduce time %v, want > 0", r, times[r])
		}
	}
	if _, err := AllReduceTime(dist.Single{}, 0, 5); err == nil {
		t.Error("0 values: no error")
	}
}
