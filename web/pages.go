package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
)

// envStatus is the API's environment status.
type envStatus struct {
	gantry.Environment
	Lock  *gantry.Lock        `json:"lock"`
	Route *gantry.RouteStatus `json:"route"`
	// Routes are every http service's routes when there is more than one.
	Routes []gantry.RouteStatus `json:"routes"`
}

func appPath(app string) string { return "/v1/apps/" + url.PathEscape(app) }

// releaseCache fetches each release once per page.
type releaseCache struct {
	d   *Dashboard
	ctx context.Context
	id  *gantry.Identity
	app string
	m   map[string]*gantry.Release
}

func (c *releaseCache) get(relID string) *gantry.Release {
	if relID == "" {
		return nil
	}
	if r, ok := c.m[relID]; ok {
		return r
	}
	var r gantry.Release
	if err := c.d.get(c.ctx, c.id, appPath(c.app)+"/releases/"+url.PathEscape(relID), &r); err != nil {
		c.m[relID] = nil
		return nil
	}
	c.m[relID] = &r
	return &r
}

type overviewApp struct {
	Name     string
	Services []string
	Envs     []overviewEnv
}

type overviewEnv struct {
	Name        string
	Slot        string
	ReleaseID   string
	Version     string
	Commit      string
	Since       time.Time
	Cells       []cell
	Standby     *gantry.Slot
	Lock        *gantry.Lock
	Freeze      *gantry.FreezeWindow
	Paused      bool
	Maintenance bool
	PromoteFrom string
}

// cell is one service on one environment.
type cell struct {
	Present bool
	Digest  string
	Version string // the service's own version, when it has one
	Health  string // healthy, unhealthy, partial, running, unknown
	Detail  string
}

func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request, rq *request) {
	var apps []overviewApp
	for _, a := range rq.apps {
		oa, err := d.overviewOf(r.Context(), rq.id, a.Name)
		if err != nil {
			d.fail(w, r, rq, err)
			return
		}
		apps = append(apps, oa)
	}
	p := rq.page("Overview", "", apps)
	p.Nav = "overview"
	p.Flash = r.URL.Query().Get("flash")
	d.render(w, http.StatusOK, "overview.html", p)
}

func (d *Dashboard) envStatuses(ctx context.Context, id *gantry.Identity, app string) ([]envStatus, error) {
	var envs []envStatus
	return envs, d.get(ctx, id, appPath(app)+"/environments", &envs)
}

func (d *Dashboard) overviewOf(ctx context.Context, id *gantry.Identity, app string) (overviewApp, error) {
	envs, err := d.envStatuses(ctx, id, app)
	if err != nil {
		return overviewApp{}, err
	}
	rc := &releaseCache{d: d, ctx: ctx, id: id, app: app, m: map[string]*gantry.Release{}}
	oa := overviewApp{Name: app}
	for _, e := range envs {
		if s := e.ActiveSlot(); s != nil {
			if rel := rc.get(s.ReleaseID); rel != nil {
				for _, svc := range rel.ServiceNames() {
					if !slices.Contains(oa.Services, svc) {
						oa.Services = append(oa.Services, svc)
					}
				}
			}
		}
	}
	slices.Sort(oa.Services)
	now := d.Now()
	for _, e := range envs {
		oe := overviewEnv{Name: e.Name, Lock: e.Lock, PromoteFrom: e.Spec.PromoteFrom}
		for i := range e.Spec.Freeze {
			if f := e.Spec.Freeze[i]; !now.Before(f.From) && now.Before(f.To) {
				oe.Freeze = &f
			}
		}
		if e.Route != nil {
			oe.Paused, oe.Maintenance = e.Route.Paused, e.Route.Maintenance
		}
		for _, s := range e.Slots {
			if s.Name != e.Active && s.State == gantry.SlotStandby {
				oe.Standby = s
			}
		}
		s := e.ActiveSlot()
		var rel *gantry.Release
		if s != nil {
			oe.Slot, oe.ReleaseID, oe.Version, oe.Since = s.Name, s.ReleaseID, s.Version, s.Since
			rel = rc.get(s.ReleaseID)
		}
		if rel != nil {
			oe.Commit = rel.Commit
		}
		for _, svc := range oa.Services {
			c := cell{}
			if rel != nil {
				if art, ok := rel.Artifacts[svc]; ok {
					c.Present, c.Digest, c.Version = true, art.Digest, art.Version
					c.Health, c.Detail = health(s, svc, e.Route, e.Routes)
				}
			}
			oe.Cells = append(oe.Cells, c)
		}
		oa.Envs = append(oa.Envs, oe)
	}
	return oa, nil
}

// health summarises a service's instances on the active slot from the
// router's view of their addresses.
func health(s *gantry.Slot, svc string, main *gantry.RouteStatus, routes []gantry.RouteStatus) (string, string) {
	if len(routes) == 0 && main != nil {
		routes = []gantry.RouteStatus{*main} // one http service: its route is the environment's
	}
	total, healthy, checked := 0, 0, 0
	for _, in := range s.Instances {
		if in.Service != svc {
			continue
		}
		total++
		if in.Addr == "" {
			continue
		}
		for _, rt := range routes {
			for _, t := range rt.Active {
				if t.Addr == in.Addr {
					checked++
					if t.Healthy {
						healthy++
					}
				}
			}
		}
	}
	switch {
	case total == 0:
		return "unknown", "no instances"
	case checked == 0:
		return "running", fmt.Sprintf("%d running (not behind the router)", total)
	case healthy == checked:
		return "healthy", fmt.Sprintf("%d/%d healthy", healthy, checked)
	case healthy == 0:
		return "unhealthy", fmt.Sprintf("0/%d healthy", checked)
	}
	return "partial", fmt.Sprintf("%d/%d healthy", healthy, checked)
}

type releaseRow struct {
	*gantry.Release
	Active  []string
	Standby []string
}

// runningOn maps release IDs to the environments whose active (or standby)
// slot runs them.
func runningOn(envs []envStatus) (active, standby map[string][]string) {
	active, standby = map[string][]string{}, map[string][]string{}
	for _, e := range envs {
		for _, s := range e.Slots {
			switch {
			case s.Name == e.Active && s.ReleaseID != "":
				active[s.ReleaseID] = append(active[s.ReleaseID], e.Name)
			case s.State == gantry.SlotStandby && s.ReleaseID != "":
				standby[s.ReleaseID] = append(standby[s.ReleaseID], e.Name)
			}
		}
	}
	return active, standby
}

func (d *Dashboard) releases(w http.ResponseWriter, r *http.Request, rq *request) {
	app := r.PathValue("app")
	var rels []*gantry.Release
	if err := d.get(r.Context(), rq.id, appPath(app)+"/releases?limit=100", &rels); err != nil {
		d.fail(w, r, rq, err)
		return
	}
	envs, err := d.envStatuses(r.Context(), rq.id, app)
	if err != nil {
		d.fail(w, r, rq, err)
		return
	}
	active, standby := runningOn(envs)
	rows := make([]releaseRow, 0, len(rels))
	for _, rel := range rels {
		rows = append(rows, releaseRow{Release: rel, Active: active[rel.ID], Standby: standby[rel.ID]})
	}
	p := rq.page("Releases of "+app, "", rows)
	p.App, p.Nav = app, "releases"
	d.render(w, http.StatusOK, "releases.html", p)
}

type releaseDetail struct {
	releaseRow
	Services  []string
	Envs      []string
	Approvals []gantry.Approval
}

func (d *Dashboard) release(w http.ResponseWriter, r *http.Request, rq *request) {
	app := r.PathValue("app")
	var rel gantry.Release
	if err := d.get(r.Context(), rq.id, appPath(app)+"/releases/"+url.PathEscape(r.PathValue("id")), &rel); err != nil {
		d.fail(w, r, rq, err)
		return
	}
	envs, err := d.envStatuses(r.Context(), rq.id, app)
	if err != nil {
		d.fail(w, r, rq, err)
		return
	}
	active, standby := runningOn(envs)
	det := releaseDetail{releaseRow: releaseRow{Release: &rel, Active: active[rel.ID], Standby: standby[rel.ID]}}
	det.Services = rel.ServiceNames()
	for _, e := range envs {
		det.Envs = append(det.Envs, e.Name)
		var as []gantry.Approval
		q := url.Values{"release": {rel.ID}}
		if d.get(r.Context(), rq.id, appPath(app)+"/environments/"+url.PathEscape(e.Name)+"/approvals?"+q.Encode(), &as) == nil {
			det.Approvals = append(det.Approvals, as...)
		}
	}
	p := rq.page("Release "+rel.Version, "", det)
	p.App, p.Nav = app, "releases"
	d.render(w, http.StatusOK, "release.html", p)
}

type deploymentList struct {
	Env         string
	Envs        []string
	Deployments []*gantry.Deployment
}

func (d *Dashboard) deployments(w http.ResponseWriter, r *http.Request, rq *request) {
	app, env := r.PathValue("app"), r.URL.Query().Get("env")
	q := url.Values{"limit": {"50"}, "env": {env}}
	var list deploymentList
	list.Env = env
	if err := d.get(r.Context(), rq.id, appPath(app)+"/deployments?"+q.Encode(), &list.Deployments); err != nil {
		d.fail(w, r, rq, err)
		return
	}
	envs, err := d.envStatuses(r.Context(), rq.id, app)
	if err != nil {
		d.fail(w, r, rq, err)
		return
	}
	for _, e := range envs {
		list.Envs = append(list.Envs, e.Name)
	}
	p := rq.page("Deployments of "+app, "", list)
	p.App, p.Nav = app, "deployments"
	d.render(w, http.StatusOK, "deployments.html", p)
}

type deploymentView struct {
	*gantry.Deployment
	Running bool
	Logs    string
	Now     time.Time
	Canary  *canaryView // a running canary's steps and figures
}

func (d *Dashboard) loadDeployment(ctx context.Context, id *gantry.Identity, app, depID string) (*gantry.Deployment, error) {
	n, err := strconv.ParseInt(depID, 10, 64)
	if err != nil {
		return nil, gantry.Errorf(gantry.EINVALID, "deployment id %q is not a number", depID)
	}
	var dep gantry.Deployment
	return &dep, d.get(ctx, id, appPath(app)+"/deployments/"+strconv.FormatInt(n, 10), &dep)
}

func (d *Dashboard) deployment(w http.ResponseWriter, r *http.Request, rq *request) {
	app := r.PathValue("app")
	dep, err := d.loadDeployment(r.Context(), rq.id, app, r.PathValue("id"))
	if err != nil {
		d.fail(w, r, rq, err)
		return
	}
	v := deploymentView{Deployment: dep, Running: dep.State == gantry.DeploymentRunning, Now: d.Now(),
		Canary: d.loadCanary(r.Context(), rq.id, app, dep)}
	if dep.State == gantry.DeploymentFailed {
		v.Logs = d.logs(r.Context(), rq.id, app, dep.Env)
	}
	p := rq.page(fmt.Sprintf("Deployment #%d", dep.ID), "", v)
	p.App, p.Nav = app, "deployments"
	p.Flash = r.URL.Query().Get("flash")
	d.render(w, http.StatusOK, "deployment.html", p)
}

// logs returns the recent output of an environment's instances, or "".
func (d *Dashboard) logs(ctx context.Context, id *gantry.Identity, app, env string) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	rec := newRecorder()
	q := url.Values{"tail": {"40"}}
	if err := d.call(ctx, id, http.MethodGet, appPath(app)+"/environments/"+url.PathEscape(env)+"/logs?"+q.Encode(), nil, rec); err != nil {
		return ""
	}
	return strings.TrimSpace(rec.body.String())
}

// diffView mirrors the API's diff.
type diffView struct {
	A, B   string
	Envs   []string
	Result *struct {
		Envs [2]struct {
			Env     string `json:"env"`
			Release string `json:"release"`
			Version string `json:"version"`
			Commit  string `json:"commit"`
		} `json:"environments"`
		Same      bool `json:"same_release"`
		Artifacts []struct {
			Service string `json:"service"`
			A       string `json:"a"`
			B       string `json:"b"`
			Same    bool   `json:"same"`
		} `json:"artifacts"`
		Vars []struct {
			Name  string `json:"name"`
			InA   bool   `json:"in_a"`
			InB   bool   `json:"in_b"`
			Equal bool   `json:"equal"`
		} `json:"vars"`
		Secrets []struct {
			Name string `json:"name"`
			InA  bool   `json:"in_a"`
			InB  bool   `json:"in_b"`
		} `json:"secrets"`
	}
}

func (d *Dashboard) diff(w http.ResponseWriter, r *http.Request, rq *request) {
	app := r.PathValue("app")
	envs, err := d.envStatuses(r.Context(), rq.id, app)
	if err != nil {
		d.fail(w, r, rq, err)
		return
	}
	v := diffView{A: r.URL.Query().Get("a"), B: r.URL.Query().Get("b")}
	for _, e := range envs {
		v.Envs = append(v.Envs, e.Name)
	}
	if v.A == "" && v.B == "" && len(v.Envs) >= 2 {
		v.A, v.B = v.Envs[len(v.Envs)-1], v.Envs[0]
		for _, e := range envs { // the usual pair: an environment and where it promotes from
			if e.Spec.PromoteFrom != "" {
				v.A, v.B = e.Spec.PromoteFrom, e.Name
			}
		}
	}
	p := rq.page("Diff", "", &v)
	p.App, p.Nav = app, "diff"
	if v.A != "" && v.B != "" {
		q := url.Values{"a": {v.A}, "b": {v.B}}
		if err := d.get(r.Context(), rq.id, appPath(app)+"/diff?"+q.Encode(), &v.Result); err != nil {
			p.Error = gantry.ErrorMessage(err)
		}
	}
	d.render(w, http.StatusOK, "diff.html", p)
}
