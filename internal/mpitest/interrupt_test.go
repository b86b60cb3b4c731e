//go:build mpi

package mpitest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/simclr-go/simclr/augment"
	"github.com/simclr-go/simclr/backend/auto"
	"github.com/simclr-go/simclr/data"
	"github.com/simclr-go/simclr/train"
)

// TestInterruptAgreed: only the last rank's context is cancelled (a signal
// that reached one process), after its second step; every rank stops after
// that same step, rank 0 saves a checkpoint of it, and the other ranks
// report that another process was interrupted.
func TestInterruptAgreed(t *testing.T) {
	if comm.Size() < 2 {
		t.Skip("needs mpirun -np 2 or more")
	}
	pipe, err := augment.NewPipeline(augment.CIFARDefaults(side))
	if err != nil {
		t.Fatal(err)
	}
	views, err := train.NewAugmentedViews(dataset(t), pipe, train.ViewOptions{
		Batch: batch, Seed: 5, Workers: 1, Shard: data.Shard{Rank: comm.Rank(), Size: comm.Size()}})
	if err != nil {
		t.Fatal(err)
	}
	defer views.Close()
	be, err := auto.New("purego", 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config()
	cfg.Steps = 8
	p, err := train.NewPretrainer(cfg, be, views)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetComm(comm, train.DistOptions{}); err != nil {
		t.Fatal(err)
	}
	// Rank 0's folder; the others write nothing.
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("simclr-mpitest-interrupt-%d", os.Getppid()))
	if comm.Rank() == 0 {
		defer os.RemoveAll(dir)
	}
	signalled := comm.Rank() == comm.Size()-1
	signal := errors.New("test signal")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	err = train.Run(ctx, p, train.RunOptions{Dir: dir, Progress: func(st train.StepStats) {
		if signalled && st.Step == 1 {
			cancel(signal)
		}
	}})
	want := train.ErrInterruptedElsewhere
	if signalled {
		want = signal
	}
	var ie *train.InterruptedError
	if !errors.As(err, &ie) || !errors.Is(err, want) {
		t.Fatalf("rank %d: Run gave %v, want an interruption caused by %v", comm.Rank(), err, want)
	}
	if p.Step != 2 {
		t.Fatalf("rank %d stopped after %d steps, want 2", comm.Rank(), p.Step)
	}
	if comm.Rank() == 0 {
		q, err := train.NewPretrainer(cfg, be, views)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Resume(ie.Checkpoint); err != nil || q.Step != 2 {
			t.Fatalf("rank 0's checkpoint: step %d, %v; want step 2", q.Step, err)
		}
	}
}
