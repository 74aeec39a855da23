package docker_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/driver/docker"
	"github.com/gantry-dev/gantry/internal/dockertest"
	"github.com/gantry-dev/gantry/internal/drivertest"
)

// MustExport lays out an exported commit: the test program under
// app/bin/testapp and a Dockerfile outside the context, in docker/.
func MustExport(tb testing.TB, dockerfile string, files map[string]string) string {
	tb.Helper()
	dir := tb.TempDir()
	if _, err := drivertest.BuildTestApp(filepath.Join(dir, "app")); err != nil {
		tb.Fatal(err)
	}
	files["docker/Dockerfile"] = dockerfile
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

const stagedDockerfile = `FROM scratch AS base
ARG GREETING
ENV GREETING=$GREETING STAGE=base
COPY bin/testapp /testapp
COPY VERSION /VERSION
ENTRYPOINT ["/testapp"]

FROM base AS final
ENV STAGE=final
`

// TestBuildPushRunByDigest builds an image the way a release build does
// (Dockerfile outside the context, a build argument, a target stage),
// checks the three tags in the registry all name the recorded digest, drops
// the image from the engine, and runs it by digest: the engine pulls it.
func TestBuildPushRunByDigest(t *testing.T) {
	env := dockertest.Get(t)
	d := MustDriver(t)
	ctx := context.Background()
	dir := MustExport(t, stagedDockerfile, map[string]string{"app/VERSION": "2.0.0\n"})
	repo := env.Registries[0].Addr + "/buildtest/web"
	var progress strings.Builder
	a, err := d.BuildImage(ctx, docker.ImageBuild{
		Dir: dir, Dockerfile: "docker/Dockerfile", Context: "app", Target: "base",
		Args:       map[string]string{"GREETING": "hello from the build"},
		Repository: repo, Tags: []string{"2.0.0", "git-1a2b3c4", "latest"},
		App: appName, Progress: &progress,
	})
	if err != nil {
		t.Fatalf("BuildImage: %v\noutput:\n%s", err, progress.String())
	}
	if a.Kind != gantry.ArtifactImage || !strings.HasPrefix(a.Digest, "sha256:") || a.Image != repo+"@"+a.Digest {
		t.Fatalf("artifact %+v: want kind image, Image %s@<Digest>", a, repo)
	}
	for _, tag := range []string{"2.0.0", "git-1a2b3c4", "latest"} {
		if got := tagDigest(t, repo, tag); got != a.Digest {
			t.Errorf("registry tag %s names %s, want %s", tag, got, a.Digest)
		}
	}
	if !strings.Contains(progress.String(), "pushed "+repo+":latest") {
		t.Errorf("progress lacks the push of :latest:\n%s", progress.String())
	}

	// Gone from the engine, it comes back by digest from the registry.
	if _, err := d.Client.ImageRemove(ctx, a.Image, image.RemoveOptions{Force: true}); err != nil {
		t.Fatalf("remove image: %v", err)
	}
	for _, tag := range []string{"2.0.0", "git-1a2b3c4", "latest"} {
		d.Client.ImageRemove(ctx, repo+":"+tag, image.RemoveOptions{Force: true})
	}
	s := spec("build", "blue", "web", 0, drivertest.FreePort(t))
	s.Artifact = a
	inst := MustStart(t, d, s)
	drivertest.WaitUp(t, inst)
	for _, tt := range []struct{ name, want string }{
		{"GREETING", "hello from the build"},
		{"STAGE", "base"}, // the target stage, not the last one
	} {
		if got := drivertest.MustGet(t, inst, "/env?name="+tt.name); got != tt.want {
			t.Errorf("instance sees %s=%q, want %q", tt.name, got, tt.want)
		}
	}
	info, err := d.Client.ImageInspect(ctx, a.Image)
	if err != nil {
		t.Fatalf("inspect the pulled image: %v", err)
	}
	if info.Config == nil || info.Config.Labels[docker.LabelImageApp] != appName {
		t.Errorf("image labels %v, want %s=%s", info.Config.Labels, docker.LabelImageApp, appName)
	}
}

func TestBuildImageRefusesBadInput(t *testing.T) {
	d := MustDriver(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	for _, tt := range []struct {
		name string
		b    docker.ImageBuild
		want string
	}{
		{"no tags", docker.ImageBuild{Dir: dir, Repository: "127.0.0.1:1/x"}, "at least one tag"},
		{"tagged repository", docker.ImageBuild{Dir: dir, Repository: "127.0.0.1:1/x:1", Tags: []string{"a"}}, "must not carry a tag"},
		{"bad tag", docker.ImageBuild{Dir: dir, Repository: "127.0.0.1:1/x", Tags: []string{"1.0+build"}}, "not a valid image tag"},
		{"context outside", docker.ImageBuild{Dir: dir, Context: "../..", Repository: "127.0.0.1:1/x", Tags: []string{"a"}}, "leaves the repository"},
		{"no dockerfile", docker.ImageBuild{Dir: dir, Dockerfile: "nope/Dockerfile", Repository: "127.0.0.1:1/x", Tags: []string{"a"}}, "no Dockerfile"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.BuildImage(context.Background(), tt.b)
			if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("BuildImage: error %v, want code %q mentioning %q", err, gantry.EINVALID, tt.want)
			}
		})
	}
}

// tagDigest asks the registry which digest a tag names.
func tagDigest(t *testing.T, repo, tag string) string {
	t.Helper()
	host, path, _ := strings.Cut(repo, "/")
	req, _ := http.NewRequest(http.MethodHead, "http://"+host+"/v2/"+path+"/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("HEAD %s:%s: %v", repo, tag, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD %s:%s: %s", repo, tag, resp.Status)
	}
	return resp.Header.Get("Docker-Content-Digest")
}

// MustStart starts an instance and stops it when the test ends.
func MustStart(tb testing.TB, d *docker.Driver, s gantry.InstanceSpec) gantry.Instance {
	tb.Helper()
	inst, err := d.Start(context.Background(), s)
	if err != nil {
		tb.Fatalf("Start(%s-%d): %v", s.Service, s.Index, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := d.Stop(ctx, inst, gantry.StopSpec{Signal: "SIGKILL", Timeout: time.Second}); err != nil {
			tb.Errorf("cleanup: Stop: %v", err)
		}
	})
	return inst
}

// TestBuildImageFailure: a Dockerfile that fails gives EFAILED with what the
// engine said, and nothing is pushed.
func TestBuildImageFailure(t *testing.T) {
	env := dockertest.Get(t)
	d := MustDriver(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY no-such-file /x\n"), 0o644)
	repo := env.Registries[0].Addr + "/buildtest/broken"
	_, err := d.BuildImage(context.Background(), docker.ImageBuild{Dir: dir, Repository: repo, Tags: []string{"1.0"}})
	if gantry.ErrorCode(err) != gantry.EFAILED || !strings.Contains(err.Error(), "no-such-file") {
		t.Errorf("BuildImage of a failing Dockerfile: %v, want code %q naming the missing file", err, gantry.EFAILED)
	}
	resp, err := http.Get("http://" + env.Registries[0].Addr + "/v2/buildtest/broken/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the registry has tags of a failed build: %s", resp.Status)
	}
}
