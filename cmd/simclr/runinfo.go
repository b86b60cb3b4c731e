package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/simclr-go/simclr/data"
	"github.com/simclr-go/simclr/internal/atomicfile"
)

// runFileName is the record every run folder gets: OUT/run.yaml.
const runFileName = "run.yaml"

// notSettings are flags that run.yaml leaves out: they say how to start,
// not what the run is.
var notSettings = map[string]bool{"help": true, "config": true, "resume": true, "version": true}

// runContext is run.yaml's second document: what the run was beyond its
// settings. --config reads only the first.
type runContext struct {
	Command string            `yaml:"command"`
	Version string            `yaml:"version"`
	Go      string            `yaml:"go"`
	Backend string            `yaml:"backend"`
	Threads int               `yaml:"threads"`
	Dataset []datasetIdentity `yaml:"datasets,omitempty"`
}

// datasetIdentity says which images a run used.
type datasetIdentity struct {
	Role   string `yaml:"role"` // what the run used it for
	Data   string `yaml:"data"`
	Split  string `yaml:"split"`
	Limit  int    `yaml:"limit"`
	Images int    `yaml:"images"`
	// SHA256 is a digest of the samples' identities: their sorted names
	// where the dataset names them without decoding (image folders),
	// else their indices and labels.
	SHA256 string `yaml:"sha256"`
	Of     string `yaml:"sha256_of"`
}

// identify describes ds, opened from the --data spec with split and limit.
func identify(role, spec, split string, limit int, ds data.Dataset) datasetIdentity {
	id := datasetIdentity{Role: role, Data: spec, Split: split, Limit: limit, Images: ds.Len()}
	h := sha256.New()
	named, byName := ds.(interface{ Name(int) string })
	switch {
	case byName:
		names := make([]string, ds.Len())
		for i := range names {
			names[i] = named.Name(i)
		}
		sort.Strings(names)
		for _, n := range names {
			h.Write([]byte(n + "\n"))
		}
		id.Of = "sorted sample names"
	default:
		labels, hasLabels := ds.(data.Labeler)
		var indices []int
		if s, ok := ds.(*data.SubsetDataset); ok {
			indices = s.Indices()
		}
		for i := 0; i < ds.Len(); i++ {
			idx, label := i, -1
			if indices != nil {
				idx = indices[i]
			}
			if hasLabels {
				label = labels.Label(i)
			}
			fmt.Fprintf(h, "%d %d\n", idx, label)
		}
		id.Of = "sample indices and labels"
	}
	id.SHA256 = hex.EncodeToString(h.Sum(nil))
	return id
}

// settingsOf is every flag of cmd (run.yaml's keys: flag names with
// underscores) with its value, resolved overriding automatic ones. The
// backend and threads, which belong to the machine more than to the run,
// are left to the record's context.
func settingsOf(cmd *cobra.Command, resolved map[string]string) map[string]string {
	s := map[string]string{}
	cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if !notSettings[f.Name] {
			s[strings.ReplaceAll(f.Name, "-", "_")] = f.Value.String()
		}
	})
	for k, v := range resolved {
		s[k] = v
	}
	return s
}

// writeRunFile writes dir/run.yaml atomically: the settings, which
// `simclr CMD --config dir/run.yaml` reads back, then the run's context.
func writeRunFile(dir string, cmd *cobra.Command, settings map[string]string, rc runContext) error {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	doc := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range keys {
		doc.Content = append(doc.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, &yaml.Node{Kind: yaml.ScalarNode, Value: settings[k]})
	}
	path := filepath.Join(dir, runFileName)
	var b bytes.Buffer
	if cmd.Flags().Lookup("config") != nil {
		fmt.Fprintf(&b, "# Every setting of this run. Rerun it with\n#   %s --config %s\n", cmd.CommandPath(), path)
	} else {
		fmt.Fprintf(&b, "# Every setting of this run, under %s's flag names.\n", cmd.CommandPath())
	}
	rc.Command, rc.Version, rc.Go = cmd.CommandPath(), versionString(), runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH
	for i, v := range []any{doc, rc} {
		if i == 1 {
			b.WriteString("---\n# What the run was: version, machine, datasets (not settings: --config reads only the document above).\n")
		}
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(v); err != nil {
			return err
		}
		if err := enc.Close(); err != nil {
			return err
		}
	}
	return atomicfile.Write(path, b.Bytes(), 0o644)
}

// readRunFile reads a run.yaml written by writeRunFile.
func readRunFile(path string) (map[string]string, runContext, error) {
	var rc runContext
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, rc, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	settings := map[string]string{}
	if err := dec.Decode(&settings); err != nil {
		return nil, rc, fmt.Errorf("%s: %w", path, err)
	}
	if err := dec.Decode(&rc); err != nil {
		return nil, rc, fmt.Errorf("%s: its second document: %w", path, err)
	}
	return settings, rc, nil
}

// settingsDiff lists, in flag names, the settings in which now differs from
// saved, leaving out those in ignore.
func settingsDiff(saved, now map[string]string, ignore map[string]bool) []string {
	var diffs []string
	for k, v := range now {
		if ignore[k] {
			continue
		}
		if old, ok := saved[k]; ok && old != v {
			diffs = append(diffs, fmt.Sprintf("--%s: checkpoint %s, now %s", strings.ReplaceAll(k, "_", "-"), quoteEmpty(old), quoteEmpty(v)))
		}
	}
	sort.Strings(diffs)
	return diffs
}

// datasetDiff lists how the datasets of now differ from saved's.
func datasetDiff(saved, now []datasetIdentity) []string {
	var diffs []string
	for _, n := range now {
		for _, s := range saved {
			if s.Role != n.Role || s == n {
				continue
			}
			diffs = append(diffs, fmt.Sprintf("%s images: checkpoint %s, now %s", n.Role, s, n))
		}
	}
	return diffs
}

func (d datasetIdentity) String() string {
	return fmt.Sprintf("%s split %s, %d images (limit %d, sha256 %.12s)", d.Data, d.Split, d.Images, d.Limit, d.SHA256)
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// cancellable makes a dataset's Get fail once ctx is done, so that a
// loader reading it (an evaluation's) stops early instead of finishing.
type cancellable struct {
	data.Dataset
	ctx context.Context
}

func (c cancellable) Get(i int) (data.Sample, error) {
	if err := c.ctx.Err(); err != nil {
		return data.Sample{}, err
	}
	return c.Dataset.Get(i)
}

// cancellableStreamed is cancellable for a dataset read as a stream,
// keeping it one.
type cancellableStreamed struct {
	data.Streamed
	ctx context.Context
}

func (c cancellableStreamed) Get(i int) (data.Sample, error) {
	if err := c.ctx.Err(); err != nil {
		return data.Sample{}, err
	}
	return c.Streamed.Get(i)
}

func (c cancellableStreamed) OpenStream(indices []int) data.Stream {
	return cancellableStream{c.Streamed.OpenStream(indices), c.ctx}
}

type cancellableStream struct {
	data.Stream
	ctx context.Context
}

func (c cancellableStream) Get(i int) (data.Sample, error) {
	if err := c.ctx.Err(); err != nil {
		return data.Sample{}, err
	}
	return c.Stream.Get(i)
}

// withContext is ds abandoned when ctx is done.
func withContext(ctx context.Context, ds data.Dataset) data.Dataset {
	if ctx.Done() == nil {
		return ds
	}
	if sd, ok := ds.(data.Streamed); ok {
		return cancellableStreamed{sd, ctx}
	}
	return cancellable{ds, ctx}
}
