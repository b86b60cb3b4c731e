package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/simclr-go/simclr/data"
)

// datasetHelp documents the --data syntax once for every command.
const datasetHelp = `dataset: a folder or .tar/.tar.gz of images (class/file layout gives labels),
or cifar10, cifar100 (downloaded once into the cache), fashion-mnist[:DIR], mnist:DIR,
stl10:DIR, or cifar10:PATH / cifar100:PATH for a local archive or its folder`

// dataFlags select a dataset and a split.
type dataFlags struct {
	Data    string `yaml:"data"`
	Split   string `yaml:"split"`
	SkipBad bool   `yaml:"skip_bad"`
	// Limit, when positive, keeps that many images chosen at random (the
	// same ones in every command), for quick trials.
	Limit int `yaml:"limit"`
}

// limitHelp documents --limit.
const limitHelp = "use only this many images of each dataset, picked at random, the same ones in every command (0: all)"

// open opens the dataset d describes.
func (d dataFlags) open() (data.Dataset, error) {
	if d.Limit < 0 {
		return nil, fmt.Errorf("--limit %d: want a positive count, or 0 for all images", d.Limit)
	}
	ds, err := openDataset(d.Data, d.Split, d.SkipBad)
	if err != nil || d.Limit == 0 {
		return ds, err
	}
	return data.RandomSubset(ds, d.Limit, 0)
}

// openDataset opens a dataset spec (see datasetHelp) with the given split
// ("train" or "test"; STL-10 also "unlabeled" and "train+unlabeled").
func openDataset(spec, split string, skipBad bool) (data.Dataset, error) {
	if spec == "" {
		return nil, fmt.Errorf("no dataset given: set --data (%s)", datasetHelp)
	}
	name, arg, _ := strings.Cut(spec, ":")
	if split == "" {
		split = "train"
	}
	switch name {
	case "cifar10", "cifar100":
		opts := data.CIFAROptions{Split: split, Path: arg, Download: arg == ""}
		if name == "cifar10" {
			return data.CIFAR10(opts)
		}
		return data.CIFAR100(opts)
	case "fashion-mnist":
		return data.FashionMNIST(arg, split)
	case "mnist":
		return data.MNIST(arg, split)
	case "stl10":
		return data.STL10(arg, split)
	}
	ds, err := data.OpenImageFolder(spec, data.FolderOptions{SkipBad: skipBad})
	if err != nil {
		return nil, err
	}
	reportSkipped(os.Stderr, spec, ds.SkippedFiles())
	return ds, nil
}
