package main

import (
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=..."; when
// it is left alone, the module version Go recorded (a tagged release
// installed with go install) takes its place.
var version = "0.1.0-dev"

// pseudoVersion matches the versions Go makes up for untagged commits
// (v0.0.0-20261203205557-7dac2be4e293+dirty): the revision says more.
var pseudoVersion = regexp.MustCompile(`-(0\.)?\d{14}-[0-9a-f]{12}(\+|$)`)

// versionString is the version with the source revision Go's build
// information holds, e.g. "0.1.0-dev (rev 7039b11a2c4e, modified)".
func versionString() string {
	v := version
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if m := info.Main.Version; m != "" && m != "(devel)" && !pseudoVersion.MatchString(m) && v == "0.1.0-dev" {
		v = strings.TrimPrefix(m, "v")
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value[:min(12, len(s.Value))]
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	if rev != "" {
		v += " (rev " + rev + modified + ")"
	}
	return v
}

func versionCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and the compute backend this machine gets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			be, err := g.open()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "simclr %s (%s, %s/%s)\nbackend: %s, %d threads\n",
				versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH, be.Name(), be.Threads())
			return nil
		},
	}
}
