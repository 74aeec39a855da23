package docker_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/artifact"
	"github.com/gantry-dev/gantry/build"
	"github.com/gantry-dev/gantry/driver/docker"
	"github.com/gantry-dev/gantry/internal/dockertest"
	"github.com/gantry-dev/gantry/internal/drivertest"
	"github.com/gantry-dev/gantry/manifest"
)

// ImagesFunc adapts the driver's BuildImage to the builder's Images hook,
// as cmd/gantry wires them.
func ImagesFunc(d *docker.Driver) func(context.Context, build.ImageRequest) (gantry.Artifact, error) {
	return func(ctx context.Context, r build.ImageRequest) (gantry.Artifact, error) {
		return d.BuildImage(ctx, docker.ImageBuild{
			Dir: r.Dir, Dockerfile: r.Docker.Dockerfile, Context: r.Docker.Context,
			Target: r.Docker.Target, Args: r.Docker.Args,
			Repository: r.Repository, Tags: r.Tags, App: r.App, Labels: r.Labels, Progress: r.Progress,
		})
	}
}

// TestReleaseBuildFromCommit builds a release of a git repository whose
// service is built with docker: the image comes from the commit, not from
// the working tree's uncommitted Dockerfile, goes to the registry of the
// environment where releases enter, is tagged with the version, git-<sha7>
// and latest, and runs by digest.
func TestReleaseBuildFromCommit(t *testing.T) {
	env := dockertest.Get(t)
	d := MustDriver(t)
	repo := t.TempDir()
	if _, err := drivertest.BuildTestApp(repo); err != nil {
		t.Fatal(err)
	}
	registryPath := env.Registries[0].Addr + "/" + appName
	files := map[string]string{
		"gantry.yml": `app: ` + appName + `
services:
  web:
    docker: {dockerfile: deploy/Dockerfile, args: {GREETING: committed}}
    run: /testapp
environments:
  test:
    runtime: {driver: docker, registry: ` + registryPath + `}
  prod:
    promote_from: test
    runtime: {driver: docker, registry: ` + env.Registries[1].Addr + `/` + appName + `}
`,
		"deploy/Dockerfile": "FROM scratch\nARG GREETING\nENV GREETING=$GREETING BUILT_FROM=commit\nCOPY bin/testapp /testapp\n",
		"VERSION":           "3.0.4\n",
	}
	for name, data := range files {
		p := filepath.Join(repo, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, repo, "init", "-q", "-b", "main")
	git(t, repo, "add", ".")
	git(t, repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "release 3.0.4")
	commit := git(t, repo, "rev-parse", "HEAD")
	// Uncommitted work must not reach the image.
	os.WriteFile(filepath.Join(repo, "deploy/Dockerfile"), []byte("FROM scratch\nENV BUILT_FROM=worktree\nCOPY bin/testapp /testapp\n"), 0o644)

	arts, err := artifact.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := &build.Builder{Artifacts: arts, WorkDir: t.TempDir(), Decode: manifest.Decode, Images: ImagesFunc(d)}
	var progress bytes.Buffer
	rel, err := b.Build(context.Background(), build.Request{App: appName, Repo: repo, Ref: "main", Progress: &progress})
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, progress.String())
	}
	a := rel.Artifacts["web"]
	wantRepo := registryPath + "/web"
	if a.Kind != gantry.ArtifactImage || a.Image != wantRepo+"@"+a.Digest {
		t.Fatalf("web artifact %+v, want an image %s@<digest>", a, wantRepo)
	}
	for _, tag := range []string{"3.0.4", "git-" + commit[:7], "latest"} {
		if got := tagDigest(t, wantRepo, tag); got != a.Digest {
			t.Errorf("tag %s names %s, want %s", tag, got, a.Digest)
		}
	}
	if !strings.Contains(progress.String(), "web | ") {
		t.Errorf("progress lacks the build's output:\n%s", progress.String())
	}

	s := spec("release", "blue", "web", 0, drivertest.FreePort(t))
	s.Artifact, s.Command = a, "/testapp"
	inst := MustStart(t, d, s)
	drivertest.WaitUp(t, inst)
	for _, tt := range []struct{ name, want string }{{"BUILT_FROM", "commit"}, {"GREETING", "committed"}} {
		if got := drivertest.MustGet(t, inst, "/env?name="+tt.name); got != tt.want {
			t.Errorf("the image has %s=%q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestImageRegistryAndTags(t *testing.T) {
	m := &gantry.Manifest{Environments: map[string]*gantry.EnvironmentSpec{
		"prod":  {PromoteFrom: "test", Runtime: gantry.RuntimeSpec{Driver: "docker", Registry: "r2:5000/shop"}},
		"test":  {Runtime: gantry.RuntimeSpec{Driver: "docker", Registry: "r1:5000/shop/"}},
		"local": {Runtime: gantry.RuntimeSpec{Driver: "process"}},
	}}
	if got, err := build.ImageRegistry(m); err != nil || got != "r1:5000/shop" {
		t.Errorf("ImageRegistry = %q, %v; want the entry environment's r1:5000/shop", got, err)
	}
	delete(m.Environments, "test")
	delete(m.Environments, "prod")
	if _, err := build.ImageRegistry(m); gantry.ErrorCode(err) != gantry.EINVALID {
		t.Errorf("ImageRegistry without registries: %v, want code %q", err, gantry.EINVALID)
	}
	for _, tt := range []struct {
		version, commit string
		want            []string
	}{
		{"3.0.4", "1a2b3c4d5e6f", []string{"3.0.4", "git-1a2b3c4", "latest"}},
		{"1.0.0+build.7", "abcdef0123", []string{"1.0.0-build.7", "git-abcdef0", "latest"}},
		{"16.03.1b", "0123456", []string{"16.03.1b", "git-0123456", "latest"}},
	} {
		if got := build.ImageTags(tt.version, tt.commit); strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("ImageTags(%q, %q) = %v, want %v", tt.version, tt.commit, got, tt.want)
		}
	}
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}
