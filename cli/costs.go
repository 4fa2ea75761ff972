package cli

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"gantry/api"
)

// costs prints what a call and a good answer cost, grouped by one
// dimension; -o json prints one object a group.
func (e *env) costs(ctx context.Context, by, window string) error {
	switch by {
	case "feature", "release", "model", "team":
	default:
		return fmt.Errorf("%w: --by %q: want feature, release, model or team", ErrUsage, by)
	}
	if d, err := time.ParseDuration(window); err != nil || d <= 0 || d > 24*time.Hour {
		return fmt.Errorf("%w: --window %q: want a duration up to 24h, such as 1h or 24h", ErrUsage, window)
	}
	path := api.PathCosts + "?" + url.Values{"by": {by}, "window": {window}}.Encode()
	var first api.Costs
	if err := e.c.call(ctx, "GET", path, nil, &first); err != nil {
		return err
	}
	tables := [][]api.CostRow{first.Rows}
	// Each agent counts its own calls: ask every member of the cluster.
	// An agent without a cluster is the whole story on its own.
	var ms api.Members
	if err := e.c.call(ctx, "GET", api.PathMembers, nil, &ms); err == nil {
		for _, m := range ms.Members {
			if m.ID == first.Node || m.HTTPAddr == "" {
				continue
			}
			var other api.Costs
			c, err := e.member(m.HTTPAddr)
			if err == nil {
				err = c.call(ctx, "GET", path, nil, &other)
			}
			if err != nil {
				fmt.Fprintf(e.errOut, "agent %s: %v; its calls are not counted\n", m.ID, err)
				continue
			}
			tables = append(tables, other.Rows)
		}
	}
	rows := api.MergeCosts(tables...)
	return e.print(rows, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "%s\tCALLS\tCOST_USD\tPER_CALL\tPER_VALIDATED\tPER_GOOD\tPER_PASSING_CASE\tESCALATED\tWITHOUT_ESCALATION_USD\tTOKENS_SAVED\tSEMANTIC_HITS\n", upper(by))
		for _, r := range rows {
			esc := "-"
			if r.EscalationRate != nil {
				esc = strconv.FormatFloat(100**r.EscalationRate, 'f', 1, 64) + "%"
			}
			fmt.Fprintf(w, "%s\t%d\t%.4f\t%s\t%s\t%s\t%s\t%s\t%.4f\t%d\t%d\n", orDash(r.Group), r.Calls, r.CostUSD,
				usd(r.CostPerCallUSD), usd(r.CostPerValidatedUSD), usd(r.CostPerGoodUSD), usd(r.CostPerPassingCaseUSD),
				esc, r.CostWithoutEscalationUSD, r.TokensSaved, r.SemanticHits)
		}
	})
}

func usd(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', 6, 64)
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
