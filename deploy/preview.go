package deploy

import (
	"context"
	"sync"

	"github.com/gantry-dev/gantry"
)

// A preview environment may have a database of its own that Gantry made
// for it (previews.data: none makes it empty, copy fills it from the
// template environment's). It lives and dies with the preview.

// createPreviewDatabase creates the empty database of a preview whose
// data is none, before its instances start and its migrations run.
func (o *Orchestrator) createPreviewDatabase(ctx context.Context, r *run, env *gantry.Environment, m *gantry.Manifest) error {
	b, err := o.dbBinding(env, m)
	if err != nil || b == nil {
		return err
	}
	p, ok := o.Databases.(gantry.DatabaseProvisioner)
	if !ok {
		return gantry.Errorf(gantry.EINVALID, "this server cannot create databases for previews")
	}
	return r.step(ctx, "create-database", "an empty database for preview "+env.Name, func() (string, error) {
		return "", p.CreateDatabase(ctx, *b)
	})
}

// dropPreviewDatabase drops the database Gantry made for a preview that
// is being deleted. The binding is the preview's own DATABASE_URL, never
// the template's: Clone refuses a copy into the source's database.
func (o *Orchestrator) dropPreviewDatabase(ctx context.Context, env *gantry.Environment) error {
	if env.Preview == nil || !env.Preview.Database || o.Databases == nil {
		return nil
	}
	p, ok := o.Databases.(gantry.DatabaseProvisioner)
	if !ok {
		return nil
	}
	url, ok := o.secretValue(env.App, env.Name, DatabaseURLSecret)
	if !ok {
		return gantry.Errorf(gantry.EINVALID, "preview %s: its %s secret is gone, so its database cannot be found to drop", env.Name, DatabaseURLSecret)
	}
	// A fallback (a server-wide secret) could name a shared database:
	// never drop what the template environment uses.
	if tpl, ok := o.secretValue(env.App, env.ClonedFrom, DatabaseURLSecret); ok && tpl == url {
		return gantry.Errorf(gantry.EINVALID, "preview %s: its %s is %s's; not dropping it", env.Name, DatabaseURLSecret, env.ClonedFrom)
	}
	return p.DropDatabase(ctx, gantry.DatabaseBinding{App: env.App, Env: env.Name, URL: url})
}

// copiedDatabase is the database a clone --with-data created for an
// environment that is being deleted, to drop once it is stopped (nil:
// none). Only one Gantry created (a copy into a database that was there
// is left), and never one another environment of the app is bound to (its
// source's, a template's): that is refused before anything stops.
func (o *Orchestrator) copiedDatabase(ctx context.Context, env *gantry.Environment) (*gantry.DatabaseBinding, error) {
	if env.DatabaseCopy == nil || !env.DatabaseCopy.Created || o.Databases == nil {
		return nil, nil
	}
	url, ok := o.secretValue(env.App, env.Name, DatabaseURLSecret)
	if !ok {
		return nil, gantry.Errorf(gantry.EINVALID, "%s: its %s secret is gone, so the database copied for it cannot be found to drop; --keep-data deletes the environment alone", env.Name, DatabaseURLSecret)
	}
	envs, err := o.Store.ListEnvironments(ctx, env.App)
	if err != nil {
		return nil, err
	}
	for _, e := range envs {
		if e.Name == env.Name {
			continue
		}
		if other, ok := o.secretValue(env.App, e.Name, DatabaseURLSecret); ok && other == url {
			return nil, gantry.Errorf(gantry.EINVALID, "%s: its %s is also %s's; not dropping it (--keep-data deletes the environment alone)", env.Name, DatabaseURLSecret, e.Name)
		}
	}
	return &gantry.DatabaseBinding{App: env.App, Env: env.Name, URL: url}, nil
}

// holdPreviews holds app's previews for the previews gate: the gate counts
// them and the clone records the new one before another clone of the app
// may count, so two previews asked for at the same instant cannot both
// pass previews.max. Only the server that runs deployments counts
// (operations run on the leader alone), so a hold in memory is enough,
// and a crash leaves none behind. The returned function ends the hold;
// calling it again does nothing.
func (o *Orchestrator) holdPreviews(app string) func() {
	o.mu.Lock()
	if o.previewHolds == nil {
		o.previewHolds = map[string]*sync.Mutex{}
	}
	mu := o.previewHolds[app]
	if mu == nil {
		mu = &sync.Mutex{}
		o.previewHolds[app] = mu
	}
	o.mu.Unlock()
	mu.Lock()
	return sync.OnceFunc(mu.Unlock)
}
