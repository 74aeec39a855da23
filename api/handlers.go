package api

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/gantry-dev/gantry"
)

// CreateAppRequest registers an app.
type CreateAppRequest struct {
	Name string `json:"name"`
	Repo string `json:"repo"`
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request) {
	apps, err := s.Store.ListApps(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(apps))
}

func (s *Server) createApp(w http.ResponseWriter, r *http.Request) {
	var req CreateAppRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := gantry.ValidName("app", req.Name); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Repo == "" {
		s.fail(w, r, gantry.Errorf(gantry.EINVALID, "app %s: a repository (path or URL) is required", req.Name))
		return
	}
	if s.Repos != nil {
		if err := s.Repos.CheckRepo(r.Context(), req.Repo); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	app := &gantry.App{Name: req.Name, Repo: req.Repo, CreatedAt: s.now()}
	if err := s.Store.CreateApp(r.Context(), app); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, app)
}

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit", 50)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rels, err := s.Store.ListReleases(r.Context(), gantry.ReleaseFilter{App: r.PathValue("app"), Limit: limit})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(rels))
}

func (s *Server) getRelease(w http.ResponseWriter, r *http.Request) {
	rel, err := s.Store.FindRelease(r.Context(), r.PathValue("app"), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rel)
}

func (s *Server) buildRelease(w http.ResponseWriter, r *http.Request) {
	var req gantry.BuildRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	req.App, req.Actor = r.PathValue("app"), actor(r)
	s.stream(w, r, func(ctx context.Context, p gantry.Progress) (any, error) {
		rel, err := s.Releases.BuildRelease(ctx, req, p)
		if rel == nil {
			return nil, err
		}
		return rel, err
	})
}

// EnvironmentStatus is an environment with its lock and its route's live state.
type EnvironmentStatus struct {
	*gantry.Environment
	Lock  *gantry.Lock        `json:"lock,omitempty"`
	Route *gantry.RouteStatus `json:"route,omitempty"`
	// Routes are the routes of every http service (services.<service>.route),
	// the environment's own first, when there is more than one.
	Routes []gantry.RouteStatus `json:"routes,omitempty"`
}

func (s *Server) envStatus(ctx context.Context, env *gantry.Environment, routes []gantry.RouteStatus) EnvironmentStatus {
	st := EnvironmentStatus{Environment: withoutFingerprints(env)}
	if l, err := s.Store.FindLock(ctx, env.App, env.Name); err == nil {
		st.Lock = l
	}
	for i := range routes {
		if gantry.IsEnvironmentRoute(routes[i].Route.Name, env.App, env.Name) {
			st.Routes = append(st.Routes, routes[i])
		}
	}
	sort.Slice(st.Routes, func(i, j int) bool { return st.Routes[i].Route.Name < st.Routes[j].Route.Name })
	if len(st.Routes) > 0 {
		st.Route = &st.Routes[0]
	}
	if len(st.Routes) < 2 {
		st.Routes = nil
	}
	return st
}

// withoutFingerprints is env as the API shows it: an instance's Config
// digests the environment's secret values together with what a reader can
// see (artifact, manifest, variables), so a guess at a weak secret could be
// checked against it. Only the orchestrator needs it.
func withoutFingerprints(env *gantry.Environment) *gantry.Environment {
	c := env.InUTC()
	for _, sl := range c.Slots {
		if sl == nil {
			continue
		}
		for i := range sl.Instances {
			sl.Instances[i].Config = ""
		}
	}
	return c
}

func (s *Server) routerStatus(ctx context.Context) []gantry.RouteStatus {
	if s.Router == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	sts, err := s.Router.Status(ctx)
	if err != nil {
		s.logger().Warn("router status", "error", err)
	}
	return sts
}

func (s *Server) listEnvironments(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	if _, err := s.Store.FindApp(r.Context(), app); err != nil {
		s.fail(w, r, err)
		return
	}
	envs, err := s.Store.ListEnvironments(r.Context(), app)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	routes := s.routerStatus(r.Context())
	out := make([]EnvironmentStatus, 0, len(envs))
	for _, e := range envs {
		out = append(out, s.envStatus(r.Context(), e, routes))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getEnvironment(w http.ResponseWriter, r *http.Request) {
	env, err := s.Store.FindEnvironment(r.Context(), r.PathValue("app"), r.PathValue("env"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.envStatus(r.Context(), env, s.routerStatus(r.Context())))
}

func (s *Server) deploy(w http.ResponseWriter, r *http.Request) {
	var req gantry.DeployRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	req.App, req.Env, req.Actor = r.PathValue("app"), r.PathValue("env"), actor(r)
	noteRelease(r, req.Release)
	s.stream(w, r, func(ctx context.Context, p gantry.Progress) (any, error) {
		return deploymentResult(s.Deploys.Deploy(ctx, req, p))
	})
}

func (s *Server) promote(w http.ResponseWriter, r *http.Request) {
	var req gantry.PromoteRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	req.App, req.To, req.Actor = r.PathValue("app"), r.PathValue("env"), actor(r)
	s.stream(w, r, func(ctx context.Context, p gantry.Progress) (any, error) {
		return deploymentResult(s.Deploys.Promote(ctx, req, p))
	})
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request) {
	var req gantry.RollbackRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	req.App, req.Env, req.Actor = r.PathValue("app"), r.PathValue("env"), actor(r)
	s.stream(w, r, func(ctx context.Context, p gantry.Progress) (any, error) {
		return deploymentResult(s.Deploys.Rollback(ctx, req, p))
	})
}

// deploymentResult avoids a typed nil inside an interface.
func deploymentResult(d *gantry.Deployment, err error) (any, error) {
	if d == nil {
		return nil, err
	}
	return d, err
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	tail, err := queryInt(r, "tail", 100)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	follow := r.URL.Query().Get("follow") == "true"
	fw := &flushWriter{w: w, rc: http.NewResponseController(w)}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	err = s.Deploys.Logs(r.Context(), r.PathValue("app"), r.PathValue("env"), r.URL.Query().Get("service"), tail, follow, fw)
	if err != nil && !fw.wrote {
		s.fail(w, r, err)
	}
}

type flushWriter struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	wrote bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.wrote = true
	n, err := f.w.Write(p)
	_ = f.rc.Flush()
	return n, err
}

func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit", 20)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	before, err := queryInt(r, "before", 0)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ds, err := s.Store.ListDeployments(r.Context(), gantry.DeploymentFilter{App: r.PathValue("app"), Env: r.URL.Query().Get("env"), BeforeID: int64(before), Limit: limit})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(ds))
}

func (s *Server) getDeployment(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.fail(w, r, gantry.Errorf(gantry.EINVALID, "deployment id %q is not a number", r.PathValue("id")))
		return
	}
	d, err := s.Store.FindDeployment(r.Context(), id)
	if err == nil && d.App != r.PathValue("app") {
		err = gantry.Errorf(gantry.ENOTFOUND, "deployment %d not found", id)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
