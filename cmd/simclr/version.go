package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

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
				version, runtime.Version(), runtime.GOOS, runtime.GOARCH, be.Name(), be.Threads())
			return nil
		},
	}
}
