//go:build race

package augment

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// pooled allocation counts mean nothing under it.
const raceEnabled = true
