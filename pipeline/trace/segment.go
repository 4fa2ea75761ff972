package trace

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// On disk a store is a directory of append-only JSONL segments named
// traces-<seq>.jsonl. Each line is one record: a trace, or feedback for a
// trace written earlier. A segment is deleted once no trace kept in memory
// has a record in it, so the directory holds about what memory holds plus
// the segment being written.

const (
	segPrefix = "traces-"
	segSuffix = ".jsonl"
	// lineSlack is what a record line may carry beyond the trace itself.
	lineSlack = 64 << 10
)

// record is one line of a segment.
type record struct {
	Trace       *Trace            `json:"trace,omitempty"`
	Feedback    *feedbackRecord   `json:"feedback,omitempty"`
	Evaluations *evaluationRecord `json:"evaluations,omitempty"`
}

type evaluationRecord struct {
	ID          string       `json:"id"`
	Evaluations []Evaluation `json:"evaluations"`
}

// feedbackRecord names its call by the call's id. Records written before
// calls had ids of their own carry the W3C trace id in ID and the call's
// id in RequestID.
type feedbackRecord struct {
	ID        string   `json:"id"`
	RequestID string   `json:"request_id,omitempty"`
	Feedback  Feedback `json:"feedback"`
}

// traceLine encodes the record line for t and returns the size of t's own
// encoding, which is what the byte bound counts.
func traceLine(t *Trace) (line []byte, size int64, err error) {
	le := getLineEncoder()
	defer le.release()
	line, size, err = le.traceLine(t)
	return bytes.Clone(line), size, err
}

// lineEncoder encodes record lines into a buffer it reuses; every trace
// the store keeps is encoded once, so they are pooled.
type lineEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var lineEncoders = sync.Pool{New: func() any {
	le := &lineEncoder{}
	le.enc = json.NewEncoder(&le.buf)
	return le
}}

func getLineEncoder() *lineEncoder { return lineEncoders.Get().(*lineEncoder) }

// maxPooledLine is the largest buffer kept for reuse, so one large trace
// does not stay in memory.
const maxPooledLine = 64 << 10

// release returns le to the pool unless one large trace grew its buffer.
func (le *lineEncoder) release() {
	if le.buf.Cap() <= maxPooledLine {
		le.buf.Reset()
		lineEncoders.Put(le)
	}
}

const traceLinePrefix = `{"trace":`

// traceLine is the package traceLine without the copy: the line is valid
// until the next call or the release of le.
func (le *lineEncoder) traceLine(t *Trace) (line []byte, size int64, err error) {
	le.buf.Reset()
	le.buf.WriteString(traceLinePrefix)
	if err := le.enc.Encode(t); err != nil {
		return nil, 0, err
	}
	// Encode ends the trace with a newline; the record closes before it.
	le.buf.Truncate(le.buf.Len() - 1)
	size = int64(le.buf.Len() - len(traceLinePrefix))
	le.buf.WriteString("}\n")
	return le.buf.Bytes(), size, nil
}

func feedbackLine(fr *feedbackRecord) ([]byte, error) {
	b, err := json.Marshal(record{Feedback: fr})
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// decodeRecord parses one segment line. It rejects lines that are not a
// single JSON object holding exactly one of a trace or a feedback record.
func decodeRecord(line []byte) (*record, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return nil, errors.New("empty line")
	}
	var r record
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&r); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("data after the record")
	}
	n := 0
	for _, set := range []bool{r.Trace != nil, r.Feedback != nil, r.Evaluations != nil} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return nil, errors.New("record holds more than one of a trace, feedback and evaluations")
	case r.Evaluations != nil:
		if r.Evaluations.ID == "" || len(r.Evaluations.Evaluations) > MaxEvaluations {
			return nil, errors.New("evaluations without a trace id, or too many")
		}
		for i := range r.Evaluations.Evaluations {
			if err := r.Evaluations.Evaluations[i].Validate(); err != nil {
				return nil, err
			}
		}
	case r.Trace != nil:
		if r.Trace.ID == "" {
			return nil, errors.New("trace without an id")
		}
	case r.Feedback != nil:
		if r.Feedback.ID == "" {
			return nil, errors.New("feedback without a trace id")
		}
		if err := r.Feedback.Feedback.Validate(); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("record holds neither a trace nor feedback")
	}
	return &r, nil
}

type segment struct {
	seq  uint64
	size int64
	refs int // records of traces still in memory
}

// segments is the disk side of a Store. The store's writer lock
// serialises every mutation; mu only lets Stats read the totals.
type segments struct {
	dir      string
	rotateAt int64

	mu    sync.Mutex
	list  []*segment // oldest first; the last one is being written
	bySeq map[uint64]*segment
	sum   int64
	cur   *os.File
	buf   *bufio.Writer // in front of cur: traces are written a batch at a time
	next  uint64        // sequence number of the next segment
	dead  []uint64
}

func openSegments(dir string, rotateAt int64) (*segments, error) {
	d := &segments{dir: dir, rotateAt: rotateAt, bySeq: make(map[uint64]*segment), next: 1}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, de := range des {
		seq, ok := parseSegName(de.Name())
		if !ok || !de.Type().IsRegular() {
			continue
		}
		info, err := de.Info()
		if err != nil {
			return nil, err
		}
		sg := &segment{seq: seq, size: info.Size()}
		d.list = append(d.list, sg)
		d.bySeq[seq] = sg
		d.sum += sg.size
		d.next = max(d.next, seq+1)
	}
	slices.SortFunc(d.list, func(a, b *segment) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	return d, nil
}

func segName(seq uint64) string { return fmt.Sprintf("%s%020d%s", segPrefix, seq, segSuffix) }

func parseSegName(name string) (uint64, bool) {
	if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
		return 0, false
	}
	seq, err := strconv.ParseUint(name[len(segPrefix):len(name)-len(segSuffix)], 10, 64)
	return seq, err == nil && seq > 0
}

// load replays the segments, oldest first, skipping those that lie wholly
// beyond what maxBytes can hold, so a restart reads about one store's
// worth of data. Writing resumes in a fresh segment: the last one may end
// in a torn line.
func (d *segments) load(maxBytes int64, apply func(*record, uint64)) error {
	start, kept := len(d.list), int64(0)
	for start > 0 && kept < maxBytes {
		start--
		kept += d.list[start].size
	}
	for _, sg := range d.list[start:] {
		if err := d.replay(sg.seq, maxBytes+lineSlack, apply); err != nil {
			return err
		}
	}
	return nil
}

// replay reads one segment; lines longer than maxLine are skipped unread.
func (d *segments) replay(seq uint64, maxLine int64, apply func(*record, uint64)) error {
	f, err := os.Open(filepath.Join(d.dir, segName(seq)))
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if int64(len(line)+len(chunk)) <= maxLine {
			line = append(line, chunk...)
		} else {
			line = append(line[:0], 'x') // too long: make it unreadable
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(line) > 0 {
			rec, derr := decodeRecord(line)
			if derr != nil {
				rec = &record{} // counted as skipped by apply
			}
			apply(rec, seq)
		}
		line = line[:0]
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", segName(seq), err)
		}
	}
}

// append writes one record line to the current segment, rotating first
// when it is full, and returns the segment's sequence number. After a
// failed write the segment is abandoned, so a partial line never has a
// record appended to it.
func (d *segments) append(line []byte) (uint64, error) {
	if d.cur == nil || d.list[len(d.list)-1].size >= d.rotateAt {
		if err := d.rotate(); err != nil {
			return 0, err
		}
	}
	sg := d.list[len(d.list)-1]
	n, err := d.buf.Write(line)
	d.mu.Lock()
	sg.size += int64(n)
	d.sum += int64(n)
	d.mu.Unlock()
	if err != nil {
		d.cur.Close()
		d.cur = nil
		return 0, fmt.Errorf("write %s: %w", segName(sg.seq), err)
	}
	return sg.seq, nil
}

// flush writes buffered lines to the segment file.
func (d *segments) flush() error {
	if d.cur == nil {
		return nil
	}
	if err := d.buf.Flush(); err != nil {
		d.cur.Close()
		d.cur = nil
		return fmt.Errorf("write segment: %w", err)
	}
	return nil
}

func (d *segments) rotate() error {
	if err := d.flush(); err != nil {
		return err
	}
	if d.cur != nil {
		if err := d.cur.Close(); err != nil {
			d.cur = nil
			return fmt.Errorf("close segment: %w", err)
		}
		d.cur = nil
	}
	if n := len(d.list); n > 0 && d.list[n-1].refs <= 0 {
		d.dead = append(d.dead, d.list[n-1].seq)
	}
	seq := d.next
	d.next++
	f, err := os.OpenFile(filepath.Join(d.dir, segName(seq)), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("start segment: %w", err)
	}
	sg := &segment{seq: seq}
	d.mu.Lock()
	d.list = append(d.list, sg)
	d.bySeq[seq] = sg
	d.mu.Unlock()
	d.cur = f
	if d.buf == nil {
		d.buf = bufio.NewWriterSize(f, 64<<10)
	} else {
		d.buf.Reset(f)
	}
	return nil
}

func (d *segments) ref(seq uint64) {
	if sg := d.bySeq[seq]; sg != nil {
		sg.refs++
	}
}

// unref notes that a record in seq no longer backs a trace in memory.
// Segments left without references are removed by removeDead, outside the
// memory lock.
func (d *segments) unref(seq uint64) {
	sg := d.bySeq[seq]
	if sg == nil {
		return
	}
	sg.refs--
	if sg.refs <= 0 && !d.writing(sg) {
		d.dead = append(d.dead, seq)
	}
}

func (d *segments) writing(sg *segment) bool {
	return d.cur != nil && d.list[len(d.list)-1] == sg
}

// removeDead deletes segments that back no trace in memory. Every segment
// is dead right after a restart until replay references it, so this is
// also how Open clears out what no longer fits.
func (d *segments) removeDead() {
	if d.cur == nil {
		for _, sg := range d.list {
			if sg.refs <= 0 {
				d.dead = append(d.dead, sg.seq)
			}
		}
	}
	for _, seq := range d.dead {
		sg := d.bySeq[seq]
		if sg == nil || sg.refs > 0 || d.writing(sg) {
			continue
		}
		if err := os.Remove(filepath.Join(d.dir, segName(seq))); err != nil && !errors.Is(err, os.ErrNotExist) {
			continue // try again next time
		}
		d.mu.Lock()
		delete(d.bySeq, seq)
		d.list = slices.DeleteFunc(d.list, func(x *segment) bool { return x == sg })
		d.sum -= sg.size
		d.mu.Unlock()
	}
	d.dead = d.dead[:0]
}

func (d *segments) total() (int64, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sum, len(d.list)
}

func (d *segments) close() error {
	if d.cur == nil {
		return nil
	}
	err := d.flush()
	if d.cur == nil {
		return err
	}
	if serr := d.cur.Sync(); err == nil {
		err = serr
	}
	if cerr := d.cur.Close(); err == nil {
		err = cerr
	}
	d.cur = nil
	return err
}
