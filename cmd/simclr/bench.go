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

	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/bench"
)

func benchCmd(g *globalFlags) *cobra.Command {
	c := &cobra.Command{Use: "bench", Short: "Measure training speed, and how well selection methods choose images to label"}
	c.AddCommand(benchStepCmd(g), benchSelectCmd(g))
	return c
}

func benchStepCmd(g *globalFlags) *cobra.Command {
	cfg := bench.DefaultStep()
	var asJSON, channelsLast bool
	var pytorch, python, stem string
	c := &cobra.Command{
		Use:   "step",
		Short: "Time SimCLR training steps (ResNet + head + NT-Xent + SGD) on random images",
		Long: `Time SimCLR training steps on random 2N views: forward through a ResNet and a
projection head, NT-Xent, backward and an SGD-momentum update. The stem
follows the image size as in pretrain: the CIFAR stem (3x3, no max pool) for
32 px or less, torchvision's 7x7 stride-2 stem with max pool above.

It prints the images per second and the step's convolutions and matrix
products in GFLOP/s (forward work counted three times: forward, backward
data, backward weights) beside the peak this backend reaches on the machine
(the best of a few 1024x1024 matrix products). With --pytorch it then runs
the PyTorch reference script with the same settings in the same run and
prints the speed ratio; with --precision bf16 the reference runs under
torch.autocast to bfloat16.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			if err := validateBenchStep(cfg, stem); err != nil {
				return err
			}
			cfg.CIFARStem = stem == "on" || stem == "auto" && cfg.Image <= 32
			comm, finish, err := openComm(g)
			if err != nil {
				return err
			}
			defer finish(&err)
			be, err := g.open()
			if err != nil {
				return err
			}
			// With --json, stdout holds the JSON line alone and the
			// report goes to stderr.
			out, report := cmd.OutOrStdout(), cmd.OutOrStdout()
			if asJSON {
				report = cmd.ErrOrStderr()
			}
			if comm.Size() > 1 { // under mpirun: data-parallel steps, --batch global
				return benchDist(out, report, be, comm, cfg, asJSON)
			}
			res, err := bench.RunStep(be, cfg, report)
			if err != nil {
				return err
			}
			fmt.Fprintf(report, "# median step %.3fs (min %.3f max %.3f); fwd %.3f bwd %.3f opt %.3f; peak RSS %.0f MiB; arena %.0f MiB; allocations after warm-up %d\n",
				res.MedianStepS, res.MinStepS, res.MaxStepS, res.MedianFwdS, res.MedianBwdS, res.MedianOptS,
				res.PeakRSSMB, res.ArenaMB, res.AllocsAfterWarmup)
			res.PeakGFLOPS = bench.PeakGFLOPS(be, 1024, 5)
			fmt.Fprintf(report, "compute: %.1f GFLOP per step, %.1f GFLOP/s = %.0f%% of the %.1f GFLOP/s a 1024x1024 matrix product reaches\n",
				res.GFLOPPerStep, res.GFLOPS, 100*res.GFLOPS/res.PeakGFLOPS, res.PeakGFLOPS)
			fmt.Fprintf(report, "images/sec: %.2f\n", res.ImagesPerSec)
			if asJSON {
				if err := json.NewEncoder(out).Encode(res); err != nil {
					return err
				}
			}
			if pytorch == "" {
				return nil
			}
			ref, err := runPyTorch(python, pytorch, cfg, be.Threads(), be.Precision(), channelsLast)
			if err != nil {
				return err
			}
			fmt.Fprintf(report, "pytorch: %.2f images/s, peak RSS %.0f MiB\n", ref.ImagesPerSec, ref.PeakRSSMB)
			fmt.Fprintf(report, "ratio (ours/pytorch): speed %.2fx, peak RSS %.2fx\n",
				res.ImagesPerSec/ref.ImagesPerSec, res.PeakRSSMB/ref.PeakRSSMB)
			return nil
		},
	}
	f := c.Flags()
	f.IntVar(&cfg.Depth, "depth", cfg.Depth, "ResNet depth (18, 34, 50, 101, 152)")
	f.IntVar(&cfg.Width, "width", cfg.Width, "channels of the first stage (64 = 1x)")
	f.StringVar(&stem, "cifar-stem", "auto", "3x3 stem without max pool: auto (for images of 32 px or less), on, off")
	f.IntVar(&cfg.Batch, "batch", cfg.Batch, "N images per step (2N views)")
	f.IntVar(&cfg.Image, "image", cfg.Image, "image side in pixels")
	f.IntVar(&cfg.ProjHidden, "proj-hidden", cfg.ProjHidden, "projection head hidden width")
	f.IntVar(&cfg.ProjOut, "proj-out", cfg.ProjOut, "projection head output width")
	f.IntVar(&cfg.Steps, "steps", cfg.Steps, "timed steps")
	f.IntVar(&cfg.Warmup, "warmup", cfg.Warmup, "untimed steps first")
	f.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed")
	f.BoolVar(&asJSON, "json", false, "print the result as one JSON line on stdout (the report goes to stderr)")
	f.StringVar(&pytorch, "pytorch", "", "path of the reference simclr_step.py to run side by side")
	f.BoolVar(&channelsLast, "pytorch-channels-last", false, "run the reference with channels-last tensors (PyTorch's fastest fp32 layout on CPU)")
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
func runPyTorch(python, script string, cfg bench.StepConfig, threads int, prec backend.Precision, channelsLast bool) (pytorchResult, error) {
	if cfg.Depth != 18 && cfg.Depth != 50 {
		return pytorchResult{}, fmt.Errorf("the reference script runs depth 18 or 50, not %d", cfg.Depth)
	}
	args := []string{script, "--json", "--arch", "resnet" + strconv.Itoa(cfg.Depth),
		"--width", strconv.Itoa(cfg.Width), "--batch", strconv.Itoa(cfg.Batch),
		"--image", strconv.Itoa(cfg.Image), "--proj-hidden", strconv.Itoa(cfg.ProjHidden),
		"--proj-out", strconv.Itoa(cfg.ProjOut), "--steps", strconv.Itoa(cfg.Steps),
		"--warmup", strconv.Itoa(cfg.Warmup), "--threads", strconv.Itoa(threads)}
	if !cfg.CIFARStem {
		args = append(args, "--imagenet-stem")
	}
	if channelsLast {
		args = append(args, "--channels-last")
	}
	if prec == backend.BF16 {
		args = append(args, "--bf16") // torch.autocast to bfloat16
	}
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

// validateBenchStep checks bench step's settings.
func validateBenchStep(cfg bench.StepConfig, stem string) error {
	var c checks
	c.oneOf("cifar-stem", stem, "auto", "on", "off")
	c.depth("depth", cfg.Depth, "")
	c.intIn("width", cfg.Width, 1, maxWidth)
	c.intIn("batch", cfg.Batch, 2, maxBatch)
	c.intIn("image", cfg.Image, minSide, maxSide)
	c.intIn("proj-hidden", cfg.ProjHidden, 1, maxFeatures)
	c.intIn("proj-out", cfg.ProjOut, 1, maxFeatures)
	c.intIn("steps", cfg.Steps, 1, 1_000_000)
	c.intIn("warmup", cfg.Warmup, 0, 1_000_000)
	return c.err()
}
