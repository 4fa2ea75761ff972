package state

// auditChunk is how many records share one immutable chunk.
const auditChunk = 64

// auditLog holds the newest MaxAudit records in immutable chunks, so adding
// a record copies at most one chunk and the short chunk index instead of the
// whole log on every command.
type auditLog struct {
	chunks [][]AuditRecord // every chunk but the last is full
	skip   int             // records of chunks[0] already dropped
	n      int             // records held
}

func (a auditLog) add(recs ...AuditRecord) auditLog {
	for _, r := range recs {
		chunks := make([][]AuditRecord, len(a.chunks), len(a.chunks)+1)
		copy(chunks, a.chunks)
		if last := len(chunks) - 1; last >= 0 && len(chunks[last]) < auditChunk {
			c := make([]AuditRecord, len(chunks[last]), len(chunks[last])+1)
			copy(c, chunks[last])
			chunks[last] = append(c, r)
		} else {
			chunks = append(chunks, []AuditRecord{r})
		}
		a.chunks = chunks
		a.n++
		for a.n > MaxAudit {
			a.skip++
			a.n--
			if a.skip == len(a.chunks[0]) {
				a.chunks = a.chunks[1:]
				a.skip = 0
			}
		}
	}
	return a
}

// records returns the records, oldest first, in a fresh slice.
func (a auditLog) records() []AuditRecord {
	if a.n == 0 {
		return nil
	}
	out := make([]AuditRecord, 0, a.n)
	for i, c := range a.chunks {
		if i == 0 {
			c = c[a.skip:]
		}
		out = append(out, c...)
	}
	return out
}

func auditFrom(recs []AuditRecord) auditLog {
	return auditLog{}.add(recs...)
}

// Audit returns the newest audit records, oldest first. The slice is the
// caller's.
func (s *State) Audit() []AuditRecord { return s.audit.records() }

// AuditLen is how many audit records the state holds.
func (s *State) AuditLen() int { return s.audit.n }
