package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/simclr-go/simclr/data"
	"github.com/simclr-go/simclr/internal/fuzzcheck"
)

// FuzzLabelsFile reads arbitrary bytes as a --labels-file of a five-image
// dataset. Nothing may panic; an error must name the file, and a line it
// cites must hold what it reports; an accepted file must give one sample
// per listed line, the one the line names by index or by name.
func FuzzLabelsFile(f *testing.F) {
	ds, err := data.NewArray("t", 2, 2, 1, make([]uint8, 5*4), []int32{0, 1, 0, 1, 1}, []string{"a", "b"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		path := fuzzcheck.WriteTemp(t, "labels.txt", raw)
		sub, err := labelledSubset(ds, path)
		lines := strings.Split(string(raw), "\n")
		if err != nil {
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Fatalf("error does not name the file: %v", err)
			}
			// "PATH line N: no sample named "X"": line N must hold X.
			if rest, ok := strings.CutPrefix(msg, path+" line "); ok {
				n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ':')])
				q, err := strconv.QuotedPrefix(rest[strings.IndexByte(rest, '"'):])
				if err != nil {
					t.Fatalf("cannot read the name in %q: %v", msg, err)
				}
				name, err := strconv.Unquote(q)
				if err != nil {
					t.Fatalf("cannot read the name in %q: %v", msg, err)
				}
				if n < 1 || n > len(lines) || strings.TrimSpace(lines[n-1]) != name {
					t.Fatalf("%q: line %d of the file is not %q", msg, n, name)
				}
			}
			return
		}
		var listed []string
		for _, l := range lines {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				listed = append(listed, l)
			}
		}
		if sub.Len() != len(listed) {
			t.Fatalf("%d samples from %d listed lines", sub.Len(), len(listed))
		}
		for k, l := range listed {
			s, err := sub.Get(k)
			if err != nil {
				t.Fatal(err)
			}
			if i, err := strconv.Atoi(l); err == nil && s.Name == "t/"+strconv.Itoa(i) {
				continue
			}
			if s.Name != l {
				t.Fatalf("line %q gave sample %q", l, s.Name)
			}
		}
	})
}
