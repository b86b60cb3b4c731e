package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/simclr-go/simclr/report/tfevents"
)

// A Recorder keeps a run folder's TensorBoard events and report.html up
// to date while the run goes on. It follows the folder's metrics.jsonl:
// written by the training loop (Follow), or by the Recorder itself from
// the rows it is given (NewLog). Every process writes its own event file,
// holding the steps it ran, so a resumed run's events continue the earlier
// ones without repeating a step. A Recorder is not safe for concurrent use.
type Recorder struct {
	dir    string
	opts   Options
	own    bool  // the Recorder writes the log (NewLog)
	next   int   // the first step whose events are still to be written; -1: not known yet
	offset int64 // bytes of the log read
	rows   []Row // the rows read
	events *tfevents.Writer
}

// Follow records the metrics log another writer keeps in dir (train.Run's):
// Sync writes the events of its rows from step from on, the steps this
// process runs. A run starting at step 0 removes the event files of earlier
// attempts in dir, whose steps it is about to redo.
func Follow(dir string, from int, o Options) (*Recorder, error) {
	r := &Recorder{dir: dir, opts: o, next: from}
	if err := r.start(); err != nil {
		return nil, err
	}
	return r, nil
}

// NewLog records a run whose loop does not keep a metrics log: Log appends
// its rows to dir/metrics.jsonl. The first row's step says where the run
// starts: rows at or past it, left by an earlier attempt, are dropped.
func NewLog(dir string, o Options) (*Recorder, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &Recorder{dir: dir, opts: o, own: true, next: -1}, nil
}

// Dir is the run folder.
func (r *Recorder) Dir() string { return r.dir }

// start opens this process's event file once the first step is known.
func (r *Recorder) start() error {
	if r.next == 0 {
		old, err := tfevents.Files(r.dir)
		if err != nil {
			return err
		}
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	w, err := tfevents.Create(r.dir)
	if err != nil {
		return fmt.Errorf("TensorBoard events: %w", err)
	}
	r.events = w
	return nil
}

// Log appends row to the metrics log and writes its events. Only for a
// Recorder made by NewLog.
func (r *Recorder) Log(row Row) error {
	if !r.own {
		return errors.New("report: Log on a Recorder that follows another writer's log")
	}
	path := filepath.Join(r.dir, MetricsName)
	if r.next < 0 {
		rows, err := ReadMetrics(path)
		if err != nil {
			return err
		}
		kept := rows[:0]
		for _, old := range rows {
			if old.Step() < row.Step() {
				kept = append(kept, old)
			}
		}
		if err := writeRows(path, kept); err != nil {
			return err
		}
		r.offset, r.rows = 0, nil
		r.next = row.Step()
		if err := r.start(); err != nil {
			return err
		}
	}
	var b bytes.Buffer
	if err := appendRow(&b, row); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return r.Sync()
}

// Sync reads the rows the log gained since the last call and writes
// their events.
func (r *Recorder) Sync() error {
	path := filepath.Join(r.dir, MetricsName)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if info.Size() < r.offset { // replaced by a shorter log: read it again
		r.offset, r.rows = 0, nil
	}
	if _, err := f.Seek(r.offset, io.SeekStart); err != nil {
		return err
	}
	raw, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	end := bytes.LastIndexByte(raw, '\n') + 1
	rows, err := parseRows(path, raw[:end], 0)
	if err != nil {
		return err
	}
	r.offset += int64(end)
	r.rows = append(r.rows, rows...)
	if r.events == nil {
		return nil
	}
	now := time.Now()
	for _, row := range rows {
		if row.Step() < r.next {
			continue
		}
		values := make(map[string]float64, len(row))
		for k, v := range row {
			if k != "step" {
				values[k] = v
			}
		}
		if err := r.events.Scalars(int64(row.Step()), now, values); err != nil {
			return err
		}
		r.next = row.Step() + 1
	}
	return r.events.Flush()
}

// Report writes the events so far and regenerates report.html (reloading
// itself every minute, as the run goes on), returning its path.
func (r *Recorder) Report() (string, error) {
	if err := r.Sync(); err != nil {
		return "", err
	}
	o := r.opts
	if o.Refresh == 0 {
		o.Refresh = 60
	}
	return writeReport(r.dir, r.rows, o)
}

// Finish writes the last events and the final report, with results (a
// header row, then data rows; may be nil), closes the event file and
// returns the report's path.
func (r *Recorder) Finish(results [][]string) (string, error) {
	if err := r.Sync(); err != nil {
		return "", err
	}
	if r.events != nil {
		if err := r.events.Close(); err != nil {
			return "", err
		}
		r.events = nil
	}
	o := r.opts
	o.Refresh = 0
	if results != nil {
		o.Results = results
	}
	return writeReport(r.dir, r.rows, o)
}

// Close closes the event file without a report (Finish closes it too).
func (r *Recorder) Close() error {
	if r.events == nil {
		return nil
	}
	err := r.events.Close()
	r.events = nil
	return err
}
