package console

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"gantry/api"
	"gantry/tui"
)

// TestCheckFailsFast: a wrong token or an address nobody listens on ends
// the console at once, saying which and what to fix; a good token passes.
func TestCheckFailsFast(t *testing.T) {
	a := newFakeAgent(t, "n1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	cases := []struct {
		name   string
		agents []string
		token  string
		want   []string // all in the error; none: no error
	}{
		{"good token", []string{a.srv.URL}, testToken, nil},
		{"wrong token", []string{a.srv.URL}, "gat_wrong", []string{"agent " + a.srv.URL + " refused the admin token (401", "check --token or GANTRY_TOKEN"}},
		{"nobody listens", []string{closed}, testToken, []string{"cannot reach agent " + closed, "connection refused", "check --agent"}},
		{"one of two answers", []string{closed, a.srv.URL}, testToken, nil},
		{"both fail, both said", []string{closed, a.srv.URL}, "gat_wrong", []string{"cannot reach agent " + closed, "refused the admin token"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			err := Check(context.Background(), FleetOptions{Agents: c.agents, Token: c.token})
			if took := time.Since(start); took > CheckTimeout {
				t.Fatalf("Check took %s, more than its bound %s", took, CheckTimeout)
			}
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("Check: %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check passed, want an error saying %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestProgramBadTokenSaysSo: a token revoked while the console runs does
// not leave the overview waiting: the fleet says why no agent answers.
func TestFleetSaysWhyNoOverview(t *testing.T) {
	a := newFakeAgent(t, "n1")
	f, err := NewFleet(FleetOptions{Agents: []string{a.srv.URL}, Token: "gat_revoked", PollEvery: 50 * time.Millisecond, FeedTick: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rec := &recorder{}
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx, rec.send) }()
	defer func() { cancel(); <-done }()
	rec.waitFor(t, "an overview error naming the token", func(ms []tea.Msg) bool {
		for _, m := range ms {
			if e, ok := m.(tui.OverviewErrMsg); ok && strings.Contains(e.Err.Error(), "refused the admin token") {
				return true
			}
		}
		return false
	})
}

// TestFleetForgetsRemovedMember: after `members remove n2` the member list
// no longer names n2; the fleet stops following it and clears its stale
// mark, while n1 stays.
func TestFleetForgetsRemovedMember(t *testing.T) {
	a, b := newFakeAgent(t, "n1"), newFakeAgent(t, "n2")
	both := &api.Members{Leader: "n1", Term: 3, Members: []api.Member{
		{ID: "n1", HTTPAddr: a.srv.Listener.Addr().String(), Role: api.RoleLeader, Voter: true, Healthy: true},
		{ID: "n2", HTTPAddr: b.srv.Listener.Addr().String(), Role: api.RoleFollower, Voter: true, Healthy: true},
	}}
	a.mu.Lock()
	a.members = both
	a.mu.Unlock()
	f, rec := runFleet(t, FleetOptions{Agents: []string{a.srv.URL}, MinBackoff: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond})
	waitOpenFeeds(t, b, 1)
	// n2 stops: the console marks it stale.
	b.setFeedDown(true)
	b.dropFeeds()
	rec.waitFor(t, "n2 stale", func(ms []tea.Msg) bool {
		st := statuses(ms)
		return len(st) > 0 && st[len(st)-1].Agent == "n2" && st[len(st)-1].Stale
	})
	// The operator removes it from the cluster.
	a.mu.Lock()
	a.members = &api.Members{Leader: "n1", Term: 3, Members: both.Members[:1]}
	a.mu.Unlock()
	rec.waitFor(t, "n2 left", func(ms []tea.Msg) bool {
		st := statuses(ms)
		return len(st) > 0 && st[len(st)-1].Agent == "n2" && st[len(st)-1].Left && !st[len(st)-1].Stale
	})
	if got := f.Agents(); len(got) != 1 || got[0] != "n1" {
		t.Fatalf("agents %v after n2 left, want [n1]", got)
	}
	b.mu.Lock()
	tries := b.feedTries
	b.mu.Unlock()
	time.Sleep(200 * time.Millisecond) // several backoffs
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.feedTries != tries {
		t.Fatalf("the fleet still dials n2 after it left: %d tries, then %d", tries, b.feedTries)
	}
}
