package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"gantry/cluster/command"
	"gantry/cluster/state"
	"gantry/config"
	"gantry/eval/dataset"
)

// seedDataset pushes the example configuration's dataset into a dev
// cluster that serves a feature evaluated on it and does not hold it yet,
// so `gantry eval run` works on `make run` at once. Pushed only when
// absent: a dataset the user changed is theirs.
func (r *replica) seedDataset(ctx context.Context, st *state.State, actor string) error {
	d, err := dataset.Parse(config.ExampleDatasetFile, config.ExampleDataset)
	if err != nil {
		return fmt.Errorf("example dataset: %w", err)
	}
	used := slices.ContainsFunc(st.Config.Features, func(f config.Feature) bool { return f.Eval != nil && f.Eval.Dataset == d.Name })
	if _, ok := st.Eval.Datasets[d.Name]; ok || !used {
		return nil
	}
	none := 0
	env, err := command.New(command.PutDataset, command.Dataset{Dataset: d, IfVersion: &none})
	if err != nil {
		return err
	}
	env.Actor = actor
	if _, err := r.Apply(ctx, env); err != nil && !errors.Is(err, state.ErrStale) {
		return fmt.Errorf("push the example dataset: %w", err)
	}
	return nil
}
