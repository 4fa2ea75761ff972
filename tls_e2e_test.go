package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gantry/api"
	"gantry/cli"
	"gantry/tlsconf"
	"gantry/tlsconf/tlstest"
)

// TestClusterOverMutualTLS runs three agent processes with --tls-cert,
// --tls-key and --tls-ca: they form a cluster over TLS (Raft and the
// agents' HTTP), a key created through a follower with the CLI reaches
// every agent, and a client without a certificate gets nothing.
func TestClusterOverMutualTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "gantry e2e CA")
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "gantry.yaml")
	if err := os.WriteFile(cfgFile, []byte(clusterConfig()), 0o600); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 6)
	var joins []string
	for i := range 3 {
		joins = append(joins, "127.0.0.1:"+strconv.Itoa(ports[i]))
	}
	var agents []*agentProc
	for i := range 3 {
		a := &agentProc{id: fmt.Sprintf("n%d", i+1), http: joins[i], raft: "127.0.0.1:" + strconv.Itoa(ports[3+i]), dir: filepath.Join(dir, fmt.Sprintf("n%d", i+1))}
		log, err := os.Create(filepath.Join(dir, a.id+".log"))
		if err != nil {
			t.Fatal(err)
		}
		a.log = log
		f := ca.Issue(t, a.id)
		a.args = []string{"agent", "--node-id", a.id, "--http-addr", a.http, "--raft-addr", a.raft, "--data-dir", a.dir,
			"--config", cfgFile, "--bootstrap-expect", "3", "--join", strings.Join(joins, ","), "--cluster-secret", clusterSecret,
			"--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-ca", f.CA, "--log-level", "warn"}
		agents = append(agents, a)
	}
	t.Cleanup(func() {
		for _, a := range agents {
			a.stop(t)
		}
		for _, a := range agents {
			if t.Failed() {
				b, _ := os.ReadFile(a.log.Name())
				t.Logf("log of %s:\n%s", a.id, tail(string(b), 4000))
			}
			a.log.Close()
		}
	})
	for _, a := range agents {
		a.start(t)
	}

	op := ca.Issue(t, "operator")
	creds, err := tlsconf.LoadClient(op)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: creds.Client()}}
	get := func(a *agentProc, path string, out any) error {
		req, _ := http.NewRequest("GET", "https://"+a.http+path, nil)
		req.Header.Set("Authorization", "Bearer "+clusterAdmin)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s %s: %d %s", a.id, path, resp.StatusCode, b)
		}
		return json.Unmarshal(b, out)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 15s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	var ms api.Members
	waitFor("three healthy voters reached over https", func() bool {
		if get(agents[0], api.PathMembers, &ms) != nil || len(ms.Members) != 3 || ms.Leader == "" {
			return false
		}
		for _, m := range ms.Members {
			if !m.Voter || !m.Healthy || !strings.HasPrefix(m.HTTPAddr, "https://") {
				return false
			}
		}
		return true
	})
	var follower *agentProc
	for _, a := range agents {
		if a.id != ms.Leader {
			follower = a
			break
		}
	}

	var out bytes.Buffer
	err = cli.Run(context.Background(), "keys", []string{"create", "over-tls", "--team", "a",
		"--agent", follower.http, "--token", clusterAdmin, "--tls-cert", op.Cert, "--tls-key", op.Key, "--tls-ca", op.CA}, &out)
	if err != nil {
		t.Fatalf("keys create through follower %s: %v\n%s", follower.id, err, out.String())
	}
	for _, a := range agents {
		waitFor("the key on "+a.id, func() bool {
			var keys api.KeyList
			if get(a, api.PathKeys, &keys) != nil {
				return false
			}
			for _, k := range keys.Keys {
				if k.Name == "over-tls" {
					return true
				}
			}
			return false
		})
	}
	waitFor("one state hash on all three", func() bool {
		hash := ""
		for _, a := range agents {
			var st api.Status
			if get(a, api.PathStatus, &st) != nil || (hash != "" && st.StateHash != hash) {
				return false
			}
			hash = st.StateHash
		}
		return true
	})

	// The gateway is behind the same policy: a certificate gets an answer,
	// no certificate gets a refused handshake.
	chat := func(hc *http.Client) (int, error) {
		req, _ := http.NewRequest("POST", "https://"+follower.http+"/v1/chat/completions",
			strings.NewReader(`{"model":"feature/answer","messages":[{"role":"user","content":"Where is my order?"}],"metadata":{"question":"Where is my order?"}}`))
		req.Header.Set("Authorization", "Bearer "+clusterKey)
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := chat(hc); err != nil || code != 200 {
		t.Fatalf("gateway with a certificate: %d %v", code, err)
	}
	noCert, err := tlsconf.LoadClient(tlsconf.Files{CA: op.CA})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := chat(&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: noCert.Client()}}); err == nil {
		t.Fatalf("gateway without a certificate answered %d", code)
	}

	// A renewed certificate is served after SIGHUP, without a restart,
	// and the cluster keeps working with it.
	servedSerial := func(a *agentProc) string {
		conn, err := tls.Dial("tcp", a.http, creds.Client())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := servedSerial(follower)
	ca.Issue(t, follower.id) // renewal overwrites the agent's files
	if err := follower.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor("the renewed certificate served by "+follower.id, func() bool { return servedSerial(follower) != before })
	out.Reset()
	if err := cli.Run(context.Background(), "keys", []string{"create", "after-renewal", "--agent", follower.http, "--token", clusterAdmin,
		"--tls-cert", op.Cert, "--tls-key", op.Key, "--tls-ca", op.CA}, &out); err != nil {
		t.Fatalf("keys create after the renewal: %v\n%s", err, out.String())
	}
}

// TestAgentTLSFlagsMissing: an agent given only some of the files stops at
// once and says which flag is missing.
func TestAgentTLSFlagsMissing(t *testing.T) {
	cmd := exec.Command(os.Args[0], "agent", "--dev", "--http-addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--tls-cert", "node.crt")
	cmd.Env = append(os.Environ(), "GANTRY_RUN_MAIN=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "missing --tls-key and --tls-ca") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}
