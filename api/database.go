package api

import (
	"net/http"

	"github.com/gantry-dev/gantry"
)

func (s *Server) databases() (gantry.DatabaseService, error) {
	if d, ok := s.Deploys.(gantry.DatabaseService); ok {
		return d, nil
	}
	return nil, gantry.Errorf(gantry.EINVALID, "this server does not manage databases")
}

func (s *Server) databaseStatus(w http.ResponseWriter, r *http.Request) {
	d, err := s.databases()
	if err == nil {
		var st *gantry.DatabaseStatus
		if st, err = d.DatabaseStatus(r.Context(), r.PathValue("app"), r.PathValue("env")); err == nil {
			writeJSON(w, http.StatusOK, st)
			return
		}
	}
	s.fail(w, r, err)
}

func (s *Server) databaseContract(w http.ResponseWriter, r *http.Request) {
	d, err := s.databases()
	if err == nil {
		var rec *gantry.MigrationRecord
		if rec, err = d.Contract(r.Context(), r.PathValue("app"), r.PathValue("env"), r.URL.Query().Get("force") == "true"); err == nil {
			writeJSON(w, http.StatusOK, rec)
			return
		}
	}
	s.fail(w, r, err)
}
