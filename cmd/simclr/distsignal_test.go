package main

import (
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/simclr-go/simclr/dist"
)

// blockedComm is a group of two whose process has waited in a collective
// for waited.
type blockedComm struct {
	dist.Single
	waited time.Duration
}

func (blockedComm) Size() int { return 2 }

func (b blockedComm) Waiting() (string, time.Duration, bool) {
	return "MPI_Allreduce of 65 values", b.waited, true
}

// syncBuffer is a strings.Builder safe for the reporting goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// signalAndRead sends SIGTERM to this process while reportWaitingOnSignal
// watches c, and returns what it printed.
func signalAndRead(t *testing.T, c dist.Comm, want string) string {
	t.Helper()
	var out syncBuffer
	stop := reportWaitingOnSignal(c, &out)
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The signal reaches the goroutine asynchronously; a short wait
	// suffices when nothing is to be printed.
	deadline := time.Now().Add(200 * time.Millisecond)
	if want != "" {
		deadline = time.Now().Add(10 * time.Second)
	}
	for (want == "" || !strings.Contains(out.String(), want)) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return out.String()
}

func TestReportWaitingOnSignal(t *testing.T) {
	want := "simclr: rank 0 of 2: SIGTERM came after 4.0s waiting in MPI_Allreduce of 65 values for the other processes"
	if got := signalAndRead(t, blockedComm{waited: 4 * time.Second}, want); !strings.Contains(got, want) {
		t.Errorf("reported %q, want a line with %q", got, want)
	}
	// A short wait is the normal course of a step: a run stopped on
	// purpose says nothing more.
	if got := signalAndRead(t, blockedComm{waited: 10 * time.Millisecond}, ""); got != "" {
		t.Errorf("a 10 ms wait reported %q, want nothing", got)
	}
}
