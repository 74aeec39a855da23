package api

import (
	"context"
	"net/http"

	"github.com/gantry-dev/gantry"
)

// workflowRoutes are the endpoints of the release workflows: environment
// clone, rename and delete, approvals.
func (s *Server) workflowRoutes() []route {
	return []route{
		{"POST /v1/apps/{app}/environments/{env}/clone", PermAdmin, s.cloneEnvironment, []envField{{"dst", PermAdmin}}},
		{"POST /v1/apps/{app}/environments/{env}/rename", PermAdmin, s.renameEnvironment, []envField{{"new", PermAdmin}, {"displace_to", PermAdmin}}},
		{"DELETE /v1/apps/{app}/environments/{env}", PermAdmin, s.deleteEnvironment, nil},
		{"POST /v1/apps/{app}/environments/{env}/approvals", PermApprove, s.approve, nil},
		{"GET /v1/apps/{app}/environments/{env}/approvals", PermRead, s.listApprovals, nil},
		{"POST /v1/apps/{app}/environments/{env}/rollout", PermDeploy, s.rollout, []envField{{"env", PermDeploy}}},
		{"POST /v1/apps/{app}/environments/{env}/continue", PermDeploy, s.continueRollout, nil},
		{"POST /v1/apps/{app}/releases/import", PermBuild, s.importRelease, nil},
		{"GET /v1/apps/{app}/releases/{id}/evidence", PermRead, s.releaseEvidence, nil},
		{"POST /v1/images/prune", PermAdmin, s.pruneImages, nil},
	}
}

// workflows returns the service behind the workflow endpoints.
func (s *Server) workflows() (gantry.WorkflowService, error) {
	if s.Workflows == nil {
		return nil, gantry.Errorf(gantry.EINVALID, "this server does not run environment workflows")
	}
	return s.Workflows, nil
}

// CloneRequest is the body of a clone: the new environment and its data.
type CloneRequest struct {
	Dst      string `json:"dst"`
	WithData bool   `json:"with_data,omitempty"`
	PostCopy string `json:"post_copy,omitempty"`
}

func (s *Server) cloneEnvironment(w http.ResponseWriter, r *http.Request) {
	var body CloneRequest
	if err := decode(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	wf, err := s.workflows()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := gantry.ValidName("environment", body.Dst); err != nil {
		s.fail(w, r, err)
		return
	}
	req := gantry.CloneRequest{App: r.PathValue("app"), Src: r.PathValue("env"), Dst: body.Dst, WithData: body.WithData, PostCopy: body.PostCopy, Actor: actor(r)}
	s.stream(w, r, func(ctx context.Context, p gantry.Progress) (any, error) {
		return deploymentResult(wf.Clone(ctx, req, p))
	})
}

// RenameRequest is the body of a rename.
type RenameRequest struct {
	New        string `json:"new"`
	DisplaceTo string `json:"displace_to,omitempty"`
}

func (s *Server) renameEnvironment(w http.ResponseWriter, r *http.Request) {
	var body RenameRequest
	if err := decode(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	wf, err := s.workflows()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	names := []string{body.New}
	if body.DisplaceTo != "" {
		names = append(names, body.DisplaceTo)
	}
	for _, name := range names {
		if err := gantry.ValidName("environment", name); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	req := gantry.RenameRequest{App: r.PathValue("app"), Old: r.PathValue("env"), New: body.New, DisplaceTo: body.DisplaceTo, Actor: actor(r)}
	s.stream(w, r, func(ctx context.Context, p gantry.Progress) (any, error) {
		return deploymentResult(wf.Rename(ctx, req, p))
	})
}

func (s *Server) deleteEnvironment(w http.ResponseWriter, r *http.Request) {
	wf, err := s.workflows()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req := gantry.DeleteEnvironmentRequest{App: r.PathValue("app"), Env: r.PathValue("env"), Force: r.URL.Query().Get("force") == "true", Purge: r.URL.Query().Get("purge") == "true", KeepData: r.URL.Query().Get("keep_data") == "true", Actor: actor(r)}
	if err := wf.DeleteEnvironment(r.Context(), req); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "deleted", "env": req.Env})
}

// ApproveBody is the body of an approval.
type ApproveBody struct {
	Release string `json:"release"`
	Comment string `json:"comment,omitempty"`
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request) {
	var body ApproveBody
	if err := decode(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	wf, err := s.workflows()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req := gantry.ApproveRequest{App: r.PathValue("app"), Env: r.PathValue("env"), Release: body.Release, Comment: body.Comment, Actor: actor(r)}
	if id := gantry.IdentityFrom(r.Context()); id != nil {
		req.Role = id.Role
	}
	a, err := wf.Approve(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, a)
}

func (s *Server) listApprovals(w http.ResponseWriter, r *http.Request) {
	rel, err := s.Store.FindRelease(r.Context(), r.PathValue("app"), r.URL.Query().Get("release"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	as, err := s.Store.ListApprovals(r.Context(), r.PathValue("app"), r.PathValue("env"), rel.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(as))
}
