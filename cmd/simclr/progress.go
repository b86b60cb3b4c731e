package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// plainEvery is how often a progress line is written when stderr is not a
// terminal (a log file, a pipe, a batch system's output).
const plainEvery = 30 * time.Second

// newBar is the progress display every long command shows on stderr: a
// bar redrawn in place on a terminal; elsewhere a plain line every
// plainEvery and one at the end, so that logs hold no carriage-return frames.
func newBar(total int, what string) *progressbar.ProgressBar {
	return newBarTo(os.Stderr, term.IsTerminal(int(os.Stderr.Fd())), total, what)
}

func newBarTo(w io.Writer, terminal bool, total int, what string) *progressbar.ProgressBar {
	opts := []progressbar.Option{
		progressbar.OptionSetDescription(what), progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(200 * time.Millisecond), progressbar.OptionSetWidth(24),
	}
	if terminal {
		opts = append(opts, progressbar.OptionSetWriter(w), progressbar.OptionClearOnFinish())
	} else {
		lw := newLineWriter(w, plainEvery, time.Now)
		opts = append(opts, progressbar.OptionSetWriter(lw), progressbar.OptionOnCompletion(lw.flush))
	}
	return progressbar.NewOptions(total, opts...)
}

// lineWriter turns a progress bar's redrawn frames ("\r" + the frame) into
// whole lines: the first frame, then the latest one every interval, and
// the last one on flush.
type lineWriter struct {
	mu      sync.Mutex
	w       io.Writer
	every   time.Duration
	now     func() time.Time
	frame   string    // latest frame, not yet written
	written time.Time // when a line was last written; zero before the first
}

func newLineWriter(w io.Writer, every time.Duration, now func() time.Time) *lineWriter {
	return &lineWriter{w: w, every: every, now: now}
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, seg := range strings.Split(string(p), "\r") {
		if s := strings.TrimSpace(seg); s != "" {
			l.frame = s
		}
	}
	if l.frame != "" && (l.written.IsZero() || l.now().Sub(l.written) >= l.every) {
		l.emit()
	}
	return len(p), nil
}

// flush writes the latest frame if it has not been written.
func (l *lineWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.frame != "" {
		l.emit()
	}
}

func (l *lineWriter) emit() {
	fmt.Fprintln(l.w, l.frame)
	l.frame, l.written = "", l.now()
}
