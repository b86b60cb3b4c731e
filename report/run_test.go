package report

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/simclr-go/simclr/report/tfevents"
)

// stepEvents reads every event file of dir in order and returns each
// step's scalars as TensorBoard shows them: a later file's step replaces an
// earlier file's (a run resumed from a checkpoint older than its last
// steps). It fails the test on a bad checksum, a step twice in one file,
// or, when strict, a step in two files.
func stepEvents(t *testing.T, dir string, strict bool) map[int]map[string]float32 {
	t.Helper()
	files, err := tfevents.Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]map[string]float32{}
	for _, f := range files {
		inFile := map[int64]bool{}
		events, err := tfevents.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) == 0 || events[0].FileVersion != tfevents.FileVersion {
			t.Fatalf("%s does not start with the file version", f)
		}
		for _, ev := range events[1:] {
			if _, dup := out[int(ev.Step)]; inFile[ev.Step] || dup && strict {
				t.Errorf("step %d recorded twice", ev.Step)
			}
			inFile[ev.Step] = true
			m := map[string]float32{}
			for _, s := range ev.Scalars {
				m[s.Tag] = s.Value
			}
			out[int(ev.Step)] = m
		}
	}
	return out
}

// checkEventsMatchLog asserts that the events hold exactly the log's rows.
func checkEventsMatchLog(t *testing.T, dir string) {
	t.Helper()
	rows, err := ReadMetrics(filepath.Join(dir, MetricsName))
	if err != nil {
		t.Fatal(err)
	}
	events := stepEvents(t, dir, true)
	if len(events) != len(rows) {
		t.Errorf("%d steps in the events, %d rows in the log", len(events), len(rows))
	}
	for _, r := range rows {
		ev, ok := events[r.Step()]
		if !ok {
			t.Errorf("step %d: no event", r.Step())
			continue
		}
		if len(ev) != len(r)-1 {
			t.Errorf("step %d: %d scalars, the log has %d metrics", r.Step(), len(ev), len(r)-1)
		}
		for k, v := range r {
			if k != "step" && ev[k] != float32(v) {
				t.Errorf("step %d: event %s = %v, log %v", r.Step(), k, ev[k], v)
			}
		}
	}
}

func writeLog(t *testing.T, dir string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, MetricsName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for s := from; s < to; s++ {
		line := fmt.Sprintf(`{"step":%d,"epoch":%g,"loss":%g,"lr":%g,"contrast_acc":%g`, s, float64(s)/4, 6-0.1*float64(s), 0.01*float64(s), 0.05*float64(s))
		if s%3 == 2 {
			line += fmt.Sprintf(`,"knn_top1":%g`, 0.1+0.01*float64(s))
		}
		fmt.Fprintln(f, line+"}")
	}
}

func TestFromRunDir(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 0, 9)
	runYAML := "batch: \"32\"\ndepth: \"18\"\nlr: \"0.3\"\n---\n# What the run was\ncommand: simclr pretrain\nbackend: purego\n"
	if err := os.WriteFile(filepath.Join(dir, RunFileName), []byte(runYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Grid(filepath.Join(dir, ViewsName), [][]image.Image{{image.NewGray(image.Rect(0, 0, 4, 4))}}, 1); err != nil {
		t.Fatal(err)
	}
	path, err := FromRunDir(dir, Options{Title: "pretraining", Settings: map[string]string{"ignored": "yes"}})
	if err != nil {
		t.Fatal(err)
	}
	html := readPage(t, path)
	for _, want := range []string{"pretraining", "loss", "learning rate", "contrastive accuracy", "kNN top-1", "<td>depth</td><td>18</td>",
		"command: simclr pretrain", "backend: purego", "9 steps logged, the last step 8 (epoch 2.00)", "tensorboard --logdir"} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(html, "ignored") {
		t.Error("report shows the fallback settings although run.yaml is there")
	}
	if strings.Contains(html, "refresh") {
		t.Error("report reloads itself though Refresh was not asked for")
	}
	imgs := checkImages(t, dir, html)
	for _, want := range []string{"plot_loss.png", "plot_lr.png", "plot_contrast_acc.png", "plot_knn_top1.png", ViewsName} {
		if !imgs[want] {
			t.Errorf("report does not show %s (shows %v)", want, imgs)
		}
	}
	if imgs["plot_step.png"] || imgs["plot_epoch.png"] {
		t.Error("the step or epoch is plotted as a metric")
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(matches) > 0 {
		t.Errorf("temporary files left: %v", matches)
	}

	// Without run.yaml the given settings are shown; an empty log is no error.
	empty := t.TempDir()
	path, err = FromRunDir(empty, Options{Settings: map[string]string{"fraction": "0.1"}, Refresh: 30})
	if err != nil {
		t.Fatal(err)
	}
	html = readPage(t, path)
	for _, want := range []string{"<td>fraction</td><td>0.1</td>", "no steps logged yet", `content="30"`} {
		if !strings.Contains(html, want) {
			t.Errorf("report of an empty run lacks %q", want)
		}
	}
}

func TestFromRunDirBadInput(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, MetricsName), []byte("{\"step\":0,\"loss\":1}\nnot json\n"), 0o644)
	if _, err := FromRunDir(dir, Options{}); err == nil || !strings.Contains(err.Error(), MetricsName+":2") {
		t.Errorf("bad log line: error %v, want one naming %s:2", err, MetricsName)
	}
	dir = t.TempDir()
	os.WriteFile(filepath.Join(dir, RunFileName), []byte("a: [unclosed\n"), 0o644)
	if _, err := FromRunDir(dir, Options{}); err == nil || !strings.Contains(err.Error(), RunFileName) {
		t.Errorf("bad run.yaml: error %v, want one naming it", err)
	}
	// A line being written (no newline yet) is not read.
	dir = t.TempDir()
	os.WriteFile(filepath.Join(dir, MetricsName), []byte("{\"step\":0,\"loss\":1}\n{\"step\":1,\"lo"), 0o644)
	if rows, err := ReadMetrics(filepath.Join(dir, MetricsName)); err != nil || len(rows) != 1 {
		t.Errorf("log with a partial line: %d rows, %v; want 1 row", len(rows), err)
	}
}

func readPage(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkImages returns the images the page shows, checking that each is a
// PNG in dir.
func checkImages(t *testing.T, dir, html string) map[string]bool {
	t.Helper()
	shown := map[string]bool{}
	for _, m := range regexp.MustCompile(`<img src="([^"]+)"`).FindAllStringSubmatch(html, -1) {
		shown[m[1]] = true
		f, err := os.Open(filepath.Join(dir, m[1]))
		if err != nil {
			t.Errorf("the page shows a missing image: %v", err)
			continue
		}
		if _, err := png.Decode(f); err != nil {
			t.Errorf("%s is not a PNG: %v", m[1], err)
		}
		f.Close()
	}
	return shown
}

// A followed log, stopped two steps past its checkpoint and resumed from
// it: the resumed process's events take over from step 6 on.
func TestFollowResumed(t *testing.T) {
	dir := t.TempDir()
	r, err := Follow(dir, 0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	writeLog(t, dir, 0, 5)
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	writeLog(t, dir, 5, 8) // steps 6 and 7 run after the checkpoint at 6
	if _, err := r.Report(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	// The resumed process: the loop drops the log's rows past the
	// checkpoint, then logs the steps again (with other values).
	rows, _ := ReadMetrics(filepath.Join(dir, MetricsName))
	if err := writeRows(filepath.Join(dir, MetricsName), rows[:6]); err != nil {
		t.Fatal(err)
	}
	r, err = Follow(dir, 6, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(filepath.Join(dir, MetricsName), os.O_WRONLY|os.O_APPEND, 0)
	for s := 6; s < 10; s++ {
		fmt.Fprintf(f, "{\"step\":%d,\"loss\":%d.5,\"lr\":0.5}\n", s, s)
		if err := r.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	path, err := r.Finish([][]string{{"metric", "value"}, {"final", "42%"}})
	if err != nil {
		t.Fatal(err)
	}
	if files, _ := tfevents.Files(dir); len(files) != 2 {
		t.Errorf("%d event files, want one per process (2)", len(files))
	}
	events := stepEvents(t, dir, false)
	if len(events) != 10 || events[7]["loss"] != 7.5 || events[4]["loss"] != float32(6-0.1*4) {
		t.Errorf("steps 0-9 with the resumed run's values from step 6 on: %v", events)
	}
	html := readPage(t, path)
	for _, want := range []string{"<td>42%</td>", "10 steps logged, the last step 9"} {
		if !strings.Contains(html, want) {
			t.Errorf("final report lacks %q", want)
		}
	}
}

func TestNewLogResumed(t *testing.T) {
	dir := t.TempDir()
	r, err := NewLog(dir, Options{Title: "fine-tuning"})
	if err != nil {
		t.Fatal(err)
	}
	for s := 0; s < 5; s++ {
		if err := r.Log(Row{"step": float64(s), "loss": 3 - 0.25*float64(s)}); err != nil {
			t.Fatal(err)
		}
	}
	r.Close() // interrupted; its state was saved at step 3
	r, err = NewLog(dir, Options{Title: "fine-tuning"})
	if err != nil {
		t.Fatal(err)
	}
	for s := 3; s < 6; s++ {
		if err := r.Log(Row{"step": float64(s), "loss": 10 + float64(s)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Finish(nil); err != nil {
		t.Fatal(err)
	}
	rows, err := ReadMetrics(filepath.Join(dir, MetricsName))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, row := range rows {
		got = append(got, fmt.Sprintf("%d:%g", row.Step(), row["loss"]))
	}
	if want := "0:3 1:2.75 2:2.5 3:13 4:14 5:15"; strings.Join(got, " ") != want {
		t.Errorf("log after resuming: %s, want %s", strings.Join(got, " "), want)
	}
	// Each process's file holds the steps it logged: the second from
	// step 3 on.
	files, _ := tfevents.Files(dir)
	if len(files) != 2 {
		t.Fatalf("%d event files, want 2", len(files))
	}
	second, err := tfevents.ReadFile(files[1])
	if err != nil {
		t.Fatal(err)
	}
	if len(second) != 4 || second[1].Step != 3 || second[1].Scalars[0].Value != 13 {
		t.Errorf("the resumed process's events: %+v", second)
	}

	// A fresh start (step 0) drops the earlier attempts' log and events.
	r, err = NewLog(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for s := 0; s < 2; s++ {
		if err := r.Log(Row{"step": float64(s), "loss": 1}); err != nil {
			t.Fatal(err)
		}
	}
	r.Finish(nil)
	checkEventsMatchLog(t, dir)
}

// A run stopped at its checkpoint (a signal) and resumed: every step is in
// exactly one event file.
func TestFollowStoppedAtCheckpoint(t *testing.T) {
	dir := t.TempDir()
	for _, span := range [][2]int{{0, 4}, {4, 7}, {7, 9}} {
		r, err := Follow(dir, span[0], Options{})
		if err != nil {
			t.Fatal(err)
		}
		for s := span[0]; s < span[1]; s++ {
			writeLog(t, dir, s, s+1)
			if err := r.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := r.Finish(nil); err != nil {
			t.Fatal(err)
		}
	}
	if files, _ := tfevents.Files(dir); len(files) != 3 {
		t.Errorf("%d event files, want 3", len(files))
	}
	checkEventsMatchLog(t, dir)
}

// A line caught half written is read whole at the next Sync; values that
// are not numbers are left out.
func TestSyncPartialLine(t *testing.T) {
	dir := t.TempDir()
	r, err := Follow(dir, 0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, MetricsName)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{`{"step":0,"loss":2.5,"note":"warm`, "up\"}\n{\"step\":1,", `"loss":2}` + "\n"} {
		f.WriteString(part)
		if err := r.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	r.Close()
	checkEventsMatchLog(t, dir)
	if ev := stepEvents(t, dir, true); len(ev) != 2 || ev[0]["loss"] != 2.5 || len(ev[0]) != 1 {
		t.Errorf("events %v, want steps 0 and 1 with loss only", ev)
	}
}

func TestThin(t *testing.T) {
	xs := []float64{0, 1, 2, 3, 4}
	ys := []float64{1, 3, 5, 7, 9}
	tx, ty, every := thin(xs, ys, 2)
	if every != 3 || len(tx) != 2 || tx[0] != 1 || ty[0] != 3 || tx[1] != 3.5 || ty[1] != 8 {
		t.Errorf("thin = %v %v %d", tx, ty, every)
	}
}
