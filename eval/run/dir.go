package run

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"gantry/eval/dataset"
)

// Files of a run directory.
const (
	IdentityFile = "run.json"      // what the run runs
	ResultsFile  = "results.jsonl" // one CaseResult a line, appended as repeats finish
	SummaryFile  = "summary.json"  // written when every repeat is done
)

// maxResultLine bounds one line of the results file: a stored output, the
// assertions' reasons and some room.
const maxResultLine = MaxStoredOutput*2 + 64<<10

// runDir appends results to a run directory.
type runDir struct {
	path string
	f    *os.File
}

// openDir opens or creates the run directory for id. A directory of
// another run, release or dataset content is refused. It returns the
// repeats already done; until the run has finished, repeats whose target
// gave no answer are left out, so a resumed run asks again. A last line
// cut short by a crash is dropped from the file.
func openDir(path string, id Identity, d dataset.Dataset) (*runDir, map[job]CaseResult, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, nil, fmt.Errorf("run directory: %w", err)
	}
	idFile := filepath.Join(path, IdentityFile)
	switch b, err := os.ReadFile(idFile); {
	case err == nil:
		var have Identity
		if err := json.Unmarshal(b, &have); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", idFile, err)
		}
		if have != id {
			return nil, nil, fmt.Errorf("%s holds run %s of %s@v%d on dataset %s v%d (%s, repeat %d), not this run", path,
				have.RunID, have.Feature, have.Release, have.Dataset, have.DatasetVersion, have.DatasetHash, have.Repeat)
		}
	case errors.Is(err, os.ErrNotExist):
		b, _ := json.MarshalIndent(id, "", "  ")
		if err := writeAtomic(idFile, append(b, '\n')); err != nil {
			return nil, nil, err
		}
	default:
		return nil, nil, fmt.Errorf("run directory: %w", err)
	}
	index := make(map[string]int, len(d.Cases))
	for i, c := range d.Cases {
		index[c.ID] = i
	}
	resPath := filepath.Join(path, ResultsFile)
	f, err := os.OpenFile(resPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("run directory: %w", err)
	}
	_, serr := os.Stat(filepath.Join(path, SummaryFile))
	finished := serr == nil
	done, good, err := readResults(f, resPath, index, id.Repeat, finished)
	if err == nil {
		// Drop a torn last line, then append after the good ones.
		if err = f.Truncate(good); err == nil {
			_, err = f.Seek(good, io.SeekStart)
		}
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return &runDir{path: path, f: f}, done, nil
}

// readResults reads the results file and returns the repeats done and the
// offset after the last complete line. Unless keepErrors, repeats whose
// target gave no answer are left out.
func readResults(f *os.File, name string, index map[string]int, repeat int, keepErrors bool) (map[job]CaseResult, int64, error) {
	done := map[job]CaseResult{}
	rd := bufio.NewReaderSize(f, 64<<10)
	var off int64
	for n := 1; ; n++ {
		line, err := readLine(rd)
		if errors.Is(err, io.EOF) {
			return done, off, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		complete := bytes.HasSuffix(line, []byte("\n"))
		var r CaseResult
		if jerr := json.Unmarshal(line, &r); jerr != nil || !complete {
			// Only the last line can be torn by a crash.
			if _, perr := rd.Peek(1); errors.Is(perr, io.EOF) {
				return done, off, nil
			}
			return nil, 0, fmt.Errorf("%s:%d: not a result: %v", name, n, jerr)
		}
		i, ok := index[r.Case]
		if !ok || r.Repeat < 0 || r.Repeat >= repeat {
			return nil, 0, fmt.Errorf("%s:%d: case %q repeat %d is not part of this run", name, n, r.Case, r.Repeat)
		}
		off += int64(len(line))
		if r.TargetError != "" && !keepErrors {
			delete(done, job{i, r.Repeat})
			continue
		}
		done[job{i, r.Repeat}] = r
	}
}

// readLine reads one line, newline included, up to maxResultLine bytes.
func readLine(rd *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := rd.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxResultLine {
			return nil, fmt.Errorf("line longer than %d bytes", maxResultLine)
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, nil
		default:
			return nil, err
		}
	}
}

// append writes one result as one line in one write.
func (d *runDir) append(r CaseResult) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = d.f.Write(append(b, '\n'))
	return err
}

// finish makes the results durable and writes the summary.
func (d *runDir) finish(s Summary) error {
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	return writeAtomic(filepath.Join(d.path, SummaryFile), append(b, '\n'))
}

func (d *runDir) close() { d.f.Close() }

// writeAtomic replaces name with data through a synced temporary file.
func writeAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// ReadDir reads a run directory's identity and results, for a console or
// a comparison after the fact. Later lines for the same repeat replace
// earlier ones; a torn last line is ignored; the dataset must be the
// content the run ran.
func ReadDir(path string, d dataset.Dataset) (Identity, []CaseResult, error) {
	b, err := os.ReadFile(filepath.Join(path, IdentityFile))
	if err != nil {
		return Identity{}, nil, err
	}
	var id Identity
	if err := json.Unmarshal(b, &id); err != nil {
		return Identity{}, nil, fmt.Errorf("%s: %w", IdentityFile, err)
	}
	if id.DatasetHash != d.Hash() {
		return Identity{}, nil, fmt.Errorf("run %s ran dataset content %s, not %s", id.RunID, id.DatasetHash, d.Hash())
	}
	f, err := os.Open(filepath.Join(path, ResultsFile))
	if err != nil {
		return Identity{}, nil, err
	}
	defer f.Close()
	index := make(map[string]int, len(d.Cases))
	for i, c := range d.Cases {
		index[c.ID] = i
	}
	done, _, err := readResults(f, ResultsFile, index, id.Repeat, true)
	if err != nil {
		return Identity{}, nil, err
	}
	return id, ordered(done, d, id.Repeat), nil
}
