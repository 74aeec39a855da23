package sqlite

import (
	"context"
	"database/sql"
	"strings"

	"github.com/gantry-dev/gantry"
)

// periodQueries builds ListDeploymentsIn's two queries: the deployments of
// the period, oldest first, and the named steps of those deployments. Both
// read the period off deployments_app_time or deployments_app_env_time
// (TestQueryPlans checks it), so their cost follows the period, not the
// whole history.
func periodQueries(f gantry.PeriodFilter) (deps, steps string, args, stepArgs []any) {
	where := func(t string) string {
		w := t + `app = ? AND ` + t + `created_at >= ? AND ` + t + `created_at < ?`
		if f.Env != "" {
			w = t + `app = ? AND ` + t + `env = ? AND ` + t + `created_at >= ? AND ` + t + `created_at < ?`
		}
		return w
	}
	args = []any{f.App, timeArg(f.From), timeArg(f.To)}
	if f.Env != "" {
		args = []any{f.App, f.Env, timeArg(f.From), timeArg(f.To)}
	}
	deps = `SELECT ` + deploymentColumns + ` FROM deployments WHERE ` + where("") + ` ORDER BY created_at, id`
	if len(f.Steps) > 0 {
		steps = `SELECT s.deployment_id, s.seq, s.name, s.state, s.detail, s.started_at, s.ended_at
			FROM deployments d JOIN steps s ON s.deployment_id = d.id
			WHERE ` + where("d.") + ` AND s.name IN (?` + strings.Repeat(", ?", len(f.Steps)-1) + `)
			ORDER BY d.created_at, d.id, s.seq`
		stepArgs = append([]any{}, args...)
		for _, n := range f.Steps {
			stepArgs = append(stepArgs, n)
		}
	}
	return deps, steps, args, stepArgs
}

// ListDeploymentsIn returns the deployments of f.App (of f.Env when set)
// created in [f.From, f.To), oldest first, each with its steps named in
// f.Steps, read in one transaction.
func (db *DB) ListDeploymentsIn(ctx context.Context, f gantry.PeriodFilter) ([]*gantry.Deployment, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	deps, steps, args, stepArgs := periodQueries(f)
	var out []*gantry.Deployment
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, deps, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		byID := map[int64]*gantry.Deployment{}
		for rows.Next() {
			d, err := scanDeployment(rows)
			if err != nil {
				return err
			}
			out = append(out, d)
			byID[d.ID] = d
		}
		if err := rows.Err(); err != nil || steps == "" {
			return err
		}
		srows, err := tx.QueryContext(ctx, steps, stepArgs...)
		if err != nil {
			return err
		}
		defer srows.Close()
		for srows.Next() {
			var id int64
			var s gantry.Step
			if err := srows.Scan(&id, &s.Seq, &s.Name, &s.State, &s.Detail, timeCol{&s.StartedAt}, timeCol{&s.EndedAt}); err != nil {
				return err
			}
			if d := byID[id]; d != nil {
				d.Steps = append(d.Steps, s)
			}
		}
		return srows.Err()
	})
	if err != nil {
		return nil, internal("list deployments of a period", err)
	}
	return out, nil
}
