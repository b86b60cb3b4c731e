package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/simclr-go/simclr/internal/atomicfile"
)

// The files of a run folder that a report reads and writes.
const (
	// MetricsName is the JSON-lines log of a run: one object per step,
	// with "step" and the step's numbers.
	MetricsName = "metrics.jsonl"
	// RunFileName records a run's settings (first YAML document) and what
	// it ran on (second document).
	RunFileName = "run.yaml"
	// ViewsName is the grid of augmented views a pretraining run draws.
	ViewsName = "views.png"
	// PageName is the report.
	PageName = "report.html"
)

// Row is one step of a metrics log: its numbers by name ("step", "loss", ...).
type Row map[string]float64

// Step is the row's step.
func (r Row) Step() int { return int(r["step"]) }

// ReadMetrics reads a metrics log. A missing file is an empty log; a last
// line without its newline (being written) is left out. Values that are
// not numbers are ignored.
func ReadMetrics(path string) ([]Row, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseRows(path, raw, 1)
}

// parseRows decodes the complete lines of raw; first is the number of
// raw's first line, for errors.
func parseRows(path string, raw []byte, first int) ([]Row, error) {
	if i := bytes.LastIndexByte(raw, '\n'); i >= 0 {
		raw = raw[:i+1]
	} else {
		raw = nil
	}
	var rows []Row
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for line := first; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		row, err := parseRow(sc.Bytes())
		if err != nil {
			return rows, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		return rows, fmt.Errorf("%s: %w", path, err)
	}
	return rows, nil
}

// parseRow decodes one line of a log: numbers only (the fast, usual
// case), else the numbers among other values.
func parseRow(line []byte) (Row, error) {
	row := Row{}
	if json.Unmarshal(line, &row) != nil {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, err
		}
		row = Row{}
		for k, v := range rec {
			if f, ok := v.(float64); ok {
				row[k] = f
			}
		}
	}
	if _, ok := row["step"]; !ok {
		return nil, errors.New("no step")
	}
	return row, nil
}

// Options say what a run's report shows beyond what its folder holds.
type Options struct {
	// Title heads the page (default: "Run" and the folder's name).
	Title string
	// Summary is a sentence under the title.
	Summary string
	// Results is a table of final numbers: a header row, then data rows.
	Results [][]string
	// Settings are shown when the folder has no run.yaml (the command's
	// flags, say).
	Settings map[string]string
	// Links are pages related to the run (its stages).
	Links []Link
	// Refresh, if positive, has the page reload itself every that many
	// seconds while the run goes on.
	Refresh int
}

// notPlotted are the metrics that are axes or clocks rather than curves.
var notPlotted = map[string]bool{"step": true, "epoch": true, "elapsed_s": true}

// metricTitles name the metrics train and this package's users log.
var metricTitles = map[string]string{
	"loss":             "loss",
	"lr":               "learning rate",
	"contrast_acc":     "contrastive accuracy (the positive ranked first among the batch)",
	"contrast_entropy": "entropy of the contrastive distribution",
	"knn_top1":         "kNN top-1 on held-out images",
	"knn_top1_subset":  "kNN top-1 on a subset",
	"images_per_s":     "throughput (images/s)",
}

// metricOrder is where known metrics go on the page; others follow by name.
var metricOrder = []string{"loss", "lr", "contrast_acc", "knn_top1", "knn_top1_subset", "contrast_entropy", "images_per_s"}

// maxPoints bounds the points of a plotted line: longer logs are averaged
// over runs of consecutive steps.
const maxPoints = 2000

// FromRunDir writes dir/report.html from what the run folder holds:
// metrics.jsonl (a plot per metric, written beside it as plot_NAME.png),
// run.yaml (the settings), views.png (when present), and returns the
// page's path. Every file is replaced atomically, so the report of a run
// under way can be reloaded at any time.
func FromRunDir(dir string, o Options) (string, error) {
	rows, err := ReadMetrics(filepath.Join(dir, MetricsName))
	if err != nil {
		return "", err
	}
	return writeReport(dir, rows, o)
}

// writeReport is FromRunDir with the log already read.
func writeReport(dir string, rows []Row, o Options) (string, error) {
	p := Page{Title: o.Title, Summary: o.Summary, Table: o.Results, Links: o.Links, Refresh: o.Refresh}
	if p.Title == "" {
		p.Title = "Run " + filepath.Base(dir)
	}
	p.Summary = strings.TrimSpace(p.Summary + " " + logSummary(rows) + ".")
	figures, err := plotMetrics(dir, rows)
	if err != nil {
		return "", err
	}
	p.Figures = figures
	if _, err := os.Stat(filepath.Join(dir, ViewsName)); err == nil {
		p.Figures = append(p.Figures, Figure{File: ViewsName, Caption: "augmented views: each row is one training image (first column) and its views"})
	}
	settings, runContext, err := readRunFile(filepath.Join(dir, RunFileName))
	if err != nil {
		return "", err
	}
	if settings == nil {
		settings = o.Settings
	}
	p.Settings = settingsTable(settings)
	if runContext != "" {
		p.Notes = append(p.Notes, "", strings.TrimRight(runContext, "\n"))
	}
	p.Notes = append(p.Notes, "", "TensorBoard: tensorboard --logdir "+dir)
	path := filepath.Join(dir, PageName)
	return path, WriteHTMLFile(path, p)
}

// logSummary says how far the log goes.
func logSummary(rows []Row) string {
	now := "Updated " + time.Now().Format("2006-01-02 15:04:05 MST")
	if len(rows) == 0 {
		return now + "; no steps logged yet"
	}
	last := rows[len(rows)-1]
	s := fmt.Sprintf("%s; %d steps logged, the last step %d", now, len(rows), last.Step())
	if e, ok := last["epoch"]; ok {
		s += fmt.Sprintf(" (epoch %.2f)", e)
	}
	if t, ok := last["elapsed_s"]; ok {
		s += fmt.Sprintf(", %s of training in the last process", (time.Duration(t * float64(time.Second))).Round(time.Second))
	}
	return s
}

// plotMetrics draws each metric of rows against the step.
func plotMetrics(dir string, rows []Row) ([]Figure, error) {
	seen := map[string]bool{}
	for _, r := range rows {
		for k := range r {
			seen[k] = true
		}
	}
	var names []string
	for _, k := range metricOrder {
		if seen[k] {
			names = append(names, k)
			delete(seen, k)
		}
	}
	var rest []string
	for k := range seen {
		if !notPlotted[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	names = append(names, rest...)

	var figures []Figure
	for _, name := range names {
		var xs, ys []float64
		for _, r := range rows {
			if v, ok := r[name]; ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
				xs, ys = append(xs, r["step"]), append(ys, v)
			}
		}
		xs, ys, every := thin(xs, ys, maxPoints)
		title := metricTitles[name]
		if title == "" {
			title = name
		}
		file := "plot_" + fileSafe(name) + ".png"
		if err := LinePlot(filepath.Join(dir, file), title, "step", name, Series{X: xs, Y: ys}); err != nil {
			return nil, err
		}
		caption := fmt.Sprintf("%s per step (%s in %s)", title, name, MetricsName)
		if title == name {
			caption = fmt.Sprintf("%s per step (%s)", name, MetricsName)
		}
		if every > 1 {
			caption += fmt.Sprintf(", mean of every %d logged values", every)
		}
		figures = append(figures, Figure{File: file, Caption: caption})
	}
	return figures, nil
}

// thin averages runs of consecutive points so that at most limit remain,
// and returns the run length.
func thin(xs, ys []float64, limit int) ([]float64, []float64, int) {
	if len(xs) <= limit {
		return xs, ys, 1
	}
	every := (len(xs) + limit - 1) / limit
	var tx, ty []float64
	for i := 0; i < len(xs); i += every {
		j := min(i+every, len(xs))
		var sx, sy float64
		for k := i; k < j; k++ {
			sx += xs[k]
			sy += ys[k]
		}
		tx, ty = append(tx, sx/float64(j-i)), append(ty, sy/float64(j-i))
	}
	return tx, ty, every
}

// fileSafe keeps letters, digits, '-' and '_' of a metric's name.
func fileSafe(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, name)
}

// readRunFile returns run.yaml's settings and, verbatim, its second
// document; a missing file gives nil settings.
func readRunFile(path string) (map[string]string, string, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	first, rest := raw, []byte(nil)
	if i := bytes.Index(raw, []byte("\n---\n")); i >= 0 {
		first, rest = raw[:i+1], raw[i+5:]
	}
	var doc map[string]any
	if err := yaml.Unmarshal(first, &doc); err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	settings := make(map[string]string, len(doc))
	for k, v := range doc {
		settings[k] = scalarString(v)
	}
	return settings, string(rest), nil
}

func scalarString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	default:
		return fmt.Sprint(v)
	}
}

// settingsTable is settings as name, value rows in name order.
func settingsTable(settings map[string]string) [][]string {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	rows := make([][]string, len(keys))
	for i, k := range keys {
		rows[i] = []string{k, settings[k]}
	}
	return rows
}

// writeRows replaces the log at path by rows.
func writeRows(path string, rows []Row) error {
	var b bytes.Buffer
	for _, r := range rows {
		if err := appendRow(&b, r); err != nil {
			return err
		}
	}
	return atomicfile.Write(path, b.Bytes(), 0o644)
}

// appendRow writes r as one JSON line, its step first.
func appendRow(b *bytes.Buffer, r Row) error {
	keys := make([]string, 0, len(r))
	for k := range r {
		if k != "step" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	fmt.Fprintf(b, `{"step":%d`, r.Step())
	for _, k := range keys {
		name, err := json.Marshal(k)
		if err != nil {
			return err
		}
		v, err := json.Marshal(r[k])
		if err != nil {
			return fmt.Errorf("metric %s: %w", k, err)
		}
		fmt.Fprintf(b, ",%s:%s", name, v)
	}
	b.WriteString("}\n")
	return nil
}
