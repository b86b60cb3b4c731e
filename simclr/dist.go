package simclr

import (
	"fmt"
	"math"

	"github.com/simclr-go/simclr/autograd"
)

// SetBatchNormReducer makes every batch norm of the model (encoder and
// head) use, in training, the statistics of the batch of every process of
// r's group; nil returns them to this process's batch. Data-parallel
// training needs it to compute what one process with the whole batch
// would: SimCLR's global BN, without which each process's batch norms
// leak which images share a process, a shortcut for the contrastive task.
func (m *Model) SetBatchNormReducer(r autograd.Reducer) {
	for _, bn := range m.Params.BatchNorms() {
		bn.Reducer = r
	}
}

// NTXentGlobal is NTXent over the batch of every process of c's group:
// each process holds z[2n, d] for its n images (rows i and i+n the two
// views of image i), all of them together the global batch of N = K*n
// images in rank order. Every row's negatives are the other 2N-2 rows of
// every process. The loss is the mean over this process's 2n rows; the
// mean of that over the processes is NTXent on the global batch, and
// backward (through AllGatherRows, whose gradient sums over the group)
// gives each process's z the gradient of the sum of all processes' losses.
// Averaging the parameter gradients over the processes then gives the
// gradient of the global loss. The statistics are over this process's
// rows (average them over the group too).
//
// The gathered rows are in the order one process would have ([first views
// of all N images; second views]), so a row's logits are laid out as in
// NTXent; with a group of one the numbers are NTXent's.
func NTXentGlobal(t *autograd.Tape, z *autograd.Var, temperature float32, c autograd.Collective) (loss *autograd.Var, stats ContrastStats) {
	rows := z.Value.Dim(0)
	k, rank := c.Size(), c.Rank()
	if rows%2 != 0 || rows < 2 || k*rows < 4 {
		panic(fmt.Sprintf("simclr: NT-Xent needs two views of at least 2 images, got %d rows on each of %d processes", rows, k))
	}
	n := rows / 2
	total := k * n // images in the global batch
	zn := t.L2Normalize(z)
	all := t.AllGatherRows(zn, c, 2)
	logits := t.Scale(t.MatMulT(zn, all), 1/temperature)
	self := make([]int32, rows)
	labels := make([]int32, rows)
	for i := 0; i < n; i++ {
		g := rank*n + i // the image's global index; its views are rows g and g+total
		self[i], self[n+i] = int32(g), int32(g+total)
		labels[i], labels[n+i] = int32(g+total), int32(g)
	}
	logits = t.FillAt(logits, self, -1e9)
	return t.CrossEntropy(logits, labels), contrastStatsRows(logits.Value.Data, 2*total, self, labels)
}

// contrastStatsRows is contrastStats for rows of a wider similarity
// matrix: row i of logits[len(labels), cols] is the view self[i].
func contrastStatsRows(logits []float32, cols int, self, labels []int32) ContrastStats {
	var st ContrastStats
	for i, l := range labels {
		row := logits[i*cols : (i+1)*cols]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		if best == int(l) {
			st.Accuracy++
		}
		mx := float64(row[best])
		var z, s float64
		for j, v := range row {
			if j == int(self[i]) {
				continue
			}
			e := math.Exp(float64(v) - mx)
			z += e
			s += e * (float64(v) - mx)
		}
		st.Entropy += math.Log(z) - s/z
	}
	st.Accuracy /= float64(len(labels))
	st.Entropy /= float64(len(labels))
	return st
}
