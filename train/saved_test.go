package train

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/simclr-go/simclr/backend/purego"
)

// Saved sees every checkpoint once, after its file is in place.
func TestRunSavedHook(t *testing.T) {
	dir := t.TempDir()
	p, _ := NewPretrainer(tinyConfig(5), purego.New(1), noiseSource{})
	var saved []int
	err := Run(context.Background(), p, RunOptions{Dir: dir, CheckpointEvery: 2, Saved: func(step int) {
		if _, err := os.Stat(filepath.Join(dir, CheckpointName)); err != nil {
			t.Errorf("step %d: hook called before the checkpoint exists: %v", step, err)
		}
		saved = append(saved, step)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(saved); got != "[2 4 5]" {
		t.Errorf("Saved called at steps %s, want [2 4 5]", got)
	}
}
