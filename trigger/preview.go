package trigger

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/gantry-dev/gantry"
)

// databaseURLSecret binds an environment to its database (as in deploy/).
const databaseURLSecret = "DATABASE_URL"

// previewCheck is the name of the status a preview posts.
const previewCheck = "gantry/preview"

// isPreview reports whether app has a preview environment called name.
func (s *Service) isPreview(ctx context.Context, app, name string) bool {
	env, err := s.Store.FindEnvironment(ctx, app, name)
	return err == nil && env.Preview != nil
}

// preview builds ev's commit and serves it in the preview environment
// name: cloned from the template environment through the engine the
// first time, deployed to it after that; the forge hears the URL.
func (s *Service) preview(ctx context.Context, app string, id *gantry.Identity, cfg *hookConfig, ev *Event, name string, m *gantry.Manifest, seq int64) {
	spec := m.Previews
	host := spec.HostFor(app, name, ev.Branch)
	s.status(ctx, cfg, ev, previewCheck, statusPending, "", "building "+short(ev.Commit)+" for preview "+name)
	fail := func(err error) {
		s.logger().Error("preview", "app", app, "env", name, "commit", ev.Commit, "error", err)
		s.status(ctx, cfg, ev, previewCheck, statusFailure, "", "preview "+name+": "+gantry.ErrorMessage(err))
	}
	rel, err := s.build(ctx, app, id, ev)
	if err != nil {
		fail(err)
		return
	}
	defer s.lockPreview(app, name)()
	if s.superseded(app, name, seq) {
		s.logger().Info("preview superseded", "app", app, "env", name, "commit", ev.Commit)
		s.status(ctx, cfg, ev, previewCheck, statusSuccess, "", "superseded by a later event of preview "+name)
		return
	}
	env, err := s.Store.FindEnvironment(ctx, app, name)
	switch {
	case err == nil && env.Preview == nil:
		err = gantry.Errorf(gantry.ECONFLICT, "environment %s exists and is not a preview; not touching it", name)
	case err == nil:
		if _, err = s.Deploys.Deploy(ctx, gantry.DeployRequest{App: app, Env: name, Release: rel.ID, Actor: id.Name, Wait: true}, nil); err == nil {
			err = s.touch(ctx, app, name, id.Name, ev, spec)
		}
	case gantry.ErrorCode(err) == gantry.ENOTFOUND:
		err = s.createPreview(ctx, app, id, ev, name, host, rel, m)
	}
	if err != nil {
		fail(err)
		return
	}
	s.logger().Info("preview ready", "app", app, "env", name, "release", rel.ID, "url", s.url(host))
	s.status(ctx, cfg, ev, previewCheck, statusSuccess, s.url(host), fmt.Sprintf("preview %s serves %s", name, rel.ID))
}

// createPreview clones the template environment into preview name with
// rel, its own host, the template's secrets and, when the app has a
// database, a database of its own (empty or a copy).
func (s *Service) createPreview(ctx context.Context, app string, id *gantry.Identity, ev *Event, name, host string, rel *gantry.Release, m *gantry.Manifest) error {
	spec := m.Previews
	p := &gantry.Preview{Forge: ev.Forge, Repo: ev.Repo, Branch: ev.Branch, MergeRequest: ev.MR, Commit: ev.Commit, ExpiresAt: s.now().Add(spec.TTL)}
	err := s.previewSecrets(ctx, app, spec.From, name, m, p)
	if err == nil {
		req := gantry.CloneRequest{App: app, Src: spec.From, Dst: name, Release: rel.ID, Hosts: []string{host}, Preview: p,
			WithData: m.Database != nil && spec.Data == gantry.PreviewDataCopy, PostCopy: spec.PostCopy, Actor: id.Name}
		_, err = s.Workflows.Clone(ctx, req, nil)
	}
	if err != nil {
		// Leave nothing half made: the environment if the clone got that
		// far (its database goes with it), then its secrets; never what
		// somebody else made under that name.
		cleanup := context.WithoutCancel(ctx)
		env, ferr := s.Store.FindEnvironment(cleanup, app, name)
		ours := ferr == nil && env.Preview != nil && env.Preview.Commit == ev.Commit
		if ours {
			if derr := s.Workflows.DeleteEnvironment(cleanup, gantry.DeleteEnvironmentRequest{App: app, Env: name, Force: true, Actor: id.Name}); derr != nil {
				s.logger().Error("preview cleanup", "app", app, "env", name, "error", derr)
			}
		}
		if ours || gantry.ErrorCode(ferr) == gantry.ENOTFOUND {
			s.unsetSecrets(cleanup, app, name)
		}
	}
	return err
}

// previewSecrets gives preview name the template's secrets, and its own
// DATABASE_URL: the template's database server, a database named after
// the template's with the preview's name appended.
func (s *Service) previewSecrets(ctx context.Context, app, from, name string, m *gantry.Manifest, p *gantry.Preview) error {
	names, err := s.Vault.ListSecrets(ctx, app, from)
	if err != nil {
		return err
	}
	for _, n := range names {
		if n == databaseURLSecret {
			continue
		}
		if v, ok := s.Vault.OpenSecret(ctx, app, from, n); ok {
			if err := s.Vault.SetSecret(ctx, app, name, n, v); err != nil {
				return err
			}
		}
	}
	if m.Database == nil {
		return nil
	}
	tpl, ok := s.SecretFor(app, from, databaseURLSecret)
	if !ok {
		return gantry.Errorf(gantry.EINVALID, "preview %s: the template environment %s has no %s", name, from, databaseURLSecret)
	}
	u, err := previewDatabaseURL(tpl, name)
	if err != nil {
		return err
	}
	p.Database = true
	return s.Vault.SetSecret(ctx, app, name, databaseURLSecret, u)
}

// previewDatabaseURL is the template's database URL with the preview's
// own database name: shop → shop_mr_12 (at most 63 bytes, PostgreSQL's
// limit on a name).
func previewDatabaseURL(tpl, name string) (string, error) {
	u, err := url.Parse(tpl)
	if err != nil || u.Path == "" || u.Path == "/" {
		// Not err itself: it would repeat the URL, password included.
		return "", gantry.Errorf(gantry.EINVALID, "the template's %s is not a postgres://…/DATABASE URL", databaseURLSecret)
	}
	db := strings.TrimPrefix(u.Path, "/") + "_" + strings.ReplaceAll(name, "-", "_")
	if len(db) > 63 {
		db = db[:63]
	}
	u.Path = "/" + db
	u.RawPath = ""
	return u.String(), nil
}

// touch records a preview's new commit and pushes its expiry on, holding
// the environment's lock so that no deployment's write crosses it.
func (s *Service) touch(ctx context.Context, app, name, actor string, ev *Event, spec *gantry.PreviewSpec) error {
	holder := actor + " (preview update)"
	if err := s.Store.AcquireLock(ctx, &gantry.Lock{App: app, Env: name, Holder: holder, Operation: "preview update", Since: s.now()}); err != nil {
		return err
	}
	defer s.Store.ReleaseLock(context.WithoutCancel(ctx), app, name, holder, false)
	env, err := s.Store.FindEnvironment(ctx, app, name)
	if err != nil {
		return err
	}
	if env.Preview == nil {
		return nil
	}
	env.Preview.Commit = ev.Commit
	env.Preview.ExpiresAt = s.now().Add(spec.TTL)
	env.UpdatedAt = s.now()
	return s.Store.PutEnvironment(ctx, env)
}

// deletePreview deletes preview name (its instances, route and, when
// Gantry made it, its database), then its secrets.
// seq is the delivery's number (0 for the TTL, which nothing supersedes).
func (s *Service) deletePreview(ctx context.Context, app, name, actor, why string, seq int64) {
	defer s.lockPreview(app, name)()
	if seq > 0 && s.superseded(app, name, seq) || !s.isPreview(ctx, app, name) {
		return
	}
	err := s.Workflows.DeleteEnvironment(ctx, gantry.DeleteEnvironmentRequest{App: app, Env: name, Force: true, Actor: actor})
	if err != nil {
		s.logger().Error("preview delete", "app", app, "env", name, "why", why, "error", err)
		return
	}
	s.unsetSecrets(ctx, app, name)
	s.logger().Info("preview deleted", "app", app, "env", name, "why", why, "actor", actor)
}

func (s *Service) unsetSecrets(ctx context.Context, app, env string) {
	names, err := s.Vault.ListSecrets(ctx, app, env)
	if err != nil {
		s.logger().Error("preview secrets", "app", app, "env", env, "error", err)
		return
	}
	for _, n := range names {
		if err := s.Vault.UnsetSecret(ctx, app, env, n); err != nil {
			s.logger().Error("preview secrets", "app", app, "env", env, "secret", n, "error", err)
		}
	}
}

// ReapActor is who deletes a preview whose TTL passed.
const ReapActor = "gantry-previews"

// Reap deletes every preview environment whose TTL has passed.
func (s *Service) Reap(ctx context.Context) {
	apps, err := s.Store.ListApps(ctx)
	if err != nil {
		s.logger().Error("preview reap", "error", err)
		return
	}
	now := s.now()
	for _, a := range apps {
		envs, err := s.Store.ListEnvironments(ctx, a.Name)
		if err != nil {
			s.logger().Error("preview reap", "app", a.Name, "error", err)
			continue
		}
		for _, e := range envs {
			if e.Preview != nil && now.After(e.Preview.ExpiresAt) {
				s.deletePreview(ctx, a.Name, e.Name, ReapActor, "its TTL passed at "+e.Preview.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z"), 0)
			}
		}
	}
}
