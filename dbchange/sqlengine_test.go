package dbchange_test

import (
	"testing"
	"testing/fstest"

	"github.com/gantry-dev/gantry"
)

// TestSQLEngineExpandContract runs the plain SQL engine through a column
// rename done the expand/contract way: both releases write in the window,
// and the new release reads every row after the contract.
func TestSQLEngineExpandContract(t *testing.T) {
	t.Parallel()
	c := newChanger(t)
	b := MustBinding(t, "prod", gantry.MigrationEngineSQL)
	ctx := ctxT(t)
	v1 := migrationsFS(t, "sql", "0001_")
	v2 := migrationsFS(t, "sql")
	MustDeploy(t, c, b, release("r1"), v1, false, gantry.PlanApply)
	oldDB, schema := MustAppDB(t, c, b, v1)
	if schema != "public" {
		t.Errorf("schema = %q, want public", schema)
	}
	if _, err := oldDB.ExecContext(ctx, `INSERT INTO users (name) VALUES ('before')`); err != nil {
		t.Fatal(err)
	}
	p := MustDeploy(t, c, b, release("r2"), v2, true, gantry.PlanExpand)
	if len(p.Pending) != 1 || p.Pending[0] != "0002_add_full_name" {
		t.Errorf("pending = %v, want [0002_add_full_name]", p.Pending)
	}
	newDB, _ := MustAppDB(t, c, b, v2)
	if _, err := oldDB.ExecContext(ctx, `INSERT INTO users (name) VALUES ('old')`); err != nil {
		t.Fatal(err)
	}
	if _, err := newDB.ExecContext(ctx, `INSERT INTO users (full_name) VALUES ('new')`); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if st.Active != "0002_add_full_name" || st.ActiveRelease != "r2" {
		t.Errorf("status active = %q by %q, want 0002_add_full_name by r2", st.Active, st.ActiveRelease)
	}
	warm := envWith(&gantry.Slot{Name: "blue", State: gantry.SlotActive, ReleaseID: "r1"}, &gantry.Slot{Name: "green", State: gantry.SlotStarting, ReleaseID: "r2"})
	_, err = c.Contract(ctx, b, gantry.ContractGuard{Env: warm})
	wantCode(t, err, gantry.EPOLICY)
	warm.Slots["blue"].State = gantry.SlotStopped
	if _, err := c.Contract(ctx, b, gantry.ContractGuard{Env: warm}); err != nil {
		t.Fatalf("contract: %v", err)
	}
	var got []string
	rows, err := newDB.QueryContext(ctx, `SELECT full_name FROM users ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		got = append(got, s)
	}
	rows.Close()
	if len(got) != 3 || got[0] != "before" || got[1] != "old" || got[2] != "new" {
		t.Errorf("rows = %q, want [before old new]", got)
	}
	p, err = c.Plan(ctx, b, gantry.PlanRequest{Release: release("r2"), Migrations: v2, Live: true})
	if err != nil || p.Action != gantry.PlanNone {
		t.Errorf("plan after contract = %v, %v; want none", p, err)
	}
}

// TestSQLEngineRollback runs rollback/ while the migration is active, and
// refuses without a rollback file.
func TestSQLEngineRollback(t *testing.T) {
	t.Parallel()
	c := newChanger(t)
	ctx := ctxT(t)
	v1 := migrationsFS(t, "sql", "0001_")
	v2 := migrationsFS(t, "sql")
	b := MustBinding(t, "prod", gantry.MigrationEngineSQL)
	MustDeploy(t, c, b, release("r1"), v1, false, gantry.PlanApply)
	MustDeploy(t, c, b, release("r2"), v2, true, gantry.PlanExpand)
	if _, err := c.Rollback(ctx, b, gantry.RollbackOptions{}); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	db, _ := MustAppDB(t, c, b, v1)
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'full_name'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("full_name columns after rollback = %d (%v), want 0", n, err)
	}
	MustDeploy(t, c, b, release("r2"), v2, true, gantry.PlanExpand)

	// Without a rollback/ file the expand stays and the refusal says why.
	noRollback := migrationsFS(t, "sql").(fstest.MapFS)
	delete(noRollback, "rollback/0002_add_full_name.sql")
	b2 := MustBinding(t, "test", gantry.MigrationEngineSQL)
	MustDeploy(t, c, b2, release("r1"), v1, false, gantry.PlanApply)
	MustDeploy(t, c, b2, release("r2"), noRollback, true, gantry.PlanExpand)
	_, err := c.Rollback(ctx, b2, gantry.RollbackOptions{})
	wantCode(t, err, gantry.EPOLICY)
}
