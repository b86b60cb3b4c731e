package data

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// cifarRecord is a record whose pixel (c, p) is (label*31 + c*7 + p) mod 256.
func cifarRecord(labels ...byte) []byte {
	r := append([]byte{}, labels...)
	l := int(labels[len(labels)-1])
	for c := 0; c < 3; c++ {
		for p := 0; p < 1024; p++ {
			r = append(r, byte(l*31+c*7+p))
		}
	}
	return r
}

// fakeCIFAR10 is a small cifar-10-binary.tar.gz: two records per batch,
// the train labels 0..9 in order.
func fakeCIFAR10(t testing.TB) []byte {
	files := map[string][]byte{"cifar-10-batches-bin/batches.meta.txt": []byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n")}
	l := byte(0)
	for b := 1; b <= 5; b++ {
		files[fmt.Sprintf("cifar-10-batches-bin/data_batch_%d.bin", b)] = append(cifarRecord(l), cifarRecord(l+1)...)
		l += 2
	}
	files["cifar-10-batches-bin/test_batch.bin"] = cifarRecord(7)
	return tarBytes(t, files, true)
}

func checkCIFAR10Train(t *testing.T, ds *Array) {
	t.Helper()
	if ds.Len() != 10 || len(ds.Classes()) != 10 || ds.Classes()[0] != "a" {
		t.Fatalf("Len %d classes %v", ds.Len(), ds.Classes())
	}
	for i := 0; i < 10; i++ {
		s, err := ds.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		if s.Label != i || s.W != 32 || s.H != 32 || s.Name != fmt.Sprintf("cifar10/train/%d", i) {
			t.Fatalf("sample %d: label %d %dx%d %s", i, s.Label, s.W, s.H, s.Name)
		}
		for _, p := range []int{0, 1, 33, 1023} { // CHW on disk, HWC here
			for c := 0; c < 3; c++ {
				if got, want := s.RGB[3*p+c], byte(i*31+c*7+p); got != want {
					t.Fatalf("sample %d pixel %d channel %d = %d, want %d", i, p, c, got, want)
				}
			}
		}
	}
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func TestCIFARDownload(t *testing.T) {
	archive := fakeCIFAR10(t)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/mirror/cifar-10-binary.tar.gz" {
			http.NotFound(w, r)
			return
		}
		w.Write(archive)
	}))
	defer srv.Close()
	cache := t.TempDir()
	opts := CIFAROptions{Download: true, CacheDir: cache, BaseURL: srv.URL + "/mirror/", MD5: md5hex(archive)}

	ds, err := CIFAR10(opts)
	if err != nil {
		t.Fatal(err)
	}
	checkCIFAR10Train(t, ds)
	if hits.Load() != 1 {
		t.Fatalf("%d requests, want 1", hits.Load())
	}
	if b, err := os.ReadFile(filepath.Join(cache, "cifar-10-binary.tar.gz")); err != nil || md5hex(b) != opts.MD5 {
		t.Fatalf("cache file: %v", err)
	}
	opts.Split = "test"
	ds, err = CIFAR10(opts)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 1 || ds.Label(0) != 7 || hits.Load() != 1 {
		t.Fatalf("test split from cache: len %d, %d requests", ds.Len(), hits.Load())
	}

	// A wrong checksum fails and leaves nothing in the cache.
	bad := t.TempDir()
	opts.CacheDir, opts.MD5 = bad, strings.Repeat("0", 32)
	_, err = CIFAR10(opts)
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), md5hex(archive)) {
		t.Fatalf("wrong checksum: %v", err)
	}
	if left, _ := os.ReadDir(bad); len(left) != 0 {
		t.Fatalf("cache holds %v after a failed download", left)
	}
	// The official checksum is the default, and it does not match the fake.
	opts.MD5 = ""
	if _, err = CIFAR10(opts); !errors.Is(err, ErrChecksum) {
		t.Fatalf("default checksum: %v", err)
	}
	// No download allowed and nothing cached: say what to do.
	_, err = CIFAR10(CIFAROptions{CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "Download") {
		t.Fatalf("no cache: %v", err)
	}
	// A server error is reported.
	opts.BaseURL = srv.URL + "/elsewhere"
	if _, err = CIFAR10(opts); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("404: %v", err)
	}
}

func TestCIFARLocal(t *testing.T) {
	archive := fakeCIFAR10(t)
	p := filepath.Join(t.TempDir(), "c10.tar.gz")
	if err := os.WriteFile(p, archive, 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err := CIFAR10(CIFAROptions{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	checkCIFAR10Train(t, ds)

	// Extracted: both the parent folder and cifar-10-batches-bin itself.
	dir := t.TempDir()
	files := map[string][]byte{"cifar-10-batches-bin/test_batch.bin": cifarRecord(7)}
	l := byte(0)
	for b := 1; b <= 5; b++ {
		files[fmt.Sprintf("cifar-10-batches-bin/data_batch_%d.bin", b)] = append(cifarRecord(l), cifarRecord(l+1)...)
		l += 2
	}
	files["cifar-10-batches-bin/batches.meta.txt"] = []byte("a b c d e f g h i j")
	writeFiles(t, dir, files)
	for _, d := range []string{dir, filepath.Join(dir, "cifar-10-batches-bin")} {
		ds, err := CIFAR10(CIFAROptions{Path: d})
		if err != nil {
			t.Fatal(err)
		}
		checkCIFAR10Train(t, ds)
	}
	if err := os.WriteFile(filepath.Join(dir, "cifar-10-batches-bin/data_batch_3.bin"), []byte{1, 2, 3}, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CIFAR10(CIFAROptions{Path: dir}); err == nil || !strings.Contains(err.Error(), "data_batch_3.bin") {
		t.Errorf("short batch file: %v", err)
	}
	if _, err := CIFAR10(CIFAROptions{Path: dir, Split: "val"}); err == nil {
		t.Error("unknown split: no error")
	}
}

func TestCIFAR100(t *testing.T) {
	if n := len(cifar100Spec.classes); n != 100 {
		t.Fatalf("%d CIFAR-100 class names", n)
	}
	train := append(cifarRecord(3, 42), cifarRecord(19, 99)...)
	p := filepath.Join(t.TempDir(), "c100.tar.gz")
	if err := os.WriteFile(p, tarBytes(t, map[string][]byte{"cifar-100-binary/train.bin": train, "cifar-100-binary/test.bin": cifarRecord(1, 5)}, true), 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err := CIFAR100(CIFAROptions{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 2 || ds.Label(0) != 42 || ds.Label(1) != 99 || ds.Classes()[99] != "worm" {
		t.Fatalf("len %d labels %d %d", ds.Len(), ds.Label(0), ds.Label(1))
	}
	s, _ := ds.Get(1)
	if s.RGB[3*5+2] != byte((99*31+2*7+5)%256) || s.Name != "cifar100/train/1" {
		t.Errorf("pixel %d name %s", s.RGB[3*5+2], s.Name)
	}
}

func TestDefaultCacheDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/x/cache")
	if d, err := DefaultCacheDir(); err != nil || d != "/x/cache/simclr" {
		t.Errorf("XDG_CACHE_HOME: %q %v", d, err)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if d, err := DefaultCacheDir(); err != nil || d != "/home/u/.cache/simclr" {
		t.Errorf("HOME: %q %v", d, err)
	}
}
