package api

import (
	"net/http"

	"github.com/gantry-dev/gantry"
)

// databaseRoutes are the endpoints of the gantry db verbs. Reading is
// viewer-level; changing the database is deploy-level, like a deployment's
// own expand and contract; a restore and a rollback across a contract
// replace the database with a snapshot and lose writes, so they are admin's.
func (s *Server) databaseRoutes() []route {
	return []route{
		{"GET /v1/apps/{app}/environments/{env}/db", PermRead, s.databaseStatus, nil},
		{"POST /v1/apps/{app}/environments/{env}/db/contract", PermDeploy, s.databaseContract, nil},
		{"POST /v1/apps/{app}/environments/{env}/db/rollback", PermDeploy, s.databaseRollback, nil},
		{"POST /v1/apps/{app}/environments/{env}/db/rollback/force", PermAdmin, s.databaseForceRollback, nil},
		{"GET /v1/apps/{app}/environments/{env}/db/snapshots", PermRead, s.databaseSnapshots, nil},
		{"POST /v1/apps/{app}/environments/{env}/db/snapshots", PermDeploy, s.databaseSnapshot, nil},
		{"POST /v1/apps/{app}/environments/{env}/db/snapshots/{name}/restore", PermAdmin, s.databaseRestore, nil},
	}
}

// databases returns the service behind the db endpoints.
func (s *Server) databases() (gantry.DatabaseService, error) {
	if s.Databases == nil {
		return nil, gantry.Errorf(gantry.EINVALID, "this server does not manage databases: use `gantry db` with --url")
	}
	return s.Databases, nil
}

// withDatabases runs op on the database service and answers with its
// result or its error.
func (s *Server) withDatabases(w http.ResponseWriter, r *http.Request, op func(d gantry.DatabaseService, app, env string) (any, error)) {
	d, err := s.databases()
	if err == nil {
		var v any
		if v, err = op(d, r.PathValue("app"), r.PathValue("env")); err == nil {
			writeJSON(w, http.StatusOK, v)
			return
		}
	}
	s.fail(w, r, err)
}

func (s *Server) databaseStatus(w http.ResponseWriter, r *http.Request) {
	s.withDatabases(w, r, func(d gantry.DatabaseService, app, env string) (any, error) {
		return d.DatabaseStatus(r.Context(), app, env)
	})
}

func (s *Server) databaseContract(w http.ResponseWriter, r *http.Request) {
	force := r.URL.Query().Get("force") == "true"
	s.withDatabases(w, r, func(d gantry.DatabaseService, app, env string) (any, error) {
		return d.DatabaseContract(r.Context(), app, env, force)
	})
}

func (s *Server) databaseRollback(w http.ResponseWriter, r *http.Request) {
	s.withDatabases(w, r, func(d gantry.DatabaseService, app, env string) (any, error) {
		return d.DatabaseRollback(r.Context(), app, env, false)
	})
}

// databaseForceRollback is a rollback allowed across a contract: a route of
// its own so that the route table, not the handler, says it needs admin.
func (s *Server) databaseForceRollback(w http.ResponseWriter, r *http.Request) {
	s.withDatabases(w, r, func(d gantry.DatabaseService, app, env string) (any, error) {
		return d.DatabaseRollback(r.Context(), app, env, true)
	})
}

func (s *Server) databaseSnapshots(w http.ResponseWriter, r *http.Request) {
	s.withDatabases(w, r, func(d gantry.DatabaseService, app, env string) (any, error) {
		snaps, err := d.Snapshots(r.Context(), app, env)
		return nonNil(snaps), err
	})
}

// SnapshotRequest is the body of a manual snapshot.
type SnapshotRequest struct {
	Reason string `json:"reason,omitempty"`
}

func (s *Server) databaseSnapshot(w http.ResponseWriter, r *http.Request) {
	var body SnapshotRequest
	if err := decode(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	s.withDatabases(w, r, func(d gantry.DatabaseService, app, env string) (any, error) {
		return d.Snapshot(r.Context(), app, env, body.Reason)
	})
}

func (s *Server) databaseRestore(w http.ResponseWriter, r *http.Request) {
	s.withDatabases(w, r, func(d gantry.DatabaseService, app, env string) (any, error) {
		return d.Restore(r.Context(), app, env, r.PathValue("name"))
	})
}
