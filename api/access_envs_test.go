package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// nopWorkflows answers every workflow with an empty success, so that a
// request that gets past access control is visibly allowed.
type nopWorkflows struct{}

func (nopWorkflows) Clone(ctx context.Context, req gantry.CloneRequest, p gantry.Progress) (*gantry.Deployment, error) {
	return &gantry.Deployment{ID: 4, App: req.App, Env: req.Dst}, nil
}
func (nopWorkflows) Rename(ctx context.Context, req gantry.RenameRequest, p gantry.Progress) (*gantry.Deployment, error) {
	return &gantry.Deployment{ID: 5, App: req.App, Env: req.New}, nil
}
func (nopWorkflows) DeleteEnvironment(ctx context.Context, req gantry.DeleteEnvironmentRequest) error {
	return nil
}
func (nopWorkflows) Approve(ctx context.Context, req gantry.ApproveRequest) (*gantry.Approval, error) {
	return &gantry.Approval{}, nil
}

// post sends body to path with token and returns the status and the error
// body.
func (f *accessFixture) post(t *testing.T, path, body, token string) (int, ErrorBody) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb ErrorBody
	if resp.StatusCode >= 400 {
		_ = json.NewDecoder(resp.Body).Decode(&eb)
	}
	return resp.StatusCode, eb
}

// TestCrossEnvironmentAccess: every environment an operation touches is
// checked against the caller's grant, not only the one in its path
// (invariant 11). A token for test (and testnew) cannot rename onto prod,
// displace to a name outside its grant, clone into one, or promote into
// prod; an admin for every environment can do all of it; each denial names
// the permission and the environment, and is audited.
func TestCrossEnvironmentAccess(t *testing.T) {
	f := newAccessFixture(t)
	f.srv.Workflows = nopWorkflows{}
	if err := f.db.CreateApp(context.Background(), &gantry.App{Name: "shop", Repo: "/r"}); err != nil {
		t.Fatal(err)
	}
	scoped := f.token(t, "t", "admin", "test", "testnew")
	deployer := f.token(t, "ci", "deployer", "test")
	root := f.token(t, "root", "admin")
	const envs = "/v1/apps/shop/environments/"
	cases := []struct {
		name, path, body string
		token            string
		deny             string // the denial's message, or "" when allowed
	}{
		{"rename onto prod", envs + "test/rename", `{"new":"prod","displace_to":"prodold"}`, scoped, "token t (admin for test, testnew) lacks admin on environment prod"},
		{"rename onto prod, key in capitals", envs + "test/rename", `{"NEW":"prod"}`, scoped, "lacks admin on environment prod"},
		{"rename, displaced out of scope", envs + "testnew/rename", `{"new":"test","displace_to":"testold"}`, scoped, "lacks admin on environment testold"},
		{"rename within scope", envs + "testnew/rename", `{"new":"test"}`, scoped, ""},
		{"clone out of scope", envs + "test/clone", `{"dst":"prodcopy","with_data":true}`, scoped, "lacks admin on environment prodcopy"},
		{"clone twice-named destination", envs + "test/clone", `{"dst":"testnew","Dst":"prod"}`, scoped, "lacks admin on environment prod"},
		{"clone within scope", envs + "test/clone", `{"dst":"testnew"}`, scoped, ""},
		{"promote into prod", envs + "prod/promote", `{"from":"test","to":"prod"}`, deployer, "lacks deploy on environment prod"},
		{"promote into test, to prod in the body", envs + "test/promote", `{"from":"prod","to":"prod"}`, deployer, "lacks deploy on environment prod"},
		{"promote from prod into test", envs + "test/promote", `{"from":"prod"}`, deployer, ""},
		{"deploy to test naming prod in the body", envs + "test/deploy", `{"env":"prod","release":"1.0.0"}`, deployer, "lacks deploy on environment prod"},
		{"deploy to test", envs + "test/deploy", `{"env":"test","release":"1.0.0"}`, deployer, ""},
		{"root renames onto prod", envs + "test/rename", `{"new":"prod","displace_to":"prodold"}`, root, ""},
		{"root clones anywhere", envs + "test/clone", `{"dst":"prodcopy"}`, root, ""},
		{"root promotes into prod", envs + "prod/promote", `{"from":"test"}`, root, ""},
	}
	denials := 0
	for _, c := range cases {
		status, eb := f.post(t, c.path, c.body, c.token)
		switch {
		case c.deny == "" && status != http.StatusOK:
			t.Errorf("%s: status %d (%s), want 200 allowed", c.name, status, eb.Error)
		case c.deny != "" && (status != http.StatusForbidden || eb.Code != gantry.EFORBIDDEN || !strings.Contains(eb.Error, c.deny)):
			t.Errorf("%s: status %d %q, want 403 %q", c.name, status, eb.Error, c.deny)
		}
		if c.deny != "" {
			denials++
		}
	}
	es, err := f.db.ListAudit(context.Background(), gantry.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	denied := 0
	for _, e := range es {
		if e.Result == gantry.AuditDenied && e.Code == gantry.EFORBIDDEN {
			denied++
		}
	}
	if denied != denials {
		t.Errorf("audit trail holds %d denials, want %d", denied, denials)
	}
}
