package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry"
)

// appRestore is a forced rollback's database step for an app that
// migrates itself: the snapshot taken before the schema left the one the
// release ran on.
type appRestore struct {
	b    *gantry.DatabaseBinding
	snap string
	at   time.Time
	meta *gantry.Snapshot // nil when the snapshot is not listed
}

// gateAppSchema is the schema gate for an app that migrates itself: the
// ledger says which schema (fingerprint) each release ran on. A release
// that would serve on another schema is refused (a warm flip after the
// app migrated, the watch's automatic rollback, a cold deploy of an older
// release), naming the snapshot that `gantry rollback ENV --force`
// restores. A cold deploy of a release whose migration already moved this
// very schema forward is let through: it runs its migration again.
func (o *Orchestrator) gateAppSchema(ctx context.Context, op *op, b *gantry.DatabaseBinding) error {
	ledger, err := o.Databases.Ledger(ctx, *b)
	if err != nil {
		return err
	}
	fp, err := o.Databases.Fingerprint(ctx, *b)
	if err != nil {
		return err
	}
	var ran *gantry.MigrationRecord
	ranAt := 0
	migratedFrom := false
	for i, rec := range ledger {
		if rec.Phase == gantry.PhaseApp && rec.ReleaseID == op.rel.ID {
			ran, ranAt = rec, i
			migratedFrom = migratedFrom || rec.Before == fp
		}
	}
	if ran == nil || ran.After == fp || (!op.flip && migratedFrom) {
		return nil // never ran here (its migration runs), or it fits
	}
	if o.compatibleSince(ctx, op.app, ledger[ranAt+1:], fp) {
		return nil // every change since was declared compatible: the release works on it
	}
	var left *gantry.MigrationRecord
	for i := len(ledger) - 1; i >= 0; i-- {
		if rec := ledger[i]; rec.Phase == gantry.PhaseApp && rec.Before == ran.After && rec.After != ran.After && rec.Snapshot != "" {
			left = rec
			break
		}
	}
	if left == nil {
		allowed := fmt.Sprintf("a release that has not run on %s (its own migration runs on the schema as it is), or gantry db snapshots %s, then gantry db restore %s SNAPSHOT of schema %s",
			op.env, op.env, op.env, shortFP(ran.After))
		return refuse(GateSchema, allowed, "release %s ran on schema %s of %q, which is now %s, and no snapshot of its schema is recorded",
			op.rel.Version, shortFP(ran.After), op.env, shortFP(fp))
	}
	meta := o.snapshotOf(ctx, b, left.Snapshot)
	at := left.At
	if meta != nil {
		at = meta.CreatedAt
	}
	by := left.ReleaseID
	if rel, err := o.Store.FindRelease(ctx, op.app, left.ReleaseID); err == nil {
		by = rel.Version
	}
	if op.force && op.kind == gantry.KindRollback {
		op.appRestore = &appRestore{b: b, snap: left.Snapshot, at: at, meta: meta}
		return nil
	}
	cmd := fmt.Sprintf("gantry rollback %s --force", op.env)
	if op.kind != gantry.KindRollback || !op.flip && op.current.ActiveSlot() != nil && op.rel.ID != o.standbyRelease(op.current) {
		cmd = fmt.Sprintf("gantry rollback %s --to %s --force", op.env, op.rel.ID)
	}
	return refuse(GateSchema, fmt.Sprintf("%s (restores snapshot %s taken at %s, %s ago; %s written since would be lost)",
		cmd, left.Snapshot, at.UTC().Format(time.RFC3339), o.now().Sub(at).Round(time.Second), o.writesSince(ctx, b, meta)),
		"release %s ran on schema %s of %q; release %s migrated it to %s, after snapshot %s",
		op.rel.Version, shortFP(ran.After), op.env, by, shortFP(left.After), left.Snapshot)
}

// compatibleSince says the schema went to fp by the changes in recs alone,
// each made by a release whose manifest declares its migrations compatible
// (additive: the releases before it keep working). A change the ledger
// does not show (made outside a deploy) is not known to be compatible.
func (o *Orchestrator) compatibleSince(ctx context.Context, app string, recs []*gantry.MigrationRecord, fp string) bool {
	if len(recs) == 0 || recs[len(recs)-1].After != fp {
		return false
	}
	for _, rec := range recs {
		if rec.Phase != gantry.PhaseApp || rec.Before == rec.After {
			continue
		}
		if rec.Note != "" {
			return false // a restore, not a migration
		}
		rel, err := o.Store.FindRelease(ctx, app, rec.ReleaseID)
		if err != nil {
			return false
		}
		m, err := o.manifestOf(rel)
		if err != nil || m.Database == nil || !m.Database.Migrations.Compatible {
			return false
		}
	}
	return true
}

// standbyRelease is the release a plain rollback would flip to.
func (o *Orchestrator) standbyRelease(env *gantry.Environment) string {
	if a := env.ActiveSlot(); a != nil {
		if s := env.Slots[gantry.OtherSlot(a.Name)]; s != nil {
			return s.ReleaseID
		}
	}
	return ""
}

// snapshotOf is the snapshot named name, as the changer lists it (when
// it was taken, its write counter); nil when it is not listed.
func (o *Orchestrator) snapshotOf(ctx context.Context, b *gantry.DatabaseBinding, name string) *gantry.Snapshot {
	if snaps, err := o.Databases.Snapshots(ctx, *b); err == nil {
		for _, s := range snaps {
			if s.Name == name {
				return s
			}
		}
	}
	return nil
}

// contractSnapshot is the snapshot a forced rollback across the last
// contract restores (the one taken before it), as the changer's Rollback
// finds it; nil when there is none.
func (o *Orchestrator) contractSnapshot(ctx context.Context, b *gantry.DatabaseBinding) *gantry.Snapshot {
	recs, err := o.Databases.Ledger(ctx, *b)
	if err != nil {
		return nil
	}
	for i := len(recs) - 1; i >= 0; i-- {
		switch recs[i].Phase {
		case gantry.PhaseContract:
			if recs[i].Snapshot == "" {
				return nil
			}
			return o.snapshotOf(ctx, b, recs[i].Snapshot)
		case gantry.PhaseExpand, gantry.PhaseRollback, gantry.PhaseRestore, gantry.PhaseCopy:
			return nil
		}
	}
	return nil
}

// writesSince says how many rows were written since snap, what restoring
// it loses: "about 12 rows", or "an unknown number of rows".
func (o *Orchestrator) writesSince(ctx context.Context, b *gantry.DatabaseBinding, snap *gantry.Snapshot) gantry.WritesSince {
	if snap == nil {
		return gantry.WritesSince{}
	}
	w, err := o.Databases.WritesSince(ctx, *b, snap)
	if err != nil {
		return gantry.WritesSince{}
	}
	return w
}

// restoreAppSnapshot is a forced rollback's first step for an app that
// migrates itself: every request is held, the snapshot is restored, and
// the release rolled back to is recorded on the restored schema. The
// returned func releases the requests once the rollback is done.
func (o *Orchestrator) restoreAppSnapshot(ctx context.Context, r *run, op *op) (func(), error) {
	ar := op.appRestore
	name := gantry.RouteName(r.d.App, r.d.Env)
	held, err := o.holdRoutes(ctx, r, "hold-requests", name+": the database goes back to snapshot "+ar.snap, r.d.App, r.d.Env, false, "no route: nothing to hold")
	release := func() { o.letGo(ctx, r, "release-requests", name, held) }
	if err != nil {
		return release, err
	}
	op.held = len(held) > 0
	mig := &appMigration{b: ar.b}
	err = r.step(ctx, "db-restore", fmt.Sprintf("forced: snapshot %s from %s for %s", ar.snap, ar.at.UTC().Format(time.RFC3339), op.rel.Version), func() (string, error) {
		if mig.before, err = o.Databases.Fingerprint(ctx, *ar.b); err != nil {
			return "", err
		}
		lost := o.writesSince(ctx, ar.b, ar.meta)
		if _, err := o.Databases.Restore(ctx, *ar.b, ar.snap); err != nil {
			return "", err
		}
		return fmt.Sprintf("restored %s; lost %s written since %s (%s ago)", ar.snap, lost, ar.at.UTC().Format(time.RFC3339), o.now().Sub(ar.at).Round(time.Second)), nil
	})
	if err != nil {
		release()
		return func() {}, refuse(GateSchema, "", "the database could not be restored for %s: %s", op.rel.Version, gantry.ErrorMessage(err))
	}
	if err := o.recordAppSchema(ctx, r, op, mig, "rollback --force restored "+ar.snap); err != nil {
		return release, err
	}
	return release, nil
}
