// Package fakedb is a fake gantry.DatabaseChanger that stands in for
// PostgreSQL in tests of the rollout engine (package deploy), so that
// thousands of deploy, contract and rollback sequences run in seconds. It
// keeps, per database (the binding's URL), the migrations applied in order,
// the one expanded but not contracted and the release that expanded it, a
// ledger and snapshots of that state, and it plans with the same rules as
// dbchange.Changer.Plan. It records every call.
//
// It must not be used outside tests, and it is no evidence that the real
// changer works: dbchange's own tests run those rules against PostgreSQL.
// It must not import dbchange (nor any other implementation package).
package fakedb

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry"
)

// Call is one recorded call.
type Call struct {
	Op        string // "plan", "expand", "contract", "rollback", "connvars", "status", "snapshot", "snapshots", "restore", "copy", "discard", "create-database", "drop-database"
	App, Env  string
	ReleaseID string
	Action    string // plan: the action; expand: the plan's action
	Force     bool
	Err       string
}

// state is what a database holds that migrations change.
type state struct {
	applied       []string
	active        string
	activeRelease string
	// schema stands for the app's catalog when the app migrates itself:
	// Migrate changes it, Restore puts it back, Fingerprint digests it.
	schema string
}

func (s state) clone() state {
	s.applied = append([]string(nil), s.applied...)
	return s
}

type snapshot struct {
	gantry.Snapshot
	st state
}

type database struct {
	st        state
	writes    gantry.WriteCount // the app's writes (Write), by epoch (ResetStats)
	ledger    []*gantry.MigrationRecord
	snapshots []*snapshot
}

// Changer is the fake; its zero value is ready to use.
type Changer struct {
	// Now is the clock of ledger records (default time.Now).
	Now func() time.Time
	// AfterCopy, when set, runs once a copy is made, before Copy returns:
	// a test makes it never return, standing for a crash between the real
	// Copy's last step (naming the database) and its return.
	AfterCopy func()

	mu  sync.Mutex
	dbs map[string]*database // by URL
	// unfinished holds the targets (URLs) of copies a crash left
	// unfinished; the real Copy makes them under a name of their own.
	unfinished map[string]bool
	calls      []Call
	seq        int64
}

var _ gantry.DatabaseChanger = (*Changer)(nil)

func (c *Changer) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC()
	}
	return time.Now().UTC()
}

// key is what a binding's database is known by.
func key(b gantry.DatabaseBinding) string {
	if b.URL == "" {
		return b.App + "/" + b.Env
	}
	return b.URL
}

// db returns the database of a binding; c.mu is held.
func (c *Changer) db(b gantry.DatabaseBinding) *database {
	if c.dbs == nil {
		c.dbs = map[string]*database{}
	}
	k := key(b)
	d := c.dbs[k]
	if d == nil {
		d = &database{}
		c.dbs[k] = d
	}
	return d
}

func (c *Changer) record(call Call, err error) {
	if err != nil {
		call.Err = gantry.ErrorMessage(err)
	}
	c.calls = append(c.calls, call)
}

// Calls returns the calls recorded so far; with ops, only those.
func (c *Changer) Calls(ops ...string) []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Call
	for _, x := range c.calls {
		if len(ops) == 0 || contains(ops, x.Op) {
			out = append(out, x)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Names returns the migrations of a release's migrations directory, in
// order: the files of expand/ for the sql engine's layout, else the files
// at its top (pgroll's), without their extension.
func Names(fsys fs.FS) ([]string, error) {
	if fsys == nil {
		return nil, nil
	}
	dir := "."
	if st, err := fs.Stat(fsys, "expand"); err == nil && st.IsDir() {
		dir = "expand"
	}
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, gantry.Errorf(gantry.EINVALID, "read migrations: %v", err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		names = append(names, strings.TrimSuffix(e.Name(), path.Ext(e.Name())))
	}
	sort.Strings(names)
	return names, nil
}

// Plan compares the release's migrations with the database's history, with
// the rules of dbchange.Changer.Plan.
func (c *Changer) Plan(ctx context.Context, b gantry.DatabaseBinding, req gantry.PlanRequest) (*gantry.MigrationPlan, error) {
	local, err := Names(req.Migrations)
	c.mu.Lock()
	defer c.mu.Unlock()
	call := Call{Op: "plan", App: b.App, Env: b.Env}
	if req.Release != nil {
		call.ReleaseID = req.Release.ID
	}
	if err != nil {
		c.record(call, err)
		return nil, err
	}
	p := plan(b, c.db(b).st, local, req)
	call.Action = p.Action
	c.record(call, nil)
	return p, nil
}

func plan(b gantry.DatabaseBinding, st state, local []string, req gantry.PlanRequest) *gantry.MigrationPlan {
	p := &gantry.MigrationPlan{App: b.App, Env: b.Env, Engine: engine(b), Action: gantry.PlanNone, Schema: schemaOf(local)}
	if req.Release != nil {
		p.ReleaseID = req.Release.ID
	}
	refuse := func(format string, args ...any) *gantry.MigrationPlan {
		p.Action, p.Reason = gantry.PlanRefuse, fmt.Sprintf(format, args...)
		return p
	}
	applied, active := st.applied, st.active
	for i := 0; i < len(local) && i < len(applied); i++ {
		if local[i] != applied[i] {
			return refuse("the database's migration #%d is %s but the release's is %s: the histories differ", i+1, applied[i], local[i])
		}
	}
	if len(local) < len(applied) {
		missing := applied[len(local):]
		if len(missing) == 1 && missing[0] == active {
			return p
		}
		return refuse("the release predates migration(s) %s, already contracted: the schema it needs is gone. "+
			"Rolling back across a contract needs `gantry db rollback %s --force`, which restores the snapshot taken before the contract and loses the writes made since",
			strings.Join(missing, ", "), b.Env)
	}
	pending := local[len(applied):]
	if len(pending) == 0 {
		return p
	}
	p.Sources = map[string]gantry.MigrationSource{}
	for _, n := range pending {
		p.Pending = append(p.Pending, n)
		p.Sources[n] = gantry.MigrationSource{Name: n}
	}
	switch {
	case active != "":
		return refuse("migration %s is still active: its contract is due before %s can start. Run `gantry db contract %s` once the slot running the previous release has stopped",
			active, p.Pending[0], b.Env)
	case !req.Live || req.Maintenance:
		p.Action = gantry.PlanApply
	case len(pending) > 1:
		return refuse("the release brings %d pending migrations (%s); with the app live only one migration per release step keeps the previous release working. Deploy a release that adds only %s first",
			len(pending), strings.Join(p.Pending, ", "), p.Pending[0])
	default:
		p.Action = gantry.PlanExpand
	}
	return p
}

func engine(b gantry.DatabaseBinding) string {
	if b.Engine == "" {
		return gantry.MigrationEnginePgroll
	}
	return b.Engine
}

// schemaOf is the schema a release with these migrations uses.
func schemaOf(local []string) string {
	if len(local) == 0 {
		return "public"
	}
	return "public_" + local[len(local)-1]
}

// snapshotLocked saves the database's state; c.mu is held.
func (c *Changer) snapshotLocked(b gantry.DatabaseBinding, d *database, reason string) *snapshot {
	c.seq++
	s := &snapshot{Snapshot: gantry.Snapshot{Name: fmt.Sprintf("snap-%d", c.seq), App: b.App, Env: b.Env, Reason: reason,
		SchemaVersion: last(d.st.applied), CreatedAt: c.now()}, st: d.st.clone()}
	w := d.writes
	s.Writes = &w
	d.snapshots = append(d.snapshots, s)
	return s
}

func last(xs []string) string {
	if len(xs) == 0 {
		return ""
	}
	return xs[len(xs)-1]
}

func (c *Changer) ledgerAdd(b gantry.DatabaseBinding, d *database, r *gantry.MigrationRecord) *gantry.MigrationRecord {
	c.seq++
	r.ID, r.App, r.Env, r.Engine, r.At = c.seq, b.App, b.Env, engine(b), c.now()
	d.ledger = append(d.ledger, r)
	cp := *r
	return &cp
}

// Expand snapshots the state, then starts the plan's migration, or applies
// every pending one completely for PlanApply.
func (c *Changer) Expand(ctx context.Context, b gantry.DatabaseBinding, p *gantry.MigrationPlan) (*gantry.MigrationRecord, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec, err := c.expand(b, p)
	c.record(Call{Op: "expand", App: b.App, Env: b.Env, ReleaseID: p.ReleaseID, Action: p.Action}, err)
	return rec, err
}

func (c *Changer) expand(b gantry.DatabaseBinding, p *gantry.MigrationPlan) (*gantry.MigrationRecord, error) {
	switch p.Action {
	case gantry.PlanNone:
		return nil, nil
	case gantry.PlanExpand, gantry.PlanApply:
	default:
		return nil, gantry.Errorf(gantry.EPOLICY, "%s", p.Reason)
	}
	d := c.db(b)
	if d.st.active != "" {
		return nil, gantry.Errorf(gantry.ECONFLICT, "migration %s is active on %s/%s: contract or roll it back first", d.st.active, b.App, b.Env)
	}
	for _, n := range p.Pending {
		if contains(d.st.applied, n) {
			return nil, gantry.Errorf(gantry.ECONFLICT, "migration %s was applied since the plan was made: plan again", n)
		}
	}
	snap := c.snapshotLocked(b, d, "before expand "+p.Pending[0])
	var rec *gantry.MigrationRecord
	for _, n := range p.Pending {
		d.st.applied = append(d.st.applied, n)
		rec = c.ledgerAdd(b, d, &gantry.MigrationRecord{ReleaseID: p.ReleaseID, Migration: n, Phase: gantry.PhaseExpand, Snapshot: snap.Name})
		if p.Action == gantry.PlanExpand {
			d.st.active, d.st.activeRelease = n, p.ReleaseID
			continue
		}
		rec = c.ledgerAdd(b, d, &gantry.MigrationRecord{ReleaseID: p.ReleaseID, Migration: n, Phase: gantry.PhaseContract, Snapshot: snap.Name, Note: "applied with no app live"})
	}
	return rec, nil
}

// Contract completes the active migration unless the guard shows a slot
// that may still use the old schema.
func (c *Changer) Contract(ctx context.Context, b gantry.DatabaseBinding, guard gantry.ContractGuard) (*gantry.MigrationRecord, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec, err := c.contract(b, guard)
	c.record(Call{Op: "contract", App: b.App, Env: b.Env, Force: guard.Force}, err)
	return rec, err
}

func (c *Changer) contract(b gantry.DatabaseBinding, guard gantry.ContractGuard) (*gantry.MigrationRecord, error) {
	d := c.db(b)
	active := d.st.active
	if active == "" {
		return nil, gantry.Errorf(gantry.EINVALID, "no migration is active on %s/%s: nothing to contract", b.App, b.Env)
	}
	if !guard.Force {
		if guard.Env == nil {
			return nil, gantry.Errorf(gantry.EPOLICY, "contract of %s refused: the state of the environment's slots is unknown", active)
		}
		if s := gantry.OldSchemaSlot(guard.Env, d.st.activeRelease); s != nil {
			return nil, gantry.Errorf(gantry.EPOLICY, "contract of %s refused: slot %s (%s, release %s) may still take traffic and needs the old schema; the contract runs once it has stopped",
				active, s.Name, s.State, s.Version)
		}
	}
	snap := c.snapshotLocked(b, d, "before contract "+active)
	rel := d.st.activeRelease
	d.st.active, d.st.activeRelease = "", ""
	rec := &gantry.MigrationRecord{ReleaseID: rel, Migration: active, Phase: gantry.PhaseContract, Snapshot: snap.Name}
	if guard.Force {
		rec.Note = "forced"
	}
	return c.ledgerAdd(b, d, rec), nil
}

// Rollback undoes the active migration; across a completed contract it is
// refused (EPOLICY) unless opts.Force, which restores the snapshot taken
// before the contract first.
func (c *Changer) Rollback(ctx context.Context, b gantry.DatabaseBinding, opts gantry.RollbackOptions) (*gantry.MigrationRecord, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec, err := c.rollback(b, opts)
	c.record(Call{Op: "rollback", App: b.App, Env: b.Env, Force: opts.Force}, err)
	return rec, err
}

func (c *Changer) rollback(b gantry.DatabaseBinding, opts gantry.RollbackOptions) (*gantry.MigrationRecord, error) {
	d := c.db(b)
	note := ""
	if d.st.active == "" {
		var contract *gantry.MigrationRecord
	scan:
		for i := len(d.ledger) - 1; i >= 0; i-- {
			switch d.ledger[i].Phase {
			case gantry.PhaseContract:
				contract = d.ledger[i]
				break scan
			case gantry.PhaseExpand, gantry.PhaseRollback, gantry.PhaseRestore, gantry.PhaseCopy:
				break scan
			}
		}
		if contract == nil || contract.Snapshot == "" {
			return nil, gantry.Errorf(gantry.EINVALID, "no migration is active on %s/%s: nothing to roll back", b.App, b.Env)
		}
		if !opts.Force {
			return nil, gantry.Errorf(gantry.EPOLICY, "migration %s was contracted at %s: rolling back across the contract restores snapshot %s and loses every write made since then. Re-run with --force to do that",
				contract.Migration, contract.At.Format(time.RFC3339), contract.Snapshot)
		}
		snap := d.find(contract.Snapshot)
		if snap == nil {
			return nil, gantry.Errorf(gantry.ENOTFOUND, "snapshot %s is gone", contract.Snapshot)
		}
		d.st = snap.st.clone()
		note = fmt.Sprintf("across the contract of %s: restored %s", contract.Migration, contract.Snapshot)
		c.ledgerAdd(b, d, &gantry.MigrationRecord{Migration: contract.Migration, Phase: gantry.PhaseRestore, Snapshot: contract.Snapshot, Note: "rollback --force"})
		if d.st.active == "" {
			// As dbchange: a snapshot from before the expand (a migration
			// applied whole) is undone by the restore alone.
			return &gantry.MigrationRecord{App: b.App, Env: b.Env, ReleaseID: contract.ReleaseID, Migration: contract.Migration,
				Phase: gantry.PhaseRestore, Snapshot: contract.Snapshot, Note: note}, nil
		}
	}
	active, rel := d.st.active, d.st.activeRelease
	d.st.applied = d.st.applied[:len(d.st.applied)-1]
	d.st.active, d.st.activeRelease = "", ""
	return c.ledgerAdd(b, d, &gantry.MigrationRecord{ReleaseID: rel, Migration: active, Phase: gantry.PhaseRollback, Note: note}), nil
}

func (d *database) find(name string) *snapshot {
	for _, s := range d.snapshots {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// ConnVars returns GANTRY_DB_SCHEMA (the schema of the release's last
// migration) and DATABASE_URL; like pgroll's schemas, that schema exists
// only for the latest migration applied and, while one is active, the one
// before it.
func (c *Changer) ConnVars(ctx context.Context, b gantry.DatabaseBinding, migrations fs.FS) (map[string]string, error) {
	local, err := Names(migrations)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		err = exists(c.db(b).st, local)
	}
	c.record(Call{Op: "connvars", App: b.App, Env: b.Env}, err)
	if err != nil {
		return nil, err
	}
	schema := schemaOf(local)
	return map[string]string{"DATABASE_URL": b.URL + "?search_path=" + schema, "GANTRY_DB_SCHEMA": schema}, nil
}

// exists says whether the schema of a release with migrations local is
// in the database.
func exists(st state, local []string) error {
	if len(local) == 0 {
		return nil
	}
	n := local[len(local)-1]
	ap := st.applied
	if len(ap) > 0 && ap[len(ap)-1] == n {
		return nil
	}
	if st.active != "" && len(ap) > 1 && ap[len(ap)-2] == n {
		return nil
	}
	return gantry.Errorf(gantry.EFAILED, "schema %s does not exist: the release's migration %s is not expanded (or was contracted away)", schemaOf(local), n)
}

// Compatible says whether a release whose migrations are local can run on
// the database at url as it is now: the histories agree and the release's
// schema exists. It is what tests check after every step.
func (c *Changer) Compatible(url string, local []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.dbs[url]
	var st state
	if d != nil {
		st = d.st
	}
	for i := 0; i < len(local) && i < len(st.applied); i++ {
		if local[i] != st.applied[i] {
			return fmt.Errorf("history differs at #%d: database %s, release %s", i+1, st.applied[i], local[i])
		}
	}
	if len(local) > len(st.applied) {
		return fmt.Errorf("release needs %v, database has %v", local, st.applied)
	}
	return exists(st, local)
}
