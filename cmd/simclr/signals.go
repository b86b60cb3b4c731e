package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/simclr-go/simclr/train"
)

// signalError is the cause of a context cancelled by a signal.
type signalError struct{ sig syscall.Signal }

func (e signalError) Error() string { return "interrupted by " + e.name() }

// name is SIGINT or SIGTERM.
func (e signalError) name() string {
	if e.sig == syscall.SIGINT {
		return "SIGINT"
	}
	return "SIGTERM"
}

// status is the exit status of a process ended by the signal, as shells
// report it: 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
func (e signalError) status() int { return 128 + int(e.sig) }

// notifyInterrupt returns a context cancelled, with a signalError as its
// cause, by the first SIGINT or SIGTERM: long commands then finish their
// step, save a checkpoint and return. A second signal ends the process at
// once. stop releases the signals.
func notifyInterrupt(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		first := true
		for {
			select {
			case s := <-ch:
				se := signalError{s.(syscall.Signal)}
				if !first {
					fmt.Fprintf(os.Stderr, "\nsimclr: %v again: stopping now, without a checkpoint\n", se)
					os.Exit(se.status())
				}
				first = false
				fmt.Fprintf(os.Stderr, "\nsimclr: %v: finishing the step and saving a checkpoint (send it again to stop at once)\n", se)
				cancel(se)
			case <-done:
				return
			}
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

// signalsHandled marks a context whose signals a command already handles
// (semi's stages run inside semi).
type signalsHandled struct{}

// interruptible makes run, a long command, take SIGINT and SIGTERM as a
// request to stop (see notifyInterrupt) through its command's context.
// Other commands keep the default: a signal ends them at once.
func interruptible(run func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		if ctx.Value(signalsHandled{}) == nil {
			var stop func()
			ctx, stop = notifyInterrupt(ctx)
			defer stop()
			cmd.SetContext(context.WithValue(ctx, signalsHandled{}, true))
		}
		return run(cmd, args)
	}
}

// interruptStatus is the exit status for an error that ends a command
// stopped by a signal: 130 (SIGINT) or 143 (SIGTERM); on a process of a
// data-parallel run that stopped because another was signalled, 143, the
// signal mpirun and schedulers send.
func interruptStatus(err error) (int, bool) {
	var se signalError
	if errors.As(err, &se) {
		return se.status(), true
	}
	if errors.Is(err, train.ErrInterruptedElsewhere) {
		return 128 + int(syscall.SIGTERM), true
	}
	return 0, false
}

// resumeHint adds to err, when it ends an interrupted run, the command
// line that continues it: cmd's with the flags given, plus --resume.
func resumeHint(cmd *cobra.Command, err error) error {
	var ie *train.InterruptedError
	if !errors.As(err, &ie) {
		return err
	}
	if ie.Checkpoint == "" {
		return fmt.Errorf("%w (with --out, an interrupted run keeps its state for --resume)", err)
	}
	return fmt.Errorf("%w\nto continue: %s", err, commandLine(cmd, "resume"))
}

// commandLine is cmd's command line with the flags that were set, and the
// boolean flags extra set too.
func commandLine(cmd *cobra.Command, extra ...string) string {
	words := strings.Fields(cmd.CommandPath())
	seen := map[string]bool{}
	add := func(f *pflag.Flag) {
		if seen[f.Name] || !f.Changed {
			return
		}
		seen[f.Name] = true
		if f.Value.Type() == "bool" {
			if f.Value.String() == "true" {
				words = append(words, "--"+f.Name)
			} else {
				words = append(words, "--"+f.Name+"=false")
			}
			return
		}
		words = append(words, "--"+f.Name, shellQuote(f.Value.String()))
	}
	cmd.Flags().Visit(add)
	cmd.InheritedFlags().Visit(add)
	for _, name := range extra {
		if !seen[name] {
			words = append(words, "--"+name)
		}
	}
	return strings.Join(words, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// stateSuffix names the file beside a fine-tuning or distillation --out
// where an interrupted run keeps its state for --resume.
const stateSuffix = ".state"

// statePath is where a fine-tuning or distillation run writing out keeps
// its state when interrupted ("" without out: nothing is saved), and
// whether to resume from it.
func statePath(out string, resume bool) (string, bool, error) {
	if out == "" {
		if resume {
			return "", false, usagef("--resume needs --out: an interrupted run keeps its state beside its output")
		}
		return "", false, nil
	}
	return out + stateSuffix, resume, nil
}

// removeState deletes the state of a run that has finished.
func removeState(path string) {
	if path != "" {
		os.Remove(path)
	}
}

// interruptedEvaluation handles an error of the evaluation that follows
// training: when a signal stopped it, the trained model is saved to out
// first (when out is set) and the signal is reported, so that no training
// is lost; other errors pass unchanged.
func interruptedEvaluation(ctx context.Context, err error, out string, save func() error) error {
	if ctx.Err() == nil {
		return err
	}
	if out == "" || save == nil {
		return fmt.Errorf("%w during the evaluation", context.Cause(ctx))
	}
	if serr := save(); serr != nil {
		return fmt.Errorf("%w during the evaluation; saving the trained model: %w", context.Cause(ctx), serr)
	}
	removeState(out + stateSuffix)
	return fmt.Errorf("%w during the evaluation; the trained model is saved in %s", context.Cause(ctx), out)
}
