package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gantry-dev/gantry"
	"github.com/jackc/pgx/v5"
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
	err = db.update(ctx, func(tx pgx.Tx) error {
		if err := requireApp(ctx, tx, env.App); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO environments (app, name, doc, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (app, name) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at`,
			env.App, env.Name, string(doc), timeArg(env.UpdatedAt))
		return err
	})
	return internal("put environment", err)
}

func decodeEnvironment(app, name string, doc []byte) (*gantry.Environment, error) {
	var env gantry.Environment
	if err := json.Unmarshal(doc, &env); err != nil {
		return nil, fmt.Errorf("environment %s/%s: %w", app, name, err)
	}
	// The key columns are the truth; the document only repeats them.
	env.App, env.Name = app, name
	return &env, nil
}

// FindEnvironment returns app's environment name, or ENOTFOUND.
func (db *DB) FindEnvironment(ctx context.Context, app, name string) (*gantry.Environment, error) {
	var doc []byte
	err := db.pool.QueryRow(ctx, `SELECT doc FROM environments WHERE app = $1 AND name = $2`, app, name).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
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
		q, args = `SELECT app, name, doc FROM environments WHERE app = $1 ORDER BY name`, []any{app}
	}
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, internal("list environments", err)
	}
	out, err := collect(rows, func(r pgx.Rows) (*gantry.Environment, error) {
		var a, name string
		var doc []byte
		if err := r.Scan(&a, &name, &doc); err != nil {
			return nil, err
		}
		return decodeEnvironment(a, name, doc)
	})
	return out, internal("list environments", err)
}

// DeleteEnvironment removes app's environment name, or returns ENOTFOUND.
// Its deployments stay: history outlives the environment.
func (db *DB) DeleteEnvironment(ctx context.Context, app, name string) error {
	err := db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM environments WHERE app = $1 AND name = $2`, app, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return gantry.Errorf(gantry.ENOTFOUND, "environment %q of app %q not found", name, app)
		}
		return nil
	})
	return internal("delete environment", err)
}

// RenameEnvironment renames an environment and moves its history and its
// approvals to the new name, in one transaction.
func (db *DB) RenameEnvironment(ctx context.Context, app, oldName, newName string) error {
	if oldName == "" || newName == "" {
		return gantry.Errorf(gantry.EINVALID, "rename needs an old and a new environment name")
	}
	err := db.update(ctx, func(tx pgx.Tx) error {
		// The primary key refuses a taken new name, also one created
		// concurrently; checking gives the clear message.
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM environments WHERE app = $1 AND name = $2`, app, newName).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return gantry.Errorf(gantry.ECONFLICT, "environment %q of app %q already exists", newName, app)
		}
		var doc []byte
		// FOR UPDATE: a concurrent PutEnvironment of the old name waits
		// for the rename instead of writing a row that then vanishes.
		err := tx.QueryRow(ctx, `SELECT doc FROM environments WHERE app = $1 AND name = $2 FOR UPDATE`, app, oldName).Scan(&doc)
		if errors.Is(err, pgx.ErrNoRows) {
			return gantry.Errorf(gantry.ENOTFOUND, "environment %q of app %q not found", oldName, app)
		} else if err != nil {
			return err
		}
		env, err := decodeEnvironment(app, newName, doc)
		if err != nil {
			return err
		}
		env.UpdatedAt = db.now()
		newDoc, err := json.Marshal(env.InUTC())
		if err != nil {
			return err
		}
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`UPDATE environments SET name = $1, doc = $2, updated_at = $3 WHERE app = $4 AND name = $5`, []any{newName, string(newDoc), timeArg(env.UpdatedAt), app, oldName}},
			{`UPDATE deployments SET env = $1 WHERE app = $2 AND env = $3`, []any{newName, app, oldName}},
			{`UPDATE approvals SET env = $1 WHERE app = $2 AND env = $3`, []any{newName, app, oldName}},
		} {
			if _, err := tx.Exec(ctx, q.sql, q.args...); isUniqueViolation(err) {
				// Created by another server since the check above.
				return gantry.Errorf(gantry.ECONFLICT, "environment %q of app %q already exists", newName, app)
			} else if err != nil {
				return err
			}
		}
		return renameSecrets(ctx, tx, app, oldName, newName)
	})
	return internal("rename environment", err)
}
