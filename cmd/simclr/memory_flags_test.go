package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMemoryFlags: --memory-size and --memory-momentum, and their YAML
// keys memory_size and memory_momentum, reach the settings; the momentum
// defaults to MoCo's 0.999 and the memory is off by default.
func TestMemoryFlags(t *testing.T) {
	var g globalFlags
	cmd, f := newPretrainCmd(&g)
	if f.MemorySize != 0 || f.MemoryMomentum != 0.999 || f.MemoryPositives != "momentum" {
		t.Errorf("defaults: memory size %d momentum %g positives %q, want 0, 0.999 and momentum", f.MemorySize, f.MemoryMomentum, f.MemoryPositives)
	}
	cfg := filepath.Join(t.TempDir(), "run.yaml")
	if err := os.WriteFile(cfg, []byte("memory_size: 4096\nmemory_momentum: 0.99\nmemory_positives: online\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.ParseFlags([]string{"--memory-momentum", "0.995"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfigFile(cmd, cfg, f); err != nil {
		t.Fatal(err)
	}
	if f.MemorySize != 4096 || f.MemoryMomentum != 0.995 || f.MemoryPositives != "online" {
		t.Errorf("memory size %d momentum %g positives %q, want 4096 (file), 0.995 (flag wins), online (file)", f.MemorySize, f.MemoryMomentum, f.MemoryPositives)
	}
}
