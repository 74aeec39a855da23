package dbchange_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// TestMigrationLock: while another session holds the database's migration
// lock (a migration or a copy in progress), an expand waits for it rather
// than running alongside, and goes ahead once it is released.
func TestMigrationLock(t *testing.T) {
	t.Parallel()
	c := newChanger(t)
	b := MustBinding(t, "prod", gantry.MigrationEnginePgroll)
	ctx := ctxT(t)
	db, err := sql.Open("postgres", b.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(hashtext('gantry.dbchange'))`); err != nil {
		t.Fatal(err)
	}
	p, err := c.Plan(ctx, b, gantry.PlanRequest{Release: release("r1"), Migrations: migrationsFS(t, "rename", "01_")})
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = c.Expand(short, b, p)
	cancel()
	if err == nil || !errors.Is(short.Err(), context.DeadlineExceeded) {
		t.Fatalf("expand while the lock is held: err = %v, want it to wait until the deadline", err)
	}
	// A copy of the database waits for the same lock.
	dst := b
	dst.Env, dst.URL = "copy", MustServer(t).URLFor(strings.TrimPrefix(mustDBName(t, b.URL), "/")+"_copy")
	short, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = c.Copy(short, gantry.CopyRequest{From: b, To: dst})
	cancel()
	if err == nil || !errors.Is(short.Err(), context.DeadlineExceeded) {
		t.Fatalf("copy while the lock is held: err = %v, want it to wait until the deadline", err)
	}
	st, err := c.Status(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if st.SchemaVersion != "" {
		t.Fatalf("schema version = %q while the lock was held, want none applied", st.SchemaVersion)
	}

	done := make(chan error, 1)
	go func() { _, err := c.Expand(ctx, b, p); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("expand finished (%v) while the lock is held", err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock(hashtext('gantry.dbchange'))`); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("expand after the lock was released: %v", err)
	}
}

func mustDBName(tb testing.TB, raw string) string {
	tb.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		tb.Fatal(err)
	}
	return u.Path
}
