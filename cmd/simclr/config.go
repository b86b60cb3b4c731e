package main

import (
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// configToFlags sets cmd's flags from the YAML file at path, whose keys are
// the flag names with underscores; flags given on the command line win.
// Each value goes through its flag's own parser, so a mistake is reported
// with the file, the line and the key, like a bad flag.
func configToFlags(cmd *cobra.Command, path string) error {
	if path == "" {
		return nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return usagef("--config: %v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return usagef("--config %s: %v", path, err)
	}
	if len(doc.Content) == 0 { // empty file
		return nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return usagef("--config %s: want one setting per line, key: value", path)
	}
	fl := cmd.Flags()
	given := map[string]bool{}
	fl.Visit(func(f *pflag.Flag) { given[f.Name] = true })
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		name := strings.ReplaceAll(k.Value, "_", "-")
		f := fl.Lookup(name)
		if f == nil || name == "config" || name == "help" {
			return usagef("--config %s line %d: unknown setting %q (keys are %s's flag names with underscores)", path, k.Line, k.Value, cmd.Name())
		}
		if v.Kind != yaml.ScalarNode {
			return usagef("--config %s line %d: %s: want a single value", path, v.Line, k.Value)
		}
		if given[name] {
			continue
		}
		if err := fl.Set(name, v.Value); err != nil {
			return usagef("--config %s line %d: %s %q: want %s", path, v.Line, k.Value, v.Value, valueKind(f.Value.Type()))
		}
	}
	return nil
}
