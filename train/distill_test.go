package train

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/simclr-go/simclr/backend/auto"
	"github.com/simclr-go/simclr/models/resnet"
	"github.com/simclr-go/simclr/simclr"
)

// TestDistillation fine-tunes a teacher on labelled stripes, saves and
// reloads it, and distils it into a fresh student of the same architecture
// on unlabelled images; the student must learn the task from the teacher's
// soft labels alone.
func TestDistillation(t *testing.T) {
	be, err := auto.New("auto", 2)
	if err != nil {
		t.Fatal(err)
	}
	mcfg := simclr.ModelConfig{Encoder: resnet.Config{Depth: 18, Width: 4, CIFARStem: true}, ProjHidden: []int{16}, ProjOut: 8}
	model, err := simclr.NewModel(mcfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	teacher, err := NewClassifier(model, 0, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	ft := DefaultFineTune(32, 6, 16)
	ft.BaseLR = 0.4
	if err := FineTune(context.Background(), be, teacher, stripes(t, 128, 1), ft, nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "teacher.safetensors")
	if err := SaveClassifier(path, teacher, 16); err != nil {
		t.Fatal(err)
	}
	loaded, size, err := LoadClassifier(path)
	if err != nil {
		t.Fatal(err)
	}
	testSet := stripes(t, 64, 2)
	tAcc, err := Accuracy(be, teacher, testSet, 16, 2)
	if err != nil {
		t.Fatal(err)
	}
	lAcc, _ := Accuracy(be, loaded, testSet, size, 2)
	if size != 16 || lAcc != tAcc {
		t.Fatalf("reloaded teacher: size %d, accuracy %.3f, want 16 and %.3f", size, lAcc, tAcc)
	}

	studentModel, _ := simclr.NewModel(mcfg, 7)
	student, _ := NewClassifier(studentModel, 0, 2, 7)
	before, _ := Accuracy(be, student, testSet, 16, 2)
	cfg := DistillConfig{FineTuneConfig: ft, Temperature: 1}
	cfg.Seed = 3
	if err := Distill(context.Background(), be, loaded, student, stripes(t, 128, 3), cfg, nil); err != nil {
		t.Fatal(err)
	}
	after, err := Accuracy(be, student, testSet, 16, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("teacher %.2f; student %.2f before, %.2f after distillation", tAcc, before, after)
	if after < 0.85 {
		t.Errorf("distilled student reaches %.2f (teacher %.2f)", after, tAcc)
	}
	if err := Distill(context.Background(), be, loaded, student, stripes(t, 16, 3), DistillConfig{FineTuneConfig: ft, Temperature: 0}, nil); err == nil {
		t.Error("temperature 0 accepted")
	}
}
