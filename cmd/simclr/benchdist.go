package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/simclr-go/simclr/backend"
	"github.com/simclr-go/simclr/bench"
	"github.com/simclr-go/simclr/dist"
)

// distBenchResult is bench step's result under MPI.
type distBenchResult struct {
	bench.DistStepResult
	// LatencyS is one all-reduce of a single value started together on
	// every process: the per-collective latency of the network path.
	LatencyS float64 `json:"allreduce_1_value_s"`
}

// latencyReps is how many one-value all-reduces LatencyS is the median of.
const latencyReps = 50

// benchDist is `bench step` as one of several MPI processes: --batch is
// the global batch, each process computes its share, and rank 0 prints the
// timings with the time spent communicating, then the latency of one
// collective. The report goes to report, the JSON line (asJSON) to out.
func benchDist(out, report io.Writer, be backend.Backend, c dist.Comm, cfg bench.StepConfig, asJSON bool) error {
	step, err := bench.RunDistStep(be, c, cfg, report)
	if err != nil {
		return err
	}
	lat, err := bench.AllReduceTime(c, 1, latencyReps)
	if err != nil || c.Rank() != 0 {
		return err
	}
	res := distBenchResult{DistStepResult: step, LatencyS: lat.Seconds()}
	fmt.Fprintf(report, "# %d processes: median step %.3fs (min %.3f max %.3f); fwd %.3f bwd %.3f opt %.3f; in collectives %.3f per step (%d calls), of which gradient all-reduce %.3f (%.1f MiB in %d messages; %.3f when started together); peak RSS %.0f MiB per process\n",
		res.Processes, res.MedianStepS, res.MinStepS, res.MaxStepS, res.MedianFwdS, res.MedianBwdS, res.MedianOptS,
		res.MedianCommS, res.CollectivesPerStep, res.MedianGradS, res.GradMB, res.GradCalls, res.TransferS, res.PeakRSSMB)
	fmt.Fprintf(report, "# all-reduce of 1 value (latency): %.1f µs, median of %d\n", lat.Seconds()*1e6, latencyReps)
	fmt.Fprintf(report, "images/sec: %.2f\n", res.ImagesPerSec)
	if asJSON {
		return json.NewEncoder(out).Encode(res)
	}
	return nil
}
