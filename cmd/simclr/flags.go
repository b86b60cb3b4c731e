package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/backend/auto"
)

// globalFlags are the settings every subcommand shares.
type globalFlags struct {
	backend string
	threads int
}

func (g *globalFlags) register(c *cobra.Command) {
	c.PersistentFlags().StringVar(&g.backend, "backend", "auto", fmt.Sprintf("compute backend: auto or one of %v", auto.Names()))
	c.PersistentFlags().IntVar(&g.threads, "threads", 0, "compute threads (0: $"+auto.ThreadsEnv+", else all CPUs)")
}

// validate checks the shared settings; every command runs it first.
func (g *globalFlags) validate() error {
	var c checks
	c.autoOrIn("threads", g.threads, 1, maxWorkers, "$"+auto.ThreadsEnv+", else all CPUs")
	c.oneOf("backend", g.backend, append([]string{"auto"}, auto.Names()...)...)
	return c.err()
}

func (g *globalFlags) open() (backend.Backend, error) {
	if err := g.validate(); err != nil {
		return nil, err
	}
	return auto.New(g.backend, g.threads)
}
