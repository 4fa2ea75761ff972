// Package cli is Gantry's operator commands: apply, get, release, audit,
// members, keys and tokens. Each talks to one agent's admin API (any agent
// of a cluster; writes reach the leader through it) and prints a table, or
// JSON with -o json. main only dispatches to Run.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gantry/api"
	"gantry/config"
	"gantry/pipeline/price"
	"gantry/tlsconf"
)

// ErrUsage marks a command line that does not make sense; the message says
// what was expected.
var ErrUsage = errors.New("usage")

// env holds what every command shares: the agent, the output format and
// where output goes.
type env struct {
	c          *client
	out        io.Writer
	errOut     io.Writer // progress and warnings, apart from the output
	json       bool
	consistent bool
	wait       bool // writes wait for every healthy agent
	// member makes a client for another agent of the cluster at its HTTP
	// address, with the same token and TLS.
	member func(httpAddr string) (*client, error)
}

// flagSet reports whether the flag was given on the command line.
func flagSet(fs *flag.FlagSet, name string) (set bool) {
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// write sends a change, waiting for every agent when e.wait, and prints
// which agents serve it when it waited.
func (e *env) write(ctx context.Context, method, path string, in, out any) error {
	return e.writeIf(ctx, method, path, "", in, out)
}

// writeIf is write with an If-Match header when ifMatch is not empty.
func (e *env) writeIf(ctx context.Context, method, path, ifMatch string, in, out any) error {
	if e.wait {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "wait=all"
	}
	if err := e.c.callIf(ctx, method, path, ifMatch, in, out); err != nil {
		return err
	}
	if e.wait {
		if by := e.c.header.Get(api.HeaderServedBy); by != "" {
			fmt.Fprintf(e.errOut, "served by %s\n", strings.ReplaceAll(by, ",", ", "))
		}
		if not := e.c.header.Get(api.HeaderNotServed); not != "" {
			fmt.Fprintf(e.errOut, "not yet served by %s\n", not)
		}
	}
	return nil
}

// Run runs the operator command cmd with its arguments, writing to out;
// progress and warnings go to standard error.
func Run(ctx context.Context, cmd string, args []string, out io.Writer) error {
	return RunWith(ctx, cmd, args, out, os.Stderr)
}

// RunWith is Run with progress and warnings written to errOut.
func RunWith(ctx context.Context, cmd string, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("gantry "+cmd, flag.ContinueOnError)
	fs.SetOutput(out)
	agentURL := fs.String("agent", envOr("GANTRY_AGENT", "127.0.0.1:7400"), "agent admin URL; a bare host:port means https with --tls-*, else http (default $GANTRY_AGENT)")
	token := fs.String("token", os.Getenv("GANTRY_TOKEN"), "admin token (default $GANTRY_TOKEN)")
	format := fs.String("o", "table", "output: table or json")
	consistent := fs.Bool("consistent", false, "read through the leader: see every write acknowledged before")
	var tf tlsconf.Files
	tlsconf.ClientFlags(fs, &tf)
	// Flags of particular commands; each command reads the ones it needs.
	file := fs.String("f", "", "apply: configuration file (YAML or JSON)")
	dryRun := fs.Bool("dry-run", false, "apply: show the changes without applying them")
	prune := fs.Bool("prune", false, "apply: also remove what an earlier file declared and this one does not")
	force := fs.String("force", "", "apply: the reason to let a prune remove every provider, feature or key; release promote: the reason to promote past the evaluation gate (both go to the audit log)")
	from := fs.Int("from", 0, "release: the version the moved label points at now; refused if it moved since")
	reason := fs.String("reason", "", "release: why, for the audit log")
	weight := fs.Int("weight", 0, "release canary: percent of traffic, 1..100")
	abort := fs.Bool("abort", false, "release canary: end the live canary")
	wait := fs.Bool("wait", false, "writes: answer once every healthy agent serves the change, naming any that does not (the default for keys and tokens)")
	limit := fs.Int("limit", 50, "audit: how many entries")
	team := fs.String("team", "", "keys create: the key's team")
	features := fs.String("features", "", "keys create: comma-separated features the key may call (default all)")
	models := fs.String("models", "", "keys create: comma-separated models the key may call (default all)")
	maxBudget := fs.Float64("max-budget", 0, "keys create: lifetime spend cap in USD")
	role := fs.String("role", "", "tokens create: viewer, operator or admin")
	version := fs.Int("version", 0, "dataset show: the version (default the latest)")
	critical := fs.Bool("critical", false, "dataset add-trace: make the new case critical")
	feature := fs.String("feature", "", "eval: the feature")
	evalRelease := fs.Int("release", 0, "eval run: the release version to run")
	ds := fs.String("dataset", "", "eval: the dataset")
	dsVersion := fs.Int("dataset-version", 0, "eval: the dataset version (default the latest)")
	repeat := fs.Int("repeat", 1, "eval: run every case this many times; a case passes only if every repeat does")
	concurrency := fs.Int("concurrency", 4, "eval: cases in flight at once")
	key := fs.String("key", os.Getenv("GANTRY_KEY"), "eval: virtual key allowed to evaluate (eval: true) for the gateway calls (default $GANTRY_KEY)")
	judge := fs.String("judge", os.Getenv("GANTRY_JUDGE_MODEL"), "eval: model, route or feature/<name> that grades llm-rubric and faithfulness assertions (default $GANTRY_JUDGE_MODEL)")
	runsDir := fs.String("runs-dir", "", "eval: where runs keep their results, to be resumed (default the user cache dir)")
	fresh := fs.Bool("fresh", false, "eval: start new runs instead of resuming or reusing recorded ones")
	candidate := fs.Int("candidate", 0, "eval compare: the candidate release version")
	baseline := fs.String("baseline", "production", "eval compare: production or a release version")
	by := fs.String("by", "feature", "get costs: group by feature, release, model or team")
	window := fs.String("window", "24h", "get costs: how far back, up to 24h")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("%w: -o %q: want table or json", ErrUsage, *format)
	}
	creds, err := tlsconf.LoadClient(tf)
	if err != nil {
		return err
	}
	c, err := newTLSClient(*agentURL, *token, creds.Client())
	if err != nil {
		return fmt.Errorf("%w: --agent: %v", ErrUsage, err)
	}
	e := &env{c: c, out: out, errOut: errOut, json: *format == "json", consistent: *consistent}
	e.member = func(addr string) (*client, error) {
		if !strings.Contains(addr, "://") {
			scheme, _, _ := strings.Cut(c.URL(), "://")
			addr = scheme + "://" + addr
		}
		return newTLSClient(addr, *token, creds.Client())
	}
	// Key and token changes wait for every agent unless told not to: a
	// key that works on one agent and is refused by the next is the
	// surprise --wait exists for.
	e.wait = *wait || ((cmd == "keys" || cmd == "tokens") && !flagSet(fs, "wait"))
	spec := evalSpec{feature: *feature, release: *evalRelease, dataset: *ds, datasetVersion: *dsVersion, repeat: *repeat,
		concurrency: *concurrency, key: *key, judge: *judge, runsDir: *runsDir, fresh: *fresh, tls: creds.Client()}
	arg := func(i int, what string) (string, error) {
		if i >= len(pos) {
			return "", fmt.Errorf("%w: gantry %s needs %s", ErrUsage, cmd, what)
		}
		return pos[i], nil
	}
	sub := ""
	if len(pos) > 0 {
		sub = pos[0]
	}
	switch cmd {
	case "apply":
		if *file == "" {
			return fmt.Errorf("%w: gantry apply -f FILE [--dry-run] [--prune [--force REASON]]", ErrUsage)
		}
		return e.apply(ctx, *file, *dryRun, *prune, *force)
	case "get":
		switch sub {
		case "members":
			return e.members(ctx)
		case "features":
			return e.features(ctx)
		case "releases":
			f, err := arg(1, "a feature: gantry get releases FEATURE")
			if err != nil {
				return err
			}
			return e.releases(ctx, f)
		case "routes":
			return e.routes(ctx)
		case "budgets":
			return e.budgets(ctx)
		case "keys":
			return e.keys(ctx)
		case "models":
			return e.models(ctx)
		case "costs":
			return e.costs(ctx, *by, *window)
		}
		return fmt.Errorf("%w: gantry get members|features|releases FEATURE|routes|models|budgets|keys|costs", ErrUsage)
	case "release":
		if sub == "" {
			return fmt.Errorf("%w: gantry release list|diff|promote|rollback|canary FEATURE ...", ErrUsage)
		}
		f, err := arg(1, "a feature")
		if err != nil {
			return err
		}
		switch sub {
		case "list":
			return e.releases(ctx, f)
		case "diff":
			a, b, err := versions(pos[2:], 2)
			if err != nil {
				return fmt.Errorf("%w: gantry release diff FEATURE A B: %v", ErrUsage, err)
			}
			return e.diff(ctx, f, a[0], b)
		case "promote":
			v, _, err := versions(pos[2:], 1)
			if err != nil {
				return fmt.Errorf("%w: gantry release promote FEATURE VERSION [--from N] [--reason R] [--force REASON]: %v", ErrUsage, err)
			}
			why, forced := *reason, *force != ""
			if forced {
				// As with apply, forcing takes its reason as its value.
				if strings.HasPrefix(*force, "-") || (why != "" && why != *force) {
					return fmt.Errorf("%w: --force takes the reason to promote past the evaluation gate: --force \"why\"", ErrUsage)
				}
				why = *force
			}
			return e.move(ctx, api.LabelMove{Feature: f, Action: config.MovePromote, From: *from, To: v[0], Reason: why, Force: forced})
		case "rollback":
			if len(pos) > 2 {
				return fmt.Errorf("%w: gantry release rollback FEATURE [--from N] [--reason R] undoes the last rollout and takes no version; 'gantry release promote FEATURE VERSION' moves production to a version", ErrUsage)
			}
			return e.move(ctx, api.LabelMove{Feature: f, Action: config.MoveRollback, From: *from, Reason: *reason})
		case "canary":
			if *abort {
				if len(pos) > 2 || *weight != 0 {
					return fmt.Errorf("%w: gantry release canary FEATURE --abort [--from N] takes no version or weight", ErrUsage)
				}
				return e.move(ctx, api.LabelMove{Feature: f, Action: config.MoveAbort, From: *from, Reason: *reason})
			}
			v, _, err := versions(pos[2:], 1)
			if err != nil {
				return fmt.Errorf("%w: gantry release canary FEATURE VERSION --weight W, or FEATURE --abort: %v", ErrUsage, err)
			}
			if *weight < 1 || *weight > config.MaxCanaryWeight {
				return fmt.Errorf("%w: --weight: want 1..%d for a canary, got %d; --abort ends a canary", ErrUsage, config.MaxCanaryWeight, *weight)
			}
			return e.move(ctx, api.LabelMove{Feature: f, Action: config.MoveCanary, From: *from, To: v[0], Weight: *weight, Reason: *reason})
		}
		return fmt.Errorf("%w: gantry release list|diff|promote|rollback|canary FEATURE ...", ErrUsage)
	case "dataset":
		switch sub {
		case "push":
			if *file == "" {
				return fmt.Errorf("%w: gantry dataset push -f FILE (YAML or JSONL)", ErrUsage)
			}
			return e.pushDataset(ctx, *file)
		case "list":
			return e.datasets(ctx)
		case "show":
			name, err := arg(1, "a dataset: gantry dataset show NAME [--version N]")
			if err != nil {
				return err
			}
			return e.showDataset(ctx, name, *version)
		case "add-trace":
			if len(pos) != 3 {
				return fmt.Errorf("%w: gantry dataset add-trace NAME TRACE_ID [--critical]", ErrUsage)
			}
			return e.addTrace(ctx, pos[1], pos[2], *critical)
		}
		return fmt.Errorf("%w: gantry dataset push -f FILE | list | show NAME [--version N] | add-trace NAME TRACE_ID", ErrUsage)
	case "eval":
		if err := spec.check(); err != nil && (sub == "run" || sub == "compare") {
			return err
		}
		switch sub {
		case "run":
			if *evalRelease < 1 {
				return fmt.Errorf("%w: gantry eval run --feature F --release V --dataset NAME [--repeat K] [--concurrency C]", ErrUsage)
			}
			return e.evalRun(ctx, spec)
		case "compare":
			if *candidate < 1 {
				return fmt.Errorf("%w: gantry eval compare --feature F --candidate V [--baseline production|N] --dataset NAME", ErrUsage)
			}
			return e.evalCompare(ctx, spec, *candidate, *baseline)
		}
		return fmt.Errorf("%w: gantry eval run|compare --feature F --dataset NAME ...", ErrUsage)
	case "audit":
		return e.audit(ctx, *limit)
	case "members":
		if sub != "remove" {
			return fmt.Errorf("%w: gantry members remove ID", ErrUsage)
		}
		id, err := arg(1, "a member id: gantry members remove ID")
		if err != nil {
			return err
		}
		var out api.Removed
		if err := e.c.call(ctx, "DELETE", api.MemberPath(id), nil, &out); err != nil {
			return err
		}
		return e.print(out, func(w *tabwriter.Writer) { fmt.Fprintf(w, "member %s removed\n", out.ID) })
	case "keys":
		switch sub {
		case "list":
			return e.keys(ctx)
		case "hash":
			// For configuration files, which hold keys only as hashes.
			key := ""
			if len(pos) > 1 {
				key = pos[1]
			} else if b, err := io.ReadAll(io.LimitReader(os.Stdin, 4096)); err == nil {
				key = strings.TrimSpace(string(b))
			}
			if !config.WellFormedKey(key) {
				return fmt.Errorf("%w: gantry keys hash KEY (or the key on standard input): want a virtual key such as %s...", ErrUsage, config.KeyPrefix)
			}
			fmt.Fprintln(e.out, config.HashKey(key))
			return nil
		case "new":
			// A key for a configuration file: the secret to hand out and
			// the hash the file holds.
			secret, hash := config.NewKey()
			fmt.Fprintf(e.out, "key   %s\nhash  %s\n", secret, hash)
			return nil
		case "create":
			name, err := arg(1, "a key name: gantry keys create NAME")
			if err != nil {
				return err
			}
			in := api.KeyCreate{Name: name, Team: *team, Features: split(*features), Models: split(*models), MaxBudgetUSD: *maxBudget}
			var out api.KeySecret
			if err := e.write(ctx, "POST", api.PathKeys, in, &out); err != nil {
				return err
			}
			return e.secret(out)
		case "rotate", "revoke":
			name, err := arg(1, "a key name: gantry keys "+sub+" NAME")
			if err != nil {
				return err
			}
			if sub == "rotate" {
				var out api.KeySecret
				if err := e.write(ctx, "POST", api.KeyPath(name, "rotate"), nil, &out); err != nil {
					return err
				}
				return e.secret(out)
			}
			var out api.Key
			if err := e.write(ctx, "POST", api.KeyPath(name, "revoke"), nil, &out); err != nil {
				return err
			}
			return e.print(out, func(w *tabwriter.Writer) { fmt.Fprintf(w, "key %s revoked\n", out.Name) })
		}
		return fmt.Errorf("%w: gantry keys list|create|rotate|revoke NAME, or keys new|hash KEY for configuration files", ErrUsage)
	case "tokens":
		switch sub {
		case "list":
			return e.tokens(ctx)
		case "generate":
			// A token for --bootstrap-token-file; nothing is registered.
			fmt.Fprintln(e.out, config.NewToken())
			return nil
		case "create":
			name, err := arg(1, "a token name: gantry tokens create NAME --role ROLE")
			if err != nil {
				return err
			}
			var out api.TokenSecret
			if err := e.write(ctx, "POST", api.PathTokens, api.TokenCreate{Name: name, Role: *role}, &out); err != nil {
				return err
			}
			return e.print(out, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "token %s (%s) created; it is shown only this once:\n\n  %s\n", out.Token.Name, out.Token.Role, out.Secret)
			})
		case "revoke":
			name, err := arg(1, "a token name: gantry tokens revoke NAME")
			if err != nil {
				return err
			}
			var out api.Token
			if err := e.write(ctx, "POST", api.TokenPath(name, "revoke"), nil, &out); err != nil {
				return err
			}
			return e.print(out, func(w *tabwriter.Writer) { fmt.Fprintf(w, "token %s revoked\n", out.Name) })
		}
		return fmt.Errorf("%w: gantry tokens list|create|revoke, or tokens generate for --bootstrap-token-file", ErrUsage)
	}
	return fmt.Errorf("%w: unknown command %q", ErrUsage, cmd)
}

// parse parses flags wherever they appear among the positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// versions parses n release versions ("3" or "v3").
func versions(args []string, n int) ([]int, int, error) {
	if len(args) < n {
		return nil, 0, fmt.Errorf("want %d version(s)", n)
	}
	out := make([]int, n)
	for i := range n {
		v, err := strconv.Atoi(strings.TrimPrefix(args[i], "v"))
		if err != nil || v < 0 {
			return nil, 0, fmt.Errorf("%q is not a release version", args[i])
		}
		out[i] = v
	}
	return out, out[n-1], nil
}

// print writes v as JSON with -o json, else the table.
func (e *env) print(v any, table func(w *tabwriter.Writer)) error {
	if e.json {
		enc := json.NewEncoder(e.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	w := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	table(w)
	return w.Flush()
}

func (e *env) query() string {
	if e.consistent {
		return "?consistent=1"
	}
	return ""
}

func (e *env) apply(ctx context.Context, file string, dryRun, prune bool, force string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	// Validate locally first: errors name the file and line.
	if _, err := config.Parse(file, data); err != nil {
		return err
	}
	q := url.Values{}
	if prune {
		q.Set("prune", "1")
	}
	if force != "" {
		q.Set("force", force)
	}
	path := api.PathConfig + "?" + q.Encode()
	var plan api.ConfigResult
	if err := e.c.call(ctx, "PUT", path+"&dry_run=1", data, &plan); err != nil {
		return err
	}
	if dryRun || !config.ChangesAnything(plan.Changes) {
		return e.print(plan, func(w *tabwriter.Writer) {
			printChanges(w, plan.Changes)
			if dryRun && config.ChangesAnything(plan.Changes) {
				fmt.Fprintln(w, "dry run: nothing applied")
			}
		})
	}
	// Apply exactly the changes shown: refused if the configuration
	// changed since the dry run.
	var res api.ConfigResult
	if err := e.writeIf(ctx, "PUT", path, api.ConfigETag(plan.BaseIndex), data, &res); err != nil {
		return err
	}
	return e.print(res, func(w *tabwriter.Writer) {
		printChanges(w, res.Changes)
		fmt.Fprintf(w, "applied as one change at index %d\n", res.Index)
	})
}

// printChanges prints a plan as Terraform prints one: + added, - removed,
// ~ changed with each field old -> new, and the objects left alone with
// why.
func printChanges(w io.Writer, cs []api.ConfigChange) {
	if !config.ChangesAnything(cs) {
		fmt.Fprintln(w, "no changes")
	}
	for _, c := range cs {
		sign := map[string]string{config.OpAdd: "+", config.OpRemove: "-", config.OpChange: "~", config.OpUnlisted: "!", config.OpSkip: "="}[c.Op]
		line := fmt.Sprintf("%s %s/%s", sign, c.Kind, c.Name)
		if c.Kind == c.Name {
			line = sign + " " + c.Kind
		}
		if c.Note != "" {
			line += ": " + c.Note
		}
		fmt.Fprintln(w, line)
		for _, f := range c.Fields {
			fmt.Fprintf(w, "    %s: %s -> %s\n", f.Path, orDash(f.Old), orDash(f.New))
		}
	}
}

func (e *env) members(ctx context.Context) error {
	var ms api.Members
	if err := e.c.call(ctx, "GET", api.PathMembers, nil, &ms); err != nil {
		return err
	}
	return e.print(ms, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "ID\tROLE\tVOTER\tHEALTHY\tRAFT\tHTTP\tAPPLIED\tERROR")
		for _, m := range ms.Members {
			fmt.Fprintf(w, "%s\t%s\t%t\t%t\t%s\t%s\t%d\t%s\n", m.ID, m.Role, m.Voter, m.Healthy, m.RaftAddr, m.HTTPAddr, m.AppliedIndex, m.Error)
		}
	})
}

func (e *env) features(ctx context.Context) error {
	var fs api.Features
	if err := e.c.call(ctx, "GET", api.PathFeatures+e.query(), nil, &fs); err != nil {
		return err
	}
	return e.print(fs, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NAME\tPRODUCTION\tCANARY\tRELEASES\tDESCRIPTION")
		for _, f := range fs.Features {
			canary := "-"
			if f.Labels.Canary != 0 {
				canary = fmt.Sprintf("v%d@%d%%", f.Labels.Canary, f.Labels.CanaryWeight)
			}
			fmt.Fprintf(w, "%s\tv%d\t%s\t%d\t%s\n", f.Name, f.Labels.Production, canary, len(f.Releases), f.Description)
		}
	})
}

func (e *env) releases(ctx context.Context, feature string) error {
	var f api.Feature
	if err := e.c.call(ctx, "GET", api.ReleasesPath(feature)+e.query(), nil, &f); err != nil {
		return err
	}
	return e.print(f, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "VERSION\tLABELS\tHASH\tCREATED\tBY")
		for _, r := range f.Releases {
			created := "-"
			if !r.Created.IsZero() {
				created = r.Created.UTC().Format(time.RFC3339)
			}
			labels := strings.Join(f.LabelsOf(r.Version), ",")
			if labels == "" {
				labels = "-"
			} else if r.Version == f.Labels.Canary {
				labels = strings.Replace(labels, config.LabelCanary, fmt.Sprintf("canary@%d%%", f.Labels.CanaryWeight), 1)
			}
			fmt.Fprintf(w, "v%d\t%s\t%s\t%s\t%s\n", r.Version, labels, short(r.Hash), created, orDash(r.CreatedBy))
		}
	})
}

func (e *env) diff(ctx context.Context, feature string, a, b int) error {
	var d api.Diff
	if err := e.c.call(ctx, "GET", api.DiffPath(feature, a, b), nil, &d); err != nil {
		return err
	}
	return e.print(d, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "%s v%d (%s) -> v%d (%s): %s\n", d.Feature, d.A, short(d.AHash), d.B, short(d.BHash), d.Summary())
		for _, f := range d.Fields {
			fmt.Fprintf(w, "\n%s\n", f.Field)
			for _, l := range f.Lines {
				fmt.Fprintf(w, "  %s %s\n", l.Op, l.Text)
			}
		}
	})
}

func (e *env) move(ctx context.Context, m api.LabelMove) error {
	if err := m.Check(); err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	var res api.LabelMoveResult
	if err := e.write(ctx, "POST", api.LabelsPath(m.Feature), m, &res); err != nil {
		return err
	}
	return e.print(res, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "%s: %s (index %d)\n", res.Feature, describeChange(res.Change), res.Index)
	})
}

// describeChange says in words what a label change did.
func describeChange(c api.LabelChange) string {
	switch {
	case c.Label == config.LabelCanary && c.To == 0:
		return fmt.Sprintf("%s: canary v%d ended, production unchanged", c.Action, c.From)
	case c.Label == config.LabelCanary:
		return fmt.Sprintf("%s: canary v%d -> v%d at %d%%", c.Action, c.From, c.To, c.Weight)
	}
	return fmt.Sprintf("%s: production v%d -> v%d", c.Action, c.From, c.To)
}

func (e *env) audit(ctx context.Context, limit int) error {
	var l api.AuditList
	if err := e.c.call(ctx, "GET", api.PathAudit+"?limit="+url.QueryEscape(strconv.Itoa(limit)), nil, &l); err != nil {
		return err
	}
	return e.print(l, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "SEQ\tTIME\tACTOR\tCOMMAND\tTARGET\tCHANGE\tREASON")
		for _, a := range l.Entries {
			change := a.After
			if a.Before != "" {
				change = a.Before + " -> " + orDash(a.After)
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Seq, a.Time.UTC().Format(time.RFC3339), a.Actor, a.Command, a.Target, orDash(change), a.Reason)
		}
	})
}

func (e *env) keys(ctx context.Context) error {
	var l api.KeyList
	if err := e.c.call(ctx, "GET", api.PathKeys+e.query(), nil, &l); err != nil {
		return err
	}
	return e.print(l, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NAME\tTEAM\tSTATUS\tHASH\tFEATURES\tMODELS")
		for _, k := range l.Keys {
			status := "active"
			if k.Revoked {
				status = "revoked"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", k.Name, orDash(k.Team), status, k.HashPrefix, orDash(strings.Join(k.Features, ",")), orDash(strings.Join(k.Models, ",")))
		}
	})
}

func (e *env) secret(out api.KeySecret) error {
	return e.print(out, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "key %s: its secret is shown only this once:\n\n  %s\n", out.Key.Name, out.Secret)
	})
}

func (e *env) tokens(ctx context.Context) error {
	var l api.TokenList
	if err := e.c.call(ctx, "GET", api.PathTokens+e.query(), nil, &l); err != nil {
		return err
	}
	return e.print(l, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NAME\tROLE\tSTATUS")
		for _, t := range l.Tokens {
			status := "active"
			if t.Revoked {
				status = "revoked"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\n", t.Name, t.Role, status)
		}
	})
}

// routes prints the routes of the replicated configuration.
func (e *env) routes(ctx context.Context) error {
	var cfg config.Config
	if err := e.c.call(ctx, "GET", api.PathConfig+e.query(), nil, &cfg); err != nil {
		return err
	}
	return e.print(cfg.Routes, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NAME\tTARGETS\tFALLBACKS\tTIMEOUT\tDEADLINE")
		for _, r := range cfg.Routes {
			var ts []string
			for _, t := range r.Targets {
				ts = append(ts, fmt.Sprintf("%s:%d", t.Model, t.Weight))
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Name, strings.Join(ts, ","), orDash(strings.Join(r.Fallbacks, ",")), dur(r.Timeout), dur(r.Deadline))
		}
	})
}

// models prints each model the agent serves with the price a call is
// charged at, per million tokens, and where it came from. A model of
// unknown price is flagged: its calls are not counted free, but their cost
// is unknown.
func (e *env) models(ctx context.Context) error {
	var out api.Models
	if err := e.c.call(ctx, "GET", api.PathModels, nil, &out); err != nil {
		return err
	}
	var unknown []string
	err := e.print(out, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NAME\tPROVIDER\tKIND\tUPSTREAM\tINPUT/M\tOUTPUT/M\tCACHED/M\tREASONING/M\tPRICE FROM")
		for _, m := range out.Models {
			in, outp, cached, reasoning := "-", "-", "-", "-"
			from := string(m.PriceSource)
			switch m.PriceSource {
			case price.SourceConfig, price.SourceTable:
				p := m.Price
				in, outp, cached, reasoning = perM(p.Input), perM(p.Output), perM(p.CachedInput), perM(p.Reasoning)
				if m.PriceSource == price.SourceTable {
					from = fmt.Sprintf("table %s (%s)", m.PriceTable, m.PriceEntry)
				}
			case price.SourceSelfHosted:
				in, outp = "$0", "$0"
			default:
				in, from = "UNKNOWN PRICE", string(price.SourceUnknown)
				unknown = append(unknown, m.Name)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.Provider, m.Kind, m.Upstream, in, outp, cached, reasoning, from)
		}
	})
	if err == nil && len(unknown) > 0 && !e.json {
		fmt.Fprintf(e.errOut, "warning: no known price for %s: calls are traced as of unknown cost and count nothing against budgets; set models[].price\n",
			strings.Join(unknown, ", "))
	}
	return err
}

// perM is a price per million tokens; 0 (as input or output) is "-".
func perM(v float64) string {
	if v == 0 {
		return "-"
	}
	return "$" + strconv.FormatFloat(v, 'f', -1, 64)
}

// budgets prints every budget with its spend this period: the cluster's
// for a budget the agents share, with how many agents hold a grant of it.
func (e *env) budgets(ctx context.Context) error {
	var out api.Budgets
	if err := e.c.call(ctx, "GET", api.PathBudgets, nil, &out); err != nil {
		return err
	}
	return e.print(out, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NAME\tSCOPE\tMATCH\tPERIOD\tLIMIT_USD\tSPENT_USD\tHELD_USD\tUSED\tACTION\tGRANTS")
		for _, b := range out.Budgets {
			action := b.Action
			if action == "" {
				action = config.BudgetBlock
			}
			grants := "-" // enforced by each agent alone
			if b.Cluster != nil {
				grants = strconv.Itoa(len(b.Cluster.Grants))
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.2f\t%.4f\t%.4f\t%.0f%%\t%s\t%s\n", b.Name, b.Scope, orDash(b.Match), b.Period,
				b.LimitUSD, b.SpentUSD, b.ReservedUSD, 100*b.Used(), action, grants)
		}
	})
}

func dur(d config.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.String()
}

func short(hash string) string {
	h := strings.TrimPrefix(hash, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
