package data

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func tpng(t testing.TB, seed int) []byte { return encPNG(t, testImage(2, 3, seed)) }

func labels(ds Dataset) []int {
	var out []int
	for i := 0; i < ds.Len(); i++ {
		out = append(out, ds.(Labeler).Label(i))
	}
	return out
}

// An ImageNet-style tree: train/ and val/ with class folders, val lacking a
// class; files nested below their class folder.
func TestImageFolderSplits(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{
		"imagenet/train/cat/a.png":       tpng(t, 1),
		"imagenet/train/cat/x/y/b.png":   tpng(t, 2),
		"imagenet/train/dog/c.png":       tpng(t, 3),
		"imagenet/train/emu/d.png":       tpng(t, 4),
		"imagenet/val/dog/e.png":         tpng(t, 5),
		"imagenet/val/emu/deep/f.png":    tpng(t, 6),
		"imagenet/val/emu/deep/notes.md": []byte("x"),
	})
	tr, err := OpenImageFolder(dir, FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.Split() != "train" || tr.Len() != 4 || !reflect.DeepEqual(tr.Classes(), []string{"cat", "dog", "emu"}) || !reflect.DeepEqual(labels(tr), []int{0, 0, 1, 2}) {
		t.Errorf("train: split %q len %d classes %v labels %v", tr.Split(), tr.Len(), tr.Classes(), labels(tr))
	}
	if got := tr.Name(1); got != filepath.Join(dir, "imagenet", "train", "cat", "x", "y", "b.png") {
		t.Errorf("deep file name %s", got)
	}
	for _, split := range []string{"val", "test", "validation"} {
		va, err := OpenImageFolder(dir, FolderOptions{Split: split})
		if err != nil {
			t.Fatal(err)
		}
		// Labels number the union of classes, so dog is 1 in both splits.
		if va.Split() != "val" || !reflect.DeepEqual(va.Classes(), tr.Classes()) || !reflect.DeepEqual(labels(va), []int{1, 2}) {
			t.Errorf("split %s: got %q classes %v labels %v", split, va.Split(), va.Classes(), labels(va))
		}
		if n, ign := va.Ignored(); n != 1 || !strings.HasSuffix(ign[0], "notes.md") {
			t.Errorf("ignored %d %v, want notes.md", n, ign)
		}
		va.Close()
	}
	var nse *NoSplitError
	if _, err := OpenImageFolder(dir, FolderOptions{Split: "unlabeled"}); !errors.As(err, &nse) || !reflect.DeepEqual(nse.Have, []string{"train", "val"}) {
		t.Errorf("missing split: %v", err)
	}
	// Unlabeled keeps the split, drops the classes.
	un, err := OpenImageFolder(dir, FolderOptions{Unlabeled: true})
	if err != nil {
		t.Fatal(err)
	}
	if un.Len() != 4 || un.Classes() != nil || un.Label(0) != -1 {
		t.Errorf("unlabeled: len %d classes %v", un.Len(), un.Classes())
	}
	// Root still picks a folder explicitly.
	r, err := OpenImageFolder(dir, FolderOptions{Root: "imagenet/val"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 2 || r.Split() != "" {
		t.Errorf("root: len %d split %q", r.Len(), r.Split())
	}
}

// A source without split folders is all training images: asking it for a
// test split is an error, so nothing is scored on the images it trained on.
func TestImageFolderNoSplit(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{"cat/a.png": tpng(t, 1), "dog/b.png": tpng(t, 2)})
	for _, s := range []string{"", "train"} {
		ds, err := OpenImageFolder(dir, FolderOptions{Split: s})
		if err != nil || ds.Len() != 2 {
			t.Fatalf("split %q: %v", s, err)
		}
	}
	for _, s := range []string{"test", "val"} {
		_, err := OpenImageFolder(dir, FolderOptions{Split: s})
		var nse *NoSplitError
		if !errors.As(err, &nse) || nse.Split != s || !strings.Contains(err.Error(), "no "+s+" split") {
			t.Errorf("split %s: %v", s, err)
		}
	}
}

func TestImageFolderUnlabeled(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{
		"photos/a.png":              tpng(t, 1),
		"photos/2019/b.png":         tpng(t, 2),
		"photos/2020/x/c.png":       tpng(t, 3),
		"photos/2020/x/d.txt":       []byte("x"),
		"photos/2020/.thumbs/e.png": tpng(t, 4),
	})
	_, err := OpenImageFolder(dir, FolderOptions{})
	if err == nil || !strings.Contains(err.Error(), "--unlabeled") || !strings.Contains(err.Error(), "a.png") {
		t.Errorf("mixed depths: %v", err)
	}
	ds, err := OpenImageFolder(dir, FolderOptions{Unlabeled: true})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 3 || ds.Classes() != nil {
		t.Errorf("unlabeled: len %d classes %v", ds.Len(), ds.Classes())
	}
	for i := 0; i < ds.Len(); i++ {
		if s, err := ds.Get(i); err != nil || s.Label != -1 {
			t.Errorf("Get(%d): %v label %d", i, err, s.Label)
		}
	}
}

func TestFileList(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{
		"imgs/a.png":        tpng(t, 1),
		"imgs/b c.png":      tpng(t, 2),
		"other/d.png":       tpng(t, 3),
		"lists/named.txt":   []byte("# comment\n../imgs/a.png cat\n\n../imgs/b c.png\tdog\n" + filepath.Join(dir, "other/d.png") + " cat\n"),
		"lists/numbers.txt": []byte("../imgs/a.png 2\n../other/d.png 0\n"),
		"lists/plain.txt":   []byte("../imgs/b c.png\n../other/d.png\n"),
		"lists/mixed.txt":   []byte("../imgs/a.png 1\n../other/d.png\n"),
		"lists/bad.txt":     []byte("../imgs/a.png 1\nnotes.doc\n"),
	})
	l := func(n string) string { return filepath.Join(dir, "lists", n) }
	ds, err := OpenImageFolder(l("named.txt"), FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ds.Classes(), []string{"cat", "dog"}) || ds.Len() != 3 {
		t.Fatalf("named: classes %v len %d", ds.Classes(), ds.Len())
	}
	want := map[string]int{filepath.Join(dir, "imgs/a.png"): 0, filepath.Join(dir, "imgs/b c.png"): 1, filepath.Join(dir, "other/d.png"): 0}
	for i := 0; i < ds.Len(); i++ {
		s, err := ds.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		if w, ok := want[s.Name]; !ok || w != s.Label {
			t.Errorf("named: %s label %d", s.Name, s.Label)
		}
	}
	ds, err = OpenImageFolder(l("numbers.txt"), FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ds.Classes(), []string{"0", "1", "2"}) || !reflect.DeepEqual(labels(ds), []int{0, 2}) {
		t.Errorf("numbers: classes %v labels %v", ds.Classes(), labels(ds))
	}
	ds, err = OpenImageFolder(l("plain.txt"), FolderOptions{})
	if err != nil || ds.Classes() != nil || ds.Len() != 2 {
		t.Errorf("plain: %v", err)
	}
	if _, err := OpenImageFolder(l("plain.txt"), FolderOptions{Split: "test"}); err == nil {
		t.Error("a file list has no test split")
	}
	for _, bad := range []string{"mixed.txt", "bad.txt"} {
		if _, err := OpenImageFolder(l(bad), FolderOptions{}); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestExpandShards(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"s-0008.tar", "s-0009.tar", "s-0010.tar", "x-a.tar"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := expandShards(filepath.Join(dir, "s-{0008..0010}.tar"))
	if err != nil || len(got) != 3 || filepath.Base(got[2]) != "s-0010.tar" {
		t.Errorf("range: %v %v", got, err)
	}
	if got, err = expandShards(filepath.Join(dir, "{s-0009,x-a}.tar")); err != nil || len(got) != 2 {
		t.Errorf("list: %v %v", got, err)
	}
	if got, err = expandShards(filepath.Join(dir, "s-*.tar")); err != nil || len(got) != 3 {
		t.Errorf("glob: %v %v", got, err)
	}
	if _, err = expandShards(filepath.Join(dir, "s-{0008..0011}.tar")); err == nil || !strings.Contains(err.Error(), "s-0011.tar") {
		t.Errorf("missing shard: %v", err)
	}
	if got, _ = expandShards(filepath.Join(dir, "plain.tar")); got != nil {
		t.Errorf("no pattern: %v", got)
	}
}
