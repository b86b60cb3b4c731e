package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/simclr-go/simclr/checkpoint"
)

// writeSemiRunFile records semi's settings, machine and training images in
// OUT/run.yaml.
func writeSemiRunFile(cmd *cobra.Command, g *globalFlags, f semiFlags) error {
	be, err := g.open()
	if err != nil {
		return err
	}
	ds, err := f.split.data.open()
	if err != nil {
		return err
	}
	d := f.split.data
	return writeRunFile(f.out, cmd, settingsOf(cmd, nil), runContext{Backend: be.Name(), Threads: be.Threads(),
		Dataset: []datasetIdentity{identify("training", d.Data, d.Split, d.Limit, ds)}})
}

// checkpointStep is the step a pretraining checkpoint was saved at.
func checkpointStep(path string) (int, error) {
	f, err := checkpoint.Load(path)
	if err != nil {
		return 0, err
	}
	step, err := strconv.Atoi(f.Meta["step"])
	if err != nil {
		return 0, fmt.Errorf("%s: no step recorded", path)
	}
	return step, nil
}

// resumeIfKept adds --resume to a stage writing out when an interrupted run
// of it kept its state there.
func resumeIfKept(out string, args []string) []string {
	if _, err := os.Stat(out + stateSuffix); err == nil {
		return append(args[:len(args):len(args)], "--resume")
	}
	return args
}
