package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gantry-dev/gantry"
)

// WhoAmI returns the identity the server sees for this client.
func (c *Client) WhoAmI(ctx context.Context) (*gantry.Identity, error) {
	var out gantry.Identity
	return &out, c.do(ctx, http.MethodGet, "/v1/whoami", nil, &out)
}

// CreateToken creates a token; its secret is in the result, and only there.
func (c *Client) CreateToken(ctx context.Context, req CreateTokenRequest) (*CreatedToken, error) {
	var out CreatedToken
	return &out, c.do(ctx, http.MethodPost, "/v1/tokens", req, &out)
}

// ListTokens lists tokens (never their secrets).
func (c *Client) ListTokens(ctx context.Context) ([]*gantry.Token, error) {
	var out []*gantry.Token
	return out, c.do(ctx, http.MethodGet, "/v1/tokens", nil, &out)
}

// RevokeToken revokes a token.
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(name), nil, nil)
}

// ListAudit returns audit entries, oldest first.
func (c *Client) ListAudit(ctx context.Context, f gantry.AuditFilter) ([]*gantry.AuditEntry, error) {
	q := url.Values{}
	for k, v := range map[string]string{"app": f.App, "env": f.Env} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if f.AfterSeq > 0 {
		q.Set("after", strconv.FormatInt(f.AfterSeq, 10))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out []*gantry.AuditEntry
	return out, c.do(ctx, http.MethodGet, "/v1/audit?"+q.Encode(), nil, &out)
}

// VerifyAudit asks the server to check the audit chain.
func (c *Client) VerifyAudit(ctx context.Context) (*AuditVerification, error) {
	var out AuditVerification
	return &out, c.do(ctx, http.MethodGet, "/v1/audit/verify", nil, &out)
}

// SetSecret stores a secret's value on an environment.
func (c *Client) SetSecret(ctx context.Context, app, env, name, value string) error {
	return c.do(ctx, http.MethodPut, envPath(app, env)+"/secrets/"+url.PathEscape(name), SetSecretRequest{Value: value}, nil)
}

// ListSecrets lists the names of an environment's secrets.
func (c *Client) ListSecrets(ctx context.Context, app, env string) ([]string, error) {
	var out []string
	return out, c.do(ctx, http.MethodGet, envPath(app, env)+"/secrets", nil, &out)
}

// UnsetSecret removes a secret from an environment.
func (c *Client) UnsetSecret(ctx context.Context, app, env, name string) error {
	return c.do(ctx, http.MethodDelete, envPath(app, env)+"/secrets/"+url.PathEscape(name), nil, nil)
}
