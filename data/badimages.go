package data

import "fmt"

// DecodeError is an image file that cannot be decoded, returned by Get:
// the caller can name the file and offer to skip such files.
type DecodeError struct {
	Name string // the file's path or archive member
	Err  error
}

func (e *DecodeError) Error() string { return fmt.Sprintf("data: decoding %s: %v", e.Name, e.Err) }

func (e *DecodeError) Unwrap() error { return e.Err }

// SkippedFiles returns the names of the images an image folder opened with
// SkipBad left out, looking through subsets (a --limit, a held-out split)
// to the folder; nil for datasets that skip nothing.
func SkippedFiles(ds Dataset) []string {
	for {
		switch d := ds.(type) {
		case interface{ SkippedFiles() []string }:
			return d.SkippedFiles()
		case *SubsetDataset:
			ds = d.ds
		default:
			return nil
		}
	}
}
