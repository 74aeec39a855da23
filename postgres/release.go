package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry"
	"github.com/jackc/pgx/v5"
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
	err = db.update(ctx, func(tx pgx.Tx) error {
		if err := requireApp(ctx, tx, r.App); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO releases
			(id, app, version, commit_sha, ref, artifacts, manifest, manifest_digest, builder, created_at, committed_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING`,
			r.ID, r.App, r.Version, r.Commit, r.Ref, string(artifacts), manifest, r.ManifestDigest, r.Builder,
			timeArg(r.CreatedAt), timeArg(r.CommittedAt))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		var app string
		if err := tx.QueryRow(ctx, `SELECT app FROM releases WHERE id = $1`, r.ID).Scan(&app); err != nil {
			return err
		}
		return gantry.Errorf(gantry.ECONFLICT, "release %s already exists (app %q); releases are never changed", r.ID, app)
	})
	return internal("create release", err)
}

const releaseColumns = `id, app, version, commit_sha, ref, artifacts, manifest, manifest_digest, builder, created_at, committed_at`

// newestFirst orders releases; seq, the insertion order, breaks ties
// between equal times.
const newestFirst = ` ORDER BY created_at DESC, seq DESC`

// FindRelease's queries.
const (
	releaseByID      = `SELECT ` + releaseColumns + ` FROM releases WHERE app = $1 AND id = $2`
	releaseByVersion = `SELECT ` + releaseColumns + ` FROM releases WHERE app = $1 AND version = $2` + newestFirst + ` LIMIT 1`
	// A range on the primary key (byte order, COLLATE "C"): the index
	// answers it, where LIKE with a bound pattern would scan.
	releaseByRange = `SELECT ` + releaseColumns + ` FROM releases
		WHERE id >= $2 AND id < $3 AND app = $1 ORDER BY id LIMIT 3`
	// For a prefix whose last byte cannot be incremented into valid UTF-8.
	releaseByPrefix = `SELECT ` + releaseColumns + ` FROM releases
		WHERE app = $1 AND starts_with(id, $2) ORDER BY id LIMIT 3`
)

func scanRelease(row pgx.Row) (*gantry.Release, error) {
	var r gantry.Release
	var artifacts []byte
	if err := row.Scan(&r.ID, &r.App, &r.Version, &r.Commit, &r.Ref, &artifacts, &r.Manifest,
		&r.ManifestDigest, &r.Builder, timeCol{&r.CreatedAt}, timeCol{&r.CommittedAt}); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(artifacts, &r.Artifacts); err != nil {
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
	err := db.view(ctx, func(tx pgx.Tx) error {
		for _, q := range []string{releaseByID, releaseByVersion} {
			r, err := scanRelease(tx.QueryRow(ctx, q, app, ref))
			if err == nil {
				found = r
				return nil
			} else if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		if len(ref) < minPrefix {
			return gantry.Errorf(gantry.ENOTFOUND, "release %q of app %q not found", ref, app)
		}
		q, args := releaseByPrefix, []any{app, ref}
		// The IDs that start with ref are those in [ref, ref with its last
		// byte incremented). An ASCII byte below 0x7f stays valid UTF-8
		// when incremented, which PostgreSQL requires of text.
		if last := ref[len(ref)-1]; last < 0x7f {
			upper := []byte(ref)
			upper[len(upper)-1]++
			q, args = releaseByRange, []any{app, ref, string(upper)}
		}
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		matches, err := collect(rows, func(r pgx.Rows) (*gantry.Release, error) { return scanRelease(r) })
		if err != nil {
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
		args = append(args, f.App)
		where = append(where, fmt.Sprintf("app = $%d", len(args)))
	}
	if f.Commit != "" {
		args = append(args, f.Commit)
		where = append(where, fmt.Sprintf("commit_sha = $%d", len(args)))
	}
	q := `SELECT ` + releaseColumns + ` FROM releases`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, clampLimit(f.Limit))
	q += newestFirst + fmt.Sprintf(` LIMIT $%d`, len(args))
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, internal("list releases", err)
	}
	out, err := collect(rows, func(r pgx.Rows) (*gantry.Release, error) { return scanRelease(r) })
	return out, internal("list releases", err)
}
