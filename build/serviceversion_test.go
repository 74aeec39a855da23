package build

import (
	"context"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
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

// TestImageLabelsStayWithTheService: an image is labelled with its
// service's own version, never with the release's commit, so that a
// service whose files and version did not change is built into the same
// image (same digest) by the next release, and a deploy leaves it running.
func TestImageLabelsStayWithTheService(t *testing.T) {
	r := MustRepo(t)
	manifest := "app: aegee\nservices:\n" +
		"  core:\n    docker: {}\n    run: /core\n    version_file: core/VERSION\n" +
		"  mailer:\n    docker: {}\n    run: /mailer\n    route: {path: /mail}\n" +
		"environments:\n  test: {}\n"
	r.Commit("services", map[string]string{"gantry.yml": manifest, "VERSION": "3.0.0\n", "core/VERSION": "2.4.1\n", "Dockerfile": "FROM scratch\n"})
	b := MustBuilder(t)
	b.Decode = func(name string, data []byte) (*gantry.Manifest, error) {
		m, err := testDecode(name, data)
		if err == nil { // the stand-in reads no environments
			m.Environments = map[string]*gantry.EnvironmentSpec{"test": {Runtime: gantry.RuntimeSpec{Registry: "127.0.0.1:5000/aegee"}}}
		}
		return m, err
	}
	labels := map[string]map[string]string{}
	b.Images = func(_ context.Context, req ImageRequest) (gantry.Artifact, error) {
		labels[req.Service] = req.Labels
		d := "sha256:" + strings.Repeat("a", 64)
		return gantry.Artifact{Kind: gantry.ArtifactImage, Digest: d, Image: req.Repository + "@" + d}, nil
	}
	rel, err := b.Build(context.Background(), Request{App: "aegee", Repo: r.Dir, Builder: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	for svc, want := range map[string]string{"core": "2.4.1", "mailer": "3.0.0"} {
		if got := labels[svc]["org.opencontainers.image.version"]; got != want {
			t.Errorf("%s image labelled version %q, want %q", svc, got, want)
		}
		for k, v := range labels[svc] {
			if strings.Contains(v, rel.Commit[:7]) {
				t.Errorf("%s image label %s=%q names the commit: every build would differ", svc, k, v)
			}
		}
	}
	if got := rel.ServiceVersion("core"); got != "2.4.1" {
		t.Errorf("release records core %q, want 2.4.1", got)
	}
}
