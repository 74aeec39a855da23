package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/artifact"
	"github.com/gantry-dev/gantry/postgres"
	"github.com/gantry-dev/gantry/sqlite"
)

// Both stores hold the whole state; a store that lacked part of it (the
// audit trail, say) would not compile here rather than half-work at run time.
var (
	_ stateStore = (*sqlite.DB)(nil)
	_ stateStore = (*postgres.DB)(nil)
)

// stateStore is everything the server keeps in its store: the Store of
// deployments and the access-control services beside it. Every backend
// `--store` offers must be all of it, so that the server never runs with
// part of its state somewhere else.
type stateStore interface {
	gantry.Store
	gantry.TokenStore
	gantry.KeyedAuditLog
	gantry.SecretStore
	gantry.DeliveryStore
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
	db, err := openPostgres(ctx, u)
	if err != nil {
		return nil, err
	}
	return db, nil
}

// openPostgres opens the PostgreSQL store of u, whose optional schema
// parameter (ours, not PostgreSQL's) names the schema.
func openPostgres(ctx context.Context, u *url.URL) (*postgres.DB, error) {
	q := u.Query()
	schema := q.Get("schema")
	q.Del("schema")
	c := *u
	c.RawQuery = q.Encode()
	return postgres.Open(ctx, c.String(), schema)
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

// stateID names the state a server keeps, as the audit head file's name is
// derived from it: SQLite's data directory, made absolute (as it always
// was, so existing head files are still found); for PostgreSQL the host,
// port, database and schema, without the user and password, which may
// change while the state stays the same.
func stateID(storeURL, dataDir string) (string, error) {
	if storeURL == "" {
		return filepath.Abs(dataDir)
	}
	u, err := url.Parse(storeURL)
	if err != nil {
		return "", gantry.Errorf(gantry.EINVALID, "--store: not a URL")
	}
	schema := u.Query().Get("schema")
	if schema == "" {
		schema = postgres.DefaultSchema
	}
	host := u.Host
	if host == "" {
		host = u.Query().Get("host")
	}
	return "postgres://" + host + u.Path + "#" + schema, nil
}

// openArtifacts opens the artifact store that --artifacts names: a
// directory (default <data>/artifacts), or "store", the PostgreSQL store's
// own, which every server on it shares.
func (s *Server) openArtifacts() (gantry.ArtifactStore, error) {
	switch s.ArtifactsAt {
	case "":
		return artifact.NewLocal(filepath.Join(s.DataDir, "artifacts"))
	case "store":
		db, ok := s.State.(*postgres.DB)
		if !ok {
			return nil, gantry.Errorf(gantry.EINVALID, "--artifacts store: artifacts are kept in the store only on PostgreSQL (--store postgres://…), where several servers share it; on SQLite they live in a directory (default <data>/artifacts)")
		}
		a := db.Artifacts()
		a.TempDir = filepath.Join(s.DataDir, "tmp")
		if err := os.MkdirAll(a.TempDir, 0o700); err != nil {
			return nil, err
		}
		return a, nil
	}
	return artifact.NewLocal(s.ArtifactsAt)
}
