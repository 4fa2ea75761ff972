package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"gantry/api"
	"gantry/eval/dataset"
)

// pushDataset checks a dataset file locally, so errors name the file, line
// and field at once, then sends it: a new version when its content changed.
func (e *env) pushDataset(ctx context.Context, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, dataset.MaxFileBytes+1))
	if err != nil {
		return err
	}
	if _, err := dataset.Parse(file, data); err != nil {
		return err
	}
	var res api.DatasetPushResult
	if err := e.c.call(ctx, "POST", api.PathDatasets+"?file="+filepath.Base(file), data, &res); err != nil {
		return err
	}
	return e.print(res, func(w *tabwriter.Writer) {
		if res.Changed {
			fmt.Fprintf(w, "dataset %s: version %d with %d cases (%s)\n", res.Name, res.Version, res.Cases, short(res.Hash))
		} else {
			fmt.Fprintf(w, "dataset %s: unchanged, still version %d (%s)\n", res.Name, res.Version, short(res.Hash))
		}
	})
}

func (e *env) datasets(ctx context.Context) error {
	var l api.Datasets
	if err := e.c.call(ctx, "GET", api.PathDatasets+e.query(), nil, &l); err != nil {
		return err
	}
	return e.print(l, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NAME\tVERSION\tCASES\tCRITICAL\tHASH\tCREATED\tDESCRIPTION")
		for _, d := range l.Datasets {
			fmt.Fprintf(w, "%s\tv%d\t%d\t%d\t%s\t%s\t%s\n", d.Name, d.Version, d.Cases, d.Critical, short(d.Hash), d.Created.UTC().Format(time.RFC3339), d.Description)
		}
	})
}

func (e *env) showDataset(ctx context.Context, name string, version int) error {
	var d api.DatasetVersion
	path := api.DatasetPath(name, version)
	if e.consistent {
		path += map[bool]string{true: "&", false: "?"}[version > 0] + "consistent=1"
	}
	if err := e.c.call(ctx, "GET", path, nil, &d); err != nil {
		return err
	}
	return e.print(d, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "dataset %s version %d of %v (%s), created %s\n", d.Name, d.Version, d.Versions, short(d.Hash), d.Created.UTC().Format(time.RFC3339))
		if d.Dataset.Description != "" {
			fmt.Fprintln(w, d.Dataset.Description)
		}
		if len(d.Dataset.Assert) > 0 {
			fmt.Fprintf(w, "every case: %s\n", specTypes(d.Dataset.Assert))
		}
		fmt.Fprintln(w, "\nCASE\tCRITICAL\tTAGS\tASSERT\tINPUT")
		for _, c := range d.Dataset.Cases {
			crit := "-"
			if c.Critical {
				crit = "yes"
			}
			in := strings.ReplaceAll(strings.TrimSpace(c.Input()), "\n", " | ")
			if len(in) > 60 {
				in = in[:57] + "..."
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", c.ID, crit, orDash(strings.Join(c.Tags, ",")), orDash(specTypes(c.Assert)), in)
		}
	})
}

func specTypes[S ~[]T, T interface{ Kind() (string, bool) }](specs S) string {
	var out []string
	for _, s := range specs {
		base, neg := s.Kind()
		if neg {
			base = "not-" + base
		}
		out = append(out, base)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// addTrace turns a trace into a case of the dataset's next version.
func (e *env) addTrace(ctx context.Context, name, traceID string, critical bool) error {
	var res api.DatasetPushResult
	if err := e.c.call(ctx, "POST", api.FromTracePath(name), api.FromTrace{TraceID: traceID, Critical: critical}, &res); err != nil {
		return err
	}
	return e.print(res, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "dataset %s: version %d with %d cases; case %s from trace %s", res.Name, res.Version, res.Cases, res.Case.ID, traceID)
		if res.Case.Expected != nil {
			fmt.Fprint(w, ", expecting its correction")
		}
		fmt.Fprintln(w)
	})
}
