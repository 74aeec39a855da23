package api

import (
	"context"
	"net/http"
	"net/url"
	"sort"

	"github.com/gantry-dev/gantry"
)

// Evidence is what stands behind a release: its digests, and for every
// environment it reached, how it got there (the deployments and the checks
// they passed, with their output), the approvals given for it, and the
// configuration difference from the environment it was promoted from.
type Evidence struct {
	Release      *gantry.Release       `json:"release"`
	Environments []EnvironmentEvidence `json:"environments"`
}

// EnvironmentEvidence is one environment's part of a release's evidence.
type EnvironmentEvidence struct {
	Env          string               `json:"env"`
	Deployments  []*gantry.Deployment `json:"deployments"`
	Checks       []gantry.Step        `json:"checks"`
	Approvals    []*gantry.Approval   `json:"approvals,omitempty"`
	PromotedFrom string               `json:"promoted_from,omitempty"`
	ConfigDiff   *Diff                `json:"config_diff,omitempty"`
}

// checkSteps are the journal steps that are evidence: what was verified.
var checkSteps = map[string]bool{"verify-artifacts": true, "health": true, "verify": true, "switch": true,
	"db-plan": true, "db-expand": true, "db-contract": true, "copy-data": true, "classify": true, "break-glass": true}

func isCheck(name string) bool {
	return checkSteps[name] || len(name) > 6 && name[:6] == "hooks " || len(name) > 6 && name[:6] == "start-"
}

func (s *Server) releaseEvidence(w http.ResponseWriter, r *http.Request) {
	ev, err := s.evidence(r.Context(), r.PathValue("app"), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ev)
}

func (s *Server) evidence(ctx context.Context, app, id string) (*Evidence, error) {
	rel, err := s.Store.FindRelease(ctx, app, id)
	if err != nil {
		return nil, err
	}
	ds, err := s.Store.ListDeployments(ctx, gantry.DeploymentFilter{App: app, Limit: 1000})
	if err != nil {
		return nil, err
	}
	byEnv := map[string]*EnvironmentEvidence{}
	for i := len(ds) - 1; i >= 0; i-- { // oldest first
		d := ds[i]
		if d.ReleaseID != rel.ID {
			continue
		}
		full, err := s.Store.FindDeployment(ctx, d.ID)
		if err != nil {
			return nil, err
		}
		e := byEnv[d.Env]
		if e == nil {
			e = &EnvironmentEvidence{Env: d.Env}
			byEnv[d.Env] = e
		}
		for _, st := range full.Steps {
			if isCheck(st.Name) && st.State == gantry.StepDone {
				e.Checks = append(e.Checks, st)
			}
		}
		full.Steps = nil
		e.Deployments = append(e.Deployments, full)
		if d.Kind == gantry.KindPromote && d.FromEnv != "" {
			e.PromotedFrom = d.FromEnv
		}
	}
	out := &Evidence{Release: rel}
	names := make([]string, 0, len(byEnv))
	for n := range byEnv {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		e := byEnv[n]
		if as, err := s.Store.ListApprovals(ctx, app, n, rel.ID); err == nil {
			e.Approvals = as
		}
		if e.PromotedFrom != "" {
			if diff, err := s.computeDiff(ctx, app, e.PromotedFrom, n); err == nil {
				e.ConfigDiff = diff
			}
		}
		out.Environments = append(out.Environments, *e)
	}
	return out, nil
}

// Evidence returns what stands behind a release.
func (c *Client) Evidence(ctx context.Context, app, id string) (*Evidence, error) {
	var out Evidence
	return &out, c.do(ctx, http.MethodGet, appPath(app)+"/releases/"+url.PathEscape(id)+"/evidence", nil, &out)
}
