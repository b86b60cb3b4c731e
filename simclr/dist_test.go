package simclr

import (
	"math"
	"sync"
	"testing"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/dist"
	"github.com/simclr-go/simclr/tensor"
)

// shardViews returns rank r's z [first views of its images; second views]
// from the global z [first views of all N; second views], the images
// split into k contiguous parts as data.Shard does.
func shardViews(z *tensor.Tensor, k, r int) *tensor.Tensor {
	rows, d := z.Dim(0), z.Dim(1)
	total := rows / 2
	n := total / k
	out := tensor.New(2*n, d)
	copy(out.Data[:n*d], z.Data[r*n*d:(r+1)*n*d])
	copy(out.Data[n*d:], z.Data[(total+r*n)*d:(total+(r+1)*n)*d])
	return out
}

// TestNTXentGlobal: K processes with n images each give, averaged, the
// loss and statistics of NTXent on the K*n images, and each process's
// gradient is K times the global loss's gradient for its rows (the
// gradient of the sum of the K per-process means; averaging parameter
// gradients over the processes divides by K again). Tolerance: float32
// rounding of a softmax over 2N-1 terms and of the summed gradients.
func TestNTXentGlobal(t *testing.T) {
	const k, n, d = 2, 5, 8
	for _, tau := range []float32{0.1, 0.5} {
		rng := tensor.NewRNG(9, "ntxent-global")
		zt := tensor.New(2*k*n, d)
		rng.FillNormal(zt, 1)
		for i := 0; i < k*n*d; i++ { // second views close to the first
			zt.Data[k*n*d+i] = zt.Data[i] + 0.3*zt.Data[k*n*d+i]
		}
		z := autograd.NewParam(zt.Clone())
		tape := autograd.NewTape(purego.New(1))
		loss, want := NTXent(tape, z, tau)
		if err := tape.Backward(loss); err != nil {
			t.Fatal(err)
		}

		losses := make([]float64, k)
		stats := make([]ContrastStats, k)
		grads := make([]*tensor.Tensor, k)
		comms := dist.NewLocal(k, 0)
		var wg sync.WaitGroup
		for r, c := range comms {
			wg.Add(1)
			go func() {
				defer wg.Done()
				zr := autograd.NewParam(shardViews(zt, k, r))
				tp := autograd.NewTape(purego.New(1))
				l, st := NTXentGlobal(tp, zr, tau, c)
				if err := tp.Backward(l); err != nil {
					panic(err)
				}
				losses[r], stats[r], grads[r] = float64(l.Value.Data[0]), st, zr.Grad
			}()
		}
		wg.Wait()
		var mean, acc, ent float64
		for r := range losses {
			mean += losses[r] / k
			acc += stats[r].Accuracy / k
			ent += stats[r].Entropy / k
		}
		if got, w := mean, float64(loss.Value.Data[0]); math.Abs(got-w) > 1e-6*w {
			t.Errorf("tau %g: mean loss over %d processes %.8f, one process %.8f", tau, k, got, w)
		}
		if math.Abs(acc-want.Accuracy) > 1e-12 || math.Abs(ent-want.Entropy) > 1e-6*want.Entropy {
			t.Errorf("tau %g: statistics %+v %+v, one process %+v", tau, acc, ent, want)
		}
		var worst, scale float64
		for r := 0; r < k; r++ {
			w := shardViews(z.Grad, k, r)
			for i, v := range grads[r].Data {
				worst = max(worst, math.Abs(float64(v)/k-float64(w.Data[i])))
				scale = max(scale, math.Abs(float64(w.Data[i])))
			}
		}
		if worst > 1e-5*scale {
			t.Errorf("tau %g: gradient off by %.3g (largest %.3g)", tau, worst, scale)
		}
		t.Logf("tau %g: loss %.6f, gradient difference %.3g of %.3g", tau, mean, worst, scale)
	}
}

// TestNTXentGlobalAlone: with one process it is NTXent, bit for bit.
func TestNTXentGlobalAlone(t *testing.T) {
	rng := tensor.NewRNG(10, "ntxent-alone")
	zt := tensor.New(12, 6)
	rng.FillNormal(zt, 1)
	run := func(global bool) (float32, ContrastStats, []float32) {
		z := autograd.NewParam(zt.Clone())
		tp := autograd.NewTape(purego.New(1))
		var l *autograd.Var
		var st ContrastStats
		if global {
			l, st = NTXentGlobal(tp, z, 0.2, dist.Single{})
		} else {
			l, st = NTXent(tp, z, 0.2)
		}
		if err := tp.Backward(l); err != nil {
			t.Fatal(err)
		}
		return l.Value.Data[0], st, z.Grad.Data
	}
	l1, s1, g1 := run(false)
	l2, s2, g2 := run(true)
	if l1 != l2 || s1 != s2 {
		t.Fatalf("alone: loss %v %+v, NTXent %v %+v", l2, s2, l1, s1)
	}
	for i := range g1 {
		if g1[i] != g2[i] {
			t.Fatalf("alone: grad[%d] %g, NTXent %g", i, g2[i], g1[i])
		}
	}
}
