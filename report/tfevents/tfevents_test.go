package tfevents

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"

	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The masked CRC of the standard check input, from CRC-32C("123456789") =
// 0xe3069283 rotated right by 15 and offset by 0xa282ead8.
func TestMaskedCRC(t *testing.T) {
	c := uint32(0xe3069283)
	want := (c>>15 | c<<17) + 0xa282ead8
	if got := maskedCRC([]byte("123456789")); got != want {
		t.Fatalf("maskedCRC = %#x, want %#x", got, want)
	}
}

// The bytes of a scalar event, spelled out from event.proto and
// summary.proto: a wrong field number or wire type fails here.
func TestEncodeEventBytes(t *testing.T) {
	got := encodeEvent(Event{WallTime: 1.5, Step: 3, Scalars: []Scalar{{Tag: "loss", Value: 1}}})
	want := []byte{
		0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, // wall_time = 1 (double) 1.5
		0x10, 0x03, // step = 2 (varint) 3
		0x2a, 0x0d, // summary = 5, 13 bytes
		0x0a, 0x0b, // value = 1, 11 bytes
		0x0a, 0x04, 'l', 'o', 's', 's', // tag = 1
		0x15, 0, 0, 0x80, 0x3f, // simple_value = 2 (float) 1.0
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("event bytes\n got % x\nwant % x", got, want)
	}
	head := encodeEvent(Event{WallTime: 2, FileVersion: FileVersion})
	wantHead := append([]byte{0x09, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x1a, byte(len(FileVersion))}, FileVersion...)
	if !bytes.Equal(head, wantHead) {
		t.Fatalf("file version event\n got % x\nwant % x", head, wantHead)
	}
}

func TestWriteRead(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1700000000, 250_000_000)
	steps := []map[string]float64{
		{"loss": 5.25, "lr": 0.1},
		{"loss": 4.5, "lr": 0.2, "knn_top1": 0.375},
		{"loss": math.Inf(1)},
	}
	for i, v := range steps {
		if err := w.Scalars(int64(i), t0.Add(time.Duration(i)*time.Second), v); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := Files(dir)
	if err != nil || len(files) != 1 || files[0] != w.Path() {
		t.Fatalf("Files = %v, %v; want [%s]", files, err, w.Path())
	}
	if name := filepath.Base(w.Path()); !strings.HasPrefix(name, FilePrefix) {
		t.Errorf("file name %s lacks %s", name, FilePrefix)
	}
	events, err := ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1+len(steps) {
		t.Fatalf("%d events, want %d", len(events), 1+len(steps))
	}
	if events[0].FileVersion != FileVersion || events[0].WallTime == 0 {
		t.Errorf("first event %+v, want file_version %q and a time", events[0], FileVersion)
	}
	for i, v := range steps {
		ev := events[i+1]
		if ev.Step != int64(i) || ev.WallTime != 1700000000.25+float64(i) {
			t.Errorf("event %d: step %d time %v", i, ev.Step, ev.WallTime)
		}
		if len(ev.Scalars) != len(v) {
			t.Errorf("event %d: %d scalars, want %d", i, len(ev.Scalars), len(v))
		}
		for _, s := range ev.Scalars {
			if want, ok := v[s.Tag]; !ok || s.Value != float32(want) {
				t.Errorf("step %d: %s = %v, want %v", i, s.Tag, s.Value, want)
			}
		}
	}
	// Another writer in the same folder gets its own file, read after.
	w2, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	w2.Close()
	if files, _ := Files(dir); len(files) != 2 || files[1] != w2.Path() {
		t.Errorf("after a second writer: %v", files)
	}
}

func TestReadDetectsDamage(t *testing.T) {
	var b bytes.Buffer
	for _, ev := range []Event{{FileVersion: FileVersion}, {Step: 7, Scalars: []Scalar{{"loss", 2}}}} {
		if err := WriteRecord(&b, encodeEvent(ev)); err != nil {
			t.Fatal(err)
		}
	}
	good := b.Bytes()
	if evs, err := Read(bytes.NewReader(good)); err != nil || len(evs) != 2 || evs[1].Step != 7 {
		t.Fatalf("Read = %+v, %v", evs, err)
	}
	first := 12 + int(binary.LittleEndian.Uint64(good)) + 4 // offset of the second record
	cases := map[string]func([]byte){
		"length":          func(d []byte) { d[first]++ },
		"length checksum": func(d []byte) { d[first+9]++ },
		"data":            func(d []byte) { d[first+14]++ },
		"data checksum":   func(d []byte) { d[len(d)-1]++ },
	}
	for name, damage := range cases {
		d := append([]byte(nil), good...)
		damage(d)
		evs, err := Read(bytes.NewReader(d))
		if err == nil {
			t.Errorf("damaged %s: no error", name)
		} else if !strings.Contains(err.Error(), "record 1") {
			t.Errorf("damaged %s: error %q does not name record 1", name, err)
		}
		if len(evs) != 1 {
			t.Errorf("damaged %s: %d events before the damage, want 1", name, len(evs))
		}
	}
	if _, err := Read(bytes.NewReader(good[:len(good)-3])); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut short: %v, want unexpected EOF", err)
	}
}

// TensorBoard's own reader, when it is installed, reads the files too.
func TestTensorBoardReads(t *testing.T) {
	if err := exec.Command("python3", "-c", "import tensorboard").Run(); err != nil {
		t.Skip("python3 with tensorboard not installed; the files are checked by this package's reader only")
	}
	dir := t.TempDir()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := w.Scalars(int64(i), time.Now(), map[string]float64{"loss": float64(5 - i), "lr": 0.5}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	script := `
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1]); acc.Reload()
for tag in sorted(acc.Tags()["scalars"]):
    for e in acc.Scalars(tag):
        print(tag, e.step, e.value)
`
	out, err := exec.Command("python3", "-c", script, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("EventAccumulator: %v\n%s", err, out)
	}
	want := "loss 0 5.0\nloss 1 4.0\nloss 2 3.0\nlr 0 0.5\nlr 1 0.5\nlr 2 0.5\n"
	if string(out) != want {
		t.Errorf("EventAccumulator read\n%s\nwant\n%s", out, want)
	}
}
