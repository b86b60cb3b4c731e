package train

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/simclr-go/simclr/augment"
	"github.com/simclr-go/simclr/data"
)

// AugmentedViews is the ViewSource of real training: a dataset, shuffled
// per epoch, each image augmented twice by the SimCLR pipeline on the
// loader's workers. A sample's views depend only on (seed, epoch, index,
// view), so any step can be regenerated, after a restart or on another
// process.
type AugmentedViews struct {
	loader *data.Loader
	pipe   *augment.Pipeline
	batch  int

	it          *data.EpochIter
	epoch, next int
	srcBufs     sync.Pool // *[]float32 for decoded source images
	// ctx is the context of the Views call under way: the loader's
	// workers stop loading when it is done.
	ctx atomic.Pointer[context.Context]
}

// ViewOptions configure AugmentedViews.
type ViewOptions struct {
	Batch   int // images per step, over all processes
	Seed    uint64
	Workers int
	// Shard selects this process's part of every batch (data parallel).
	Shard data.Shard
}

// NewAugmentedViews prepares the views of ds under pipe.
func NewAugmentedViews(ds data.Dataset, pipe *augment.Pipeline, o ViewOptions) (*AugmentedViews, error) {
	v := &AugmentedViews{pipe: pipe, batch: o.Batch}
	v.srcBufs.New = func() any { return new([]float32) }
	viewLen := pipe.ViewLen()
	seed := o.Seed
	shard := o.Shard
	if shard.Size == 0 {
		shard = data.Shard{Rank: 0, Size: 1}
	}
	l, err := data.NewLoader(ds, data.LoaderOptions{
		BatchSize: o.Batch, Shuffle: true, Seed: seed, DropLast: true,
		Workers: max(o.Workers, 1), Prefetch: 2, Shard: shard,
		SampleFloats: 2 * viewLen,
		Transform: func(s data.Sample, epoch, index int, out []float32) error {
			if ctx := v.ctx.Load(); ctx != nil && (*ctx).Err() != nil {
				return (*ctx).Err()
			}
			buf := v.srcBufs.Get().(*[]float32)
			defer v.srcBufs.Put(buf)
			src := augment.FromHWC(s.RGB, s.W, s.H, *buf)
			*buf = src.Pix
			pipe.Apply(src, out[:viewLen], seed, uint64(epoch), uint64(index), 0)
			pipe.Apply(src, out[viewLen:], seed, uint64(epoch), uint64(index), 1)
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	if l.Len() == 0 {
		return nil, fmt.Errorf("%d images make no full batch of %d", ds.Len(), o.Batch)
	}
	v.loader = l
	return v, nil
}

// StepsPerEpoch implements ViewSource.
func (v *AugmentedViews) StepsPerEpoch() int { return v.loader.Len() }

// Views implements ViewSource: dst gets this process's images' first views,
// then their second views. When ctx is done the loading is abandoned.
func (v *AugmentedViews) Views(ctx context.Context, step int, dst []float32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if prev := v.ctx.Load(); prev != nil && (*prev).Err() != nil {
		v.Close() // batches loaded since then may hold its error
	}
	v.ctx.Store(&ctx)
	spe := v.loader.Len()
	epoch, b := step/spe, step%spe
	if v.it == nil || v.epoch != epoch || v.next != b {
		v.Close()
		v.it, v.epoch, v.next = v.loader.EpochFrom(epoch, b), epoch, b
	}
	if !v.it.Next() {
		err := v.it.Err()
		v.Close()
		if ctx.Err() != nil {
			return fmt.Errorf("loading the images of step %d: %w", step, ctx.Err())
		}
		if err == nil {
			err = fmt.Errorf("epoch %d ended before batch %d", epoch, b)
		}
		return err
	}
	v.next++
	batch := v.it.Batch()
	n := len(batch.Indices)
	viewLen := v.pipe.ViewLen()
	if len(dst) != 2*n*viewLen {
		return fmt.Errorf("views buffer of %d values for %d images of %d", len(dst), n, viewLen)
	}
	for i := 0; i < n; i++ {
		src := batch.Data[2*i*viewLen:]
		copy(dst[i*viewLen:(i+1)*viewLen], src[:viewLen])
		copy(dst[(n+i)*viewLen:(n+i+1)*viewLen], src[viewLen:2*viewLen])
	}
	return nil
}

// Close stops the loader's workers.
func (v *AugmentedViews) Close() {
	if v.it != nil {
		v.it.Close()
		v.it = nil
	}
}
