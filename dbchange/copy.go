package dbchange

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lib/pq"

	"github.com/gantry-dev/gantry"
)

// Copy copies From's database into To's (which must not exist or be empty),
// for an environment cloned from another: online with pg_dump/pg_restore -j
// (CopyDump), or with CREATE DATABASE … TEMPLATE (CopyTemplate), which is
// fast but needs the source to have no other session and both on one server.
// Copying while a pgroll migration is active is refused: the copy would
// carry a half-done migration whose contract belongs to the source's slots.
//
// A database Copy creates is made under a name of its own that marks it as
// an unfinished copy (partialName), and takes To's name only once it is
// whole: a copy a crash interrupted never passes for a database that was
// there before, and the next copy into To (or DiscardCopy) drops it.
func (c *Changer) Copy(ctx context.Context, req gantry.CopyRequest) (rec *gantry.CopyRecord, rerr error) {
	method := req.Method
	if method == "" {
		method = gantry.CopyDump
	}
	if method != gantry.CopyDump && method != gantry.CopyTemplate {
		return nil, gantry.Errorf(gantry.EINVALID, "unknown copy method %q (want dump or template)", method)
	}
	// An app that migrates its own schema keeps no migrations of Gantry's
	// in flight: nothing to check but the copy itself.
	var eng engine
	if req.From.Engine != gantry.MigrationEngineCommand {
		var err error
		if eng, err = c.engine(req.From); err != nil {
			return nil, err
		}
	}
	toName, err := databaseName(req.To.URL)
	if err != nil {
		return nil, err
	}
	started := c.now()
	rec = &gantry.CopyRecord{FromApp: req.From.App, FromEnv: req.From.Env, ToApp: req.To.App, ToEnv: req.To.Env, Method: method, StartedAt: started}

	unlockTarget, err := c.takeTarget(ctx, req.To, toName)
	if err != nil {
		return nil, err
	}
	defer unlockTarget()
	into := req.To // where the data goes: To, or the partial copy
	if rec.Created, err = c.targetMissing(ctx, req.To, toName, method); err != nil {
		return nil, err
	}
	if req.Begun != nil {
		if err := req.Begun(rec); err != nil {
			return nil, err
		}
	}
	if rec.Created {
		if into.URL, err = withDatabase(req.To.URL, partialName(toName)); err != nil {
			return nil, err
		}
	} else {
		// Filled in place: marked as unfinished until it is whole, its
		// own comment put back after.
		prior, marked := c.markUnfinished(ctx, req.To, toName)
		if marked {
			defer func() { c.setComment(context.WithoutCancel(ctx), req.To, toName, prior) }()
		}
	}

	src, err := openDB(req.From)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	unlock, err := lock(ctx, src)
	if err != nil {
		return nil, err
	}
	unlocked := false
	release := func() {
		if !unlocked {
			unlock()
			unlocked = true
		}
	}
	defer release()
	if pg, ok := eng.(*pgrollEngine); ok {
		_, active, err := pg.state(ctx, src)
		if err != nil {
			return nil, err
		}
		if active != "" {
			return nil, gantry.Errorf(gantry.ECONFLICT, "copy of %s/%s refused: pgroll migration %s is active on it; contract or roll it back first", req.From.App, req.From.Env, active)
		}
	}
	if rec.SchemaVersion, err = c.schemaVersion(ctx, req.From, src); err != nil {
		return nil, err
	}

	switch method {
	case gantry.CopyDump:
		tmp, err := os.MkdirTemp(req.To.SnapshotDir, copyDirPrefix)
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dump := filepath.Join(tmp, "dump")
		if err := run(ctx, c.tool("pg_dump"), "-Fd", "-j", c.jobs(), "-N", ledgerSchema, "-f", dump, "-d", req.From.URL); err != nil {
			return nil, gantry.Errorf(gantry.EFAILED, "copy %s/%s: %v", req.From.App, req.From.Env, err)
		}
		release() // the dump is consistent; migrations on the source may go on
		if rec.Created {
			if err := createPartial(ctx, into, ""); err != nil {
				return nil, err
			}
		}
		defer c.discardOnError(ctx, &rerr, rec, req.To)
		if err := run(ctx, c.tool("pg_restore"), "-j", c.jobs(), "--exit-on-error", "-d", into.URL, dump); err != nil {
			return nil, gantry.Errorf(gantry.EFAILED, "copy into %s/%s: %v", req.To.App, req.To.Env, err)
		}
	case gantry.CopyTemplate:
		fromName, err := databaseName(req.From.URL)
		if err != nil {
			return nil, err
		}
		// TEMPLATE needs the source without any session, ours included:
		// the pgroll check above and the CREATE DATABASE are not atomic, a
		// migration starting in between makes CREATE DATABASE fail instead.
		release()
		src.Close()
		if err := createPartial(ctx, into, fromName); err != nil {
			return nil, err
		}
		defer c.discardOnError(ctx, &rerr, rec, req.To)
	}

	dst, err := openDB(into)
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	if method == gantry.CopyTemplate {
		if _, err := dst.ExecContext(ctx, `DROP SCHEMA IF EXISTS `+ledgerSchema+` CASCADE`); err != nil {
			return nil, fmt.Errorf("clear the copied ledger: %w", err)
		}
	}
	if req.PostCopySQL != "" {
		if err := execMigration(ctx, dst, []byte(req.PostCopySQL), `SELECT 1`); err != nil {
			return nil, gantry.Errorf(gantry.EFAILED, "post-copy script in %s/%s: %v", req.To.App, req.To.Env, err)
		}
		rec.PostCopy = true
	}
	rec.Took = c.now().Sub(started)
	note := fmt.Sprintf("copied from %s/%s by %s at %s", req.From.App, req.From.Env, method, started.Format(time.RFC3339))
	if rec.PostCopy {
		note += "; post-copy script run"
	}
	err = c.record(ctx, dst, &gantry.MigrationRecord{App: req.To.App, Env: req.To.Env, Engine: req.To.Engine,
		Migration: rec.SchemaVersion, Phase: gantry.PhaseCopy, Note: note, At: started})
	if err != nil {
		return nil, err
	}
	if rec.Created {
		// Whole: it takes its name (RENAME needs no session on it).
		dst.Close()
		q := `ALTER DATABASE ` + quoteIdent(partialName(toName)) + ` RENAME TO ` + quoteIdent(toName)
		if err := maintenance(ctx, req.To, q); err != nil {
			return nil, fmt.Errorf("name the copy %s: %w", toName, err)
		}
	}
	c.logger().Info("database copied", "from", req.From.App+"/"+req.From.Env, "to", req.To.App+"/"+req.To.Env, "method", method, "took", rec.Took)
	return rec, nil
}

// copyDirPrefix names the directories a dump copy works in, under the new
// environment's snapshot directory.
const copyDirPrefix = "copy-"

// partialSuffix marks a database as a copy Gantry is still making.
const partialSuffix = "_gantry_partial"

// partialName is the name a copy into the database name is made under
// until it is whole: name_gantry_partial, shortened with a hash of name to
// PostgreSQL's 63 bytes.
func partialName(name string) string {
	const maxLen = 63
	if len(name)+len(partialSuffix) <= maxLen {
		return name + partialSuffix
	}
	sum := sha256.Sum256([]byte(name))
	return name[:maxLen-len(partialSuffix)-9] + "_" + hex.EncodeToString(sum[:4]) + partialSuffix
}

// takeTarget makes sure no other copy into the database name runs, for as
// long as the returned func is not called, then removes what a copy into it
// that a crash interrupted left: its partial database and its dump.
func (c *Changer) takeTarget(ctx context.Context, to gantry.DatabaseBinding, name string) (func(), error) {
	unlock, ok, err := tryTargetLock(ctx, to, name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, gantry.Errorf(gantry.ECONFLICT, "another copy into the database of %s/%s is running", to.App, to.Env)
	}
	if err := c.dropUnfinished(ctx, to, name); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// dropUnfinished removes what a copy into the database name left when a
// crash interrupted it: its partial database and its dump. The caller
// holds the target's lock.
func (c *Changer) dropUnfinished(ctx context.Context, to gantry.DatabaseBinding, name string) error {
	if to.SnapshotDir != "" {
		old, _ := filepath.Glob(filepath.Join(to.SnapshotDir, copyDirPrefix+"*"))
		for _, d := range old {
			_ = os.RemoveAll(d)
		}
	}
	return c.dropPartial(ctx, to, name)
}

// tryTargetLock takes, on a session of the server's maintenance database,
// the advisory lock of copies into the database name (the database itself
// may not exist yet); ok is false when another session holds it.
func tryTargetLock(ctx context.Context, to gantry.DatabaseBinding, name string) (unlock func(), ok bool, err error) {
	maint, err := withDatabase(to.URL, "postgres")
	if err != nil {
		return nil, false, err
	}
	m, err := sql.Open("postgres", maint)
	if err != nil {
		return nil, false, err
	}
	conn, err := m.Conn(ctx)
	if err != nil {
		m.Close()
		return nil, false, fmt.Errorf("connect: %w", err)
	}
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(hashtext($1))`, "gantry.copy "+name).Scan(&ok); err != nil || !ok {
		conn.Close()
		m.Close()
		return nil, false, err
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(hashtext($1))`, "gantry.copy "+name)
		conn.Close()
		m.Close()
	}, true, nil
}

// dropPartial drops the partial copy into the database name, if there is
// one, ending its sessions (a pg_restore the crashed server left running).
func (c *Changer) dropPartial(ctx context.Context, to gantry.DatabaseBinding, name string) error {
	if there, err := databaseThere(ctx, to, partialName(name)); err != nil || !there {
		return err
	}
	if err := maintenance(ctx, to, `DROP DATABASE IF EXISTS `+quoteIdent(partialName(name))+` WITH (FORCE)`); err != nil {
		return fmt.Errorf("drop the unfinished copy %s: %w", partialName(name), err)
	}
	c.logger().Warn("unfinished database copy dropped", "app", to.App, "env", to.Env, "database", partialName(name))
	return nil
}

// targetMissing says whether the database name must be created; one that
// exists must be empty, once emptied of a copy a crash left unfinished in
// it (a template copy always needs a new one).
func (c *Changer) targetMissing(ctx context.Context, to gantry.DatabaseBinding, name, method string) (bool, error) {
	there, err := databaseThere(ctx, to, name)
	switch {
	case err != nil:
		return false, err
	case !there:
		return true, nil
	case method == gantry.CopyTemplate:
		return false, gantry.Errorf(gantry.ECONFLICT, "database %s of %s/%s exists: a template copy needs a new database", name, to.App, to.Env)
	}
	if err := c.emptyUnfinished(ctx, to, name); err != nil {
		return false, err
	}
	return false, ensureEmpty(ctx, to)
}

// unfinishedMark is the comment of an existing database while a copy fills
// it in place: a crash leaves it marked, and it is then emptied by the next
// copy into it or by DiscardCopy without a record.
const unfinishedMark = "gantry: unfinished copy"

// markUnfinished marks the database name as being filled by a copy and
// returns its comment before. marked is false when the mark could not be
// set (the role does not own the database): the copy goes on unmarked.
func (c *Changer) markUnfinished(ctx context.Context, to gantry.DatabaseBinding, name string) (prior string, marked bool) {
	prior, err := c.comment(ctx, to, name)
	if err == nil {
		err = c.setComment(ctx, to, name, unfinishedMark)
	}
	if err != nil {
		c.logger().Warn("copy into an existing database not marked as unfinished", "app", to.App, "env", to.Env, "error", err)
		return "", false
	}
	if prior == unfinishedMark {
		prior = ""
	}
	return prior, true
}

// comment is the database name's comment ("" for none).
func (c *Changer) comment(ctx context.Context, to gantry.DatabaseBinding, name string) (string, error) {
	maint, err := withDatabase(to.URL, "postgres")
	if err != nil {
		return "", err
	}
	m, err := sql.Open("postgres", maint)
	if err != nil {
		return "", err
	}
	defer m.Close()
	var got sql.NullString
	err = m.QueryRowContext(ctx, `SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1`, name).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return got.String, err
}

// setComment sets the database name's comment ("": none).
func (c *Changer) setComment(ctx context.Context, to gantry.DatabaseBinding, name, comment string) error {
	v := "NULL"
	if comment != "" {
		v = pq.QuoteLiteral(comment)
	}
	return maintenance(ctx, to, `COMMENT ON DATABASE `+quoteIdent(name)+` IS `+v)
}

// emptyUnfinished empties the database name when a copy that filled it in
// place left it marked unfinished (a crash), and removes the mark.
func (c *Changer) emptyUnfinished(ctx context.Context, to gantry.DatabaseBinding, name string) error {
	if there, err := databaseThere(ctx, to, name); err != nil || !there {
		return err
	}
	if got, err := c.comment(ctx, to, name); err != nil || got != unfinishedMark {
		return err
	}
	if err := c.empty(ctx, to, name); err != nil {
		return err
	}
	c.logger().Warn("unfinished database copy emptied", "app", to.App, "env", to.Env, "database", name)
	return c.setComment(ctx, to, name, "")
}

// createPartial creates the database of into's URL, the partial copy, from
// template when it is not "".
func createPartial(ctx context.Context, into gantry.DatabaseBinding, template string) error {
	name, err := databaseName(into.URL)
	if err != nil {
		return err
	}
	q := `CREATE DATABASE ` + quoteIdent(name)
	if template != "" {
		q += ` TEMPLATE ` + quoteIdent(template)
	}
	err = maintenance(ctx, into, q)
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "55006" { // object_in_use
		return gantry.Errorf(gantry.ECONFLICT, "the source database has other sessions: quiesce it, or copy with the dump method")
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// createTarget creates the target database through the server's maintenance
// database (created), or accepts an existing one if it is empty.
func createTarget(ctx context.Context, to gantry.DatabaseBinding, name string) (created bool, err error) {
	err = maintenance(ctx, to, `CREATE DATABASE `+quoteIdent(name))
	var pqErr *pq.Error
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &pqErr) && pqErr.Code == "42P04": // duplicate_database
		return false, ensureEmpty(ctx, to)
	}
	return false, fmt.Errorf("create database %s: %w", name, err)
}

// maintenance runs q through the server's maintenance database (CREATE
// and DROP DATABASE cannot run inside the database they name).
func maintenance(ctx context.Context, b gantry.DatabaseBinding, q string) error {
	maint, err := withDatabase(b.URL, "postgres")
	if err != nil {
		return err
	}
	m, err := sql.Open("postgres", maint)
	if err != nil {
		return err
	}
	defer m.Close()
	_, err = m.ExecContext(ctx, q)
	return err
}

// databaseThere says the database name is on b's server.
func databaseThere(ctx context.Context, b gantry.DatabaseBinding, name string) (bool, error) {
	maint, err := withDatabase(b.URL, "postgres")
	if err != nil {
		return false, err
	}
	m, err := sql.Open("postgres", maint)
	if err != nil {
		return false, err
	}
	defer m.Close()
	var n int
	err = m.QueryRowContext(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n)
	return n > 0, err
}

// discardOnError removes a copy that failed after its target was made, so
// that it can run again: the partial database it created, or what it put in
// the empty one it found.
func (c *Changer) discardOnError(ctx context.Context, err *error, rec *gantry.CopyRecord, to gantry.DatabaseBinding) {
	if *err == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	var derr error
	if rec.Created {
		var name string
		if name, derr = databaseName(to.URL); derr == nil {
			derr = c.dropPartial(ctx, to, name)
		}
	} else {
		derr = c.DiscardCopy(ctx, rec, to)
	}
	if derr != nil {
		*err = fmt.Errorf("%w (and the partial copy could not be removed: %v)", *err, derr)
	}
}

// DiscardCopy removes what Copy made in to: the database when it created
// it (a session still open on it is ended), else every schema in it,
// Gantry's ledger included, which leaves it empty as Copy found it. With
// no record (a copy a crash interrupted), only the unfinished copy into
// to's database, if there is one and no copy is making it now.
func (c *Changer) DiscardCopy(ctx context.Context, rec *gantry.CopyRecord, to gantry.DatabaseBinding) error {
	name, err := databaseName(to.URL)
	if err != nil {
		return err
	}
	if rec == nil {
		unlock, ok, err := tryTargetLock(ctx, to, name)
		if err != nil || !ok {
			return err
		}
		defer unlock()
		if err := c.dropUnfinished(ctx, to, name); err != nil {
			return err
		}
		return c.emptyUnfinished(ctx, to, name)
	}
	if rec.Created {
		// A crash may have left it unfinished, under its partial name.
		if err := c.dropPartial(ctx, to, name); err != nil {
			return err
		}
		if err := maintenance(ctx, to, `DROP DATABASE IF EXISTS `+quoteIdent(name)+` WITH (FORCE)`); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		c.logger().Warn("database copy discarded", "app", to.App, "env", to.Env, "database", name, "dropped", true)
		return nil
	}
	if err := c.empty(ctx, to, name); err != nil {
		return err
	}
	c.logger().Warn("database copy discarded", "app", to.App, "env", to.Env, "database", name, "dropped", false)
	return nil
}

// empty drops every schema of to's database, Gantry's ledger included.
func (c *Changer) empty(ctx context.Context, to gantry.DatabaseBinding, name string) error {
	db, err := openDB(to)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := dropAll(ctx, db); err != nil {
		return fmt.Errorf("empty database %s: %w", name, err)
	}
	if _, err := db.ExecContext(ctx, `DROP SCHEMA IF EXISTS `+ledgerSchema+` CASCADE`); err != nil {
		return fmt.Errorf("empty database %s: %w", name, err)
	}
	return nil
}

func ensureEmpty(ctx context.Context, to gantry.DatabaseBinding) error {
	db, err := openDB(to)
	if err != nil {
		return err
	}
	defer db.Close()
	var n int
	err = db.QueryRowContext(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname NOT IN ('information_schema', $1)`, ledgerSchema).Scan(&n)
	if err != nil {
		return err
	}
	if n > 0 {
		return gantry.Errorf(gantry.ECONFLICT, "the database of %s/%s is not empty (%d relations): refusing to copy over it", to.App, to.Env, n)
	}
	return nil
}

var _ gantry.DatabaseProvisioner = (*Changer)(nil)

// CreateDatabase creates b's database (a preview environment's), or accepts
// it when it exists and is empty.
func (c *Changer) CreateDatabase(ctx context.Context, b gantry.DatabaseBinding) error {
	name, err := databaseName(b.URL)
	if err != nil {
		return err
	}
	_, err = createTarget(ctx, b, name)
	return err
}

// DropDatabase drops b's database, ending its sessions first (the preview's
// instances are stopped by then; a stray psql is not kept waiting for).
func (c *Changer) DropDatabase(ctx context.Context, b gantry.DatabaseBinding) error {
	name, err := databaseName(b.URL)
	if err != nil {
		return err
	}
	maint, err := withDatabase(b.URL, "postgres")
	if err != nil {
		return err
	}
	m, err := sql.Open("postgres", maint)
	if err != nil {
		return err
	}
	defer m.Close()
	if _, err := m.ExecContext(ctx, `DROP DATABASE IF EXISTS `+quoteIdent(name)+` WITH (FORCE)`); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	c.logger().Info("database dropped", "app", b.App, "env", b.Env, "database", name)
	return nil
}
