package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/gantry-dev/gantry"
)

// CreateApp stores app; a zero CreatedAt is set to now. It returns ECONFLICT
// when an app of that name exists.
func (db *DB) CreateApp(ctx context.Context, app *gantry.App) error {
	if app.Name == "" {
		return gantry.Errorf(gantry.EINVALID, "app name is empty")
	}
	if app.CreatedAt.IsZero() {
		app.CreatedAt = db.now()
	}
	err := db.update(ctx, func(tx *sql.Tx) error {
		err := requireApp(ctx, tx, app.Name)
		if err == nil {
			return gantry.Errorf(gantry.ECONFLICT, "app %q already exists", app.Name)
		} else if gantry.ErrorCode(err) != gantry.ENOTFOUND {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO apps (name, repo, created_at) VALUES (?, ?, ?)`,
			app.Name, app.Repo, timeArg(app.CreatedAt))
		return err
	})
	return internal("create app", err)
}

const appColumns = `name, repo, created_at`

func scanApp(row interface{ Scan(...any) error }) (*gantry.App, error) {
	var a gantry.App
	if err := row.Scan(&a.Name, &a.Repo, timeCol{&a.CreatedAt}); err != nil {
		return nil, err
	}
	return &a, nil
}

// FindApp returns the named app, or ENOTFOUND.
func (db *DB) FindApp(ctx context.Context, name string) (*gantry.App, error) {
	a, err := scanApp(db.read.QueryRowContext(ctx, `SELECT `+appColumns+` FROM apps WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "app %q not found", name)
	}
	return a, internal("find app", err)
}

// ListApps returns every app, by name.
func (db *DB) ListApps(ctx context.Context) ([]*gantry.App, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+appColumns+` FROM apps ORDER BY name`)
	if err != nil {
		return nil, internal("list apps", err)
	}
	defer rows.Close()
	var out []*gantry.App
	for rows.Next() {
		a, err := scanApp(rows)
		if err != nil {
			return nil, internal("list apps", err)
		}
		out = append(out, a)
	}
	return out, internal("list apps", rows.Err())
}
