package report

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// benchLog writes a pretraining-like log of n steps (kNN every 500).
func benchLog(b *testing.B, dir string, n int) {
	b.Helper()
	f, err := os.Create(filepath.Join(dir, MetricsName))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for s := 0; s < n; s++ {
		line := fmt.Sprintf(`{"step":%d,"epoch":%g,"loss":%g,"contrast_acc":%g,"contrast_entropy":%g,"lr":%g,"images_per_s":%g,"elapsed_s":%g`,
			s, float64(s)/195, 6-float64(s)/float64(n), float64(s)/float64(n), 3.1, 0.3, 812.5, float64(s)*0.4)
		if s%500 == 499 {
			line += fmt.Sprintf(`,"knn_top1":%g`, 0.1+0.8*float64(s)/float64(n))
		}
		fmt.Fprintln(f, line+"}")
	}
}

// BenchmarkFromRunDir is the cost of redrawing a report at a checkpoint of
// a 100,000-step run.
func BenchmarkFromRunDir(b *testing.B) {
	dir := b.TempDir()
	benchLog(b, dir, 100_000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := FromRunDir(dir, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSyncStep is what following the log costs a training step: one
// new row turned into an event.
func BenchmarkSyncStep(b *testing.B) {
	dir := b.TempDir()
	benchLog(b, dir, 1)
	r, err := Follow(dir, 0, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	f, err := os.OpenFile(filepath.Join(dir, MetricsName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fmt.Fprintf(f, "{\"step\":%d,\"loss\":5.1,\"lr\":0.3,\"contrast_acc\":0.2,\"contrast_entropy\":3,\"images_per_s\":800,\"epoch\":1.5}\n", i+1)
		if err := r.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecorderReport is the redraw at a checkpoint of a followed
// 100,000-step run: its rows are already read, the plots are drawn.
func BenchmarkRecorderReport(b *testing.B) {
	dir := b.TempDir()
	benchLog(b, dir, 100_000)
	r, err := Follow(dir, 100_000, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := r.Report(); err != nil {
			b.Fatal(err)
		}
	}
}
