// Package api is Gantry's HTTP JSON API: the server that the CLI and the
// dashboard talk to, and the Go client the CLI uses. It translates between
// HTTP and the root package's services; it holds no deployment logic.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gantry-dev/gantry"
)

// Server serves the API. It receives each service it uses as a field of
// its own, so that what a server offers is said where it is built
// (cmd/gantry); an endpoint whose service is nil answers that this server
// does not offer it.
type Server struct {
	// URL is the API's address as clients on the network reach it;
	// /v1/health reports it, so that a CLI on the unix socket can say
	// where a forge sends its webhooks. Empty: not reported.
	URL      string
	Store    gantry.Store
	Deploys  gantry.DeployService
	Releases gantry.ReleaseService
	// Repos checks an app's repository before the app is registered; nil
	// registers any path or URL unchecked.
	Repos gantry.RepoChecker
	// Importer records releases of images built elsewhere.
	Importer gantry.ReleaseImporter
	// Rollouts runs ordered rollouts and their continuation.
	Rollouts RolloutService
	// Workflows runs environment clone, rename, delete and approvals.
	Workflows gantry.WorkflowService
	// Databases runs the gantry db verbs.
	Databases gantry.DatabaseService
	// Cancels stops the deployment that holds an environment.
	Cancels CancelService
	// Canaries reads and steers running canaries.
	Canaries CanaryService
	// Images prunes unused images.
	Images gantry.ImageService
	Router gantry.Router
	// Tokens authenticates bearer tokens. Without it only requests that
	// already carry an identity (the unix socket, the dashboard) get in.
	Tokens gantry.TokenStore
	// Audit records every state change and every denied attempt; nil
	// records nothing.
	Audit gantry.AuditLog
	// AuditCheck verifies the audit chain against its key and the head
	// recorded outside the state; nil verifies the chain on its own.
	AuditCheck gantry.AuditChecker
	// Delivery computes delivery metrics; nil disables them.
	Delivery gantry.DeliveryService
	// Triggers takes forges' webhooks and keeps the hooks; nil disables them.
	Triggers gantry.TriggerService
	// Secrets sets and lists secrets; nil disables the secret endpoints.
	Secrets gantry.SecretService
	// Leader, when several servers share the store, says whether this one
	// runs deployments; the others forward them to it (leader.go). Nil:
	// this server leads.
	Leader LeaderService
	Logger *slog.Logger
	Now    func() time.Time

	auditMu      sync.Mutex
	auditBacklog []*gantry.AuditEntry // entries the store could not take yet
}

// maxBody bounds every request body the API reads.
const maxBody = 1 << 20

// Permissions that API routes require (see gantry.RolePermissions for who
// holds which). Environment-scoped permissions on a route with {env} in its
// path are checked against that environment.
const (
	PermRead    = gantry.PermRead
	PermBuild   = gantry.PermBuild
	PermDeploy  = gantry.PermDeploy
	PermApprove = gantry.PermApprove
	PermAdmin   = gantry.PermAdmin
)

// route is one API endpoint, the permission it requires (on the
// environment of its path, when it has one) and the other environments
// its request body names, each with the permission it requires there: an
// operation is authorised for every environment it reads or changes, not
// only the one in its path (see api/access_envs.go).
type route struct {
	pattern string
	perm    string
	handler http.HandlerFunc
	body    []envField
}

// routes lists every endpoint. Access control and the audit trail work from
// this one list, so an endpoint cannot be added without a permission, nor
// one that names further environments in its body without saying which
// permission each needs.
func (s *Server) routes() []route {
	rs := []route{
		{"GET /v1/health", "", s.health, nil},
		{"GET /v1/apps", PermRead, s.listApps, nil},
		{"POST /v1/apps", PermAdmin, s.createApp, nil},
		{"GET /v1/apps/{app}/releases", PermRead, s.listReleases, nil},
		{"POST /v1/apps/{app}/releases", PermBuild, s.buildRelease, nil},
		{"GET /v1/apps/{app}/releases/{id}", PermRead, s.getRelease, nil},
		{"GET /v1/apps/{app}/environments", PermRead, s.listEnvironments, nil},
		{"GET /v1/apps/{app}/environments/{env}", PermRead, s.getEnvironment, nil},
		{"POST /v1/apps/{app}/environments/{env}/deploy", PermDeploy, s.deploy, []envField{{"env", PermDeploy}}},
		{"POST /v1/apps/{app}/environments/{env}/promote", PermDeploy, s.promote, []envField{{"from", PermRead}, {"to", PermDeploy}}},
		{"POST /v1/apps/{app}/environments/{env}/rollback", PermDeploy, s.rollback, []envField{{"env", PermDeploy}}},
		{"GET /v1/apps/{app}/environments/{env}/logs", PermRead, s.logs, nil},
		{"POST /v1/apps/{app}/environments/{env}/lock", PermDeploy, s.lock, nil},
		{"DELETE /v1/apps/{app}/environments/{env}/lock", PermDeploy, s.unlock, nil},
		{"POST /v1/apps/{app}/environments/{env}/cancel", PermDeploy, s.cancel, nil},
		{"GET /v1/apps/{app}/deployments", PermRead, s.listDeployments, nil},
		{"GET /v1/apps/{app}/deployments/{id}", PermRead, s.getDeployment, nil},
		{"GET /v1/apps/{app}/diff", PermRead, s.diff, nil},
		{"GET /v1/apps/{app}/metrics", PermRead, s.delivery, nil},
		{"GET /metrics", PermRead, s.prometheus, nil},
	}
	rs = append(rs, s.accessRoutes()...)
	rs = append(rs, s.databaseRoutes()...)
	rs = append(rs, s.canaryRoutes()...)
	rs = append(rs, s.triggerRoutes()...)
	rs = append(rs, s.followRoutes()...)
	return append(rs, s.workflowRoutes()...)
}

// Handler returns the API's routes, each behind access control and the
// audit trail.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.Handle(rt.pattern, s.withAuth(rt, s.withLeader(rt, s.withAudit(rt, rt.handler))))
	}
	return WithRecoverMiddleware(s.logger(), mux)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	h := map[string]string{"status": "ok", "version": gantry.Version}
	if s.URL != "" {
		h["url"] = s.URL
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// actor names who asks: the identity that access control established (a
// token's name, or the local user on the unix socket). A name the client
// states itself is never trusted.
func actor(r *http.Request) string {
	if id := gantry.IdentityFrom(r.Context()); id != nil {
		return id.Name
	}
	return "anonymous"
}

// ErrorBody is the JSON body of an error response.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	noteError(r, err)
	code := gantry.ErrorCode(err)
	if code == gantry.EINTERNAL {
		s.logger().Error("api", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	writeJSON(w, gantry.HTTPStatus(code), ErrorBody{Error: gantry.ErrorMessage(err), Code: code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// decode reads a JSON body strictly: unknown fields and trailing data are errors.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return gantry.Errorf(gantry.EINVALID, "request body is larger than %d bytes", maxBody)
		}
		return gantry.Errorf(gantry.EINVALID, "request body: %v", err)
	}
	// More is false before a stray ']' or '}', so ask for the end itself:
	// anything after the one value is an error.
	if _, err := dec.Token(); err != io.EOF {
		return gantry.Errorf(gantry.EINVALID, "request body: unexpected data after the JSON object")
	}
	return nil
}

func queryInt(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, gantry.Errorf(gantry.EINVALID, "query parameter %s=%q: want a non-negative integer", name, v)
	}
	return n, nil
}

// WithRecoverMiddleware turns a panic in a handler into a logged 500.
func WithRecoverMiddleware(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logger.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", v)
				writeJSON(w, http.StatusInternalServerError, ErrorBody{Error: "internal error", Code: gantry.EINTERNAL})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// stream runs op, sending its progress events as NDJSON lines as they
// happen, then the result or the error. When op fails before its first
// event (a lock conflict, a policy refusal), the response is a plain error
// with the matching HTTP status instead.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, op func(ctx context.Context, progress gantry.Progress) (any, error)) {
	rc := http.NewResponseController(w)
	started := false
	var enc *json.Encoder
	progress := func(ev gantry.Event) {
		if !started {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
			enc = json.NewEncoder(w)
			started = true
		}
		_ = enc.Encode(StreamLine{Event: &ev})
		_ = rc.Flush()
	}
	// A client that goes away does not cancel a deployment half-way: the
	// orchestrator finishes or rolls back on its own terms.
	v, err := op(context.WithoutCancel(r.Context()), progress)
	noteResult(r, v)
	if !started {
		if err != nil {
			s.fail(w, r, err)
			return
		}
		// One line, like every line of a stream.
		w.Header().Set("Content-Type", "application/x-ndjson")
		_ = json.NewEncoder(w).Encode(StreamLine{Result: v})
		return
	}
	line := StreamLine{Result: v}
	if err != nil {
		noteError(r, err)
		code := gantry.ErrorCode(err)
		if code == gantry.EINTERNAL {
			s.logger().Error("api", "method", r.Method, "path", r.URL.Path, "error", err)
		}
		line.Error = &ErrorBody{Error: gantry.ErrorMessage(err), Code: code}
	}
	_ = enc.Encode(line)
}

// StreamLine is one line of a streamed response: an event, or the final
// result, or the final error.
type StreamLine struct {
	Event  *gantry.Event `json:"event,omitempty"`
	Result any           `json:"result,omitempty"`
	Error  *ErrorBody    `json:"error,omitempty"`
}
