package trigger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
)

// Vault keeps sealed values (the server's secret box): a hook's webhook
// secret and forge API token, and the secrets a preview takes over from
// its template environment.
type Vault interface {
	SetSecret(ctx context.Context, app, env, name, value string) error
	UnsetSecret(ctx context.Context, app, env, name string) error
	ListSecrets(ctx context.Context, app, env string) ([]string, error)
	// OpenSecret returns the value stored for app's environment env.
	OpenSecret(ctx context.Context, app, env, name string) (string, bool)
}

// hooksEnv is where hooks are sealed: beside the app's environments'
// secrets, under a name no environment can have (names are DNS labels).
const hooksEnv = ".hooks"

// hookConfig is what is sealed of a hook.
type hookConfig struct {
	Secret    string        `json:"secret,omitempty"`
	APIURL    string        `json:"api_url,omitempty"`
	APIToken  string        `json:"api_token,omitempty"`
	Poll      time.Duration `json:"poll,omitempty"`
	Token     string        `json:"token"`
	CreatedAt time.Time     `json:"created_at"`
	// Heads, of a poll hook, is the listing of branches the poller acted
	// on last: it outlives a restart, so a push made while the server was
	// down is found by the first listing after it.
	Heads map[string]string `json:"heads,omitempty"`
}

func (c *hookConfig) public(app, forge string) *gantry.ForgeHook {
	return &gantry.ForgeHook{App: app, Forge: forge, Token: c.Token, APIURL: c.APIURL, StatusToken: c.APIToken != "", Poll: c.Poll, CreatedAt: c.CreatedAt}
}

// HookTokenName is the name of the token a hook runs as.
func HookTokenName(app, forge string) string { return "hook-" + forge + "-" + app }

// HookPath is where a forge delivers a hook's events on the server.
func HookPath(app, forge string) string { return "/v1/hooks/" + app + "/" + forge }

// AddHook makes a hook: its own token with the grant asked for, a fresh
// webhook secret (sealed; returned this once), and where statuses go.
func (s *Service) AddHook(ctx context.Context, req gantry.AddHookRequest) (*gantry.AddedHook, error) {
	if !slices.Contains(gantry.Forges, req.Forge) {
		return nil, gantry.Errorf(gantry.EINVALID, "forge %q: want one of %s", req.Forge, strings.Join(gantry.Forges, ", "))
	}
	if req.Role == "" {
		req.Role = gantry.RoleDeployer
	}
	if gantry.RolePermissions(req.Role) == nil {
		return nil, gantry.Errorf(gantry.EINVALID, "role %q: want one of %s", req.Role, strings.Join(gantry.Roles, ", "))
	}
	for _, e := range req.Envs {
		if err := gantry.ValidName("environment", e); err != nil {
			return nil, err
		}
	}
	switch {
	case req.Forge == gantry.ForgePoll && req.Poll < time.Second:
		return nil, gantry.Errorf(gantry.EINVALID, "a poll hook needs an interval of at least 1s (--poll 1m)")
	case req.Forge != gantry.ForgePoll && req.Poll != 0:
		return nil, gantry.Errorf(gantry.EINVALID, "--poll is for the poll hook only")
	}
	if req.APIURL != "" {
		if u, err := url.Parse(req.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, gantry.Errorf(gantry.EINVALID, "API URL %q: want http:// or https:// and a host", req.APIURL)
		}
	}
	if _, err := s.Store.FindApp(ctx, req.App); err != nil {
		return nil, err
	}
	if _, err := s.loadHook(ctx, req.App, req.Forge); err == nil {
		return nil, gantry.Errorf(gantry.ECONFLICT, "app %s has a %s hook already; remove it first (gantry hook remove %s)", req.App, req.Forge, req.Forge)
	}
	cfg := &hookConfig{APIURL: strings.TrimRight(req.APIURL, "/"), APIToken: req.APIToken, Poll: req.Poll, Token: HookTokenName(req.App, req.Forge), CreatedAt: s.now()}
	if req.Forge != gantry.ForgePoll {
		cfg.Secret = randomHex(32)
	}
	// The token is an identity only: its secret is never shown, the hook
	// authenticates by its signature.
	envs := slices.Compact(slices.Sorted(slices.Values(req.Envs)))
	tok := &gantry.Token{Name: cfg.Token, Role: req.Role, Envs: envs, Hash: gantry.HashToken(randomHex(32)), CreatedBy: req.Actor, CreatedAt: cfg.CreatedAt}
	if err := s.Tokens.CreateToken(ctx, tok); err != nil {
		if gantry.ErrorCode(err) == gantry.ECONFLICT {
			return nil, gantry.Errorf(gantry.ECONFLICT, "token %s exists: revoke it first (gantry token revoke %s)", tok.Name, tok.Name)
		}
		return nil, err
	}
	b, err := json.Marshal(cfg)
	if err == nil {
		err = s.Vault.SetSecret(ctx, req.App, hooksEnv, req.Forge, string(b))
	}
	if err != nil {
		_ = s.Tokens.RevokeToken(context.WithoutCancel(ctx), tok.Name)
		return nil, err
	}
	out := &gantry.AddedHook{ForgeHook: *cfg.public(req.App, req.Forge), Secret: cfg.Secret}
	if req.Forge != gantry.ForgePoll {
		out.Path = HookPath(req.App, req.Forge)
	}
	return out, nil
}

// ListHooks returns an app's hooks, by forge.
func (s *Service) ListHooks(ctx context.Context, app string) ([]*gantry.ForgeHook, error) {
	if _, err := s.Store.FindApp(ctx, app); err != nil {
		return nil, err
	}
	names, err := s.Vault.ListSecrets(ctx, app, hooksEnv)
	if err != nil {
		return nil, err
	}
	out := []*gantry.ForgeHook{}
	for _, forge := range names {
		cfg, err := s.loadHook(ctx, app, forge)
		if err != nil {
			return nil, err
		}
		h := cfg.public(app, forge)
		h.Recent = s.recentOf(app, forge)
		out = append(out, h)
	}
	return out, nil
}

// RemoveHook removes a hook and revokes its token.
func (s *Service) RemoveHook(ctx context.Context, app, forge string) error {
	cfg, err := s.loadHook(ctx, app, forge)
	if err != nil {
		return err
	}
	if err := s.Vault.UnsetSecret(ctx, app, hooksEnv, forge); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.recent, app+"/"+forge) // a hook added again starts afresh
	s.mu.Unlock()
	if err := s.Tokens.RevokeToken(ctx, cfg.Token); err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
		return err
	}
	return nil
}

// loadHook opens a hook's sealed configuration.
func (s *Service) loadHook(ctx context.Context, app, forge string) (*hookConfig, error) {
	raw, ok := s.Vault.OpenSecret(ctx, app, hooksEnv, forge)
	if !ok {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "app %s has no %s hook (gantry hook add %s)", app, forge, forge)
	}
	var cfg hookConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return nil, gantry.Errorf(gantry.EINTERNAL, "hook %s of %s: %v", forge, app, err)
	}
	return &cfg, nil
}

// identity is who a hook's events act as: its token's holder. A revoked
// token stops the hook.
func (s *Service) identity(ctx context.Context, cfg *hookConfig) (*gantry.Identity, error) {
	ts, err := s.Tokens.ListTokens(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		if t.Name == cfg.Token {
			return gantry.TokenIdentity(t), nil
		}
	}
	return nil, gantry.Errorf(gantry.EFORBIDDEN, "the hook's token %s was revoked", cfg.Token)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}
