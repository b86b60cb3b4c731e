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

func (g *globalFlags) open() (backend.Backend, error) {
	if g.threads < 0 {
		return nil, fmt.Errorf("--threads %d: want 0 (automatic) or a positive number", g.threads)
	}
	return auto.New(g.backend, g.threads)
}
