package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry"
	"github.com/jackc/pgx/v5"
)

// CreateDeployment stores d and sets d.ID; a zero CreatedAt is set to now.
// IDs increase and are never reused. d.Steps are not stored: steps are
// journaled one by one with AppendStep.
func (db *DB) CreateDeployment(ctx context.Context, d *gantry.Deployment) error {
	return db.createDeployment(ctx, d, nil)
}

// StartDeployment stores d with its steps and names it in the lock d.Actor
// holds on its environment, in one transaction: ENOTFOUND, and nothing
// stored, when d.Actor does not hold it. Steps get their Seq (1, 2, …) and
// a zero StartedAt is set to now.
func (db *DB) StartDeployment(ctx context.Context, d *gantry.Deployment) error {
	now := db.now()
	steps := make([]gantry.Step, len(d.Steps))
	err := db.createDeployment(ctx, d, func(tx pgx.Tx, id int64) error {
		if err := nameLock(ctx, tx, d.App, d.Env, d.Actor, id, now); err != nil {
			return err
		}
		// The deployment is new: no other transaction appends to it.
		for i, s := range d.Steps {
			if s.StartedAt.IsZero() {
				s.StartedAt = now
			}
			if err := appendStep(ctx, tx, id, &s); err != nil {
				return err
			}
			steps[i] = s
		}
		return nil
	})
	if err == nil {
		d.Steps = steps
	}
	return err
}

// createDeployment stores d, then runs also (when set) in the same
// transaction with d's new ID.
func (db *DB) createDeployment(ctx context.Context, d *gantry.Deployment, also func(tx pgx.Tx, id int64) error) error {
	if d.App == "" || d.Env == "" {
		return gantry.Errorf(gantry.EINVALID, "deployment needs an app and an environment")
	}
	createdAt := d.CreatedAt
	if createdAt.IsZero() {
		createdAt = db.now()
	}
	var id int64
	err := db.update(ctx, func(tx pgx.Tx) error {
		if err := requireApp(ctx, tx, d.App); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `INSERT INTO deployments
			(app, env, kind, release_id, version, from_release, from_env, slot, strategy, actor, state, error,
			 created_at, finished_at, pause_after, only_service, group_done)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id`,
			d.App, d.Env, d.Kind, d.ReleaseID, d.Version, d.FromRelease, d.FromEnv, d.Slot, d.Strategy, d.Actor,
			d.State, d.Error, timeArg(createdAt), timeArg(d.FinishedAt), d.PauseAfter, d.Only, d.GroupDone).Scan(&id)
		if err != nil || also == nil {
			return err
		}
		return also(tx, id)
	})
	if err != nil {
		return internal("create deployment", err)
	}
	// Only now, so that a failed create leaves d as it was.
	d.ID, d.CreatedAt = id, createdAt
	return nil
}

// UpdateDeployment writes d's state, error, finish time, slot, the release
// it replaced and the group its rollout has reached, and nothing else: what
// it was asked to do is fixed when it is created.
func (db *DB) UpdateDeployment(ctx context.Context, d *gantry.Deployment) error {
	err := db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE deployments SET state = $1, error = $2, finished_at = $3, slot = $4, from_release = $5, group_done = $6
			WHERE id = $7`,
			d.State, d.Error, timeArg(d.FinishedAt), d.Slot, d.FromRelease, d.GroupDone, d.ID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return gantry.Errorf(gantry.ENOTFOUND, "deployment #%d not found", d.ID)
		}
		return nil
	})
	return internal("update deployment", err)
}

const deploymentColumns = `id, app, env, kind, release_id, version, from_release, from_env, slot, strategy, actor,
	state, error, created_at, finished_at, pause_after, only_service, group_done`

func scanDeployment(row pgx.Row) (*gantry.Deployment, error) {
	var d gantry.Deployment
	err := row.Scan(&d.ID, &d.App, &d.Env, &d.Kind, &d.ReleaseID, &d.Version, &d.FromRelease, &d.FromEnv,
		&d.Slot, &d.Strategy, &d.Actor, &d.State, &d.Error, timeCol{&d.CreatedAt}, timeCol{&d.FinishedAt},
		&d.PauseAfter, &d.Only, &d.GroupDone)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// FindDeployment returns deployment id with its steps in journal order, or
// ENOTFOUND.
func (db *DB) FindDeployment(ctx context.Context, id int64) (*gantry.Deployment, error) {
	var d *gantry.Deployment
	// One snapshot: the steps belong to the deployment as read.
	err := db.view(ctx, func(tx pgx.Tx) error {
		var err error
		d, err = scanDeployment(tx.QueryRow(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE id = $1`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return gantry.Errorf(gantry.ENOTFOUND, "deployment #%d not found", id)
		} else if err != nil {
			return err
		}
		d.Steps, err = listSteps(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, internal("find deployment", err)
	}
	return d, nil
}

// listDeploymentsQuery builds ListDeployments' query. Each filter
// combination has an index ending in id, so the rows come out of the index
// newest first and LIMIT stops the scan early: no sort over the whole
// history.
func listDeploymentsQuery(f gantry.DeploymentFilter) (string, []any) {
	var where []string
	var args []any
	add := func(col string, arg any) {
		args = append(args, arg)
		where = append(where, fmt.Sprintf("%s $%d", col, len(args)))
	}
	if f.App != "" {
		add("app =", f.App)
	}
	if f.Env != "" {
		add("env =", f.Env)
	}
	if f.State != "" {
		add("state =", f.State)
	}
	if f.BeforeID > 0 {
		add("id <", f.BeforeID)
	}
	q := `SELECT ` + deploymentColumns + ` FROM deployments`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, clampLimit(f.Limit))
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, len(args))
	return q, args
}

// ListDeployments returns deployments newest first (by ID), without steps.
// Zero filter fields match everything; BeforeID pages back through history;
// f.Limit defaults to 50 and is capped at 1000.
func (db *DB) ListDeployments(ctx context.Context, f gantry.DeploymentFilter) ([]*gantry.Deployment, error) {
	q, args := listDeploymentsQuery(f)
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, internal("list deployments", err)
	}
	out, err := collect(rows, func(r pgx.Rows) (*gantry.Deployment, error) { return scanDeployment(r) })
	return out, internal("list deployments", err)
}
