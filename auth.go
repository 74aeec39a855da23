package gantry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"time"
)

// Permissions. Every API route declares the one it requires; a role is a
// set of them.
const (
	PermRead    = "read"    // see apps, releases, environments, deployments, logs, the audit trail
	PermBuild   = "build"   // build releases
	PermDeploy  = "deploy"  // deploy, promote, roll back, lock and unlock an environment
	PermApprove = "approve" // approve a release for an environment
	PermAdmin   = "admin"   // register apps, manage tokens and secrets, environments' lifecycle
)

// Roles.
const (
	RoleViewer   = "viewer"
	RoleDeployer = "deployer"
	RoleApprover = "approver"
	RoleAdmin    = "admin"
)

// Roles lists the roles, least powerful first.
var Roles = []string{RoleViewer, RoleDeployer, RoleApprover, RoleAdmin}

// RolePermissions returns the permissions of a role (nil for an unknown one).
// Admin holds every permission, including ones added later.
func RolePermissions(role string) []string {
	switch role {
	case RoleViewer:
		return []string{PermRead}
	case RoleDeployer:
		return []string{PermRead, PermBuild, PermDeploy}
	case RoleApprover:
		return []string{PermRead, PermApprove}
	case RoleAdmin:
		return []string{PermRead, PermBuild, PermDeploy, PermApprove, PermAdmin}
	}
	return nil
}

// EnvScoped reports whether a permission is limited by a grant's
// environments. Reading and building touch no environment, so a grant
// limited to test still sees releases and builds them; deploying,
// approving and administering are checked against the environment.
func EnvScoped(perm string) bool {
	return perm == PermDeploy || perm == PermApprove || perm == PermAdmin
}

// Token is an API credential. Only the hash of its secret is stored: the
// secret is shown once, when the token is created.
type Token struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// Envs limits the grant to these environments; empty means all.
	Envs      []string  `json:"envs,omitempty"`
	Hash      string    `json:"-"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// TokenStore keeps tokens. Implementations: sqlite.
type TokenStore interface {
	// CreateToken stores t; ECONFLICT when the name is taken.
	CreateToken(ctx context.Context, t *Token) error
	// FindTokenByHash returns the token whose secret hashes to hash, or ENOTFOUND.
	FindTokenByHash(ctx context.Context, hash string) (*Token, error)
	ListTokens(ctx context.Context) ([]*Token, error)
	// RevokeToken deletes the named token; ENOTFOUND when there is none.
	RevokeToken(ctx context.Context, name string) error
}

// tokenPrefix makes a leaked token recognisable to secret scanners.
const tokenPrefix = "gty_"

// NewTokenSecret returns a fresh random token secret.
func NewTokenSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// HashToken is what is stored of a token secret. The secret has 256 random
// bits, so a plain SHA-256 cannot be brute-forced and needs no salt.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Identity is who makes a request: a token's holder, or the local user on
// the server's unix socket (an admin without a token).
type Identity struct {
	Name  string   `json:"name"`
	Role  string   `json:"role"`
	Envs  []string `json:"envs,omitempty"`
	Local bool     `json:"local,omitempty"`
}

// TokenIdentity is the identity of a token's holder.
func TokenIdentity(t *Token) *Identity {
	return &Identity{Name: t.Name, Role: t.Role, Envs: t.Envs}
}

// Allows reports whether id holds perm on env ("" for a route that names no
// environment). An environment-scoped permission on a route without an
// environment needs a grant that is not limited to environments.
func (id *Identity) Allows(perm, env string) bool {
	if id == nil {
		return false
	}
	if perm == "" {
		return true
	}
	if !slices.Contains(RolePermissions(id.Role), perm) {
		return false
	}
	if len(id.Envs) == 0 || !EnvScoped(perm) {
		return true
	}
	return env != "" && slices.Contains(id.Envs, env)
}

// String describes the identity for an error message: "ci (deployer for test)".
func (id *Identity) String() string {
	if id == nil {
		return "anonymous"
	}
	kind := "token "
	if id.Local {
		kind = "local user "
	}
	grant := id.Role
	if len(id.Envs) > 0 {
		grant += " for " + strings.Join(id.Envs, ", ")
	}
	return kind + id.Name + " (" + grant + ")"
}

// Denied returns the EFORBIDDEN error that names what id lacks.
func (id *Identity) Denied(perm, env string) error {
	if env == "" {
		if len(id.Envs) > 0 && EnvScoped(perm) {
			return Errorf(EFORBIDDEN, "%s lacks %s outside its environments (this needs a grant for every environment)", id, perm)
		}
		return Errorf(EFORBIDDEN, "%s lacks %s", id, perm)
	}
	return Errorf(EFORBIDDEN, "%s lacks %s on environment %s", id, perm, env)
}

type identityKey struct{}

// WithIdentity returns ctx carrying id. Only trusted code sets it: the unix
// socket's listener for its peer, and the dashboard for a signed-in user.
func WithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the identity that ctx carries, or nil.
func IdentityFrom(ctx context.Context) *Identity {
	id, _ := ctx.Value(identityKey{}).(*Identity)
	return id
}

// SecretStore keeps secret values sealed (encrypted by the caller); it
// never sees a plain value. Implementations: sqlite.
type SecretStore interface {
	PutSecret(ctx context.Context, app, env, name string, sealed []byte) error
	// FindSecret returns the sealed value, or ENOTFOUND.
	FindSecret(ctx context.Context, app, env, name string) ([]byte, error)
	// ListSecrets returns the names set on an environment, sorted.
	ListSecrets(ctx context.Context, app, env string) ([]string, error)
	// DeleteSecret removes a secret; ENOTFOUND when it is not set.
	DeleteSecret(ctx context.Context, app, env, name string) error
}

// SecretService sets and lists secrets for the API. Values go in, only
// names come out.
type SecretService interface {
	SetSecret(ctx context.Context, app, env, name, value string) error
	ListSecrets(ctx context.Context, app, env string) ([]string, error)
	UnsetSecret(ctx context.Context, app, env, name string) error
}
