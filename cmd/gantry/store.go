package main

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/postgres"
	"github.com/gantry-dev/gantry/sqlite"
)

// stateStore is everything the server keeps in its store: the Store of
// deployments and the access-control services beside it. Every backend
// `--store` offers must be all of it, so that the server never runs with
// part of its state somewhere else.
type stateStore interface {
	gantry.Store
	gantry.TokenStore
	gantry.AuditLog
	gantry.SecretStore
}

// openState opens the store that --store names: "" for the SQLite file in
// dataDir, or a postgres:// URL (its optional schema parameter names the
// PostgreSQL schema, default "gantry").
func openState(ctx context.Context, storeURL, dataDir string) (stateStore, error) {
	if storeURL == "" {
		db, err := sqlite.Open(ctx, filepath.Join(dataDir, "state.db"))
		if err != nil {
			return nil, err // not a nil *sqlite.DB in a non-nil interface
		}
		return db, nil
	}
	u, err := url.Parse(storeURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// Not err itself: url's message repeats the URL, password included.
		return nil, gantry.Errorf(gantry.EINVALID, "--store: want a postgres://user@host:port/db URL (or nothing, for SQLite in --data)")
	}
	// Refuse before connecting: a server with part of its state (tokens,
	// the audit trail, secrets) nowhere would half-work.
	if missing := missingAbilities(any((*postgres.DB)(nil))); len(missing) > 0 {
		return nil, gantry.Errorf(gantry.EINVALID, "--store %s: the PostgreSQL store does not support %s yet; run without --store to keep the state in SQLite under --data",
			u.Redacted(), strings.Join(missing, ", "))
	}
	q := u.Query()
	schema := q.Get("schema")
	q.Del("schema") // ours, not a PostgreSQL connection parameter
	u.RawQuery = q.Encode()
	db, err := postgres.Open(ctx, u.String(), schema)
	if err != nil {
		return nil, err
	}
	st, ok := any(db).(stateStore)
	if !ok { // unreachable after missingAbilities; kept so a change there cannot half-wire
		db.Close()
		return nil, gantry.Errorf(gantry.EINTERNAL, "postgres store is not a complete state store")
	}
	return st, nil
}

// missingAbilities names what the server needs and s lacks.
func missingAbilities(s any) []string {
	var missing []string
	if _, ok := s.(gantry.Store); !ok {
		missing = append(missing, "deployments (gantry.Store)")
	}
	if _, ok := s.(gantry.TokenStore); !ok {
		missing = append(missing, "API tokens (gantry.TokenStore)")
	}
	if _, ok := s.(gantry.AuditLog); !ok {
		missing = append(missing, "the audit trail (gantry.AuditLog)")
	}
	if _, ok := s.(gantry.SecretStore); !ok {
		missing = append(missing, "stored secrets (gantry.SecretStore)")
	}
	return missing
}

// describeStore is how the server's start-up line names its store, without
// a password.
func describeStore(storeURL, dataDir string) string {
	if storeURL == "" {
		return "sqlite:" + filepath.Join(dataDir, "state.db")
	}
	if u, err := url.Parse(storeURL); err == nil {
		return u.Redacted()
	}
	return "postgres"
}
