package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gantry-dev/gantry"
)

// CancelService stops the deployment that holds an environment (package
// deploy's orchestrator): the one way to free an environment that a
// running deployment holds, since its lock is never removed from under it.
type CancelService interface {
	Cancel(ctx context.Context, app, env, actor string) (*gantry.Deployment, error)
}

// LockRequest locks an environment by hand.
type LockRequest struct {
	Reason string `json:"reason"`
	TTL    string `json:"ttl,omitempty"`
}

func (s *Server) lock(w http.ResponseWriter, r *http.Request) {
	var req LockRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Reason == "" {
		s.fail(w, r, gantry.Errorf(gantry.EINVALID, "a lock needs a reason"))
		return
	}
	l := &gantry.Lock{App: r.PathValue("app"), Env: r.PathValue("env"), Holder: actor(r), Operation: "manual lock", Reason: req.Reason, Since: s.now()}
	if req.TTL != "" {
		ttl, err := time.ParseDuration(req.TTL)
		if err != nil || ttl <= 0 {
			s.fail(w, r, gantry.Errorf(gantry.EINVALID, "ttl %q: want a positive duration such as 30m", req.TTL))
			return
		}
		l.Expires = l.Since.Add(ttl)
	}
	if _, err := s.Store.FindEnvironment(r.Context(), l.App, l.Env); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.Store.AcquireLock(r.Context(), l); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

// unlock releases an environment's lock: the caller's own, or with force
// anyone's, except a lock whose deployment still runs or is paused (see
// lockInUse). The dashboard's Unlock comes through here too.
func (s *Server) unlock(w http.ResponseWriter, r *http.Request) {
	app, env, who := r.PathValue("app"), r.PathValue("env"), actor(r)
	force := r.URL.Query().Get("force") == "true"
	if err := s.lockInUse(r.Context(), app, env); err != nil {
		s.fail(w, r, err)
		return
	}
	// A forced release is refused by the store too (SQLite) when the lock's
	// deployment runs, in the transaction that would delete it: a lock
	// that another deployment took since the check above stays.
	if err := s.Store.ReleaseLock(r.Context(), app, env, who, force); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "unlocked"})
}

// lockInUse returns the ECONFLICT that refuses to unlock app's environment
// env because the deployment its lock names is running or paused. Removing a running deployment's lock lets a
// second deployment run beside it (invariant 12); a paused one is ended by
// `gantry continue`, which puts its candidate back with --abort. A lock
// whose deployment has ended (failed, recovered, interrupted) and a manual
// lock can be released as ever.
func (s *Server) lockInUse(ctx context.Context, app, env string) error {
	l, err := s.Store.FindLock(ctx, app, env)
	if gantry.ErrorCode(err) == gantry.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	if l.DeploymentID == 0 {
		return nil
	}
	d, err := s.Store.FindDeployment(ctx, l.DeploymentID)
	if gantry.ErrorCode(err) == gantry.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	what := d.Kind + " #" + strconv.FormatInt(d.ID, 10)
	if d.Version != "" {
		what += " of " + d.Version
	}
	switch d.State {
	case gantry.DeploymentRunning:
		return gantry.Errorf(gantry.ECONFLICT, "environment %q is held by %s, started by %s at %s and still running: its lock is not removed from under it, forced or not; stop it with `gantry cancel %s` (before its switch it puts its candidate back)",
			env, what, d.Actor, d.CreatedAt.UTC().Format(time.RFC3339), env)
	case gantry.DeploymentPaused:
		return gantry.Errorf(gantry.ECONFLICT, "environment %q is held by %s, paused by %s: `gantry continue %s --abort` puts its candidate back and frees the environment (`gantry continue %s` goes on)",
			env, what, d.Actor, d.Env, d.Env)
	}
	return nil
}

// cancel stops the deployment that holds the environment and answers with
// its record once it has ended.
func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	if s.Cancels == nil {
		s.fail(w, r, gantry.Errorf(gantry.EINVALID, "this server does not cancel deployments"))
		return
	}
	d, err := s.Cancels.Cancel(r.Context(), r.PathValue("app"), r.PathValue("env"), actor(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	noteResult(r, d)
	writeJSON(w, http.StatusOK, d)
}
