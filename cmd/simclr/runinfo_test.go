package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/simclr-go/simclr/data"
)

// TestIdentify: the dataset digest depends on which samples a run used.
func TestIdentify(t *testing.T) {
	pix := make([]uint8, 8*2*2*3)
	ds, err := data.NewArray("tiny", 2, 2, 3, pix, []int32{0, 1, 0, 1, 0, 1, 0, 1}, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	sub1, _ := data.RandomSubset(ds, 4, 0)
	sub2, _ := data.RandomSubset(ds, 4, 0)
	other, _ := data.Subset(ds, []int{0, 1, 2, 3})
	a, b, c := identify("x", "tiny", "train", 4, sub1), identify("x", "tiny", "train", 4, sub2), identify("x", "tiny", "train", 4, other)
	if a != b || len(a.SHA256) != 64 || a.Images != 4 {
		t.Errorf("the same subset twice: %+v and %+v", a, b)
	}
	if a.SHA256 == c.SHA256 && fmt.Sprint(sub1.Indices()) != fmt.Sprint(other.Indices()) {
		t.Errorf("other samples, same digest %s", a.SHA256)
	}
	if d := identify("x", "tiny", "train", 0, ds); d.SHA256 == a.SHA256 {
		t.Error("the whole dataset and a subset have one digest")
	}
}

// TestWithContext: a cancelled context fails the dataset's reads.
func TestWithContext(t *testing.T) {
	pix := make([]uint8, 2*2*2*3)
	ds, err := data.NewArray("tiny", 2, 2, 3, pix, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wrapped := withContext(ctx, ds)
	if _, err := wrapped.Get(0); err != nil {
		t.Fatalf("before cancelling: %v", err)
	}
	cancel()
	if _, err := wrapped.Get(1); err == nil {
		t.Error("read after cancelling")
	}
	if withContext(context.Background(), ds) != ds {
		t.Error("a context that is never done should leave the dataset as it is")
	}
}
