package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"

	"github.com/gantry-dev/gantry"
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
		return err
	}
	_, err = db.write.ExecContext(ctx, `INSERT INTO tokens (name, hash, role, envs, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		t.Name, t.Hash, t.Role, string(b), t.CreatedBy, timeArg(t.CreatedAt))
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed: tokens.name") {
		return gantry.Errorf(gantry.ECONFLICT, "token %q already exists", t.Name)
	}
	return internal("create token", err)
}

const tokenColumns = `name, hash, role, envs, created_by, created_at`

func scanToken(row interface{ Scan(...any) error }) (*gantry.Token, error) {
	var t gantry.Token
	var envs string
	if err := row.Scan(&t.Name, &t.Hash, &t.Role, &envs, &t.CreatedBy, timeCol{&t.CreatedAt}); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(envs), &t.Envs); err != nil {
		return nil, err
	}
	if len(t.Envs) == 0 {
		t.Envs = nil
	}
	return &t, nil
}

// FindTokenByHash returns the token with that hash, or ENOTFOUND.
func (db *DB) FindTokenByHash(ctx context.Context, hash string) (*gantry.Token, error) {
	t, err := scanToken(db.read.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "unknown token")
	}
	return t, internal("find token", err)
}

// ListTokens returns every token, by name.
func (db *DB) ListTokens(ctx context.Context) ([]*gantry.Token, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY name`)
	if err != nil {
		return nil, internal("list tokens", err)
	}
	defer rows.Close()
	var out []*gantry.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, internal("list tokens", err)
		}
		out = append(out, t)
	}
	return out, internal("list tokens", rows.Err())
}

// RevokeToken deletes the named token, or returns ENOTFOUND.
func (db *DB) RevokeToken(ctx context.Context, name string) error {
	res, err := db.write.ExecContext(ctx, `DELETE FROM tokens WHERE name = ?`, name)
	if err != nil {
		return internal("revoke token", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gantry.Errorf(gantry.ENOTFOUND, "token %q not found", name)
	}
	return nil
}
