package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// raftLogger routes hashicorp/raft's hclog output into the agent's slog
// logger, one record per line. Raft narrates every state change at INFO
// (follower, candidate, election won, …); that is chatter to an operator,
// so it goes to debug, and so do the warnings every healthy start prints.
// Raft's other warnings and errors keep their level.
func raftLogger(log *slog.Logger) hclog.Logger {
	level := hclog.Warn
	if log.Enabled(context.Background(), slog.LevelDebug) {
		level = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:        "raft",
		Level:       level,
		Output:      &slogWriter{log: log},
		DisableTime: true,
	})
}

// startupWarnings are WARN lines raft prints on every healthy start: a
// node with no leader yet starts the first election.
var startupWarnings = []string{
	"heartbeat timeout reached, starting election: last-leader-addr= last-leader-id=",
	"no known peers, aborting election",
}

type slogWriter struct{ log *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		s := strings.TrimSpace(string(line))
		if s == "" {
			continue
		}
		w.log.Log(context.Background(), raftLevel(&s), s)
	}
	return len(p), nil
}

// raftLevel strips the level prefix hclog writes from *s and returns the
// level the line is logged at.
func raftLevel(s *string) slog.Level {
	for prefix, l := range map[string]slog.Level{
		"[TRACE]": slog.LevelDebug, "[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelDebug,
		"[WARN]": slog.LevelWarn, "[ERROR]": slog.LevelError,
	} {
		rest, ok := strings.CutPrefix(*s, prefix)
		if !ok {
			continue
		}
		*s = strings.TrimSpace(rest)
		if l == slog.LevelWarn {
			for _, w := range startupWarnings {
				if strings.HasSuffix(*s, w) {
					return slog.LevelDebug
				}
			}
		}
		return l
	}
	return slog.LevelInfo
}
