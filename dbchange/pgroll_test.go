package dbchange_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// writer inserts rows through one app version's schema until stopped, and
// remembers every insert the database acknowledged.
type writer struct {
	db    *sql.DB
	query string // INSERT … VALUES ($1, $2) RETURNING id
	tag   string

	mu    sync.Mutex
	acked map[int64]string
	err   error
}

func (w *writer) run(ctx context.Context, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		name := fmt.Sprintf("%s-%d", w.tag, i)
		var id int64
		if err := w.db.QueryRowContext(ctx, w.query, name, w.tag).Scan(&id); err != nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
			return
		}
		w.mu.Lock()
		w.acked[id] = name
		w.mu.Unlock()
	}
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// waitFor waits until cond holds, failing after d.
func waitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBlueGreenRenameColumn is the blue-green deploy of a release renaming
// users.name to full_name: the old release keeps writing through its schema
// while the new one writes through the new schema, and after the contract
// every acknowledged row is readable by the new release.
func TestBlueGreenRenameColumn(t *testing.T) {
	t.Parallel()
	c := newChanger(t)
	b := MustBinding(t, "prod", gantry.MigrationEnginePgroll)
	ctx := ctxT(t)
	v1 := migrationsFS(t, "rename", "01_")
	v2 := migrationsFS(t, "rename", "01_", "02_")

	MustDeploy(t, c, b, release("r1"), v1, false, gantry.PlanApply)
	oldDB, oldSchema := MustAppDB(t, c, b, v1)
	if oldSchema != "public_01_create_users" {
		t.Errorf("old schema = %q, want public_01_create_users", oldSchema)
	}

	stopOld, stopNew := make(chan struct{}), make(chan struct{})
	var wgOld, wgNew sync.WaitGroup
	oldW := &writer{db: oldDB, tag: "old", acked: map[int64]string{}, query: `INSERT INTO users (name, written_by) VALUES ($1, $2) RETURNING id`}
	wgOld.Add(1)
	go oldW.run(ctx, stopOld, &wgOld)
	waitFor(t, 10*time.Second, "the old release's first writes", func() bool { return oldW.count() >= 20 })

	plan := MustDeploy(t, c, b, release("r2"), v2, true, gantry.PlanExpand)
	if plan.Schema != "public_02_rename_name" || len(plan.Pending) != 1 {
		t.Errorf("plan = schema %q pending %v, want public_02_rename_name [02_rename_name]", plan.Schema, plan.Pending)
	}
	newDB, newSchema := MustAppDB(t, c, b, v2)
	if newSchema != plan.Schema {
		t.Errorf("new schema = %q, want %q", newSchema, plan.Schema)
	}
	newW := &writer{db: newDB, tag: "new", acked: map[int64]string{}, query: `INSERT INTO users (full_name, written_by) VALUES ($1, $2) RETURNING id`}
	wgNew.Add(1)
	go newW.run(ctx, stopNew, &wgNew)
	before := oldW.count()
	waitFor(t, 10*time.Second, "both releases writing in the window", func() bool { return newW.count() >= 50 && oldW.count() >= before+50 })

	// The old slot is still warm: the contract must wait.
	warm := envWith(&gantry.Slot{Name: "green", State: gantry.SlotActive, ReleaseID: "r2"},
		&gantry.Slot{Name: "blue", State: gantry.SlotStandby, ReleaseID: "r1", Version: "r1", WarmUntil: time.Now().Add(time.Minute)})
	_, err := c.Contract(ctx, b, gantry.ContractGuard{Env: warm})
	wantCode(t, err, gantry.EPOLICY)
	if !strings.Contains(gantry.ErrorMessage(err), "blue") {
		t.Errorf("refusal %q does not name the warm slot", gantry.ErrorMessage(err))
	}
	_, err = c.Contract(ctx, b, gantry.ContractGuard{})
	wantCode(t, err, gantry.EPOLICY)

	close(stopOld)
	wgOld.Wait()
	warm.Slots["blue"].State = gantry.SlotStopped
	rec, err := c.Contract(ctx, b, gantry.ContractGuard{Env: warm})
	if err != nil {
		t.Fatalf("contract: %v", err)
	}
	if rec.Phase != gantry.PhaseContract || rec.Migration != "02_rename_name" || rec.ReleaseID != "r2" || rec.Snapshot == "" {
		t.Errorf("contract record = %+v, want contract of 02_rename_name by r2 with a snapshot", rec)
	}
	close(stopNew)
	wgNew.Wait()
	if oldW.err != nil || newW.err != nil {
		t.Fatalf("writers failed: old %v, new %v", oldW.err, newW.err)
	}

	// Every acknowledged row, from either release, reads back through the
	// new release's schema.
	got := map[int64]string{}
	rows, err := newDB.QueryContext(ctx, `SELECT id, full_name FROM users`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		got[id] = name
	}
	rows.Close()
	for _, w := range []*writer{oldW, newW} {
		for id, name := range w.acked {
			if got[id] != name {
				t.Errorf("row %d: full_name = %q, want %q (written by the %s release)", id, got[id], name, w.tag)
			}
		}
	}
	if want := len(oldW.acked) + len(newW.acked); len(got) != want {
		t.Errorf("rows = %d, want %d acknowledged (old %d, new %d)", len(got), want, len(oldW.acked), len(newW.acked))
	}
	t.Logf("rows written in the window: old %d, new %d", len(oldW.acked), len(newW.acked))

	// The old release's schema is gone with the contract.
	if _, err := c.ConnVars(ctx, b, v1); gantry.ErrorCode(err) != gantry.EFAILED {
		t.Errorf("conn vars of the old release after contract: err = %v, want EFAILED", err)
	}
	st, err := c.Status(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	var phases []string
	for _, r := range st.Ledger {
		phases = append(phases, r.ReleaseID+":"+r.Phase+":"+r.Migration)
	}
	want := "r1:expand:01_create_users r1:contract:01_create_users r2:expand:02_rename_name r2:contract:02_rename_name"
	if strings.Join(phases, " ") != want || st.Active != "" || st.SchemaVersion != "02_rename_name" {
		t.Errorf("status: ledger %q active %q version %q, want ledger %q, no active, version 02_rename_name", strings.Join(phases, " "), st.Active, st.SchemaVersion, want)
	}
}

// TestRollbackActiveMigration rolls back a started migration: the new
// schema disappears, the old release keeps working, and the same release
// can be deployed again.
func TestRollbackActiveMigration(t *testing.T) {
	t.Parallel()
	c := newChanger(t)
	b := MustBinding(t, "prod", gantry.MigrationEnginePgroll)
	ctx := ctxT(t)
	v1 := migrationsFS(t, "rename", "01_")
	v2 := migrationsFS(t, "rename", "01_", "02_")
	MustDeploy(t, c, b, release("r1"), v1, false, gantry.PlanApply)
	oldDB, _ := MustAppDB(t, c, b, v1)
	MustDeploy(t, c, b, release("r2"), v2, true, gantry.PlanExpand)
	newDB, _ := MustAppDB(t, c, b, v2)
	if _, err := newDB.ExecContext(ctx, `INSERT INTO users (full_name) VALUES ('during')`); err != nil {
		t.Fatal(err)
	}

	rec, err := c.Rollback(ctx, b, gantry.RollbackOptions{})
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if rec.Phase != gantry.PhaseRollback || rec.Migration != "02_rename_name" || rec.ReleaseID != "r2" {
		t.Errorf("rollback record = %+v", rec)
	}
	if _, err := c.ConnVars(ctx, b, v2); gantry.ErrorCode(err) != gantry.EFAILED {
		t.Errorf("conn vars of the rolled-back release: err = %v, want EFAILED", err)
	}
	var n int
	if err := oldDB.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE name = 'during'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("old release reads the row written during the window: n = %d, err = %v; want 1", n, err)
	}
	_, err = c.Rollback(ctx, b, gantry.RollbackOptions{})
	wantCode(t, err, gantry.EINVALID)

	// The release can be deployed again after the rollback.
	MustDeploy(t, c, b, release("r2"), v2, true, gantry.PlanExpand)
}

// TestPlanRefusals covers the plans that must not run: several pending
// migrations under a live app, a new migration while a contract is due,
// and a release that predates a contracted migration.
func TestPlanRefusals(t *testing.T) {
	t.Parallel()
	c := newChanger(t)
	b := MustBinding(t, "prod", gantry.MigrationEnginePgroll)
	ctx := ctxT(t)
	v1 := migrationsFS(t, "rename", "01_")
	v2 := migrationsFS(t, "rename", "01_", "02_")
	v3 := migrationsFS(t, "rename")
	MustDeploy(t, c, b, release("r1"), v1, false, gantry.PlanApply)

	tests := []struct {
		name   string
		setup  func()
		req    gantry.PlanRequest
		action string
		reason string
	}{
		{name: "several pending", req: gantry.PlanRequest{Release: release("r3"), Migrations: v3, Live: true}, action: gantry.PlanRefuse, reason: "2 pending migrations"},
		{name: "several pending, nothing live", req: gantry.PlanRequest{Release: release("r3"), Migrations: v3}, action: gantry.PlanApply},
		{name: "several pending, maintenance", req: gantry.PlanRequest{Release: release("r3"), Migrations: v3, Live: true, Maintenance: true}, action: gantry.PlanApply},
		{name: "same release again", req: gantry.PlanRequest{Release: release("r1"), Migrations: v1, Live: true}, action: gantry.PlanNone},
		{name: "contract due", setup: func() { MustDeploy(t, c, b, release("r2"), v2, true, gantry.PlanExpand) },
			req: gantry.PlanRequest{Release: release("r3"), Migrations: v3, Live: true}, action: gantry.PlanRefuse, reason: "contract is due"},
		{name: "old release while expanded", req: gantry.PlanRequest{Release: release("r1"), Migrations: v1, Live: true}, action: gantry.PlanNone},
		{name: "old release after contract", setup: func() {
			if _, err := c.Contract(ctx, b, gantry.ContractGuard{Force: true}); err != nil {
				t.Fatal(err)
			}
		}, req: gantry.PlanRequest{Release: release("r1"), Migrations: v1, Live: true}, action: gantry.PlanRefuse, reason: "--force"},
		{name: "next migration", req: gantry.PlanRequest{Release: release("r3"), Migrations: v3, Live: true}, action: gantry.PlanExpand},
	}
	for i, tt := range tests {
		if tt.setup != nil {
			tt.setup()
		}
		p, err := c.Plan(ctx, b, tt.req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if i == 0 {
			p.Env = "prod" // the binding's; stable in the golden file
			checkGolden(t, "testdata/plans/several_pending.json", p)
		}
		if p.Action != tt.action || !strings.Contains(p.Reason, tt.reason) {
			t.Errorf("%s: plan = %s %q, want %s containing %q", tt.name, p.Action, p.Reason, tt.action, tt.reason)
		}
		if p.Action == gantry.PlanRefuse {
			_, err := c.Expand(ctx, b, p)
			wantCode(t, err, gantry.EPOLICY)
		}
	}
}

// TestRollbackAcrossContract: refused without force, saying what would be
// lost; with force the pre-contract snapshot comes back and the migration
// is rolled back, so the old release works again.
func TestRollbackAcrossContract(t *testing.T) {
	t.Parallel()
	c := newChanger(t)
	b := MustBinding(t, "prod", gantry.MigrationEnginePgroll)
	ctx := ctxT(t)
	v1 := migrationsFS(t, "rename", "01_")
	v2 := migrationsFS(t, "rename", "01_", "02_")
	MustDeploy(t, c, b, release("r1"), v1, false, gantry.PlanApply)
	MustDeploy(t, c, b, release("r2"), v2, true, gantry.PlanExpand)
	newDB, _ := MustAppDB(t, c, b, v2)
	if _, err := newDB.ExecContext(ctx, `INSERT INTO users (full_name) VALUES ('before contract')`); err != nil {
		t.Fatal(err)
	}
	env := envWith(&gantry.Slot{Name: "green", State: gantry.SlotActive, ReleaseID: "r2"}, &gantry.Slot{Name: "blue", State: gantry.SlotStopped, ReleaseID: "r1"})
	crec, err := c.Contract(ctx, b, gantry.ContractGuard{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newDB.ExecContext(ctx, `INSERT INTO users (full_name) VALUES ('after contract')`); err != nil {
		t.Fatal(err)
	}

	_, err = c.Rollback(ctx, b, gantry.RollbackOptions{})
	wantCode(t, err, gantry.EPOLICY)
	if msg := gantry.ErrorMessage(err); !strings.Contains(msg, crec.Snapshot) || !strings.Contains(msg, "loses every write") {
		t.Errorf("refusal %q does not say what would be lost (snapshot %s)", msg, crec.Snapshot)
	}

	newDB.Close() // a restore drops schemas the new release's sessions use
	rec, err := c.Rollback(ctx, b, gantry.RollbackOptions{Force: true})
	if err != nil {
		t.Fatalf("rollback --force: %v", err)
	}
	if rec.Migration != "02_rename_name" || !strings.Contains(rec.Note, crec.Snapshot) {
		t.Errorf("rollback record = %+v, want 02_rename_name noting %s", rec, crec.Snapshot)
	}
	oldDB, _ := MustAppDB(t, c, b, v1)
	var names []string
	rows, err := oldDB.QueryContext(ctx, `SELECT name FROM users ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		names = append(names, n)
	}
	rows.Close()
	if got := strings.Join(names, ","); got != "before contract" {
		t.Errorf("rows after rollback --force = %q, want %q (the write after the contract is lost)", got, "before contract")
	}
}

// TestFailedExpandRollsBack: a migration that fails half-way through Start
// is rolled back, so the database is left as it was, and the ledger says so.
func TestFailedExpandRollsBack(t *testing.T) {
	t.Parallel()
	c := newChanger(t)
	b := MustBinding(t, "prod", gantry.MigrationEnginePgroll)
	ctx := ctxT(t)
	v1 := migrationsFS(t, "failing", "01_")
	MustDeploy(t, c, b, release("r1"), v1, false, gantry.PlanApply)
	p, err := c.Plan(ctx, b, gantry.PlanRequest{Release: release("r2"), Migrations: migrationsFS(t, "failing"), Live: true})
	if err != nil || p.Action != gantry.PlanExpand {
		t.Fatalf("plan = %+v, %v; want expand", p, err)
	}
	_, err = c.Expand(ctx, b, p)
	wantCode(t, err, gantry.EFAILED)
	if !strings.Contains(gantry.ErrorMessage(err), "division by zero") {
		t.Errorf("error %q does not say what failed", gantry.ErrorMessage(err))
	}
	st, err := c.Status(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	last := st.Ledger[len(st.Ledger)-1]
	if st.Active != "" || st.SchemaVersion != "01_create_users" || last.Phase != gantry.PhaseRollback || !strings.Contains(last.Note, "expand failed") || last.Snapshot == "" {
		t.Errorf("after a failed expand: active %q, version %q, last record %+v; want nothing active, 01_create_users, a rollback noting the failure", st.Active, st.SchemaVersion, last)
	}
	if _, err := c.ConnVars(ctx, b, v1); err != nil {
		t.Errorf("the previous release's schema after a failed expand: %v", err)
	}
}
