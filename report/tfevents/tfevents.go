// Package tfevents writes and reads TensorBoard event files: scalar
// summaries in TFRecord framing, the format `tensorboard --logdir` reads.
//
// A file is a sequence of records, each a little-endian uint64 length, the
// masked CRC-32C of those 8 bytes, the data and the masked CRC-32C of the
// data. The data is an Event protocol buffer (tensorflow/core/util/event.proto);
// the first event of a file carries file_version "brain.Event:2", the others
// a Summary of tagged simple values (tensorflow/core/framework/summary.proto).
package tfevents

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// FileVersion is the version string of the first event of every file.
const FileVersion = "brain.Event:2"

// FilePrefix begins the name of every event file; TensorBoard finds files by it.
const FilePrefix = "events.out.tfevents."

// Field numbers of the messages used.
const (
	eventWallTime    protowire.Number = 1 // double
	eventStep        protowire.Number = 2 // int64
	eventFileVersion protowire.Number = 3 // string
	eventSummary     protowire.Number = 5 // Summary

	summaryValue protowire.Number = 1 // repeated Summary.Value

	valueTag         protowire.Number = 1 // string
	valueSimpleValue protowire.Number = 2 // float
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskedCRC is TFRecord's checksum: CRC-32C, rotated and offset so that a
// CRC of data that holds CRCs does not degenerate.
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// Scalar is one tagged value of an event.
type Scalar struct {
	Tag   string
	Value float32
}

// Event is a decoded event: the file-version header or a step's scalars.
type Event struct {
	WallTime    float64
	Step        int64
	FileVersion string
	Scalars     []Scalar
}

// Writer appends events to one event file.
type Writer struct {
	f    *os.File
	w    *bufio.Writer
	path string
}

// Create starts a new event file in dir (created if missing), named as
// TensorBoard's writers name theirs: events.out.tfevents.TIME.HOST.PID.N,
// N making the name unique. Each process writes its own file; TensorBoard
// reads a folder's files in name order, so in the order they were started.
func Create(dir string) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	host = strings.NewReplacer("/", "_", string(filepath.Separator), "_").Replace(host)
	now := time.Now()
	base := fmt.Sprintf("%s%010d.%s.%d.", FilePrefix, now.Unix(), host, os.Getpid())
	for n := 0; ; n++ {
		path := filepath.Join(dir, base+strconv.Itoa(n))
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		w := &Writer{f: f, w: bufio.NewWriter(f), path: path}
		if err := w.write(encodeEvent(Event{WallTime: wallTime(now), FileVersion: FileVersion})); err != nil {
			f.Close()
			return nil, err
		}
		return w, w.Flush()
	}
}

// Path is the file being written.
func (w *Writer) Path() string { return w.path }

// Scalars writes one event holding the values at step, tagged by their
// keys in sorted order, stamped with t.
func (w *Writer) Scalars(step int64, t time.Time, values map[string]float64) error {
	tags := make([]string, 0, len(values))
	for k := range values {
		tags = append(tags, k)
	}
	sort.Strings(tags)
	ev := Event{WallTime: wallTime(t), Step: step, Scalars: make([]Scalar, len(tags))}
	for i, tag := range tags {
		ev.Scalars[i] = Scalar{Tag: tag, Value: float32(values[tag])}
	}
	return w.write(encodeEvent(ev))
}

// Flush writes the buffered events to the file, for a reader to see.
func (w *Writer) Flush() error {
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("%s: %w", w.path, err)
	}
	return nil
}

// Close flushes and closes the file.
func (w *Writer) Close() error {
	ferr := w.Flush()
	if err := w.f.Close(); ferr == nil && err != nil {
		ferr = fmt.Errorf("%s: %w", w.path, err)
	}
	return ferr
}

func (w *Writer) write(data []byte) error {
	if err := WriteRecord(w.w, data); err != nil {
		return fmt.Errorf("%s: %w", w.path, err)
	}
	return nil
}

func wallTime(t time.Time) float64 { return float64(t.Unix()) + float64(t.Nanosecond())/1e9 }

// WriteRecord writes data as one TFRecord.
func WriteRecord(w io.Writer, data []byte) error {
	var head [12]byte
	binary.LittleEndian.PutUint64(head[:8], uint64(len(data)))
	binary.LittleEndian.PutUint32(head[8:], maskedCRC(head[:8]))
	var foot [4]byte
	binary.LittleEndian.PutUint32(foot[:], maskedCRC(data))
	for _, b := range [][]byte{head[:], data, foot[:]} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// maxRecord bounds a record's length: a corrupt length field must not
// make the reader allocate gigabytes.
const maxRecord = 64 << 20

// ReadRecord reads one TFRecord, checking both checksums. At the end of
// the input it returns io.EOF; a record cut short gives io.ErrUnexpectedEOF.
func ReadRecord(r io.Reader) ([]byte, error) {
	var head [12]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	if got, want := binary.LittleEndian.Uint32(head[8:]), maskedCRC(head[:8]); got != want {
		return nil, fmt.Errorf("record length checksum %#08x, want %#08x", got, want)
	}
	n := binary.LittleEndian.Uint64(head[:8])
	if n > maxRecord {
		return nil, fmt.Errorf("record of %d bytes (at most %d)", n, maxRecord)
	}
	buf := make([]byte, n+4)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	data := buf[:n]
	if got, want := binary.LittleEndian.Uint32(buf[n:]), maskedCRC(data); got != want {
		return nil, fmt.Errorf("record data checksum %#08x, want %#08x", got, want)
	}
	return data, nil
}

// Read decodes every event of an event file's contents.
func Read(r io.Reader) ([]Event, error) {
	br := bufio.NewReader(r)
	var events []Event
	var offset int64
	for {
		data, err := ReadRecord(br)
		if err == io.EOF {
			return events, nil
		}
		if err != nil {
			return events, fmt.Errorf("record %d at byte %d: %w", len(events), offset, err)
		}
		ev, err := DecodeEvent(data)
		if err != nil {
			return events, fmt.Errorf("record %d at byte %d: %w", len(events), offset, err)
		}
		events = append(events, ev)
		offset += int64(len(data)) + 16
	}
}

// ReadFile decodes every event of the file at path.
func ReadFile(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	events, err := Read(f)
	if err != nil {
		return events, fmt.Errorf("%s: %w", path, err)
	}
	return events, nil
}

// Files lists the event files of dir in TensorBoard's reading order.
func Files(dir string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, FilePrefix+"*"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	return paths, nil
}

// encodeEvent is the Event protocol buffer of ev.
func encodeEvent(ev Event) []byte {
	var b []byte
	b = protowire.AppendTag(b, eventWallTime, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(ev.WallTime))
	if ev.Step != 0 {
		b = protowire.AppendTag(b, eventStep, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(ev.Step))
	}
	if ev.FileVersion != "" {
		b = protowire.AppendTag(b, eventFileVersion, protowire.BytesType)
		return protowire.AppendString(b, ev.FileVersion)
	}
	var summary []byte
	for _, s := range ev.Scalars {
		var v []byte
		v = protowire.AppendTag(v, valueTag, protowire.BytesType)
		v = protowire.AppendString(v, s.Tag)
		v = protowire.AppendTag(v, valueSimpleValue, protowire.Fixed32Type)
		v = protowire.AppendFixed32(v, math.Float32bits(s.Value))
		summary = protowire.AppendTag(summary, summaryValue, protowire.BytesType)
		summary = protowire.AppendBytes(summary, v)
	}
	b = protowire.AppendTag(b, eventSummary, protowire.BytesType)
	return protowire.AppendBytes(b, summary)
}

// DecodeEvent decodes an Event protocol buffer, keeping the fields this
// package writes and skipping the others (graphs, histograms, images).
func DecodeEvent(b []byte) (Event, error) {
	var ev Event
	err := eachField(b, func(num protowire.Number, typ protowire.Type, field []byte) (int, error) {
		switch {
		case num == eventWallTime && typ == protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(field)
			ev.WallTime = math.Float64frombits(v)
			return n, nil
		case num == eventStep && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(field)
			ev.Step = int64(v)
			return n, nil
		case num == eventFileVersion && typ == protowire.BytesType:
			v, n := protowire.ConsumeString(field)
			ev.FileVersion = v
			return n, nil
		case num == eventSummary && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(field)
			if n < 0 {
				return n, nil
			}
			scalars, err := decodeSummary(v)
			ev.Scalars = append(ev.Scalars, scalars...)
			return n, err
		}
		return protowire.ConsumeFieldValue(num, typ, field), nil
	})
	if err != nil {
		return Event{}, fmt.Errorf("event: %w", err)
	}
	return ev, nil
}

// decodeSummary returns a Summary's simple values.
func decodeSummary(b []byte) ([]Scalar, error) {
	var out []Scalar
	err := eachField(b, func(num protowire.Number, typ protowire.Type, field []byte) (int, error) {
		if num != summaryValue || typ != protowire.BytesType {
			return protowire.ConsumeFieldValue(num, typ, field), nil
		}
		v, n := protowire.ConsumeBytes(field)
		if n < 0 {
			return n, nil
		}
		var s Scalar
		simple := false
		err := eachField(v, func(num protowire.Number, typ protowire.Type, field []byte) (int, error) {
			switch {
			case num == valueTag && typ == protowire.BytesType:
				t, n := protowire.ConsumeString(field)
				s.Tag = t
				return n, nil
			case num == valueSimpleValue && typ == protowire.Fixed32Type:
				f, n := protowire.ConsumeFixed32(field)
				s.Value, simple = math.Float32frombits(f), true
				return n, nil
			}
			return protowire.ConsumeFieldValue(num, typ, field), nil
		})
		if err != nil {
			return n, fmt.Errorf("summary value: %w", err)
		}
		if simple {
			out = append(out, s)
		}
		return n, nil
	})
	return out, err
}

// eachField calls fn with every field of a message: its number, wire type
// and the bytes from its value on; fn returns the length of the value it
// consumed (negative: a protowire error).
func eachField(b []byte, fn func(protowire.Number, protowire.Type, []byte) (int, error)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		m, err := fn(num, typ, b)
		if err != nil {
			return err
		}
		if m < 0 {
			return protowire.ParseError(m)
		}
		b = b[m:]
	}
	return nil
}
