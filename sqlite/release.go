package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry"
)

// minPrefix is the shortest release ID prefix FindRelease accepts, so that a
// short typo does not pick an arbitrary release.
const minPrefix = 4

// CreateRelease stores r; a zero CreatedAt is set to now. Releases are
// immutable: an existing ID is ECONFLICT, whatever its content.
func (db *DB) CreateRelease(ctx context.Context, r *gantry.Release) error {
	if r.ID == "" || r.App == "" {
		return gantry.Errorf(gantry.EINVALID, "release needs an ID and an app")
	}
	artifacts, err := json.Marshal(r.Artifacts)
	if err != nil {
		return internal("create release", err)
	}
	manifest := r.Manifest
	if manifest == nil {
		manifest = []byte{} // the column is NOT NULL; nil would bind as NULL
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = db.now()
	}
	err = db.update(ctx, func(tx *sql.Tx) error {
		if err := requireApp(ctx, tx, r.App); err != nil {
			return err
		}
		var app string
		err := tx.QueryRowContext(ctx, `SELECT app FROM releases WHERE id = ?`, r.ID).Scan(&app)
		if err == nil {
			return gantry.Errorf(gantry.ECONFLICT, "release %s already exists (app %q); releases are never changed", r.ID, app)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO releases
			(id, app, version, commit_sha, ref, artifacts, manifest, manifest_digest, builder, created_at, committed_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.App, r.Version, r.Commit, r.Ref, string(artifacts), manifest, r.ManifestDigest, r.Builder,
			timeArg(r.CreatedAt), timeArg(r.CommittedAt))
		return err
	})
	return internal("create release", err)
}

const releaseColumns = `id, app, version, commit_sha, ref, artifacts, manifest, manifest_digest, builder, created_at, committed_at`

// newestFirst orders releases; rowid breaks ties between equal times.
const newestFirst = ` ORDER BY created_at DESC, rowid DESC`

// FindRelease's queries, named so that TestQueryPlans checks these very ones.
const (
	releaseByID      = `SELECT ` + releaseColumns + ` FROM releases WHERE app = ? AND id = ?`
	releaseByVersion = `SELECT ` + releaseColumns + ` FROM releases WHERE app = ? AND version = ?` + newestFirst + ` LIMIT 1`
	// "+app" keeps the planner from preferring the app index, which would
	// read all of the app's releases and sort them.
	releaseByPrefix = `SELECT ` + releaseColumns + ` FROM releases
		WHERE id >= ? AND id < ? AND +app = ? ORDER BY id LIMIT 3`
)

func scanRelease(row interface{ Scan(...any) error }) (*gantry.Release, error) {
	var r gantry.Release
	var artifacts string
	if err := row.Scan(&r.ID, &r.App, &r.Version, &r.Commit, &r.Ref, &artifacts, &r.Manifest,
		&r.ManifestDigest, &r.Builder, timeCol{&r.CreatedAt}, timeCol{&r.CommittedAt}); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(artifacts), &r.Artifacts); err != nil {
		return nil, fmt.Errorf("release %s artifacts: %w", r.ID, err)
	}
	return &r, nil
}

// FindRelease returns app's release named by ref: the release with that ID,
// else the newest release of that version, else the one release whose ID
// starts with ref (at least 4 characters). It returns ENOTFOUND otherwise,
// also when a prefix is ambiguous, naming the candidates.
func (db *DB) FindRelease(ctx context.Context, app, ref string) (*gantry.Release, error) {
	var found *gantry.Release
	err := db.view(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{releaseByID, releaseByVersion} {
			r, err := scanRelease(tx.QueryRowContext(ctx, q, app, ref))
			if err == nil {
				found = r
				return nil
			} else if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if len(ref) < minPrefix {
			return gantry.Errorf(gantry.ENOTFOUND, "release %q of app %q not found", ref, app)
		}
		// The IDs that start with ref are those in [ref, ref with its last
		// byte incremented), in SQLite's bytewise text order: a range the
		// primary key's index answers, where LIKE or GLOB with a bound
		// pattern would scan. (The last byte of UTF-8 text is never 0xff.)
		upper := []byte(ref)
		upper[len(upper)-1]++
		rows, err := tx.QueryContext(ctx, releaseByPrefix, ref, string(upper), app)
		if err != nil {
			return err
		}
		defer rows.Close()
		var matches []*gantry.Release
		for rows.Next() {
			r, err := scanRelease(rows)
			if err != nil {
				return err
			}
			matches = append(matches, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		found, err = gantry.OneRelease(app, ref, matches)
		return err
	})
	if err != nil {
		return nil, internal("find release", err)
	}
	return found, nil
}

// ListReleases returns releases newest first, of f.App and of f.Commit when
// set; f.Limit defaults to 50 and is capped at 1000.
func (db *DB) ListReleases(ctx context.Context, f gantry.ReleaseFilter) ([]*gantry.Release, error) {
	var where []string
	var args []any
	if f.App != "" {
		where, args = append(where, "app = ?"), append(args, f.App)
	}
	if f.Commit != "" {
		where, args = append(where, "commit_sha = ?"), append(args, f.Commit)
	}
	q := `SELECT ` + releaseColumns + ` FROM releases`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += newestFirst + ` LIMIT ?`
	args = append(args, clampLimit(f.Limit))
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, internal("list releases", err)
	}
	defer rows.Close()
	var out []*gantry.Release
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return nil, internal("list releases", err)
		}
		out = append(out, r)
	}
	return out, internal("list releases", rows.Err())
}
