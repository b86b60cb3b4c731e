package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// evalResult is what every evaluation command (knn, linear-eval, finetune,
// distill, semi) prints with --json: one JSON object, alone on stdout, in
// the schema docs/evaluation.md documents. Metrics hold the numbers a
// script compares; Details what only this command has.
type evalResult struct {
	Command string             `json:"command"`
	Version string             `json:"version"`
	Model   modelInfo          `json:"model"`
	Dataset datasetInfo        `json:"dataset"`
	Metrics map[string]float64 `json:"metrics"`
	Details any                `json:"details,omitempty"`
	Seconds float64            `json:"seconds"`
}

// modelInfo says which model was evaluated or trained.
type modelInfo struct {
	Checkpoint string `json:"checkpoint"`       // the model file read
	Random     bool   `json:"random,omitempty"` // its architecture at a random initialisation instead
	Layer      string `json:"layer,omitempty"`  // the features used: h, z or "head layer N"
	Out        string `json:"out,omitempty"`    // the model file written
}

// datasetInfo says which images were used, and how many.
type datasetInfo struct {
	Data      string  `json:"data"`
	Split     string  `json:"split"`
	TestData  string  `json:"test_data,omitempty"`  // when not --data
	TestSplit string  `json:"test_split,omitempty"` // when the test images are a split
	Val       float64 `json:"val,omitempty"`        // test images held out of --data instead
	Limit     int     `json:"limit,omitempty"`
	Classes   int     `json:"classes"`
	Train     int     `json:"train_images"`
	Labelled  int     `json:"labelled_images"`
	Test      int     `json:"test_images"`
}

// datasetInfo fills in the settings part of the description.
func (s *splitFlags) datasetInfo() datasetInfo {
	d := datasetInfo{Data: s.data.Data, Split: s.data.Split, TestData: s.testData, Val: s.val, Limit: s.data.Limit}
	if s.val == 0 {
		d.TestSplit = s.testSplit
	}
	return d
}

// print writes r as one JSON object.
func (r evalResult) print(w io.Writer, began time.Time) error {
	r.Version, r.Seconds = versionString(), time.Since(began).Seconds()
	if err := json.NewEncoder(w).Encode(r); err != nil {
		return fmt.Errorf("writing the result: %w", err)
	}
	return nil
}

// result is semi's --json output: per fraction F the metrics
// supervised_top1@F, teacher_top1@F and student_top1@F (F the method's
// name with --select); the rows and the commands in details.
func (rep semiReport) result(f semiFlags) evalResult {
	m := map[string]float64{}
	for _, r := range rep.Rows {
		at := "@" + fmtFloat(r.Fraction)
		if r.Selected != "" {
			at = "@" + r.Selected
		}
		m["teacher_top1"+at], m["student_top1"+at] = r.Teacher, r.Student
		if r.Supervised != nil {
			m["supervised_top1"+at] = *r.Supervised
		}
	}
	ds := f.split.datasetInfo()
	ds.Train, ds.Test = rep.TrainImages, rep.TestImages
	return evalResult{
		Command: "semi",
		Model:   modelInfo{Checkpoint: rep.Checkpoint, Out: f.out},
		Dataset: ds,
		Metrics: m,
		Details: rep,
	}
}
