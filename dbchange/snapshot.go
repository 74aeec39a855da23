package dbchange

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/lazyre"
)

// DefaultKeepSnapshots is the retention when a binding sets none.
const DefaultKeepSnapshots = 10

// Snapshots are pg_dump directories (-Fd, dumped in parallel with -j) named
// <time>-<reason>, each beside a <name>.json holding its gantry.Snapshot.
// The ledger schema is left out of them so that a restore never rewinds the
// record of what happened.

var slugRE = lazyre.New(`[^a-zA-Z0-9_.]+`)

// tool returns the path of a PostgreSQL client program.
func (c *Changer) tool(name string) string {
	if c.BinDir != "" {
		return filepath.Join(c.BinDir, name)
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return filepath.Join("/usr/lib/postgresql/15/bin", name)
}

func (c *Changer) jobs() string {
	if c.Jobs > 0 {
		return strconv.Itoa(c.Jobs)
	}
	return "2"
}

// run runs a client program; its output goes into the error, never the
// URL (which is passed in the environment-free -d argument and not echoed).
func run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	dieWithServer(cmd)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v: %s", filepath.Base(name), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// Snapshot dumps the database now, under the migration lock.
func (c *Changer) Snapshot(ctx context.Context, b gantry.DatabaseBinding, reason string) (*gantry.Snapshot, error) {
	_, release, err := openLocked(ctx, b)
	if err != nil {
		return nil, err
	}
	defer release()
	return c.snapshotLocked(ctx, b, reason)
}

func (c *Changer) snapshotLocked(ctx context.Context, b gantry.DatabaseBinding, reason string) (*gantry.Snapshot, error) {
	if b.SnapshotDir == "" {
		return nil, gantry.Errorf(gantry.EINVALID, "no snapshot directory for %s/%s", b.App, b.Env)
	}
	if err := os.MkdirAll(b.SnapshotDir, 0o700); err != nil {
		return nil, err
	}
	now := c.now()
	// The counter is read before the dump: a write during it counts as
	// one since, which is what a restore of this snapshot could lose.
	var writes *gantry.WriteCount
	if db, err := openDB(b); err == nil {
		writes, _ = writeCount(ctx, db)
		db.Close()
	}
	name := now.Format("20060102T150405.000Z") + "-" + strings.Trim(slugRE.ReplaceAllString(reason, "-"), "-")
	name = strings.Replace(name, ".", "", 1) // keep the name free of the first dot: .json is ours
	dir := filepath.Join(b.SnapshotDir, name)
	start := c.now()
	if err := run(ctx, c.tool("pg_dump"), "-Fd", "-j", c.jobs(), "-N", ledgerSchema, "-f", dir, "-d", b.URL); err != nil {
		os.RemoveAll(dir)
		return nil, gantry.Errorf(gantry.EFAILED, "snapshot of %s/%s: %v", b.App, b.Env, err)
	}
	s := &gantry.Snapshot{Name: name, App: b.App, Env: b.Env, Reason: reason, CreatedAt: now, Size: dirSize(dir), Writes: writes}
	if db, err := openDB(b); err == nil {
		s.SchemaVersion, _ = c.schemaVersion(ctx, b, db)
		db.Close()
	}
	meta, _ := json.MarshalIndent(s, "", "  ")
	if err := os.WriteFile(filepath.Join(b.SnapshotDir, name+".json"), meta, 0o600); err != nil {
		return nil, err
	}
	c.logger().Info("snapshot", "app", b.App, "env", b.Env, "snapshot", name, "bytes", s.Size, "took", c.now().Sub(start))
	c.prune(b)
	return s, nil
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// prune applies the retention: the newest KeepSnapshots stay.
func (c *Changer) prune(b gantry.DatabaseBinding) {
	keep := b.KeepSnapshots
	if keep <= 0 {
		keep = DefaultKeepSnapshots
	}
	snaps, err := c.list(b)
	if err != nil {
		return
	}
	for i := keep; i < len(snaps); i++ {
		name := snaps[i].Name
		_ = os.RemoveAll(filepath.Join(b.SnapshotDir, name))
		_ = os.Remove(filepath.Join(b.SnapshotDir, name+".json"))
		c.logger().Info("snapshot pruned", "app", b.App, "env", b.Env, "snapshot", name)
	}
	// A dump a crash interrupted has no .json (written last): it is no
	// snapshot, and would hold its disk for ever.
	ents, _ := os.ReadDir(b.SnapshotDir)
	for _, e := range ents {
		if !e.IsDir() || !snapshotNameRE.MatchString(e.Name()) {
			continue
		}
		if _, err := os.Stat(filepath.Join(b.SnapshotDir, e.Name()+".json")); errors.Is(err, fs.ErrNotExist) {
			_ = os.RemoveAll(filepath.Join(b.SnapshotDir, e.Name()))
			c.logger().Warn("unfinished snapshot removed", "app", b.App, "env", b.Env, "snapshot", e.Name())
		}
	}
}

// snapshotNameRE matches the names snapshotLocked gives its dumps.
var snapshotNameRE = lazyre.New(`^\d{8}T\d{9}Z-`)

// Snapshots lists the environment's snapshots, newest first.
func (c *Changer) Snapshots(_ context.Context, b gantry.DatabaseBinding) ([]*gantry.Snapshot, error) {
	return c.list(b)
}

func (c *Changer) list(b gantry.DatabaseBinding) ([]*gantry.Snapshot, error) {
	out := []*gantry.Snapshot{}
	if b.SnapshotDir == "" {
		return out, nil
	}
	ents, err := os.ReadDir(b.SnapshotDir)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	} else if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(b.SnapshotDir, e.Name()))
		if err != nil {
			continue
		}
		s := &gantry.Snapshot{}
		if json.Unmarshal(data, s) == nil && s.Name != "" {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name > out[j].Name })
	return out, nil
}

// Restore replaces the database's content with a snapshot's. Everything but
// the ledger is dropped first, so objects created after the snapshot (a
// version schema, a new table) do not survive it.
func (c *Changer) Restore(ctx context.Context, b gantry.DatabaseBinding, name string) (*gantry.MigrationRecord, error) {
	db, release, err := openLocked(ctx, b)
	if err != nil {
		return nil, err
	}
	defer release()
	if err := c.restoreLocked(ctx, b, db, name); err != nil {
		return nil, err
	}
	rec := &gantry.MigrationRecord{App: b.App, Env: b.Env, Engine: b.Engine, Phase: gantry.PhaseRestore, Snapshot: name}
	rec.Migration, _ = c.schemaVersion(ctx, b, db)
	return rec, c.record(ctx, db, rec)
}

func (c *Changer) restoreLocked(ctx context.Context, b gantry.DatabaseBinding, db *sql.DB, name string) error {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return gantry.Errorf(gantry.EINVALID, "bad snapshot name %q", name)
	}
	dir := filepath.Join(b.SnapshotDir, name)
	if fi, err := os.Stat(filepath.Join(dir, "toc.dat")); err != nil || fi.IsDir() {
		return gantry.Errorf(gantry.ENOTFOUND, "no snapshot %q for %s/%s", name, b.App, b.Env)
	}
	c.logger().Warn("restore", "app", b.App, "env", b.Env, "snapshot", name)
	if err := dropAll(ctx, db); err != nil {
		return fmt.Errorf("clear database before restore: %w", err)
	}
	if err := run(ctx, c.tool("pg_restore"), "-j", c.jobs(), "--exit-on-error", "-d", b.URL, dir); err != nil {
		return gantry.Errorf(gantry.EFAILED, "restore %s: %v", name, err)
	}
	return nil
}

// dropAll drops every schema but the ledger's and the system's, then
// recreates an empty public schema, which pg_dump does not create.
func dropAll(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT nspname FROM pg_namespace
		WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema' AND nspname <> $1`, ledgerSchema)
	if err != nil {
		return err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, n := range names {
		if _, err := db.ExecContext(ctx, `DROP SCHEMA `+quoteIdent(n)+` CASCADE`); err != nil {
			return fmt.Errorf("drop schema %s: %w", n, err)
		}
	}
	_, err = db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS public`)
	return err
}

// schemaVersion names the latest migration applied to the database, for
// snapshots and copies' provenance.
func (c *Changer) schemaVersion(ctx context.Context, b gantry.DatabaseBinding, db *sql.DB) (string, error) {
	if b.Engine == gantry.MigrationEngineCommand {
		// The app keeps its own history: its schema is known by its
		// fingerprint.
		return fingerprint(ctx, db)
	}
	eng, err := c.engine(b)
	if err != nil {
		return "", err
	}
	applied, _, err := eng.state(ctx, db)
	if err != nil {
		return "", err
	}
	if len(applied) == 0 {
		// No migration of Gantry's made this schema (empty migrations,
		// or tables made by hand): its fingerprint names it.
		return fingerprint(ctx, db)
	}
	return applied[len(applied)-1], nil
}
