// Package simclr holds the method itself: the contrastive loss and, with
// the encoder and projection head, the model it trains.
package simclr

import (
	"fmt"

	"github.com/simclr-go/simclr/autograd"
)

// NTXent is the normalised temperature-scaled cross-entropy of SimCLR over
// z[2N, d], whose rows i and i+N are the two views of image i: each row's
// positive is its other view and its negatives are the other 2N-2 rows.
// The result is the mean over the 2N rows (half the official TF code's sum
// of its two directions' means), with the statistics the official code logs.
func NTXent(t *autograd.Tape, z *autograd.Var, temperature float32) (loss *autograd.Var, stats ContrastStats) {
	rows := z.Value.Dim(0)
	if rows%2 != 0 || rows < 4 {
		panic(fmt.Sprintf("simclr: NT-Xent needs two views of at least 2 images, got %d rows", rows))
	}
	n := rows / 2
	zn := t.L2Normalize(z)
	logits := t.FillDiagonal(t.Scale(t.MatMulT(zn, zn), 1/temperature), -1e9)
	labels := make([]int32, rows)
	for i := 0; i < n; i++ {
		labels[i], labels[i+n] = int32(i+n), int32(i)
	}
	return t.CrossEntropy(logits, labels), contrastStats(logits.Value.Data, labels)
}

// ContrastStats describe how well a batch's views find their partners.
type ContrastStats struct {
	// Accuracy is the fraction of rows whose most similar other row is
	// their positive.
	Accuracy float64
	// Entropy is the mean entropy (nats) of each row's softmax over the
	// others: it falls from log(2N-1) as the model grows confident.
	Entropy float64
}

func contrastStats(logits []float32, labels []int32) ContrastStats {
	self := make([]int32, len(labels)) // row i is view i
	for i := range self {
		self[i] = int32(i)
	}
	return contrastStatsRows(logits, len(labels), self, labels)
}
