package postgres

import (
	"context"
	"errors"

	"github.com/gantry-dev/gantry"
	"github.com/jackc/pgx/v5"
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
	err := db.update(ctx, func(tx pgx.Tx) error {
		// ON CONFLICT rather than a prior SELECT: two servers creating
		// the same app at once get one success and one ECONFLICT, not a
		// unique violation.
		tag, err := tx.Exec(ctx, `INSERT INTO apps (name, repo, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO NOTHING`, app.Name, app.Repo, timeArg(app.CreatedAt))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return gantry.Errorf(gantry.ECONFLICT, "app %q already exists", app.Name)
		}
		return nil
	})
	return internal("create app", err)
}

const appColumns = `name, repo, created_at`

func scanApp(row pgx.Row) (*gantry.App, error) {
	var a gantry.App
	if err := row.Scan(&a.Name, &a.Repo, timeCol{&a.CreatedAt}); err != nil {
		return nil, err
	}
	return &a, nil
}

// FindApp returns the named app, or ENOTFOUND.
func (db *DB) FindApp(ctx context.Context, name string) (*gantry.App, error) {
	a, err := scanApp(db.pool.QueryRow(ctx, `SELECT `+appColumns+` FROM apps WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "app %q not found", name)
	}
	return a, internal("find app", err)
}

// ListApps returns every app, by name.
func (db *DB) ListApps(ctx context.Context) ([]*gantry.App, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+appColumns+` FROM apps ORDER BY name`)
	if err != nil {
		return nil, internal("list apps", err)
	}
	out, err := collect(rows, func(r pgx.Rows) (*gantry.App, error) { return scanApp(r) })
	return out, internal("list apps", err)
}
