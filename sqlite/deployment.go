package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry"
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
	err := db.createDeployment(ctx, d, func(tx *sql.Tx, id int64) error {
		if err := nameLock(ctx, tx, d.App, d.Env, d.Actor, id, now); err != nil {
			return err
		}
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
func (db *DB) createDeployment(ctx context.Context, d *gantry.Deployment, also func(tx *sql.Tx, id int64) error) error {
	if d.App == "" || d.Env == "" {
		return gantry.Errorf(gantry.EINVALID, "deployment needs an app and an environment")
	}
	createdAt := d.CreatedAt
	if createdAt.IsZero() {
		createdAt = db.now()
	}
	var id int64
	err := db.update(ctx, func(tx *sql.Tx) error {
		if err := requireApp(ctx, tx, d.App); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO deployments
			(app, env, kind, release_id, version, from_release, from_env, slot, strategy, actor, state, error,
			 created_at, finished_at, pause_after, only_service, group_done)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			d.App, d.Env, d.Kind, d.ReleaseID, d.Version, d.FromRelease, d.FromEnv, d.Slot, d.Strategy, d.Actor,
			d.State, d.Error, timeArg(createdAt), timeArg(d.FinishedAt), intArg(d.PauseAfter), d.Only, intArg(d.GroupDone)).Scan(&id)
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
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE deployments SET state = ?, error = ?, finished_at = ?, slot = ?, from_release = ?, group_done = ? WHERE id = ?`,
			d.State, d.Error, timeArg(d.FinishedAt), d.Slot, d.FromRelease, intArg(d.GroupDone), d.ID)
		if err != nil {
			return err
		}
		return mustAffect(res, gantry.Errorf(gantry.ENOTFOUND, "deployment #%d not found", d.ID))
	})
	return internal("update deployment", err)
}

const deploymentColumns = `id, app, env, kind, release_id, version, from_release, from_env, slot, strategy, actor,
	state, error, created_at, finished_at, pause_after, only_service, group_done`

const deploymentByID = `SELECT ` + deploymentColumns + ` FROM deployments WHERE id = ?`

func scanDeployment(row interface{ Scan(...any) error }) (*gantry.Deployment, error) {
	var d gantry.Deployment
	err := row.Scan(&d.ID, &d.App, &d.Env, &d.Kind, &d.ReleaseID, &d.Version, &d.FromRelease, &d.FromEnv,
		&d.Slot, &d.Strategy, &d.Actor, &d.State, &d.Error, timeCol{&d.CreatedAt}, timeCol{&d.FinishedAt},
		intCol{&d.PauseAfter}, &d.Only, intCol{&d.GroupDone})
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// FindDeployment returns deployment id with its steps in journal order, or
// ENOTFOUND.
func (db *DB) FindDeployment(ctx context.Context, id int64) (*gantry.Deployment, error) {
	var d *gantry.Deployment
	// One read transaction: the steps belong to the deployment as read.
	err := db.view(ctx, func(tx *sql.Tx) error {
		var err error
		d, err = scanDeployment(tx.QueryRowContext(ctx, deploymentByID, id))
		if errors.Is(err, sql.ErrNoRows) {
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

// listDeploymentsQuery builds ListDeployments' query. It is separate so that
// a test can check its plan: each filter combination is served by an index
// that already yields id order, so LIMIT stops the scan early and no sort
// over the whole history happens.
func listDeploymentsQuery(f gantry.DeploymentFilter) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, arg any) {
		where, args = append(where, cond), append(args, arg)
	}
	if f.App != "" {
		add("app = ?", f.App)
	}
	if f.Env != "" {
		add("env = ?", f.Env)
	}
	if f.State != "" {
		add("state = ?", f.State)
	}
	if f.BeforeID > 0 {
		add("id < ?", f.BeforeID)
	}
	q := `SELECT ` + deploymentColumns + ` FROM deployments`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id DESC LIMIT ?`
	return q, append(args, clampLimit(f.Limit))
}

// ListDeployments returns deployments newest first (by ID), without steps.
// Zero filter fields match everything; BeforeID pages back through history;
// f.Limit defaults to 50 and is capped at 1000.
func (db *DB) ListDeployments(ctx context.Context, f gantry.DeploymentFilter) ([]*gantry.Deployment, error) {
	q, args := listDeploymentsQuery(f)
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, internal("list deployments", err)
	}
	defer rows.Close()
	var out []*gantry.Deployment
	for rows.Next() {
		d, err := scanDeployment(rows)
		if err != nil {
			return nil, internal("list deployments", err)
		}
		out = append(out, d)
	}
	return out, internal("list deployments", rows.Err())
}

// intArg is the column value of an optional integer: NULL for nil.
func intArg(p *int) any {
	if p == nil {
		return nil
	}
	return int64(*p)
}

// intCol scans a column written by intArg into *p (nil for NULL).
type intCol struct{ p **int }

func (c intCol) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.p = nil
	case int64:
		n := int(v)
		*c.p = &n
	default:
		return fmt.Errorf("integer column: unexpected %T", v)
	}
	return nil
}
