package postgres

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/gantry-dev/gantry"
	"github.com/jackc/pgx/v5"
)

var _ gantry.TokenStore = (*DB)(nil)

// CreateToken stores t (its hash, never a secret); a zero CreatedAt is set
// to now. It returns ECONFLICT when the name is taken.
func (db *DB) CreateToken(ctx context.Context, t *gantry.Token) error {
	if t.Name == "" || t.Hash == "" || t.Role == "" {
		return gantry.Errorf(gantry.EINVALID, "a token needs a name, a role and a hash")
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = db.now()
	}
	envs := t.Envs
	if envs == nil {
		envs = []string{}
	}
	b, err := json.Marshal(envs)
	if err != nil {
		return internal("create token", err)
	}
	tag, err := db.pool.Exec(ctx, `INSERT INTO tokens (name, hash, role, envs, created_by, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING`,
		t.Name, t.Hash, t.Role, string(b), t.CreatedBy, timeArg(t.CreatedAt))
	if err != nil {
		return internal("create token", err)
	}
	if tag.RowsAffected() == 0 {
		return gantry.Errorf(gantry.ECONFLICT, "token %q already exists", t.Name)
	}
	return nil
}

const tokenColumns = `name, hash, role, envs, created_by, created_at`

func scanToken(row pgx.Row) (*gantry.Token, error) {
	var t gantry.Token
	var envs []byte
	if err := row.Scan(&t.Name, &t.Hash, &t.Role, &envs, &t.CreatedBy, timeCol{&t.CreatedAt}); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(envs, &t.Envs); err != nil {
		return nil, err
	}
	if len(t.Envs) == 0 {
		t.Envs = nil // nil, as the caller gave it: every environment
	}
	return &t, nil
}

// FindTokenByHash returns the token with that hash, or ENOTFOUND.
func (db *DB) FindTokenByHash(ctx context.Context, hash string) (*gantry.Token, error) {
	t, err := scanToken(db.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "unknown token")
	}
	return t, internal("find token", err)
}

// ListTokens returns every token, by name.
func (db *DB) ListTokens(ctx context.Context) ([]*gantry.Token, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY name`)
	if err != nil {
		return nil, internal("list tokens", err)
	}
	out, err := collect(rows, func(r pgx.Rows) (*gantry.Token, error) { return scanToken(r) })
	return out, internal("list tokens", err)
}

// RevokeToken deletes the named token, or returns ENOTFOUND.
func (db *DB) RevokeToken(ctx context.Context, name string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM tokens WHERE name = $1`, name)
	if err != nil {
		return internal("revoke token", err)
	}
	if tag.RowsAffected() == 0 {
		return gantry.Errorf(gantry.ENOTFOUND, "token %q not found", name)
	}
	return nil
}
