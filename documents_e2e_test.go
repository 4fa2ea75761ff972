package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gantry/api"
	"gantry/config"
	"gantry/pipeline/trace"
)

// documentsConfig is clusterConfig with a collection the cluster keeps
// documents of and a feature that answers from it.
func documentsConfig() string {
	return strings.Replace(clusterConfig(), "keys:\n", `  - name: help-answer
    releases:
      - version: 1
        system: Answer from the context.
        template: [{role: user, content: "{{question}}"}]
        variables: [{name: question, required: true}]
        route: cheap
        retrieval: {collection: help, top_k: 5}
    labels: {production: 1}
collections:
  - name: help
    chunking: {size_tokens: 128, markdown: true}
keys:
`, 1)
}

// helpCorpus is n Markdown articles of about 4 KiB each, written from a
// fixed vocabulary with a seeded generator, each with one term no other
// article has (code<k>x) to ask about.
func helpCorpus(n int) []map[string]any {
	words := strings.Fields(`thermostat boiler radiator schedule heating cooling sensor battery wifi network
		app account password reset factory dial ring display button wire valve pressure temperature room
		away mode geofence holiday eco comfort boost install bracket wall plate mount screw power adapter
		update firmware pair bluetooth hub bridge zone floor upstairs downstairs kitchen bedroom bathroom
		warranty refund subscription invoice billing plan tariff energy report usage weekly monthly alert
		notification email phone tablet widget voice assistant routine scene trigger delay offset calibrate`)
	rng := rand.New(rand.NewPCG(10, 20))
	sentence := func() string {
		n := 8 + rng.IntN(12)
		s := make([]string, n)
		for i := range s {
			s[i] = words[rng.IntN(len(words))]
		}
		return strings.ToUpper(s[0][:1]) + strings.Join(s, " ")[1:] + "."
	}
	docs := make([]map[string]any, n)
	for k := range docs {
		var b strings.Builder
		fmt.Fprintf(&b, "# Topic %d: %s and %s\n\n", k, words[rng.IntN(len(words))], words[rng.IntN(len(words))])
		for sec := range 6 {
			fmt.Fprintf(&b, "## Part %d\n\n", sec+1)
			for range 5 {
				b.WriteString(sentence() + " ")
			}
			if sec == k%6 {
				fmt.Fprintf(&b, "The setting code%dx controls this part.", k)
			}
			b.WriteString("\n\n")
		}
		docs[k] = map[string]any{"id": fmt.Sprintf("kb/topic-%03d", k), "format": "markdown", "text": b.String(),
			"metadata": map[string]string{"shelf": strconv.Itoa(k % 4)}}
	}
	return docs
}

// ask invokes help-answer on a and returns the sources it retrieved.
func (c *testCluster) ask(a *agentProc, question string) ([]trace.Source, error) {
	_, sources, err := c.askRelease(a, question)
	return sources, err
}

// askRelease is ask that also returns the release that answered.
func (c *testCluster) askRelease(a *agentProc, question string) (string, []trace.Source, error) {
	body, _ := json.Marshal(map[string]any{"vars": map[string]string{"question": question}})
	req, _ := http.NewRequest("POST", "http://"+a.http+"/v1/features/help-answer/invoke", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+clusterKey)
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", nil, fmt.Errorf("%s: invoke: %d %s", a.id, resp.StatusCode, data)
	}
	var out struct {
		Release string         `json:"release"`
		Sources []trace.Source `json:"sources"`
	}
	err = json.Unmarshal(data, &out)
	return out.Release, out.Sources, err
}

// caughtUp reports whether a's indexes of the help collection reflect its
// manifest at index or later.
func (c *testCluster) caughtUp(a *agentProc, index uint64) bool { return c.caughtUpWith(a, index, 1) }

// caughtUpWith is caughtUp with the number of indexes (chunking rule sets)
// the collection must have.
func (c *testCluster) caughtUpWith(a *agentProc, index uint64, indexes int) bool {
	var cols api.Collections
	if _, err := c.call(a, "GET", api.PathCollections, nil, &cols); err != nil || len(cols.Collections) != 1 {
		return false
	}
	h := cols.Collections[0]
	return h.CaughtUp && h.ManifestIndex >= index && cols.StateIndex >= index && len(h.Indexes) == indexes
}

// sameSources asks every question on every agent and fails unless all of
// them retrieve the same documents, chunks, scores and index versions.
func (c *testCluster) sameSources(questions []string, as []*agentProc) {
	c.t.Helper()
	for _, q := range questions {
		var want []trace.Source
		for i, a := range as {
			got, err := c.ask(a, q)
			if err != nil {
				c.t.Fatal(err)
			}
			if len(got) == 0 {
				c.t.Fatalf("%s retrieved nothing for %q", a.id, q)
			}
			if i == 0 {
				want = got
				continue
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				c.t.Fatalf("%q: %s retrieved\n  %v\n%s retrieved\n  %v", q, a.id, got, as[0].id, want)
			}
		}
	}
}

// addAgent starts one more agent that joins the cluster through the
// others, with an empty data dir.
func (c *testCluster) addAgent(id string) *agentProc {
	c.t.Helper()
	ports := freePorts(c.t, 2)
	var joins []string
	for _, a := range c.agents {
		joins = append(joins, a.http)
	}
	dir := filepath.Dir(c.agents[0].dir)
	a := &agentProc{id: id, http: "127.0.0.1:" + strconv.Itoa(ports[0]), raft: "127.0.0.1:" + strconv.Itoa(ports[1]), dir: filepath.Join(dir, id)}
	log, err := os.Create(filepath.Join(dir, id+".log"))
	if err != nil {
		c.t.Fatal(err)
	}
	a.log = log
	a.args = []string{"agent", "--node-id", id, "--http-addr", a.http, "--raft-addr", a.raft, "--data-dir", a.dir,
		"--join", strings.Join(joins, ","), "--cluster-secret", clusterSecret, "--log-level", "warn"}
	c.agents = append(c.agents, a)
	a.start(c.t)
	return a
}

// A document ingested through one agent is retrieved with the same sources
// on all three; an agent that joins later, from a snapshot, catches up and
// agrees; a delete through any agent reaches them all.
func TestDocumentsAreTheClusters(t *testing.T) {
	const trailing = 32
	c := startClusterWith(t, documentsConfig(), "--raft-snapshot-threshold", strconv.Itoa(trailing), "--raft-snapshot-interval", "1s")
	c.waitFor("the cluster forms and serves the seeded configuration", 40*time.Second, func() bool {
		return c.leader(c.agents) != ""
	})
	c.waitConverged(30 * time.Second)

	docs := helpCorpus(310)
	upload, _ := json.Marshal(map[string]any{"documents": docs})
	req, _ := http.NewRequest("POST", "http://"+c.agents[1].http+api.DocumentsPath("help"), bytes.NewReader(upload))
	req.Header.Set("Authorization", "Bearer "+clusterAdmin)
	sent := time.Now()
	resp, err := (&http.Client{Timeout: 3 * time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ing api.Ingested
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	acked := time.Now()
	// 202: committed, but the agent had not indexed it within a minute,
	// which only a very slow machine sees; the waits below cover it.
	if (resp.StatusCode != 200 && resp.StatusCode != 202) || json.Unmarshal(data, &ing) != nil || ing.Indexed != (resp.StatusCode == 200) || ing.Documents != len(docs) {
		t.Fatalf("upload through %s: %d %s", c.agents[1].id, resp.StatusCode, data)
	}
	// Generous waits: under the race detector, with other packages'
	// tests on the same cores, cutting 1 MB takes tens of seconds.
	everywhere := c.waitFor("every agent serves the upload", 3*time.Minute, func() bool {
		for _, a := range c.agents {
			if !c.caughtUp(a, ing.Index) {
				return false
			}
		}
		return true
	})
	t.Logf("%d documents, %d bytes of JSON: upload acknowledged by %s in %s (committed and indexed there); served by all three %s after the acknowledgement",
		len(docs), len(upload), c.agents[1].id, acked.Sub(sent).Round(time.Millisecond), everywhere.Round(time.Millisecond))

	var questions []string
	for _, k := range []int{3, 42, 117, 200, 249} {
		questions = append(questions, fmt.Sprintf("What does code%dx control?", k))
	}
	questions = append(questions, "How do I reset the thermostat schedule after a firmware update?",
		"battery low on the room sensor upstairs", "refund of the subscription invoice", "pair the hub over bluetooth")
	c.sameSources(questions, c.agents)
	if got, _ := c.ask(c.agents[2], questions[1]); got[0].Document != "kb/topic-042" {
		t.Fatalf("the article with code42x is not the top source: %v", got)
	}

	// Enough writes that every agent snapshots and compacts its log past
	// the upload: an agent joining now can only learn the manifest from a
	// snapshot.
	for i := range 3 * trailing {
		if _, err := c.call(c.agents[i%3], "POST", api.PathKeys, api.KeyCreate{Name: fmt.Sprintf("pad-%03d", i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	c.waitFor("the agents compact their logs past the upload", time.Minute, func() bool {
		for _, a := range c.agents {
			st, err := c.status(a)
			if err != nil || st.SnapshotIndex <= ing.Index+trailing {
				return false
			}
		}
		return true
	})
	late := c.addAgent("n4")
	joined := time.Now()
	c.waitFor("the late agent catches up with the collection", 3*time.Minute, func() bool { return c.caughtUp(late, ing.Index) })
	t.Logf("an agent joining later served the collection %s after it started", time.Since(joined).Round(time.Millisecond))
	if st, err := c.status(late); err != nil || st.SnapshotIndex <= ing.Index {
		t.Fatalf("late agent's snapshot index %d (%v): want a snapshot installed from the leader, past the upload at %d", st.SnapshotIndex, err, ing.Index)
	}
	c.sameSources(questions, c.agents)
	before, _ := c.ask(c.agents[0], questions[0])

	// A release with other chunking rules, made through one agent, gets
	// its index built from the kept documents on every agent.
	rel := map[string]any{"system": "Answer from the context.", "template": []map[string]string{{"role": "user", "content": "{{question}}"}},
		"variables": []map[string]any{{"name": "question", "required": true}}, "route": "cheap",
		"retrieval": map[string]any{"collection": "help", "top_k": 5, "chunking": map[string]any{"size_tokens": 48, "markdown": true}}}
	var created api.Release
	if _, err := c.call(c.agents[2], "POST", api.ReleasesPath("help-answer"), rel, &created); err != nil {
		t.Fatal(err)
	}
	if _, err := c.call(c.agents[2], "POST", api.LabelsPath("help-answer"), api.LabelMove{Action: config.MovePromote, To: created.Version}, nil); err != nil {
		t.Fatal(err)
	}
	built := c.waitFor("every agent builds the new rules' index and serves the new release", 3*time.Minute, func() bool {
		for _, a := range c.agents {
			if r, _, err := c.askRelease(a, questions[0]); err != nil || r != created.ID || !c.caughtUpWith(a, ing.Index, 2) {
				return false
			}
		}
		return true
	})
	t.Logf("a release with new chunking rules was served from its own index on all four agents %s after its promote", built.Round(time.Millisecond))
	c.sameSources(questions, c.agents)
	if after, _ := c.ask(c.agents[0], questions[0]); after[0].Index == before[0].Index {
		t.Fatalf("the new release retrieved from the old index %s", after[0].Index)
	}

	// A delete through the late agent reaches every agent.
	var del api.Ingested
	if _, err := c.call(late, "DELETE", api.DocumentsPath("help")+"/kb/topic-042", nil, &del); err != nil {
		t.Fatal(err)
	}
	c.waitFor("every agent drops the deleted article", 30*time.Second, func() bool {
		for _, a := range c.agents {
			if !c.caughtUpWith(a, del.Index, 2) {
				return false
			}
		}
		return true
	})
	c.sameSources(questions, c.agents)
	for _, a := range c.agents {
		got, err := c.ask(a, questions[1])
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range got {
			if s.Document == "kb/topic-042" {
				t.Fatalf("%s still retrieves the deleted article: %v", a.id, got)
			}
		}
	}
}
