package api

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/lazyre"
)

// accessRoutes are the endpoints of access control, the audit trail and
// secrets.
func (s *Server) accessRoutes() []route {
	return []route{
		{"GET /v1/whoami", PermRead, s.whoami, nil},
		{"GET /v1/tokens", PermAdmin, s.listTokens, nil},
		{"POST /v1/tokens", PermAdmin, s.createToken, nil},
		{"DELETE /v1/tokens/{name}", PermAdmin, s.revokeToken, nil},
		{"GET /v1/audit", PermRead, s.listAudit, nil},
		{"GET /v1/audit/verify", PermRead, s.verifyAudit, nil},
		{"GET /v1/apps/{app}/environments/{env}/secrets", PermRead, s.listSecrets, nil},
		{"PUT /v1/apps/{app}/environments/{env}/secrets/{name}", PermAdmin, s.setSecret, nil},
		{"DELETE /v1/apps/{app}/environments/{env}/secrets/{name}", PermAdmin, s.unsetSecret, nil},
	}
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, gantry.IdentityFrom(r.Context()))
}

var (
	tokenName  = lazyre.New(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	secretName = lazyre.New(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
)

// CreateTokenRequest asks for a token.
type CreateTokenRequest struct {
	Name string   `json:"name"`
	Role string   `json:"role"`
	Envs []string `json:"envs,omitempty"`
}

// CreatedToken is a new token with its secret, shown this once.
type CreatedToken struct {
	*gantry.Token
	Secret string `json:"secret"`
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var req CreateTokenRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if !tokenName.MatchString(req.Name) {
		s.fail(w, r, gantry.Errorf(gantry.EINVALID, "token name %q: use lower-case letters, digits, dots, dashes and underscores", req.Name))
		return
	}
	if !slices.Contains(gantry.Roles, req.Role) {
		s.fail(w, r, gantry.Errorf(gantry.EINVALID, "role %q: want one of %s", req.Role, strings.Join(gantry.Roles, ", ")))
		return
	}
	for _, e := range req.Envs {
		if err := gantry.ValidName("environment", e); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if s.Tokens == nil {
		s.fail(w, r, gantry.Errorf(gantry.EINVALID, "this server has no token store"))
		return
	}
	secret, err := gantry.NewTokenSecret()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	slices.Sort(req.Envs)
	t := &gantry.Token{Name: req.Name, Role: req.Role, Envs: slices.Compact(req.Envs), Hash: gantry.HashToken(secret), CreatedBy: actor(r), CreatedAt: s.now()}
	if err := s.Tokens.CreateToken(r.Context(), t); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, CreatedToken{Token: t, Secret: secret})
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	if s.Tokens == nil {
		writeJSON(w, http.StatusOK, []*gantry.Token{})
		return
	}
	ts, err := s.Tokens.ListTokens(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(ts))
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	if s.Tokens == nil {
		s.fail(w, r, gantry.Errorf(gantry.ENOTFOUND, "token %q not found", r.PathValue("name")))
		return
	}
	if err := s.Tokens.RevokeToken(r.Context(), r.PathValue("name")); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "revoked"})
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit", 0)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	after, err := queryInt(r, "after", 0)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	f := gantry.AuditFilter{App: q.Get("app"), Env: q.Get("env"), AfterSeq: int64(after), Limit: limit}
	if v := q.Get("since"); v != "" {
		if f.Since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			s.fail(w, r, gantry.Errorf(gantry.EINVALID, "since %q: want an RFC 3339 time such as 2026-11-22T01:00:00Z", v))
			return
		}
	}
	if s.Audit == nil {
		writeJSON(w, http.StatusOK, []*gantry.AuditEntry{})
		return
	}
	es, err := s.Audit.ListAudit(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(es))
}

// AuditVerification is the result of checking the audit chain: what was
// checked, what that protects against, and the first break if any.
type AuditVerification = gantry.AuditReport

func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request) {
	if s.AuditCheck != nil {
		v, err := s.AuditCheck.CheckAudit(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
		return
	}
	if s.Audit == nil {
		writeJSON(w, http.StatusOK, AuditVerification{OK: true})
		return
	}
	es, err := s.Audit.ListAudit(r.Context(), gantry.AuditFilter{})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	seq, hash, err := s.Audit.AuditHead(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, gantry.CheckAudit(es, seq, hash, gantry.AuditAnchor{}))
}

// SetSecretRequest carries a secret's value; it is sealed at once and never
// comes back.
type SetSecretRequest struct {
	Value string `json:"value"`
}

func (s *Server) secrets(w http.ResponseWriter, r *http.Request) bool {
	if s.Secrets == nil {
		s.fail(w, r, gantry.Errorf(gantry.EINVALID, "this server stores no secrets"))
		return false
	}
	// The app must exist, the environment need not yet: its secrets are
	// set before its first deploy, which needs them.
	if _, err := s.Store.FindApp(r.Context(), r.PathValue("app")); err != nil {
		s.fail(w, r, err)
		return false
	}
	if err := gantry.ValidName("environment", r.PathValue("env")); err != nil {
		s.fail(w, r, err)
		return false
	}
	return true
}

func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request) {
	if !s.secrets(w, r) {
		return
	}
	names, err := s.Secrets.ListSecrets(r.Context(), r.PathValue("app"), r.PathValue("env"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(names))
}

func (s *Server) setSecret(w http.ResponseWriter, r *http.Request) {
	var req SetSecretRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	name := r.PathValue("name")
	if !secretName.MatchString(name) {
		s.fail(w, r, gantry.Errorf(gantry.EINVALID, "secret name %q: use letters, digits and underscores", name))
		return
	}
	if req.Value == "" {
		s.fail(w, r, gantry.Errorf(gantry.EINVALID, "secret %s: the value is empty", name))
		return
	}
	if !s.secrets(w, r) {
		return
	}
	if err := s.Secrets.SetSecret(r.Context(), r.PathValue("app"), r.PathValue("env"), name, req.Value); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "set", "name": name})
}

func (s *Server) unsetSecret(w http.ResponseWriter, r *http.Request) {
	if !s.secrets(w, r) {
		return
	}
	if err := s.Secrets.UnsetSecret(r.Context(), r.PathValue("app"), r.PathValue("env"), r.PathValue("name")); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "unset", "name": r.PathValue("name")})
}
