package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/simclr-go/simclr/report"
)

// runReport keeps a run folder's report.html and TensorBoard events
// current. Trouble writing them is a warning: the run's model matters more
// than its report. A nil *runReport does nothing.
type runReport struct {
	rec      *report.Recorder
	log      io.Writer // warnings and the report's path
	quiet    bool
	results  [][]string
	refresh  time.Duration // how often a loop without checkpoints redraws the page
	lastDraw time.Time
}

// followRun reports on a pretraining run in dir whose metrics log the
// training loop writes, from step from on; nil on a process that does not
// write (data-parallel ranks other than 0).
func followRun(writes bool, dir string, from int, log io.Writer, quiet bool) *runReport {
	if !writes {
		return nil
	}
	rec, err := report.Follow(dir, from, report.Options{Title: "SimCLR pretraining: " + dir})
	return newRunReport(rec, err, log, quiet)
}

// logRun reports on a fine-tuning or distillation run writing the model
// file out: in out's report folder (reportDir), with the command's
// settings. Nil without out.
func logRun(out, title string, settings map[string]string, log io.Writer, quiet bool) *runReport {
	if out == "" {
		return nil
	}
	dir := reportDir(out)
	rec, err := report.NewLog(dir, report.Options{Title: title + ": " + out, Settings: settings})
	return newRunReport(rec, err, log, quiet)
}

// reportDir is where the run writing model file out keeps its report and
// events: out without its .safetensors ending, plus ".report"
// (teacher.safetensors: teacher.report/).
func reportDir(out string) string {
	return strings.TrimSuffix(out, ".safetensors") + ".report"
}

func newRunReport(rec *report.Recorder, err error, log io.Writer, quiet bool) *runReport {
	if err != nil {
		fmt.Fprintf(log, "warning: no report for this run: %v\n", err)
		return nil
	}
	return &runReport{rec: rec, log: log, quiet: quiet, refresh: time.Minute, lastDraw: time.Now()}
}

func (r *runReport) warn(err error) {
	if err != nil {
		fmt.Fprintf(r.log, "warning: report in %s: %v\n", r.rec.Dir(), err)
	}
}

// step writes the events of the steps logged since the last call.
func (r *runReport) step() {
	if r != nil {
		r.warn(r.rec.Sync())
	}
}

// saved redraws the page after a checkpoint.
func (r *runReport) saved(int) {
	if r != nil {
		_, err := r.rec.Report()
		r.warn(err)
	}
}

// wrap returns a fine-tuning or distillation progress callback that logs
// each step (its loss and epoch) and redraws the page every r.refresh,
// then calls progress (may be nil).
func (r *runReport) wrap(progress func(step, steps int, loss float64), epochs int) func(step, steps int, loss float64) {
	if r == nil {
		return progress
	}
	return func(step, steps int, loss float64) {
		// step counts the steps done; the log numbers them from 0.
		r.warn(r.rec.Log(report.Row{"step": float64(step - 1), "loss": loss, "epoch": float64(step) * float64(epochs) / float64(steps)}))
		if time.Since(r.lastDraw) >= r.refresh {
			r.saved(step)
			r.lastDraw = time.Now()
		}
		if progress != nil {
			progress(step, steps, loss)
		}
	}
}

// result adds a final number to the report's table.
func (r *runReport) result(name, value string) {
	if r == nil {
		return
	}
	if r.results == nil {
		r.results = [][]string{{"result", "value"}}
	}
	r.results = append(r.results, []string{name, value})
}

// finish writes the final page (also of a run that stopped early) and
// closes the events.
func (r *runReport) finish() {
	if r == nil {
		return
	}
	path, err := r.rec.Finish(r.results)
	r.warn(err)
	if err == nil && !r.quiet {
		fmt.Fprintf(r.log, "report: %s; TensorBoard: tensorboard --logdir %s\n", path, filepath.Dir(path))
	}
}

// writeSemiPage writes OUT/report.html for simclr semi: the results, the
// settings and links to the reports of its stages; running, a page that
// reloads itself.
func writeSemiPage(out string, rep semiReport, running bool) (string, error) {
	table := [][]string{{"labels", "labelled images", "supervised only", "fine-tuned (teacher)", "distilled student"}}
	var links []report.Link
	addLink := func(dir, text string) {
		if _, err := os.Stat(filepath.Join(dir, report.PageName)); err == nil {
			if rel, err := filepath.Rel(out, filepath.Join(dir, report.PageName)); err == nil {
				links = append(links, report.Link{Href: filepath.ToSlash(rel), Text: text})
			}
		}
	}
	addLink(filepath.Join(out, "pretrain"), "pretraining")
	for _, r := range rep.Rows {
		table = append(table, []string{fmt.Sprintf("%g%%", 100*r.Fraction), fmt.Sprint(r.Labelled), optionalPct(r.Supervised),
			fmt.Sprintf("%.2f%%", 100*r.Teacher), fmt.Sprintf("%.2f%%", 100*r.Student)})
		addLink(reportDir(r.TeacherOut), fmt.Sprintf("fine-tuning on %g%% of the labels (teacher)", 100*r.Fraction))
		addLink(reportDir(r.StudentOut), fmt.Sprintf("distillation of the %g%% teacher (student)", 100*r.Fraction))
	}
	summary := fmt.Sprintf("Test top-1 on %d test images; %d training images, all used unlabelled for distillation. Pretrained model: %s",
		rep.TestImages, rep.TrainImages, rep.Checkpoint)
	if rep.PretrainSteps > 0 {
		summary += fmt.Sprintf(" (%d pretraining steps)", rep.PretrainSteps)
	}
	o := report.Options{Title: "SimCLRv2 semi-supervised: " + rep.Data, Summary: summary + ".", Results: table, Links: links}
	if running {
		o.Refresh = 60
	}
	return report.FromRunDir(out, o)
}

// close closes the events without a page, for a run that draws its own.
func (r *runReport) close() {
	if r != nil {
		r.warn(r.rec.Close())
	}
}
