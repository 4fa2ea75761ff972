package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// raftLogger routes hashicorp/raft's hclog output into the agent's slog
// logger, one record per line, at the line's level.
func raftLogger(log *slog.Logger) hclog.Logger {
	level := hclog.Info
	switch {
	case log.Enabled(context.Background(), slog.LevelDebug):
		level = hclog.Debug
	case log.Enabled(context.Background(), slog.LevelInfo):
		level = hclog.Info
	case log.Enabled(context.Background(), slog.LevelWarn):
		level = hclog.Warn
	default:
		level = hclog.Error
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:        "raft",
		Level:       level,
		Output:      &slogWriter{log: log},
		DisableTime: true,
	})
}

type slogWriter struct{ log *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		s := strings.TrimSpace(string(line))
		if s == "" {
			continue
		}
		level := slog.LevelInfo
		for prefix, l := range map[string]slog.Level{
			"[TRACE]": slog.LevelDebug, "[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo,
			"[WARN]": slog.LevelWarn, "[ERROR]": slog.LevelError,
		} {
			if rest, ok := strings.CutPrefix(s, prefix); ok {
				level, s = l, strings.TrimSpace(rest)
				break
			}
		}
		w.log.Log(context.Background(), level, s)
	}
	return len(p), nil
}
