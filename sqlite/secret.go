package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/gantry-dev/gantry"
)

var _ gantry.SecretStore = (*DB)(nil)

// PutSecret stores a sealed value; the store never sees a plain one.
func (db *DB) PutSecret(ctx context.Context, app, env, name string, sealed []byte) error {
	_, err := db.write.ExecContext(ctx, `INSERT OR REPLACE INTO secrets (app, env, name, sealed, updated_at) VALUES (?, ?, ?, ?, ?)`,
		app, env, name, sealed, timeArg(db.now()))
	return internal("put secret", err)
}

// FindSecret returns the sealed value, or ENOTFOUND.
func (db *DB) FindSecret(ctx context.Context, app, env, name string) ([]byte, error) {
	var b []byte
	err := db.read.QueryRowContext(ctx, `SELECT sealed FROM secrets WHERE app = ? AND env = ? AND name = ?`, app, env, name).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "secret %s is not set on %s/%s", name, app, env)
	}
	return b, internal("find secret", err)
}

// ListSecrets returns the names of an environment's secrets, sorted.
func (db *DB) ListSecrets(ctx context.Context, app, env string) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT name FROM secrets WHERE app = ? AND env = ? ORDER BY name`, app, env)
	if err != nil {
		return nil, internal("list secrets", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, internal("list secrets", err)
		}
		out = append(out, n)
	}
	return out, internal("list secrets", rows.Err())
}

// DeleteSecret removes a secret, or returns ENOTFOUND.
func (db *DB) DeleteSecret(ctx context.Context, app, env, name string) error {
	res, err := db.write.ExecContext(ctx, `DELETE FROM secrets WHERE app = ? AND env = ? AND name = ?`, app, env, name)
	if err != nil {
		return internal("delete secret", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gantry.Errorf(gantry.ENOTFOUND, "secret %s is not set on %s/%s", name, app, env)
	}
	return nil
}
