// Package demo runs Gantry as a whole on one machine: a three-agent cluster
// on loopback, with temporary data, the sim provider, a seeded
// configuration, a document collection and an evaluation dataset, and a
// traffic generator playing the users of three features. It starts real
// agent processes, so what it shows is what a cluster does.
package demo

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"

	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"gantry/api"
	"gantry/config"
	"gantry/internal/freeport"
)

//go:embed config.yaml dataset.yaml docs/*.md
var files embed.FS

// Agents is how many agents the demo runs: the smallest cluster that
// survives losing one.
const Agents = 3

// Options configure a demo.
type Options struct {
	// Exe is the gantry binary the agents run.
	Exe string
	// Rate is the calls per second the traffic generator sends across
	// the cluster; 0 means DefaultRate.
	Rate float64
	// Log receives the demo's own progress lines; nil discards them.
	Log io.Writer
}

// DefaultRate keeps three agents busy without loading a laptop; MaxRate
// is as much as one generator with maxInFlight calls can keep up with
// simulated latencies.
const (
	DefaultRate = 8
	MaxRate     = 500
)

// Demo is a running demo cluster.
type Demo struct {
	// URLs are the agents' base URLs, http://127.0.0.1:PORT.
	URLs []string
	// Key is a virtual key of the support team, Token an admin token.
	Key, Token string
	// Dir holds every agent's data; Stop removes it.
	Dir string

	agents  []*agentProc
	traffic *traffic
	log     io.Writer
}

// Start brings a demo cluster up, seeds it, and starts the traffic. It
// returns once every agent serves and the first calls are on their way;
// on error everything it started is stopped and removed.
func Start(ctx context.Context, o Options) (_ *Demo, err error) {
	if o.Rate <= 0 {
		o.Rate = DefaultRate
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	dir, err := os.MkdirTemp("", "gantry-demo-")
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	d := &Demo{Dir: dir, log: o.Log}
	defer func() {
		if err != nil {
			d.Stop()
		}
	}()
	supportKey, supportHash := config.NewKey()
	opsKey, opsHash := config.NewKey()
	d.Key, d.Token = supportKey, config.NewToken()
	tokenFile := filepath.Join(dir, "bootstrap-token")
	if err := os.WriteFile(tokenFile, []byte(d.Token+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	cfg := seedConfig(supportHash, opsHash)
	cfgFile := filepath.Join(dir, "gantry.yaml")
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	ports, err := freeport.Ports(2 * Agents)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	var joins []string
	for i := range Agents {
		joins = append(joins, "127.0.0.1:"+strconv.Itoa(ports[i]))
		d.URLs = append(d.URLs, "http://"+joins[i])
	}
	secret := config.NewToken()
	for i := range Agents {
		id := fmt.Sprintf("agent-%d", i+1)
		a := &agentProc{id: id, log: filepath.Join(dir, id+".log")}
		args := []string{"agent", "--node-id", id, "--http-addr", joins[i], "--raft-addr", "127.0.0.1:" + strconv.Itoa(ports[Agents+i]),
			"--data-dir", filepath.Join(dir, id), "--config", cfgFile, "--join", strings.Join(joins, ","),
			"--bootstrap-expect", strconv.Itoa(Agents), "--bootstrap-token-file", tokenFile, "--log-level", "warn"}
		if err := a.start(o.Exe, args, "GANTRY_CLUSTER_SECRET="+secret); err != nil {
			return nil, err
		}
		d.agents = append(d.agents, a)
	}
	fmt.Fprintf(o.Log, "demo: started %d agents; waiting for them to form a cluster\n", Agents)
	hc := &http.Client{Timeout: 10 * time.Second}
	for i, u := range d.URLs {
		if err := waitReady(ctx, hc, u, d.agents[i], 60*time.Second); err != nil {
			return nil, err
		}
	}
	if err := d.seed(ctx, hc); err != nil {
		return nil, err
	}
	d.traffic = startTraffic(d.URLs, supportKey, opsKey, o.Rate)
	fmt.Fprintf(o.Log, "demo: cluster seeded; traffic at %g calls/s\n", o.Rate)
	return d, nil
}

// seedConfig is the demo's configuration with its two keys' hashes.
func seedConfig(supportHash, opsHash string) []byte {
	b, _ := files.ReadFile("config.yaml")
	return []byte(os.Expand(string(b), func(v string) string {
		return map[string]string{"SUPPORT_KEY_HASH": supportHash, "OPS_KEY_HASH": opsHash}[v]
	}))
}

// seed uploads the help center to its collection and pushes the
// evaluation dataset, through the first agent like an operator would.
func (d *Demo) seed(ctx context.Context, hc *http.Client) error {
	var docs []map[string]any
	err := fs.WalkDir(files, "docs", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		docs = append(docs, map[string]any{"id": "help/" + strings.TrimSuffix(path.Base(p), ".md"), "format": "markdown", "text": string(b)})
		return err
	})
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]any{"documents": docs})
	if err := d.admin(ctx, hc, api.DocumentsPath("help-center"), body); err != nil {
		return fmt.Errorf("demo: upload the help center: %w", err)
	}
	// Every agent indexes the documents itself; the first calls wait for
	// them, so support-answer retrieves from its first call.
	for _, u := range d.URLs {
		if err := waitIndexed(ctx, hc, u, d.Token, len(docs)); err != nil {
			return err
		}
	}
	ds, _ := files.ReadFile("dataset.yaml")
	if err := d.admin(ctx, hc, api.PathDatasets+"?file=dataset.yaml", ds); err != nil {
		return fmt.Errorf("demo: push the evaluation dataset: %w", err)
	}
	return nil
}

// admin POSTs body to an admin path, retrying while the cluster settles.
func (d *Demo) admin(ctx context.Context, hc *http.Client, p string, body []byte) error {
	var last error
	for range 20 {
		req, _ := http.NewRequestWithContext(ctx, "POST", d.URLs[0]+p, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+d.Token)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		if resp.StatusCode < 300 {
			return nil
		}
		last = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
		if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusConflict {
			return last
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return last
}

// waitIndexed waits until the agent at base serves the help center with
// all n documents indexed.
func waitIndexed(ctx context.Context, hc *http.Client, base, token string, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+api.PathCollections, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		var cs api.Collections
		if resp, err := hc.Do(req); err == nil {
			err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&cs)
			resp.Body.Close()
			for _, c := range cs.Collections {
				if err == nil && c.Name == "help-center" && c.CaughtUp && c.Documents == n {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: %s has not indexed the help center after 30s", base)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// StopWait is how long Stop lets the agents stop by themselves before it
// kills them: the demo's data is thrown away, so nothing is lost.
const StopWait = 1200 * time.Millisecond

// Stop stops the traffic and the agents and removes the demo's data. It
// takes at most StopWait and a moment more. Safe on a demo Start left
// half made.
func (d *Demo) Stop() {
	if d.traffic != nil {
		d.traffic.stop()
	}
	var wg sync.WaitGroup
	for _, a := range d.agents {
		wg.Go(func() {
			if a.stop(StopWait) {
				fmt.Fprintf(d.log, "demo: %s was still stopping after %v, its cluster gone; killed it (its data is discarded anyway)\n", a.id, StopWait)
			}
		})
	}
	wg.Wait()
	if err := os.RemoveAll(d.Dir); err != nil {
		fmt.Fprintf(d.log, "demo: removing %s: %v\n", d.Dir, err)
	}
}

// Sent reports the calls the traffic generator sent and how many failed.
func (d *Demo) Sent() (sent, failed int64) {
	if d.traffic == nil {
		return 0, 0
	}
	return d.traffic.sent.Load(), d.traffic.failed.Load()
}

// Wait returns when an agent exits by itself, with what it said last.
func (d *Demo) Wait(ctx context.Context) error {
	exited := make(chan *agentProc, len(d.agents))
	for _, a := range d.agents {
		go func() {
			select {
			case <-a.exited:
				exited <- a
			case <-ctx.Done():
			}
		}()
	}
	select {
	case a := <-exited:
		return fmt.Errorf("demo: %s exited: %s", a.id, a.tail())
	case <-ctx.Done():
		return nil
	}
}

// agentProc is one agent process; its output goes to a log file in the
// demo's directory.
type agentProc struct {
	id, log string
	cmd     *exec.Cmd
	exited  chan struct{}
}

func (a *agentProc) start(exe string, args []string, env ...string) error {
	f, err := os.Create(a.log)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	a.cmd = exec.Command(exe, args...)
	a.cmd.Env = append(os.Environ(), env...)
	a.cmd.Stdout, a.cmd.Stderr = f, f
	// The demo stops its agents itself, in its own time: a terminal's
	// Ctrl-C goes to the demo only.
	ownGroup(a.cmd)
	if err := a.cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("demo: start %s: %w", a.id, err)
	}
	a.exited = make(chan struct{})
	go func() {
		a.cmd.Wait()
		f.Close()
		close(a.exited)
	}()
	return nil
}

// stop interrupts the agent and kills it after wait; it reports whether it
// had to kill.
func (a *agentProc) stop(wait time.Duration) (killed bool) {
	if a.cmd == nil || a.cmd.Process == nil {
		return false
	}
	a.cmd.Process.Signal(os.Interrupt)
	select {
	case <-a.exited:
		return false
	case <-time.After(wait):
		a.cmd.Process.Kill()
		<-a.exited
		return true
	}
}

// tail is the end of the agent's log, for a failure message.
func (a *agentProc) tail() string {
	b, _ := os.ReadFile(a.log)
	b = bytes.TrimSpace(b)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	if len(b) == 0 {
		return "(no output)"
	}
	return string(b)
}

func waitReady(ctx context.Context, hc *http.Client, base string, a *agentProc, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/readyz", nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-a.exited:
			return fmt.Errorf("demo: %s exited while starting: %s", a.id, a.tail())
		case <-ctx.Done():
			return fmt.Errorf("demo: %s not serving after %v: %s", a.id, within, a.tail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
