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
// of its two directions' means). It also returns the contrastive accuracy:
// the fraction of rows whose most similar other row is their positive.
func NTXent(t *autograd.Tape, z *autograd.Var, temperature float32) (loss *autograd.Var, accuracy float64) {
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
	correct := 0
	for i, l := range labels {
		row := logits.Value.Data[i*rows : (i+1)*rows]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		if best == int(l) {
			correct++
		}
	}
	return t.CrossEntropy(logits, labels), float64(correct) / float64(rows)
}
