package main

import (
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/simclr-go/simclr/dist"
)

// blockedComm is a group of two whose process is always waiting in a
// collective.
type blockedComm struct{ dist.Single }

func (blockedComm) Size() int { return 2 }

func (blockedComm) Waiting() (string, bool) {
	return "rank 0 of 2: MPI_Allreduce of 65 values waiting for 4.0s", true
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

func TestReportWaitingOnSignal(t *testing.T) {
	var out syncBuffer
	stop := reportWaitingOnSignal(blockedComm{}, &out)
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	want := "simclr: rank 0 of 2: MPI_Allreduce of 65 values waiting for 4.0s when SIGTERM came"
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), want) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := out.String(); !strings.Contains(got, want) {
		t.Errorf("reported %q, want a line with %q", got, want)
	}
}
