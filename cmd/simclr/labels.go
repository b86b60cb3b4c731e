package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/simclr-go/simclr/data"
)

// labelledSubset reads a file naming the labelled samples of ds, one per
// line: either indices into ds or sample names (as simclr embed's
// .files.txt lists them). Blank lines and lines starting with # are skipped.
func labelledSubset(ds data.Dataset, path string) (data.Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	var lineNo []int // each entry's line in the file, for messages
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
			lineNo = append(lineNo, n)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%s lists no samples", path)
	}
	idx := make([]int, 0, len(lines))
	allInts := true
	for _, l := range lines {
		i, err := strconv.Atoi(l)
		if err != nil {
			allInts = false
			break
		}
		if i < 0 || i >= ds.Len() {
			return nil, fmt.Errorf("%s: index %d outside the dataset's %d samples", path, i, ds.Len())
		}
		idx = append(idx, i)
	}
	if !allInts {
		idx = idx[:0]
		byName := make(map[string]int, ds.Len())
		namer, fast := ds.(interface{ Name(int) string })
		for i := 0; i < ds.Len(); i++ {
			if fast {
				byName[namer.Name(i)] = i
				continue
			}
			s, err := ds.Get(i)
			if err != nil {
				return nil, err
			}
			byName[s.Name] = i
		}
		for n, l := range lines {
			i, ok := byName[l]
			if !ok {
				return nil, fmt.Errorf("%s line %d: no sample named %q in the training images", path, lineNo[n], l)
			}
			idx = append(idx, i)
		}
	}
	return data.Subset(ds, idx)
}
