package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// TestDirectDeployMeetsProdPolicy: a direct deploy to an environment with
// promote_from and approvals meets them as a promotion does. A release test
// never ran is refused, naming the gate and the command that is allowed; the
// release test runs still needs its approval; approved, it goes through.
func TestDirectDeployMeetsProdPolicy(t *testing.T) {
	needTools(t)
	s := openServer(t, t.TempDir())
	repo := helloRepo(t)
	editManifest(t, repo, "prod needs an approval", func(m string) string {
		return strings.Replace(m, "    promote_from: test\n", "    promote_from: test\n    approvals: {required: 1}\n", 1)
	})
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)

	_, errs, code := runCLI(t, s.APIURL, "deploy", "prod", "--ref", "main")
	if code != 4 || !strings.Contains(errs, "promote_from:") || !strings.Contains(errs, "gantry promote test prod") {
		t.Fatalf("deploy to prod of a release test never ran: exit %d, %q; want 4 naming promote_from and the allowed command", code, errs)
	}
	if st := routeOf(t, s, "hello/prod"); st != nil {
		t.Fatalf("prod has a route after a refused deploy: %+v", st)
	}
	mustCLI(t, s.APIURL, "deploy", "test", "--release", "1.1.0")
	_, errs, code = runCLI(t, s.APIURL, "deploy", "prod", "--release", "1.1.0")
	if code != 4 || !strings.Contains(errs, "approvals:") || !strings.Contains(errs, "gantry approve prod") {
		t.Fatalf("unapproved deploy to prod: exit %d, %q; want 4 naming the approvals gate", code, errs)
	}
	if _, err := s.Client.Approve(context.Background(), gantry.ApproveRequest{App: "hello", Env: "prod", Release: "1.1.0"}); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, s.APIURL, "deploy", "prod", "--release", "1.1.0")
	wantVersion(t, s.RouterURL, "hello.localhost", "1.1.0")

	// A release prod served before comes back without a new approval.
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "v1.0.0")
	if _, err := s.Client.Approve(context.Background(), gantry.ApproveRequest{App: "hello", Env: "prod", Release: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, s.APIURL, "promote", "test", "prod")
	wantVersion(t, s.RouterURL, "hello.localhost", "1.0.0")
	mustCLI(t, s.APIURL, "rollback", "prod", "--to", "1.1.0")
	wantVersion(t, s.RouterURL, "hello.localhost", "1.1.0")
}

// TestLockNamesItsDeployment: while a deployment runs, the environment's
// lock names it, so a refused deploy says which deployment holds it.
func TestLockNamesItsDeployment(t *testing.T) {
	needTools(t)
	s := openServer(t, t.TempDir())
	repo := helloRepo(t)
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	mustCLI(t, s.APIURL, "release", "build", "--ref", "main")
	out := mustCLI(t, s.APIURL, "deploy", "test", "--release", "1.1.0", "--pause-after", "0", "--json")
	var d gantry.Deployment
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("deploy --json: %v\n%s", err, out)
	}
	if d.State != gantry.DeploymentPaused || d.PauseAfter == nil || *d.PauseAfter != 0 || d.GroupDone == nil || *d.GroupDone != 0 {
		t.Fatalf("paused deployment: state %s, pause_after %v, group_done %v; want paused after group 0 with its typed state", d.State, d.PauseAfter, d.GroupDone)
	}
	_, errs, code := runCLI(t, s.APIURL, "deploy", "test", "--release", "1.1.0")
	if code != 3 || !strings.Contains(errs, "#"+itoa(d.ID)) {
		t.Fatalf("deploy while #%d holds the lock: exit %d, %q; want 3 naming the deployment", d.ID, code, errs)
	}
	mustCLI(t, s.APIURL, "continue", "test")
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.1.0")
}

// TestPromotePauseAfter: a promotion pauses after a group like a deploy
// does, and continues on the target environment.
func TestPromotePauseAfter(t *testing.T) {
	needTools(t)
	s := openServer(t, t.TempDir())
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", helloRepo(t))
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "main")
	mustCLI(t, s.APIURL, "promote", "test", "prod", "--pause-after", "0")
	if st := routeOf(t, s, "hello/prod"); st != nil && len(st.Active) > 0 {
		t.Fatalf("prod takes traffic while its promotion is paused: %+v", st)
	}
	mustCLI(t, s.APIURL, "continue", "prod")
	wantVersion(t, s.RouterURL, "hello.localhost", "1.1.0")
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// routeOf returns the router's status of a route, or nil when it has none.
func routeOf(t *testing.T, s *Server, name string) *gantry.RouteStatus {
	t.Helper()
	sts, err := s.Router.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := range sts {
		if sts[i].Route.Name == name {
			return &sts[i]
		}
	}
	return nil
}
