package dist

import (
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

// onRanks runs fn on each of k in-process ranks and returns their errors.
func onRanks(k int, fn func(c Comm) error) []error {
	comms := NewLocal(k, 5*time.Second)
	errs := make([]error, k)
	var wg sync.WaitGroup
	for r, c := range comms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[r] = fn(c)
		}()
	}
	wg.Wait()
	return errs
}

func noErrors(t *testing.T, errs []error) {
	t.Helper()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
}

func TestLocalCollectives(t *testing.T) {
	const k = 3
	noErrors(t, onRanks(k, func(c Comm) error {
		r := float32(c.Rank())
		a := []float32{r, 1, 0.1 * r}
		if err := c.AllReduceSum(a); err != nil {
			return err
		}
		want := []float32{3, 3, float32(0) + 0.1 + 0.2}
		for i := range a {
			if a[i] != want[i] {
				t.Errorf("rank %v: all-reduce %v, want %v", r, a, want)
			}
		}
		d := []float64{float64(r), 2}
		if err := c.AllReduceSumFloat64(d); err != nil {
			return err
		}
		if d[0] != 3 || d[1] != 6 {
			t.Errorf("rank %v: float64 all-reduce %v", r, d)
		}
		recv := make([]float32, 2*k)
		if err := c.AllGather([]float32{r, -r}, recv); err != nil {
			return err
		}
		for q := 0; q < k; q++ {
			if recv[2*q] != float32(q) || recv[2*q+1] != -float32(q) {
				t.Errorf("rank %v: all-gather %v", r, recv)
			}
		}
		b := []float32{r + 10}
		if err := c.Broadcast(b, 2); err != nil {
			return err
		}
		if b[0] != 12 {
			t.Errorf("rank %v: broadcast gave %v", r, b)
		}
		return c.Barrier()
	}))
}

// TestLocalMismatch: ranks that call different collectives get errors,
// and a missing rank is a timeout, not a hang.
func TestLocalMismatch(t *testing.T) {
	errs := onRanks(2, func(c Comm) error {
		if c.Rank() == 0 {
			return c.Barrier()
		}
		return c.AllReduceSum([]float32{1})
	})
	for r, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "differ") {
			t.Errorf("rank %d: %v", r, err)
		}
	}
	comms := NewLocal(2, 50*time.Millisecond)
	if err := comms[0].Barrier(); err == nil || !strings.Contains(err.Error(), "waited") {
		t.Errorf("barrier without the other rank: %v", err)
	}
}

func TestAverager(t *testing.T) {
	const k = 2
	for _, bucket := range []int{0, 12, 40} { // one bucket; slices split across buckets
		noErrors(t, onRanks(k, func(c Comm) error {
			r := float32(c.Rank())
			grads := [][]float32{{1 + r, 2 + r, 3 + r, 4 + r, 5 + r}, {}, {10 * r, 20 * r, 30 * r}, {7}}
			a := NewAverager(c, bucket)
			if err := a.Average(grads); err != nil {
				return err
			}
			want := [][]float32{{1.5, 2.5, 3.5, 4.5, 5.5}, {}, {5, 10, 15}, {7}}
			for i := range want {
				for j := range want[i] {
					if grads[i][j] != want[i][j] {
						t.Errorf("bucket %d: slice %d = %v, want %v", bucket, i, grads[i], want[i])
					}
				}
			}
			// 9 values: one message, or three of 3 values (12 bytes).
			if want := map[int]int{0: 1, 12: 3, 40: 1}[bucket]; a.Calls != want {
				t.Errorf("buckets of %d bytes: %d messages for 9 values, want %d", bucket, a.Calls, want)
			}
			return nil
		}))
	}
	// One process: nothing changes, nothing is sent.
	g := [][]float32{{1, 2}}
	a := NewAverager(Single{}, 0)
	if err := a.Average(g); err != nil || g[0][1] != 2 || a.Calls != 0 {
		t.Errorf("single: %v %v %d", err, g, a.Calls)
	}
}

func TestBroadcastIntsAndCheckSame(t *testing.T) {
	vals := []int64{0, 1, -1, math.MaxInt64, math.MinInt64, 123456789012345}
	noErrors(t, onRanks(3, func(c Comm) error {
		v := make([]int64, len(vals))
		if c.Rank() == 1 {
			copy(v, vals)
		}
		if err := BroadcastInts(c, v, 1); err != nil {
			return err
		}
		for i := range v {
			if v[i] != vals[i] {
				t.Errorf("rank %d: %v, want %v", c.Rank(), v, vals)
			}
		}
		return CheckSame(c, "settings", []byte("same"))
	}))
	errs := onRanks(3, func(c Comm) error {
		s := "same"
		if c.Rank() == 2 {
			s = "other"
		}
		return CheckSame(c, "settings", []byte(s))
	})
	for r, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "rank 2") {
			t.Errorf("rank %d: %v", r, err)
		}
	}
}

func TestTimedAndSingle(t *testing.T) {
	tc := NewTimed(Single{})
	if err := tc.AllReduceSum([]float32{1}); err != nil {
		t.Fatal(err)
	}
	recv := make([]float32, 2)
	if err := tc.AllGather([]float32{1, 2}, recv); err != nil || recv[1] != 2 {
		t.Fatalf("single all-gather: %v %v", err, recv)
	}
	if err := tc.AllGather([]float32{1}, recv); err == nil {
		t.Error("single all-gather into a wrong size")
	}
	if tc.Calls["allreduce"] != 1 || tc.Calls["allgather"] != 2 {
		t.Errorf("calls %v", tc.Calls)
	}
	if err := (Single{}).Broadcast(nil, 1); err == nil {
		t.Error("broadcast from rank 1 of 1")
	}
}
