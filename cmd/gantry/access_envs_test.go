package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// TestScopedTokenStaysInItsEnvironments (invariant 11) through the CLI: an
// admin token for test cannot rename test onto prod nor clone it into a
// name outside its grant, a deployer for test cannot promote into prod;
// each is refused with exit 4 naming the permission and the environment,
// nothing changes, and each refusal is audited. An unscoped admin clones.
func TestScopedTokenStaysInItsEnvironments(t *testing.T) {
	needTools(t)
	s := openAccessServer(t, io.Discard)
	root := mustToken(t, s, "root", "admin")
	scoped := mustToken(t, s, "t", "admin", "test")
	ci := mustToken(t, s, "ci", "deployer", "test")
	run := func(token string, want int, args ...string) string {
		t.Helper()
		out, errs, code := cliAs(t, s, token, "", append(args, "--app", "hello")...)
		if code != want {
			t.Fatalf("gantry %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errs)
		}
		return errs
	}
	if _, errs, code := cliAs(t, s, root, "", "app", "add", "hello", "--repo", helloRepo(t)); code != 0 {
		t.Fatalf("app add: exit %d %s", code, errs)
	}
	run(root, 0, "deploy", "test", "--ref", "v1.0.0")
	run(root, 0, "promote", "test", "prod")

	for _, c := range []struct {
		token string
		args  []string
		want  string
	}{
		{scoped, []string{"env", "rename", "test", "prod", "--displace-to", "prodold"}, "token t (admin for test) lacks admin on environment prod"},
		{scoped, []string{"env", "clone", "test", "prodcopy"}, "lacks admin on environment prodcopy"},
		{ci, []string{"promote", "test", "prod"}, "token ci (deployer for test) lacks deploy on environment prod"},
	} {
		if errs := run(c.token, 4, c.args...); !strings.Contains(errs, c.want) {
			t.Errorf("gantry %s: %q, want %q", strings.Join(c.args, " "), errs, c.want)
		}
	}
	envs, err := s.Store.ListEnvironments(context.Background(), "hello")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range envs {
		names = append(names, e.Name)
	}
	if strings.Join(names, ",") != "prod,test" {
		t.Errorf("environments after the refusals: %v, want prod and test only", names)
	}
	wantVersion(t, s.RouterURL, "hello.localhost", "1.0.0")

	out, _, code := cliAs(t, s, root, "", "audit", "--json")
	var entries []gantry.AuditEntry
	if code != 0 || json.Unmarshal([]byte(out), &entries) != nil {
		t.Fatalf("audit --json: exit %d\n%s", code, out)
	}
	var denied []string
	for _, e := range entries {
		if e.Result == gantry.AuditDenied {
			denied = append(denied, e.Actor+" "+shortOperation(e.Operation))
		}
	}
	if want := "t POST rename,t POST clone,ci POST promote"; strings.Join(denied, ",") != want {
		t.Errorf("denials audited: %q, want %q", strings.Join(denied, ","), want)
	}

	run(root, 0, "env", "clone", "test", "prodcopy")
}
