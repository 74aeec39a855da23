package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gantry-dev/gantry"
)

// PutEnvironment creates or replaces env's record: the whole Environment, as
// one JSON document. A zero CreatedAt or UpdatedAt is set to now.
func (db *DB) PutEnvironment(ctx context.Context, env *gantry.Environment) error {
	if env.App == "" || env.Name == "" {
		return gantry.Errorf(gantry.EINVALID, "environment needs an app and a name")
	}
	now := db.now()
	if env.CreatedAt.IsZero() {
		env.CreatedAt = now
	}
	if env.UpdatedAt.IsZero() {
		env.UpdatedAt = now
	}
	doc, err := json.Marshal(env.InUTC())
	if err != nil {
		return internal("put environment", err)
	}
	err = db.update(ctx, func(tx *sql.Tx) error {
		if err := requireApp(ctx, tx, env.App); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO environments (app, name, doc, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (app, name) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at`,
			env.App, env.Name, string(doc), timeArg(env.UpdatedAt))
		return err
	})
	return internal("put environment", err)
}

func decodeEnvironment(app, name, doc string) (*gantry.Environment, error) {
	var env gantry.Environment
	if err := json.Unmarshal([]byte(doc), &env); err != nil {
		return nil, fmt.Errorf("environment %s/%s: %w", app, name, err)
	}
	// The key columns are the truth; the document only repeats them.
	env.App, env.Name = app, name
	return &env, nil
}

// FindEnvironment returns app's environment name, or ENOTFOUND.
func (db *DB) FindEnvironment(ctx context.Context, app, name string) (*gantry.Environment, error) {
	var doc string
	err := db.read.QueryRowContext(ctx, `SELECT doc FROM environments WHERE app = ? AND name = ?`, app, name).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "environment %q of app %q not found", name, app)
	} else if err != nil {
		return nil, internal("find environment", err)
	}
	env, err := decodeEnvironment(app, name, doc)
	return env, internal("find environment", err)
}

// ListEnvironments returns app's environments by name; with app "" it
// returns every app's, by app then name.
func (db *DB) ListEnvironments(ctx context.Context, app string) ([]*gantry.Environment, error) {
	q, args := `SELECT app, name, doc FROM environments ORDER BY app, name`, []any(nil)
	if app != "" {
		q, args = `SELECT app, name, doc FROM environments WHERE app = ? ORDER BY name`, []any{app}
	}
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, internal("list environments", err)
	}
	defer rows.Close()
	var out []*gantry.Environment
	for rows.Next() {
		var a, name, doc string
		if err := rows.Scan(&a, &name, &doc); err != nil {
			return nil, internal("list environments", err)
		}
		env, err := decodeEnvironment(a, name, doc)
		if err != nil {
			return nil, internal("list environments", err)
		}
		out = append(out, env)
	}
	return out, internal("list environments", rows.Err())
}

// DeleteEnvironment removes app's environment name, or returns ENOTFOUND.
// Its deployments stay: history outlives the environment.
func (db *DB) DeleteEnvironment(ctx context.Context, app, name string) error {
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM environments WHERE app = ? AND name = ?`, app, name)
		if err != nil {
			return err
		}
		return mustAffect(res, gantry.Errorf(gantry.ENOTFOUND, "environment %q of app %q not found", name, app))
	})
	return internal("delete environment", err)
}

// mustAffect returns notFound when res changed no row.
func mustAffect(res sql.Result, notFound error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound
	}
	return nil
}
