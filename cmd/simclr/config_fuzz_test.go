package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/simclr-go/simclr/internal/fuzzcheck"
)

// flagValues is every flag of fs with its value as text.
func flagValues(fs *pflag.FlagSet) map[string]string {
	m := map[string]string{}
	fs.VisitAll(func(f *pflag.Flag) { m[f.Name] = f.Value.String() })
	return m
}

// FuzzConfigFile applies arbitrary bytes as pretrain's --config file.
// Nothing may panic; an error must name the file; and the settings an
// accepted file gives must be given again by a file written from them (the
// keys of the flags it changed, with the flags' values).
func FuzzConfigFile(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		path := fuzzcheck.WriteTemp(t, "run.yaml", raw)
		var g globalFlags
		cmd, _ := newPretrainCmd(&g)
		var err error
		fuzzcheck.LimitAlloc(t, raw, 1024, func() { err = configToFlags(cmd, path) })
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		changed := map[string]string{}
		cmd.Flags().Visit(func(fl *pflag.Flag) { changed[strings.ReplaceAll(fl.Name, "-", "_")] = fl.Value.String() })
		out, err := yaml.Marshal(changed)
		if err != nil {
			t.Fatal(err)
		}
		again := filepath.Join(t.TempDir(), "again.yaml")
		if err := os.WriteFile(again, out, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd2, _ := newPretrainCmd(&g)
		if err := configToFlags(cmd2, again); err != nil {
			t.Fatalf("the settings of an accepted file, written back as\n%s\nare refused: %v", out, err)
		}
		want, got := flagValues(cmd.Flags()), flagValues(cmd2.Flags())
		for name, v := range want {
			if got[name] != v {
				t.Fatalf("--%s: %q from the file, %q from the file written from its settings", name, v, got[name])
			}
		}
	})
}
