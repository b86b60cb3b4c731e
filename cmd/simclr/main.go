// Command simclr trains and evaluates SimCLR encoders.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	root := &cobra.Command{
		Use:           "simclr",
		Short:         "Self-supervised contrastive learning of visual representations (SimCLR v1/v2)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	var g globalFlags
	g.register(root)
	root.AddCommand(versionCmd(&g), benchCmd(&g), pretrainCmd(&g), demoCmd(&g), knnCmd(&g), finetuneCmd(&g), distillCmd(&g), semiCmd(&g))
	root.AddCommand(embedCmd(&g), linearEvalCmd(&g), exportCmd(&g), importCmd(&g), predictCmd(&g))
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "simclr:", err)
		os.Exit(1)
	}
}
