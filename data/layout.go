package data

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
)

// splitAliases are the folder names that mark a split, by the split name
// they answer to. "test" falls back to a validation folder when there is no
// test folder, as ImageNet-style train/ + val/ trees have none.
var splitAliases = map[string][]string{
	"train": {"train", "training"},
	"val":   {"val", "valid", "validation"},
	"test":  {"test", "testing", "val", "valid", "validation"},
}

// isSplitName reports whether a folder name marks a split.
func isSplitName(s string) bool {
	s = strings.ToLower(s)
	for _, names := range splitAliases {
		for _, n := range names {
			if s == n {
				return true
			}
		}
	}
	return false
}

// NoSplitError reports a split that a source does not have.
type NoSplitError struct {
	Source string
	Split  string
	Have   []string // the split folders the source has; empty if none
}

func (e *NoSplitError) Error() string {
	if len(e.Have) == 0 {
		return fmt.Sprintf("data: %s has no %s split: it is one set of images, with no train/, val/ or test/ folders", e.Source, e.Split)
	}
	return fmt.Sprintf("data: %s has no %s split (its split folders: %s)", e.Source, e.Split, strings.Join(e.Have, ", "))
}

// layout is the result of reading a source's folder structure.
type layout struct {
	keep    []int    // positions of the kept raw entries, in raw order
	labels  []int32  // their labels (-1: unlabeled)
	classes []string // nil: unlabeled
	split   string   // the split folder used, "" for a source without splits
}

// resolveLayout applies the options to the entries' paths: Root, wrapper
// folders, splits, then class folders (or labels the source gave).
func resolveLayout(src string, l *listing, opts FolderOptions) (layout, error) {
	expect := "expected image files, class/image files (at any depth under the class folder), or train/ val/ test/ folders of those"
	var out layout
	keys := make([][]string, 0, len(l.entries))
	pos := make([]int, 0, len(l.entries))
	root := strings.Trim(path.Clean("/"+strings.ReplaceAll(opts.Root, "\\", "/")), "/")
	where := src
	if root != "" {
		where += " (root " + root + ")"
	}
	for i, e := range l.entries {
		rel := e.rel
		if root != "" {
			if !strings.HasPrefix(rel, root+"/") {
				continue
			}
			rel = rel[len(root)+1:]
		}
		keys = append(keys, strings.Split(rel, "/"))
		pos = append(pos, i)
	}
	if len(keys) == 0 {
		return out, fmt.Errorf("data: no images found in %s: %s", where, expect)
	}
	if l.fileList || l.entries[pos[0]].label != noLabel {
		// A file list or WebDataset shards: the source gave the labels.
		if opts.Split != "" && !isTrainSplit(opts.Split) {
			return out, &NoSplitError{Source: src, Split: opts.Split}
		}
		out.keep = pos
		out.labels = make([]int32, len(pos))
		maxLabel := int32(-1)
		for k, p := range pos {
			v := l.entries[p].label
			if opts.Unlabeled || v == noLabel {
				v = -1
			}
			out.labels[k] = v
			maxLabel = max(maxLabel, v)
		}
		if !opts.Unlabeled && maxLabel >= 0 {
			out.classes = l.labelNames
			if out.classes == nil {
				for v := int32(0); v <= maxLabel; v++ {
					out.classes = append(out.classes, fmt.Sprint(v))
				}
			}
		}
		return out, nil
	}
	lookThrough(keys)
	// Splits: every top-level folder is a split folder.
	var splits []string
	top := map[string]bool{}
	splitLayout := true
	for _, k := range keys {
		if len(k) < 2 {
			splitLayout = false
			break
		}
		if !top[k[0]] {
			top[k[0]] = true
			splits = append(splits, k[0])
		}
		if !isSplitName(k[0]) {
			splitLayout = false
		}
	}
	sort.Strings(splits)
	if !splitLayout {
		splits = nil
	}
	want := opts.Split
	if want == "" {
		want = "train"
	}
	if splitLayout {
		out.split = pickSplit(want, splits)
		if out.split == "" {
			return out, &NoSplitError{Source: src, Split: want, Have: splits}
		}
	} else if !isTrainSplit(want) {
		return out, &NoSplitError{Source: src, Split: want}
	}
	if opts.Unlabeled {
		for k, p := range pos {
			if out.split == "" || keys[k][0] == out.split {
				out.keep = append(out.keep, p)
				out.labels = append(out.labels, -1)
			}
		}
		return out, nil
	}
	// Classes: the first folder under the split, the same numbering for
	// every split (the union of their class folders).
	byRoot := map[string][][]string{} // split ("" if none) -> keys below it
	for _, k := range keys {
		s := ""
		if splitLayout {
			s, k = k[0], k[1:]
		}
		byRoot[s] = append(byRoot[s], k)
	}
	labeled := false
	classSet := map[string]bool{}
	for s, ks := range byRoot {
		lookThroughLone(ks)
		flat, deep := 0, 0
		var flatEx, deepEx string
		for _, k := range ks {
			if len(k) == 1 {
				flat++
				flatEx = k[0]
			} else {
				deep++
				deepEx = strings.Join(k, "/")
			}
		}
		if flat > 0 && deep > 0 {
			return out, fmt.Errorf("data: %s: some images are directly in the folder (%s) and others in sub-folders (%s): for class labels put every image in a class folder; to use the images without labels, pass --unlabeled", where, path.Join(s, flatEx), path.Join(s, deepEx))
		}
		if deep > 0 {
			labeled = true
			for _, k := range ks {
				classSet[k[0]] = true
			}
		}
	}
	if labeled {
		for c := range classSet {
			out.classes = append(out.classes, c)
		}
		sort.Strings(out.classes)
	}
	label := make(map[string]int32, len(out.classes))
	for i, c := range out.classes {
		label[c] = int32(i)
	}
	var ks [][]string
	if splitLayout {
		ks = byRoot[out.split]
	} else {
		ks = byRoot[""]
	}
	k := 0
	for i, p := range pos {
		if splitLayout && keys[i][0] != out.split {
			continue
		}
		v := int32(-1)
		if len(ks[k]) > 1 {
			v = label[ks[k][0]]
		}
		out.keep = append(out.keep, p)
		out.labels = append(out.labels, v)
		k++
	}
	return out, nil
}

// lookThrough drops leading folders that hold everything (a lone "data/"
// wrapper, say), but not a split folder: train/ alone is a train split.
func lookThrough(keys [][]string) {
	for {
		first := keys[0][0]
		for _, k := range keys {
			if len(k) < 2 || k[0] != first {
				return
			}
		}
		if isSplitName(first) {
			return
		}
		for i := range keys {
			keys[i] = keys[i][1:]
		}
	}
}

// lookThroughLone drops leading folders that hold everything below a
// split: one class labels nothing, so a lone folder is a wrapper.
func lookThroughLone(keys [][]string) {
	for {
		first := keys[0][0]
		for _, k := range keys {
			if len(k) < 2 || k[0] != first {
				return
			}
		}
		for i := range keys {
			keys[i] = keys[i][1:]
		}
	}
}

// isTrainSplit reports whether a requested split name means the training
// images, which is all of a source without splits.
func isTrainSplit(requested string) bool {
	r := strings.ToLower(requested)
	return r == "train" || r == "training"
}

// pickSplit chooses the folder for a requested split: the folder of that
// exact name, else one of the names the split answers to, in order.
func pickSplit(want string, have []string) string {
	for _, h := range have {
		if strings.EqualFold(h, want) {
			return h
		}
	}
	canon := strings.ToLower(want)
	for _, s := range []string{"train", "val", "test"} {
		if slices.Contains(splitAliases[s], canon) {
			canon = s
			break
		}
	}
	for _, alias := range splitAliases[canon] {
		for _, h := range have {
			if strings.EqualFold(h, alias) {
				return h
			}
		}
	}
	return ""
}
