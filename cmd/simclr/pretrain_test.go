package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigFileAndFlags: the YAML file sets values, flags given on the
// command line win, unknown keys are errors naming the key.
func TestConfigFileAndFlags(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "run.yaml")
	if err := os.WriteFile(cfg, []byte("depth: 34\nbatch: 128\ncrop_min_scale: 0.3\ntemperature: 0.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var g globalFlags
	cmd, f := newPretrainCmd(&g)
	if err := cmd.ParseFlags([]string{"--batch", "64"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfigFile(cmd, cfg, f); err != nil {
		t.Fatal(err)
	}
	if f.Depth != 34 || f.Batch != 64 || f.CropMinScale != 0.3 || f.Temperature != 0.2 || f.Width != 64 {
		t.Errorf("depth %d batch %d crop %g temperature %g width %d; want 34, 64 (the flag wins), 0.3, 0.2, 64 (default)",
			f.Depth, f.Batch, f.CropMinScale, f.Temperature, f.Width)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("depht: 18\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := applyConfigFile(cmd, bad, f); err == nil || !strings.Contains(err.Error(), "depht") {
		t.Errorf("unknown key: %v", err)
	}
}
