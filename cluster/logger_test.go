package cluster

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// At the default level an operator sees raft's real warnings and errors,
// not its narration of a healthy start.
func TestRaftLoggerKeepsStartupChatterAtDebug(t *testing.T) {
	for _, tc := range []struct {
		level     slog.Level
		line      string
		want      bool
		wantLevel string
	}{
		{slog.LevelInfo, `[INFO]  raft: entering follower state: follower="Node at 127.0.0.1:1 [Follower]"`, false, ""},
		{slog.LevelInfo, `[WARN]  raft: heartbeat timeout reached, starting election: last-leader-addr= last-leader-id=`, false, ""},
		{slog.LevelInfo, `[WARN]  raft: heartbeat timeout reached, starting election: last-leader-addr=127.0.0.1:2 last-leader-id=b`, true, "WARN"},
		{slog.LevelInfo, `[ERROR] raft: failed to appendEntries to: peer="{Voter b 127.0.0.1:2}" error="dial tcp: refused"`, true, "ERROR"},
		{slog.LevelDebug, `[INFO]  raft: election won: term=2 tally=1`, true, "DEBUG"},
		{slog.LevelDebug, `[WARN]  raft: heartbeat timeout reached, starting election: last-leader-addr= last-leader-id=`, true, "DEBUG"},
	} {
		var out bytes.Buffer
		log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: tc.level}))
		l := raftLogger(log)
		(&slogWriter{log: log}).Write([]byte(tc.line + "\n"))
		got := out.String()
		if (got != "") != tc.want {
			t.Errorf("at %v, %q logged %q; want logged: %v", tc.level, tc.line, got, tc.want)
			continue
		}
		if tc.want && !strings.Contains(got, "level="+tc.wantLevel) {
			t.Errorf("at %v, %q logged %q; want level %s", tc.level, tc.line, got, tc.wantLevel)
		}
		if tc.level == slog.LevelInfo && l.IsInfo() {
			t.Errorf("at %v raft still formats its INFO lines", tc.level)
		}
	}
}
