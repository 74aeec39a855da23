package postgres

import (
	"context"

	"github.com/gantry-dev/gantry"
	"github.com/jackc/pgx/v5"
)

// periodWhere selects a period of an app's deployments (of one environment
// when env is set) through deployments_app_time or deployments_app_env_time.
// One query serves both: an empty $2 matches every environment.
const periodWhere = `d.app = $1 AND ($2 = '' OR d.env = $2) AND d.created_at >= $3 AND d.created_at < $4`

// periodDeployments reads a period oldest first, in the order of the index
// (TestQueryPlans checks that no sort happens).
const periodDeployments = `SELECT ` + deploymentColumns + ` FROM deployments d WHERE ` + periodWhere + ` ORDER BY d.created_at, d.id`

// ListDeploymentsIn returns the deployments of f.App (of f.Env when set)
// created in [f.From, f.To), oldest first, each with its steps named in
// f.Steps, read in one transaction.
func (db *DB) ListDeploymentsIn(ctx context.Context, f gantry.PeriodFilter) ([]*gantry.Deployment, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	args := []any{f.App, f.Env, timeArg(f.From), timeArg(f.To)}
	var out []*gantry.Deployment
	err := db.view(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, periodDeployments, args...)
		if err != nil {
			return err
		}
		if out, err = collect(rows, func(r pgx.Rows) (*gantry.Deployment, error) { return scanDeployment(r) }); err != nil {
			return err
		}
		if len(f.Steps) == 0 || len(out) == 0 {
			return nil
		}
		byID := make(map[int64]*gantry.Deployment, len(out))
		for _, d := range out {
			byID[d.ID] = d
		}
		srows, err := tx.Query(ctx, `SELECT s.deployment_id, s.seq, s.name, s.state, s.detail, s.started_at, s.ended_at
			FROM deployments d JOIN steps s ON s.deployment_id = d.id
			WHERE `+periodWhere+` AND s.name = ANY($5) ORDER BY d.created_at, d.id, s.seq`, append(args, f.Steps)...)
		if err != nil {
			return err
		}
		_, err = collect(srows, func(r pgx.Rows) (struct{}, error) {
			var id int64
			var s gantry.Step
			err := r.Scan(&id, &s.Seq, &s.Name, &s.State, &s.Detail, timeCol{&s.StartedAt}, timeCol{&s.EndedAt})
			if d := byID[id]; err == nil && d != nil {
				d.Steps = append(d.Steps, s)
			}
			return struct{}{}, err
		})
		return err
	})
	if err != nil {
		return nil, internal("list deployments of a period", err)
	}
	return out, nil
}
