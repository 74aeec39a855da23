package api

import (
	"net/http"

	"github.com/gantry-dev/gantry"
)

func (s *Server) importRelease(w http.ResponseWriter, r *http.Request) {
	var req ImportRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.Importer == nil {
		s.fail(w, r, gantry.Errorf(gantry.EINVALID, "this server does not import releases"))
		return
	}
	rel, err := s.Importer.ImportRelease(r.Context(), gantry.ImportRequest{App: r.PathValue("app"), Version: req.Version, Commit: req.Commit,
		Ref: req.Ref, Images: req.Images, Actor: actor(r)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, rel)
}
