package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/backend/auto"
)

// globalFlags are the settings every subcommand shares.
type globalFlags struct {
	backend   string
	threads   int
	precision string
}

func (g *globalFlags) register(c *cobra.Command) {
	c.PersistentFlags().StringVar(&g.backend, "backend", "auto", fmt.Sprintf("compute backend: auto or one of %v", auto.Names()))
	c.PersistentFlags().IntVar(&g.threads, "threads", 0, "compute threads (0: $"+auto.ThreadsEnv+", else all CPUs)")
	c.PersistentFlags().StringVar(&g.precision, "precision", "fp32",
		"arithmetic of convolutions and linear layers: fp32, or bf16 (bfloat16 products summed in float32; "+
			"weights, optimiser, batch norm and loss stay float32; needs a CPU with AVX512_BF16 or AMX for speed)")
}

// validate checks the shared settings; every command runs it first.
func (g *globalFlags) validate() error {
	var c checks
	c.autoOrIn("threads", g.threads, 1, maxWorkers, "$"+auto.ThreadsEnv+", else all CPUs")
	c.oneOf("backend", g.backend, append([]string{"auto"}, auto.Names()...)...)
	c.oneOf("precision", g.precision, backend.PrecisionNames()...)
	return c.err()
}

func (g *globalFlags) open() (backend.Backend, error) {
	if err := g.validate(); err != nil {
		return nil, err
	}
	prec, err := backend.ParsePrecision(g.precision)
	if err != nil {
		return nil, usagef("--precision: %v", err)
	}
	be, err := auto.NewWithPrecision(g.backend, g.threads, prec)
	if err != nil && prec != backend.FP32 {
		return nil, fmt.Errorf("--precision %s: %w; use --precision fp32", prec, err)
	}
	return be, err
}
