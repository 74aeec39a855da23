package build

import (
	"context"
	"testing"
)

const monorepoManifest = `app: aegee
services:
  core:
    build: {artifacts: [core]}
    run: core/run
    version_file: core/VERSION
  mailer:
    build: {artifacts: [mailer]}
    run: mailer/run
    route: {path: /mail}
  worker:
    build: {artifacts: [worker]}
    run: worker/run
    http: false
environments:
  test: {}
`

// TestBuildServiceVersions: in one repository, a service takes its version
// from its version_file or from a "<service>/v…" tag on the commit; the
// others have the release's.
func TestBuildServiceVersions(t *testing.T) {
	r := MustRepo(t)
	r.Commit("services", map[string]string{"gantry.yml": monorepoManifest, "VERSION": "3.0.0\n",
		"core/VERSION": "2.4.1\n", "core/run": "x", "mailer/run": "x", "worker/run": "x"})
	r.Git("tag", "mailer/v1.2.0")
	r.Git("tag", "mailer/v1.1.0")
	r.Git("tag", "other/v9.0.0")
	b := MustBuilder(t)
	rel, err := b.Build(context.Background(), Request{App: "aegee", Repo: r.Dir, Builder: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	for svc, want := range map[string]string{"core": "2.4.1", "mailer": "1.2.0", "worker": "3.0.0"} {
		if got := rel.ServiceVersion(svc); got != want {
			t.Errorf("version of %s = %q, want %q", svc, got, want)
		}
	}
	if rel.Version != "3.0.0" {
		t.Errorf("release version = %q, want 3.0.0 (the VERSION file)", rel.Version)
	}

	r.Commit("bad core version", map[string]string{"core/VERSION": "two\n"})
	_, err = b.Build(context.Background(), Request{App: "aegee", Repo: r.Dir, Builder: "ci"})
	wantCode(t, err, "invalid")
}
