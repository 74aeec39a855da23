package dbchange_test

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// TestCopy copies prod's database into a new environment's with each
// method, runs the post-copy script there, and records the provenance in
// the copy's ledger; the source is untouched.
func TestCopy(t *testing.T) {
	t.Parallel()
	for _, method := range []string{gantry.CopyDump, gantry.CopyTemplate} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			c := newChanger(t)
			ctx := ctxT(t)
			src := MustBinding(t, "prod", gantry.MigrationEnginePgroll)
			v1 := migrationsFS(t, "rename", "01_")
			MustDeploy(t, c, src, release("r1"), v1, false, gantry.PlanApply)
			db, _ := MustAppDB(t, c, src, v1)
			if _, err := db.ExecContext(ctx, `INSERT INTO users (name, written_by) VALUES ('ann', 'ann@customer.example'), ('bob', 'bob@customer.example')`); err != nil {
				t.Fatal(err)
			}
			db.Close() // a template copy needs a quiet source

			dst := src
			dst.Env = "testnew"
			dst.SnapshotDir = t.TempDir()
			dst.URL = strings.Replace(src.URL, "_prod?", "_testnew_"+method+"?", 1)
			rec, err := c.Copy(ctx, gantry.CopyRequest{From: src, To: dst, Method: method,
				PostCopySQL: `UPDATE public.users SET written_by = 'user' || id || '@invalid'`})
			if err != nil {
				t.Fatalf("copy: %v", err)
			}
			if rec.SchemaVersion != "01_create_users" || rec.FromEnv != "prod" || rec.ToEnv != "testnew" || rec.Method != method || !rec.PostCopy {
				t.Errorf("copy record = %+v", rec)
			}
			st, err := c.Status(ctx, dst)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Ledger) != 1 || st.Ledger[0].Phase != gantry.PhaseCopy || !strings.Contains(st.Ledger[0].Note, "from shop/prod by "+method) ||
				st.Ledger[0].Migration != "01_create_users" {
				t.Errorf("copy's ledger = %+v, want one copy record from shop/prod", st.Ledger)
			}
			if st.SchemaVersion != "01_create_users" {
				t.Errorf("copy's schema version = %q, want 01_create_users", st.SchemaVersion)
			}
			copied, _ := MustAppDB(t, c, dst, v1)
			if got := column(t, copied, `SELECT name || ':' || written_by FROM users ORDER BY id`); got != "ann:user1@invalid,bob:user2@invalid" {
				t.Errorf("copy's rows = %q, want anonymised ann and bob", got)
			}
			orig, _ := MustAppDB(t, c, src, v1)
			if got := column(t, orig, `SELECT written_by FROM users ORDER BY id`); got != "ann@customer.example,bob@customer.example" {
				t.Errorf("source rows = %q, want untouched", got)
			}
			// The copy carries pgroll's history: the next release deploys there.
			v2 := migrationsFS(t, "rename", "01_", "02_")
			MustDeploy(t, c, dst, release("r2"), v2, true, gantry.PlanExpand)
		})
	}
}

// TestCopyRefusedDuringMigration: no copy while a pgroll migration is active
// on the source, nor into a database that has content.
func TestCopyRefusedDuringMigration(t *testing.T) {
	t.Parallel()
	c := newChanger(t)
	ctx := ctxT(t)
	src := MustBinding(t, "prod", gantry.MigrationEnginePgroll)
	MustDeploy(t, c, src, release("r1"), migrationsFS(t, "rename", "01_"), false, gantry.PlanApply)
	MustDeploy(t, c, src, release("r2"), migrationsFS(t, "rename", "01_", "02_"), true, gantry.PlanExpand)
	dst := MustBinding(t, "testnew", gantry.MigrationEnginePgroll)
	_, err := c.Copy(ctx, gantry.CopyRequest{From: src, To: dst})
	wantCode(t, err, gantry.ECONFLICT)
	if !strings.Contains(gantry.ErrorMessage(err), "02_rename_name is active") {
		t.Errorf("refusal %q does not name the active migration", gantry.ErrorMessage(err))
	}
	if _, err := c.Contract(ctx, src, gantry.ContractGuard{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Copy(ctx, gantry.CopyRequest{From: src, To: dst}); err != nil {
		t.Fatalf("copy after contract: %v", err)
	}
	_, err = c.Copy(ctx, gantry.CopyRequest{From: src, To: dst})
	wantCode(t, err, gantry.ECONFLICT)
}

func column(tb testing.TB, db *sql.DB, q string) string {
	tb.Helper()
	rows, err := db.Query(q)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			tb.Fatal(err)
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}
