package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// skippedName is the file in a run folder that lists, one per line, the
// images --skip-bad left out.
const skippedName = "skipped.txt"

// reportSkipped names on w the first few images --skip-bad left out of
// the dataset spec, and how many there are.
func reportSkipped(w io.Writer, spec string, names []string) {
	if len(names) == 0 {
		return
	}
	const shown = 5
	list := strings.Join(names[:min(shown, len(names))], ", ")
	if len(names) > shown {
		list += fmt.Sprintf(" and %d more", len(names)-shown)
	}
	fmt.Fprintf(w, "skipped %d unreadable images in %s: %s\n", len(names), spec, list)
}

// writeSkipped lists names in dir/skipped.txt (written atomically), when
// there are any, and says so on stderr.
func writeSkipped(dir string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	path := filepath.Join(dir, skippedName)
	tmp, err := os.CreateTemp(dir, skippedName+".*")
	if err != nil {
		return fmt.Errorf("listing skipped images: %w", err)
	}
	defer os.Remove(tmp.Name())
	for _, n := range names {
		// One name a line: a newline inside a name would shift the rest.
		fmt.Fprintln(tmp, strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(n))
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	fmt.Fprintf(os.Stderr, "the %d skipped images are listed in %s\n", len(names), path)
	return nil
}
