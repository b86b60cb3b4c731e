// Command simclr trains and evaluates SimCLR encoders.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/simclr-go/simclr/data"
)

// Exit statuses: a script tells a mistake in its command line (fix the
// arguments) from a failure of the run (look at the data, the disk, ...).
const (
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one simclr command line and returns its exit status:
// 0 on success, exitUsage for a bad command line, exitFailure otherwise.
// Results go to stdout, the error message to stderr.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	started := trackRun(root)
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "simclr:", explain(cmd, err))
	if code, ok := interruptStatus(err); ok {
		return code
	}
	var u usageError
	if !*started || errors.As(err, &u) {
		if !*started && cmd != nil {
			fmt.Fprintf(stderr, "run '%s --help' for usage\n", cmd.CommandPath())
		}
		return exitUsage
	}
	return exitFailure
}

// newRootCmd builds the command tree with every subcommand.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "simclr",
		Short:         "Self-supervised contrastive learning of visual representations (SimCLR v1/v2)",
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("simclr {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return flagError(err) })
	var g globalFlags
	g.register(root)
	root.AddCommand(versionCmd(&g), benchCmd(&g), pretrainCmd(&g), demoCmd(&g), knnCmd(&g), finetuneCmd(&g), distillCmd(&g), semiCmd(&g))
	root.AddCommand(embedCmd(&g), linearEvalCmd(&g), exportCmd(&g), importCmd(&g), predictCmd(&g))
	root.AddCommand(selectCmd(&g))
	validateGlobal(root, &g)
	return root
}

// trackRun makes every runnable command record that its run function
// began: an error before that (unknown command or flag, bad value, extra
// arguments) is a usage error.
func trackRun(root *cobra.Command) *bool {
	started := new(bool)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.RunE != nil {
			runE := c.RunE
			c.RunE = func(cmd *cobra.Command, args []string) error {
				*started = true
				return runE(cmd, args)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return started
}

// validateGlobal checks the persistent flags before any subcommand runs.
func validateGlobal(root *cobra.Command, g *globalFlags) {
	root.PersistentPreRunE = func(*cobra.Command, []string) error { return g.validate() }
}

// explain adds what a user can do about an error the message alone leaves
// open: an undecodable image without --skip-bad.
func explain(cmd *cobra.Command, err error) error {
	var de *data.DecodeError
	if !errors.As(err, &de) || cmd == nil {
		return err
	}
	if f := cmd.Flags().Lookup("skip-bad"); f == nil || f.Value.String() == "true" {
		return err
	}
	hint := "rerun with --skip-bad to leave out every unreadable image (they are listed)"
	if cmd.Flags().Lookup("resume") != nil {
		// Resuming needs the same images: --skip-bad changes the list.
		hint = "replace it with a readable image and add --resume to continue from the last checkpoint, " +
			"or start again with --skip-bad (and a new --out) to leave out every unreadable image (they are listed)"
	}
	return fmt.Errorf("%w\n(%s cannot be decoded: %s)", err, de.Name, hint)
}

// flagError rewords pflag's parse errors in the user's terms.
func flagError(err error) error {
	var iv *pflag.InvalidValueError
	if errors.As(err, &iv) {
		return usagef("--%s %q: want %s", iv.GetFlag().Name, iv.GetValue(), valueKind(iv.GetFlag().Value.Type()))
	}
	return usageError{err}
}

// valueKind describes the values a flag of pflag's type accepts.
func valueKind(typ string) string {
	switch typ {
	case "int", "int64":
		return "a whole number"
	case "uint64":
		return "a whole number, 0 or more"
	case "float64":
		return "a number"
	case "duration":
		return "a duration such as 90s, 40m or 2h"
	case "bool":
		return "true or false"
	}
	return "a " + typ
}
