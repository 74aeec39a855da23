package postgres

import (
	"context"
	"errors"

	"github.com/gantry-dev/gantry"
	"github.com/jackc/pgx/v5"
)

var _ gantry.SecretStore = (*DB)(nil)

// PutSecret stores a sealed value; the store never sees a plain one.
func (db *DB) PutSecret(ctx context.Context, app, env, name string, sealed []byte) error {
	if sealed == nil {
		sealed = []byte{} // the column is NOT NULL; nil would bind as NULL
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO secrets (app, env, name, sealed, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (app, env, name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at`,
		app, env, name, sealed, timeArg(db.now()))
	return internal("put secret", err)
}

// FindSecret returns the sealed value, or ENOTFOUND.
func (db *DB) FindSecret(ctx context.Context, app, env, name string) ([]byte, error) {
	var b []byte
	err := db.pool.QueryRow(ctx, `SELECT sealed FROM secrets WHERE app = $1 AND env = $2 AND name = $3`, app, env, name).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "secret %s is not set on %s/%s", name, app, env)
	}
	return b, internal("find secret", err)
}

// ListSecrets returns the names of an environment's secrets, sorted.
func (db *DB) ListSecrets(ctx context.Context, app, env string) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT name FROM secrets WHERE app = $1 AND env = $2 ORDER BY name`, app, env)
	if err != nil {
		return nil, internal("list secrets", err)
	}
	out, err := collect(rows, func(r pgx.Rows) (string, error) {
		var n string
		err := r.Scan(&n)
		return n, err
	})
	return out, internal("list secrets", err)
}

// DeleteSecret removes a secret, or returns ENOTFOUND.
func (db *DB) DeleteSecret(ctx context.Context, app, env, name string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM secrets WHERE app = $1 AND env = $2 AND name = $3`, app, env, name)
	if err != nil {
		return internal("delete secret", err)
	}
	if tag.RowsAffected() == 0 {
		return gantry.Errorf(gantry.ENOTFOUND, "secret %s is not set on %s/%s", name, app, env)
	}
	return nil
}

// renameSecrets moves an environment's secrets with it, inside the rename's
// transaction.
func renameSecrets(ctx context.Context, tx pgx.Tx, app, oldName, newName string) error {
	_, err := tx.Exec(ctx, `UPDATE secrets SET env = $1 WHERE app = $2 AND env = $3`, newName, app, oldName)
	return err
}
