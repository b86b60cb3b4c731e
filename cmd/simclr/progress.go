package main

import (
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
)

// newBar is the progress bar every long command shows on stderr.
func newBar(total int, what string) *progressbar.ProgressBar {
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionSetWidth(24),
		progressbar.OptionClearOnFinish())
}
