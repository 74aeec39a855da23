package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gantry-dev/gantry"
)

// maxRouteWait bounds a watch of the route table; the router asks again.
const maxRouteWait = 30 * time.Second

// routerReportPattern is a following router's heartbeat, kept out of the
// audit trail.
const routerReportPattern = "PUT /v1/routers/{name}"

// followRoutes are the endpoints of the routers that follow the control
// plane (`gantry proxy run --follow`) and of who leads it.
func (s *Server) followRoutes() []route {
	return []route{
		{"GET /v1/leader", PermRead, s.leader, nil},
		{"GET /v1/routes", PermRead, s.watchRoutes, nil},
		{"GET /v1/routers", PermRead, s.listRouters, nil},
		{routerReportPattern, PermDeploy, s.reportRouter, nil},
		{"DELETE /v1/routers/{name}", PermAdmin, s.forgetRouter, nil},
	}
}

// watchRoutes answers the route table; with ?after=N it waits (up to
// ?wait=, at most maxRouteWait) until the table's version is past N — a
// watch: the answer leaves as soon as the store has the new version.
func (s *Server) watchRoutes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("after") == "" {
		t, err := s.Store.FindRoutes(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, t)
		return
	}
	after, err := strconv.ParseInt(q.Get("after"), 10, 64)
	if err != nil || after < 0 {
		s.fail(w, r, gantry.Errorf(gantry.EINVALID, "after=%q: want a version number", q.Get("after")))
		return
	}
	wait := maxRouteWait
	if v := q.Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait <= 0 {
			s.fail(w, r, gantry.Errorf(gantry.EINVALID, "wait=%q: want a duration such as 25s", v))
			return
		}
		wait = min(wait, maxRouteWait)
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	t, err := s.Store.WaitRoutes(ctx, after)
	if err != nil && ctx.Err() != nil && r.Context().Err() == nil {
		t, err = s.Store.FindRoutes(r.Context())
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// RoutersStatus is GET /v1/routers: the route table's version and what
// each following router reports it serves.
type RoutersStatus struct {
	Version int64                  `json:"version"`
	Routers []*gantry.RouterReport `json:"routers"`
}

func (s *Server) listRouters(w http.ResponseWriter, r *http.Request) {
	t, err := s.Store.FindRoutes(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rs, err := s.Store.ListRouterReports(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, RoutersStatus{Version: t.Version, Routers: nonNil(rs)})
}

func (s *Server) forgetRouter(w http.ResponseWriter, r *http.Request) {
	if err := s.Store.DeleteRouterReport(r.Context(), r.PathValue("name")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) reportRouter(w http.ResponseWriter, r *http.Request) {
	var rep gantry.RouterReport
	if err := decode(r, &rep); err != nil {
		s.fail(w, r, err)
		return
	}
	rep.Name = r.PathValue("name")
	if err := gantry.ValidName("router", rep.Name); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.Store.PutRouterReport(r.Context(), &rep); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
