package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/simclr-go/simclr/data"
)

// input is a path a command reads, with the flag that names it.
type input struct{ flag, path string }

// datasetInput is the file or folder a --data style spec reads from ("" for
// a dataset in the download cache).
func datasetInput(flag, spec string) input {
	name, arg, _ := strings.Cut(spec, ":")
	switch name {
	case "cifar10", "cifar100", "mnist", "stl10":
		return input{flag, arg}
	case "fashion-mnist":
		if arg == "" {
			arg = data.FashionMNISTDir
		}
		return input{flag, arg}
	}
	return input{flag, spec}
}

// outputFile checks that writing the file out (named by --flag) destroys
// no input: it must be none of the input files and lie outside every
// dataset, whether or not it exists yet.
func (c *checks) outputFile(flag, out string, inputs []input, datasets ...input) {
	if out == "" {
		return
	}
	for _, in := range inputs {
		if in.path != "" && samePath(out, in.path) {
			c.failf("--%s %s is the --%s file: writing it would destroy the input; choose another file", flag, out, in.flag)
		}
	}
	for _, d := range datasets {
		if d.path == "" {
			continue
		}
		if samePath(out, d.path) {
			c.failf("--%s %s is the dataset (--%s): writing it would destroy the images; choose another file", flag, out, d.flag)
		} else if within(out, d.path) {
			c.failf("--%s %s lies inside the dataset folder --%s %s: choose a path outside it", flag, out, d.flag, d.path)
		}
	}
}

// outputDir checks that the folder out (named by --flag) is none of the
// input files and lies outside every dataset; replaced (the command
// deletes the folder first) also refuses a folder that holds a dataset.
func (c *checks) outputDir(flag, out string, replaced bool, inputs []input, datasets ...input) {
	if out == "" {
		return
	}
	for _, in := range inputs {
		if in.path != "" && samePath(out, in.path) {
			c.failf("--%s %s is the --%s file: choose another folder", flag, out, in.flag)
		}
	}
	for _, d := range datasets {
		switch {
		case d.path == "":
		case samePath(out, d.path) || within(out, d.path):
			c.failf("--%s %s lies inside the dataset folder --%s %s: choose a folder outside it", flag, out, d.flag, d.path)
		case replaced && within(d.path, out):
			c.failf("--%s %s holds the dataset --%s %s and would be replaced: choose another folder", flag, out, d.flag, d.path)
		}
	}
}

// samePath reports whether a and b name the same file: the same inode
// when both exist (hard links, symbolic links), else the same resolved
// absolute path.
func samePath(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(sa, sb)
	}
	return resolve(a) == resolve(b)
}

// within reports whether p lies strictly inside the folder dir.
func within(p, dir string) bool {
	rel, err := filepath.Rel(resolve(dir), resolve(p))
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// resolve makes p absolute and clean, with symbolic links resolved in the
// part of it that exists: a path to a file not yet written resolves through
// its folder.
func resolve(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	var rest []string
	for dir := abs; ; dir = filepath.Dir(dir) {
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(append([]string{r}, rest...)...)
		} else if !errors.Is(err, fs.ErrNotExist) || filepath.Dir(dir) == dir {
			return abs
		}
		rest = append([]string{filepath.Base(dir)}, rest...)
	}
}
