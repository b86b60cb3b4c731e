package tfevents

import (
	"bytes"
	"math"
	"testing"
)

// FuzzRead: any bytes give events or an error, never a panic or a huge
// allocation; a scalar event read back from its encoding is the same.
func FuzzRead(f *testing.F) {
	var b bytes.Buffer
	WriteRecord(&b, encodeEvent(Event{WallTime: 1, FileVersion: FileVersion}))
	WriteRecord(&b, encodeEvent(Event{WallTime: 2, Step: 5, Scalars: []Scalar{{"loss", 1.5}, {"lr", 0.1}}}))
	f.Add(b.Bytes())
	f.Add(b.Bytes()[:20])
	f.Add([]byte{})
	f.Add(encodeEvent(Event{WallTime: 2, Step: 5, Scalars: []Scalar{{"loss", 1.5}}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		// data as a file, and as one event's protocol buffer (past the
		// checksums, which random bytes rarely pass).
		events, _ := Read(bytes.NewReader(data))
		if ev, err := DecodeEvent(data); err == nil {
			events = append(events, ev)
		}
		for _, ev := range events {
			if ev.FileVersion != "" {
				continue // a header holds no scalars to compare
			}
			var rec bytes.Buffer
			if err := WriteRecord(&rec, encodeEvent(ev)); err != nil {
				t.Fatal(err)
			}
			back, err := Read(&rec)
			if err != nil || len(back) != 1 {
				t.Fatalf("re-read %+v: %v, %v", ev, back, err)
			}
			got := back[0]
			if math.Float64bits(got.WallTime) != math.Float64bits(ev.WallTime) || got.Step != ev.Step || len(got.Scalars) != len(ev.Scalars) {
				t.Fatalf("round trip: %+v became %+v", ev, got)
			}
			for i, s := range ev.Scalars {
				if got.Scalars[i].Tag != s.Tag || math.Float32bits(got.Scalars[i].Value) != math.Float32bits(s.Value) {
					t.Fatalf("round trip: scalar %+v became %+v", s, got.Scalars[i])
				}
			}
		}
	})
}
