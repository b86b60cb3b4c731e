package train

import (
	"encoding/json"
	"fmt"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/dist"
	"github.com/simclr-go/simclr/simclr"
	"github.com/simclr-go/simclr/tensor"
)

// DistOptions configure data-parallel training (SetComm).
type DistOptions struct {
	// LocalBatchNorm keeps every batch norm on this process's part of the
	// batch instead of SimCLR's global batch norm. Training then differs
	// from one process with the whole batch; it exists for comparisons.
	LocalBatchNorm bool
	// BucketBytes bounds the messages gradients are averaged in (0:
	// dist.DefaultBucketBytes).
	BucketBytes int
}

// parallel is a Pretrainer's data-parallel state.
type parallel struct {
	comm dist.Comm
	avg  *dist.Averager
	// grads lists the parameters' gradient buffers, in parameter order.
	grads [][]float32
}

// SetComm makes p one of the c.Size() processes of a data-parallel run.
// Config.Batch stays the global batch: the ViewSource must give this
// process its Batch/Size images of every step (AugmentedViews with
// ViewOptions.Shard {c.Rank(), c.Size()}), in the two-views layout. Every
// step then gathers the projections of all processes for NT-Xent's
// negatives, batch norms use the statistics of the global batch, and the
// parameter gradients are averaged over the processes, so the run
// computes what one process with the whole batch would, up to float32
// rounding. SetComm checks that every process has the same configuration
// and copies rank 0's model and optimiser state to the others; call it on
// every process, before Resume and training. Rank 0 alone should write
// checkpoints and logs (Run does that). With a group of one it changes
// nothing.
func (p *Pretrainer) SetComm(c dist.Comm, o DistOptions) error {
	k := c.Size()
	if k == 1 {
		return nil
	}
	if p.Memory != nil {
		return fmt.Errorf("the memory (memory size %d) supports one process only, not %d", p.Config.MemorySize, k)
	}
	if p.Config.Batch%k != 0 {
		return fmt.Errorf("batch %d does not divide among %d processes", p.Config.Batch, k)
	}
	cfg, err := json.Marshal(p.Config)
	if err != nil {
		return err
	}
	if err := dist.CheckSame(c, "the training configuration", cfg); err != nil {
		return err
	}
	n := p.Config.Batch / k
	p.views = tensor.New(2*n, p.Config.ImageSize, p.Config.ImageSize, 3)
	par := &parallel{comm: c, avg: dist.NewAverager(c, o.BucketBytes)}
	for _, q := range p.Model.Params.Params() {
		par.grads = append(par.grads, q.Grad.Data)
	}
	p.par = par
	if !o.LocalBatchNorm {
		p.Model.SetBatchNormReducer(c)
	}
	return p.syncFromRoot()
}

// Comm is the process group p trains in (dist.Single unless SetComm).
func (p *Pretrainer) Comm() dist.Comm {
	if p.par == nil {
		return dist.Single{}
	}
	return p.par.comm
}

// IsRoot reports whether p is rank 0, the process that writes checkpoints
// and logs.
func (p *Pretrainer) IsRoot() bool { return p.Comm().Rank() == 0 }

// contrast is the step's NT-Xent: over the global batch when distributed.
func (p *Pretrainer) contrast(z *autograd.Var) (*autograd.Var, simclr.ContrastStats) {
	tau := float32(p.Config.Temperature)
	if p.Memory != nil {
		if p.Config.MemoryPositives == "momentum" {
			p.keys = p.Memory.Encode(p.views)
			return simclr.NTXentMomentumKeys(p.tape, z, p.keys, p.Memory.Queue, tau)
		}
		return simclr.NTXentMemory(p.tape, z, p.Memory.Queue, tau)
	}
	if p.par == nil {
		return simclr.NTXent(p.tape, z, tau)
	}
	return simclr.NTXentGlobal(p.tape, z, tau, p.par.comm)
}

// globalStats averages a step's loss and statistics over the processes:
// the mean of the per-process means is the global batch's.
func (p *Pretrainer) globalStats(loss float64, cs simclr.ContrastStats) (float64, simclr.ContrastStats, error) {
	if p.par == nil {
		return loss, cs, nil
	}
	v := []float64{loss, cs.Accuracy, cs.Entropy}
	if err := p.par.comm.AllReduceSumFloat64(v); err != nil {
		return 0, cs, fmt.Errorf("step %d: %w", p.Step, err)
	}
	k := float64(p.par.comm.Size())
	return v[0] / k, simclr.ContrastStats{Accuracy: v[1] / k, Entropy: v[2] / k}, nil
}

// averageGrads replaces every parameter gradient by its mean over the
// processes. A parameter without a gradient this step (the same on every
// process, as the graphs are) takes part with zeros.
func (p *Pretrainer) averageGrads() error {
	if p.par == nil {
		return nil
	}
	for i, q := range p.Model.Params.Params() {
		if !q.HasGrad(p.tape) {
			clear(p.par.grads[i])
		}
	}
	if err := p.par.avg.Average(p.par.grads); err != nil {
		return fmt.Errorf("step %d: %w", p.Step, err)
	}
	return nil
}

// syncFromRoot copies rank 0's parameters, buffers, counters, optimiser
// state and step to every process.
func (p *Pretrainer) syncFromRoot() error {
	c := p.par.comm
	for _, q := range p.Model.Params.Params() {
		if err := c.Broadcast(q.Value.Data, 0); err != nil {
			return err
		}
	}
	for _, b := range p.Model.Params.Buffers() {
		if err := c.Broadcast(b.Tensor.Data, 0); err != nil {
			return err
		}
	}
	for _, v := range p.velocity {
		if err := c.Broadcast(v, 0); err != nil {
			return err
		}
	}
	counters := p.Model.Params.Counters()
	ints := make([]int64, 1+len(counters))
	ints[0] = int64(p.Step)
	for i, ct := range counters {
		ints[1+i] = ct.Value
	}
	if err := dist.BroadcastInts(c, ints, 0); err != nil {
		return err
	}
	p.Step = int(ints[0])
	for i, ct := range counters {
		ct.Value = ints[1+i]
	}
	return nil
}

// resumeDist is Resume for a data-parallel run: rank 0 reads the
// checkpoint and every process gets its state, so only rank 0 needs the
// file. A failure on rank 0 is an error on every process.
func (p *Pretrainer) resumeDist(path string) error {
	c := p.par.comm
	var err error
	if c.Rank() == 0 {
		err = p.resumeFile(path)
	}
	failed := []float32{0}
	if err != nil {
		failed[0] = 1
	}
	if berr := c.Broadcast(failed, 0); berr != nil {
		return berr
	}
	if err != nil {
		return err
	}
	if failed[0] != 0 {
		return fmt.Errorf("rank 0 could not resume from %s", path)
	}
	return p.syncFromRoot()
}

// agreeStop combines every process's wish to finish and whether it was
// interrupted, in one all-reduce: the run stops on every process as soon
// as one of them asks.
func (p *Pretrainer) agreeStop(finish, interrupted bool) (bool, bool, error) {
	if p.par == nil {
		return finish, interrupted, nil
	}
	v := []float64{0, 0}
	if finish {
		v[0] = 1
	}
	if interrupted {
		v[1] = 1
	}
	if err := p.par.comm.AllReduceSumFloat64(v); err != nil {
		return false, false, fmt.Errorf("step %d: agreeing whether to stop: %w", p.Step, err)
	}
	return v[0] > 0, v[1] > 0, nil
}
