package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/simclr-go/simclr/data"
)

// datasetHelp documents the --data syntax once for every command.
const datasetHelp = `dataset: a folder of images; a .tar (read in place) or .tar.gz (streamed) of one;
shards such as 'train-{000000..000146}.tar' (WebDataset: .cls members give labels);
a file list .txt (one path per line, optionally followed by a label); or cifar10,
cifar100 (downloaded once into the cache), fashion-mnist[:DIR], mnist:DIR, stl10:DIR,
cifar10:PATH / cifar100:PATH for a local archive or its folder.
In a folder, class folders give labels (files at any depth below them; --unlabeled
ignores them); train/, val/ and test/ folders side by side are splits (--split,
--test-split; test falls back to val/).`

// dataFlags select a dataset and a split.
type dataFlags struct {
	Data    string `yaml:"data"`
	Split   string `yaml:"split"`
	SkipBad bool   `yaml:"skip_bad"`
	// Unlabeled ignores class folders (pretraining and embedding need no
	// labels, and a photo collection's folders are not classes).
	Unlabeled bool `yaml:"unlabeled"`
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
	ds, err := openDataset(d.Data, d.Split, d.SkipBad, d.Unlabeled)
	if err != nil || d.Limit == 0 {
		return ds, err
	}
	return data.RandomSubset(ds, d.Limit, 0)
}

// openDataset opens a dataset spec (see datasetHelp) with the given split
// ("train" or "test"; STL-10 also "unlabeled" and "train+unlabeled").
func openDataset(spec, split string, skipBad, unlabeled bool) (data.Dataset, error) {
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
	ds, err := data.OpenImageFolder(spec, data.FolderOptions{Split: split, Unlabeled: unlabeled, SkipBad: skipBad})
	if err != nil {
		return nil, err
	}
	if ds.Streamed() && ds.Classes() != nil {
		runs := 1
		for i := 1; i < ds.Len(); i++ {
			if ds.Label(i) != ds.Label(i-1) {
				runs++
			}
		}
		if avg := ds.Len() / runs; avg > ds.ShuffleBuffer()/4 {
			fmt.Fprintf(os.Stderr, "note: %s holds its images grouped by class (runs of about %d), and a compressed archive is shuffled only %d images at a time: batches will hold few classes. Unpack it, or repack it as a plain .tar (read in place, shuffled fully)\n",
				spec, avg, ds.ShuffleBuffer())
		}
	}
	if n, names := ds.Ignored(); n > 0 {
		more := ""
		if n > len(names) {
			more = fmt.Sprintf(" and %d more", n-len(names))
		}
		fmt.Fprintf(os.Stderr, "note: %s: ignored %d files that are not images of a kind read here (JPEG, PNG, GIF, BMP, TIFF, WebP): %s%s\n",
			spec, n, strings.Join(names, ", "), more)
	}
	reportSkipped(os.Stderr, spec, ds.SkippedFiles())
	return ds, nil
}

// unlabeledHelp documents --unlabeled.
const unlabeledHelp = "ignore class folders: use every image under --data, at any depth, without labels"

// trainTestSets opens labelled training images and the images to score
// on: --val images held out of them, else --test-data (whole, or its
// --test-split when it has split folders), else the --test-split of
// --data. It never returns training images as test images: a source
// without a test split is an error that says what to pass.
func trainTestSets(train dataFlags, testData, testSplit string, val float64, seed uint64) (trainSet, testSet data.Dataset, err error) {
	ds, err := train.open()
	if err != nil {
		return nil, nil, err
	}
	if ds.Classes() == nil {
		return nil, nil, usagef("--data %s is unlabelled: this needs labels (for an image folder, one subfolder per class)", train.Data)
	}
	if val > 0 {
		if testData != "" {
			return nil, nil, usagef("--val and --test-data both choose the test images: give one")
		}
		tr, te, err := data.SplitTrainVal(ds, val, seed)
		if err != nil {
			return nil, nil, usagef("--val %v: %w", val, err)
		}
		return tr, te, nil
	}
	test := dataFlags{Data: testData, Split: testSplit, SkipBad: train.SkipBad, Limit: train.Limit}
	if testData == "" {
		test.Data = train.Data
	}
	te, err := test.open()
	var nse *data.NoSplitError
	switch {
	case errors.As(err, &nse) && testData == "":
		return nil, nil, usagef("--data %s has no %s split to score on (no train/ val/ test/ folders), and scoring on the training images would flatter the model: pass --test-data PATH (separate test images) or --val N (hold N images, or a fraction if below 1, out of --data)", train.Data, testSplit)
	case errors.As(err, &nse) && len(nse.Have) == 0:
		// A separate test set without split folders is used whole.
		test.Split = ""
		te, err = test.open()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("opening the test images (--test-data %s --test-split %s): %w", test.Data, testSplit, err)
	}
	if !slices.Equal(te.Classes(), ds.Classes()) {
		return nil, nil, fmt.Errorf("the test images' classes %v differ from the training images' %v", te.Classes(), ds.Classes())
	}
	return ds, te, nil
}
