package fakedb

import (
	"context"

	"github.com/gantry-dev/gantry"
)

// Status returns the ledger and the migration in flight.
func (c *Changer) Status(ctx context.Context, b gantry.DatabaseBinding) (*gantry.DatabaseStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record(Call{Op: "status", App: b.App, Env: b.Env}, nil)
	d := c.db(b)
	st := &gantry.DatabaseStatus{App: b.App, Env: b.Env, Engine: engine(b), Active: d.st.active, ActiveRelease: d.st.activeRelease,
		SchemaVersion: last(d.st.applied)}
	for _, r := range d.ledger {
		cp := *r
		st.Ledger = append(st.Ledger, &cp)
	}
	return st, nil
}

// Applied returns the migrations applied to the database at url, and the
// active one.
func (c *Changer) Applied(url string) (applied []string, active string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := c.dbs[url]; d != nil {
		return append([]string(nil), d.st.applied...), d.st.active
	}
	return nil, ""
}

// Snapshot saves the database's state.
func (c *Changer) Snapshot(ctx context.Context, b gantry.DatabaseBinding, reason string) (*gantry.Snapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record(Call{Op: "snapshot", App: b.App, Env: b.Env}, nil)
	s := c.snapshotLocked(b, c.db(b), reason)
	cp := s.Snapshot
	return &cp, nil
}

// Snapshots lists the database's snapshots, newest first.
func (c *Changer) Snapshots(ctx context.Context, b gantry.DatabaseBinding) ([]*gantry.Snapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record(Call{Op: "snapshots", App: b.App, Env: b.Env}, nil)
	d := c.db(b)
	var out []*gantry.Snapshot
	for i := len(d.snapshots) - 1; i >= 0; i-- {
		cp := d.snapshots[i].Snapshot
		out = append(out, &cp)
	}
	return out, nil
}

// Restore puts the database back to a snapshot.
func (c *Changer) Restore(ctx context.Context, b gantry.DatabaseBinding, name string) (*gantry.MigrationRecord, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.db(b)
	s := d.find(name)
	if s == nil {
		err := gantry.Errorf(gantry.ENOTFOUND, "snapshot %q of %s/%s not found", name, b.App, b.Env)
		c.record(Call{Op: "restore", App: b.App, Env: b.Env}, err)
		return nil, err
	}
	d.st = s.st.clone()
	c.record(Call{Op: "restore", App: b.App, Env: b.Env}, nil)
	return c.ledgerAdd(b, d, &gantry.MigrationRecord{Migration: last(d.st.applied), Phase: gantry.PhaseRestore, Snapshot: name}), nil
}

// Copy copies From's database into To's, refused (ECONFLICT) while a pgroll
// migration is active on From, or when To already holds migrations.
func (c *Changer) Copy(ctx context.Context, req gantry.CopyRequest) (*gantry.CopyRecord, error) {
	c.mu.Lock()
	rec, err := c.copy(req)
	c.record(Call{Op: "copy", App: req.To.App, Env: req.To.Env}, err)
	after := c.AfterCopy
	c.mu.Unlock()
	if err == nil && after != nil {
		after()
	}
	return rec, err
}

func (c *Changer) copy(req gantry.CopyRequest) (*gantry.CopyRecord, error) {
	delete(c.unfinished, key(req.To)) // the next copy drops a crash's leftover
	_, existed := c.dbs[key(req.To)]
	from, to := c.db(req.From), c.db(req.To)
	if from.st.active != "" && engine(req.From) == gantry.MigrationEnginePgroll {
		return nil, gantry.Errorf(gantry.ECONFLICT, "migration %s is active on %s/%s: contract or roll it back before copying", from.st.active, req.From.App, req.From.Env)
	}
	if len(to.st.applied) > 0 {
		return nil, gantry.Errorf(gantry.ECONFLICT, "the database of %s/%s is not empty", req.To.App, req.To.Env)
	}
	to.st = from.st.clone()
	method := req.Method
	if method == "" {
		method = gantry.CopyDump
	}
	rec := &gantry.CopyRecord{FromApp: req.From.App, FromEnv: req.From.Env, ToApp: req.To.App, ToEnv: req.To.Env, Method: method,
		PostCopy: req.PostCopySQL != "", Created: !existed, StartedAt: c.now()}
	if req.Begun != nil {
		if err := req.Begun(rec); err != nil {
			return nil, err
		}
	}
	c.ledgerAdd(req.To, to, &gantry.MigrationRecord{Migration: last(to.st.applied), Phase: gantry.PhaseCopy, Note: "from " + req.From.App + "/" + req.From.Env})
	rec.SchemaVersion = last(to.st.applied)
	return rec, nil
}

// DiscardCopy forgets the database Copy created, or empties the one it
// found; without a record, it forgets only an unfinished copy into to.
func (c *Changer) DiscardCopy(ctx context.Context, rec *gantry.CopyRecord, to gantry.DatabaseBinding) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rec == nil {
		delete(c.unfinished, key(to))
	} else if rec.Created {
		delete(c.unfinished, key(to))
		delete(c.dbs, key(to))
	} else {
		*c.db(to) = database{}
	}
	c.record(Call{Op: "discard", App: to.App, Env: to.Env}, nil)
	return nil
}

// LeaveUnfinishedCopy stands for what a crash during Copy into url leaves
// (the fake's Copy itself never stops halfway).
func (c *Changer) LeaveUnfinishedCopy(url string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unfinished == nil {
		c.unfinished = map[string]bool{}
	}
	c.unfinished[url] = true
}

// HasUnfinishedCopy says a copy into url was left unfinished.
func (c *Changer) HasUnfinishedCopy(url string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unfinished[url]
}

// Exists says a database was made for url (by a copy or any use).
func (c *Changer) Exists(url string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.dbs[url]
	return ok
}
