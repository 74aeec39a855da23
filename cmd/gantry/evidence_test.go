package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
)

// TestApprovalsAndEvidence: prod needs one approval. Self-approval does not
// count; an approval stops counting when prod's configuration changes
// before the promotion; a valid one lets it through; and the release's
// evidence shows the deployments, the checks with their output, the
// approval and where it was promoted from.
func TestApprovalsAndEvidence(t *testing.T) {
	needTools(t)
	s := openServer(t, t.TempDir())
	repo := helloRepo(t)
	editManifest(t, repo, "approvals and a smoke test", func(m string) string {
		m = strings.Replace(m, "    promote_from: test\n", "    promote_from: test\n    approvals: {required: 1}\n    secrets: [API_KEY]\n", 1)
		return m + "verify:\n  - command: echo smoke test passed against $GANTRY_URL\n"
	})
	ctx := context.Background()
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	if err := s.Client.SetSecret(ctx, "hello", "prod", "API_KEY", "first-key"); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "main")
	rel := "1.1.0"

	_, errs, code := runCLI(t, s.APIURL, "promote", "test", "prod")
	if code != 4 || !strings.Contains(errs, "needs 1 approval") {
		t.Fatalf("promotion without approval: exit %d, %q", code, errs)
	}
	// The promoter's own approval does not count.
	mustCLI(t, s.APIURL, "approve", "prod", "--release", rel)
	if _, errs, code := runCLI(t, s.APIURL, "promote", "test", "prod"); code != 4 || !strings.Contains(errs, "cannot approve their own promotion") {
		t.Fatalf("self-approved promotion: exit %d, %q", code, errs)
	}
	// Someone else approves (the server's own user, over its socket)...
	if _, err := s.Client.Approve(ctx, gantry.ApproveRequest{App: "hello", Env: "prod", Release: rel, Comment: "looks good"}); err != nil {
		t.Fatal(err)
	}
	// ...but prod's configuration changes before the promotion.
	if err := s.Client.SetSecret(ctx, "hello", "prod", "API_KEY", "rotated-key"); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := runCLI(t, s.APIURL, "promote", "test", "prod"); code != 4 || !strings.Contains(errs, "no longer count") {
		t.Fatalf("promotion after a configuration change: exit %d, %q", code, errs)
	}
	if _, err := s.Client.Approve(ctx, gantry.ApproveRequest{App: "hello", Env: "prod", Release: rel, Comment: "approved again after the key rotation"}); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, s.APIURL, "promote", "test", "prod")
	wantVersion(t, s.RouterURL, "hello.localhost", rel)

	var ev api.Evidence
	if err := json.Unmarshal([]byte(mustCLI(t, s.APIURL, "release", "show", rel, "--evidence", "--json")), &ev); err != nil {
		t.Fatal(err)
	}
	envs := map[string]api.EnvironmentEvidence{}
	for _, e := range ev.Environments {
		envs[e.Env] = e
	}
	prod, test := envs["prod"], envs["test"]
	if prod.PromotedFrom != "test" || len(prod.Deployments) != 1 || len(test.Deployments) != 1 {
		t.Fatalf("evidence: %+v", ev.Environments)
	}
	var verified bool
	for _, c := range prod.Checks {
		verified = verified || (c.Name == "verify" && strings.Contains(c.Detail, "smoke test passed"))
	}
	if !verified {
		t.Errorf("prod's evidence lacks the verify check with its output: %+v", prod.Checks)
	}
	if len(prod.Approvals) != 3 {
		t.Errorf("prod's evidence has %d approvals, want all 3 given", len(prod.Approvals))
	}
	if ev.Release.Artifacts["web"].Digest == "" {
		t.Error("evidence lacks the digests")
	}
	human := mustCLI(t, s.APIURL, "release", "show", rel, "--evidence")
	for _, want := range []string{"promoted from test", "approved by", "check verify"} {
		if !strings.Contains(human, want) {
			t.Errorf("evidence output lacks %q:\n%s", want, human)
		}
	}
}
