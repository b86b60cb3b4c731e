package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simclr-go/simclr/data"
)

func TestLabelledSubset(t *testing.T) {
	ds, err := data.NewArray("t", 2, 2, 1, make([]uint8, 5*4), []int32{0, 1, 0, 1, 1}, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sub, err := labelledSubset(ds, write("idx.txt", "# labelled\n3\n\n0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if sub.Len() != 2 {
		t.Fatalf("%d samples, want 2", sub.Len())
	}
	s, _ := sub.Get(0)
	if s.Label != 1 {
		t.Errorf("first listed sample has label %d, want 1 (index 3)", s.Label)
	}
	first, _ := ds.Get(4)
	byName, err := labelledSubset(ds, write("names.txt", first.Name+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := byName.Get(0); got.Name != first.Name {
		t.Errorf("by name: got %q", got.Name)
	}
	if _, err := labelledSubset(ds, write("bad.txt", "7\n")); err == nil || !strings.Contains(err.Error(), "index 7") {
		t.Errorf("out of range: %v", err)
	}
	if _, err := labelledSubset(ds, write("nope.txt", "no-such-image.jpg\n")); err == nil || !strings.Contains(err.Error(), "no-such-image") {
		t.Errorf("unknown name: %v", err)
	}
}
