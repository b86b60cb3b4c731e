package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/simclr-go/simclr/bench"
)

func benchCmd(g *globalFlags) *cobra.Command {
	c := &cobra.Command{Use: "bench", Short: "Measure training speed"}
	c.AddCommand(benchStepCmd(g))
	return c
}

func benchStepCmd(g *globalFlags) *cobra.Command {
	cfg := bench.DefaultStep()
	var asJSON bool
	var pytorch, python string
	c := &cobra.Command{
		Use:   "step",
		Short: "Time SimCLR training steps (CIFAR ResNet + head + NT-Xent + SGD) on random images",
		Long: `Time SimCLR training steps on random 2N views: forward through a ResNet with
the CIFAR stem and a projection head, NT-Xent, backward and an SGD-momentum
update. With --pytorch it then runs the PyTorch reference script with the same
settings in the same run and prints the speed ratio.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			if cfg.Batch < 2 || cfg.Width < 1 || cfg.Steps < 1 || cfg.Warmup < 0 {
				return fmt.Errorf("need --batch >= 2, --width >= 1, --steps >= 1, --warmup >= 0")
			}
			comm, finish, err := openComm(g)
			if err != nil {
				return err
			}
			defer finish(&err)
			be, err := g.open()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if comm.Size() > 1 { // under mpirun: data-parallel steps, --batch global
				return benchDist(out, be, comm, cfg, asJSON)
			}
			res, err := bench.RunStep(be, cfg, out)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "# median step %.3fs (min %.3f max %.3f); fwd %.3f bwd %.3f opt %.3f; peak RSS %.0f MiB; arena %.0f MiB; allocations after warm-up %d\n",
				res.MedianStepS, res.MinStepS, res.MaxStepS, res.MedianFwdS, res.MedianBwdS, res.MedianOptS,
				res.PeakRSSMB, res.ArenaMB, res.AllocsAfterWarmup)
			fmt.Fprintf(out, "images/sec: %.2f\n", res.ImagesPerSec)
			if asJSON {
				b, _ := json.Marshal(res)
				fmt.Fprintf(out, "JSON %s\n", b)
			}
			if pytorch == "" {
				return nil
			}
			ref, err := runPyTorch(python, pytorch, cfg, be.Threads())
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "pytorch: %.2f images/s, peak RSS %.0f MiB\n", ref.ImagesPerSec, ref.PeakRSSMB)
			fmt.Fprintf(out, "ratio (ours/pytorch): speed %.2fx, peak RSS %.2fx\n",
				res.ImagesPerSec/ref.ImagesPerSec, res.PeakRSSMB/ref.PeakRSSMB)
			return nil
		},
	}
	f := c.Flags()
	f.IntVar(&cfg.Depth, "depth", cfg.Depth, "ResNet depth (18, 34, 50, 101, 152)")
	f.IntVar(&cfg.Width, "width", cfg.Width, "channels of the first stage (64 = 1x)")
	f.IntVar(&cfg.Batch, "batch", cfg.Batch, "N images per step (2N views)")
	f.IntVar(&cfg.Image, "image", cfg.Image, "image side in pixels")
	f.IntVar(&cfg.ProjHidden, "proj-hidden", cfg.ProjHidden, "projection head hidden width")
	f.IntVar(&cfg.ProjOut, "proj-out", cfg.ProjOut, "projection head output width")
	f.IntVar(&cfg.Steps, "steps", cfg.Steps, "timed steps")
	f.IntVar(&cfg.Warmup, "warmup", cfg.Warmup, "untimed steps first")
	f.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed")
	f.BoolVar(&asJSON, "json", false, "also print a JSON summary line")
	f.StringVar(&pytorch, "pytorch", "", "path of the reference simclr_step.py to run side by side")
	f.StringVar(&python, "python", "/usr/bin/python3", "Python with torch and torchvision, for --pytorch")
	return c
}

// pytorchResult is the part of simclr_step.py's JSON summary we compare.
type pytorchResult struct {
	ImagesPerSec float64 `json:"images_per_s"`
	PeakRSSMB    float64 `json:"peak_rss_mb"`
}

// runPyTorch runs the reference step benchmark with the same settings and
// the allocator tuning that makes it fastest on this kind of machine.
func runPyTorch(python, script string, cfg bench.StepConfig, threads int) (pytorchResult, error) {
	if cfg.Depth != 18 && cfg.Depth != 50 {
		return pytorchResult{}, fmt.Errorf("the reference script runs depth 18 or 50, not %d", cfg.Depth)
	}
	args := []string{script, "--json", "--arch", "resnet" + strconv.Itoa(cfg.Depth),
		"--width", strconv.Itoa(cfg.Width), "--batch", strconv.Itoa(cfg.Batch),
		"--image", strconv.Itoa(cfg.Image), "--proj-hidden", strconv.Itoa(cfg.ProjHidden),
		"--proj-out", strconv.Itoa(cfg.ProjOut), "--steps", strconv.Itoa(cfg.Steps),
		"--warmup", strconv.Itoa(cfg.Warmup), "--threads", strconv.Itoa(threads)}
	cmd := exec.Command(python, args...)
	cmd.Env = append(os.Environ(), "GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1099511627776")
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return pytorchResult{}, fmt.Errorf("running %s %s: %w", python, script, err)
	}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "JSON "); ok {
			var r pytorchResult
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				return r, fmt.Errorf("reading %s output: %w", script, err)
			}
			return r, nil
		}
	}
	return pytorchResult{}, fmt.Errorf("%s printed no JSON summary line", script)
}
