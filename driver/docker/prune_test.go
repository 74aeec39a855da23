package docker_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/driver/docker"
	"github.com/gantry-dev/gantry/internal/dockertest"
	"github.com/gantry-dev/gantry/internal/drivertest"
)

const plainDockerfile = `FROM scratch
COPY bin/testapp /testapp
COPY VERSION /VERSION
ENTRYPOINT ["/testapp"]
`

// MustImages builds one image per version into repo, each with its own
// VERSION file, so each has its own digest.
func MustImages(t *testing.T, d *docker.Driver, repo string, versions ...string) map[string]gantry.Artifact {
	t.Helper()
	out := map[string]gantry.Artifact{}
	for _, v := range versions {
		dir := MustExport(t, plainDockerfile, map[string]string{"app/VERSION": v + "\n"})
		a, err := d.BuildImage(context.Background(), docker.ImageBuild{
			Dir: dir, Dockerfile: "docker/Dockerfile", Context: "app",
			Repository: repo, Tags: []string{v, "latest"}, App: appName,
		})
		if err != nil {
			t.Fatalf("build %s: %v", v, err)
		}
		out[v] = a
	}
	return out
}

// TestPruneTwoEnvironments runs staging and prod on one engine, each with
// an active slot and a stopped standby slot kept for rollback, prod from
// its own registry. A prune with what both environments need (the caller's
// keep, by digest) removes only the image nobody needs; a prune that keeps
// nothing still removes no image a running container uses.
func TestPruneTwoEnvironments(t *testing.T) {
	env := dockertest.Get(t)
	d := MustDriver(t)
	ctx := context.Background()
	stagingRepo := env.Registries[0].Addr + "/prunetest/web"
	prodRepo := env.Registries[1].Addr + "/prunetest/web"
	img := MustImages(t, d, stagingRepo, "0.9", "1.0", "1.1", "1.2")
	prodImage := func(v string) gantry.Artifact {
		ref, err := d.CopyImage(ctx, img[v].Image, prodRepo)
		if err != nil {
			t.Fatalf("copy %s to prod: %v", v, err)
		}
		return gantry.Artifact{Kind: gantry.ArtifactImage, Image: ref, Digest: img[v].Digest}
	}
	prod10, prod11 := prodImage("1.0"), prodImage("1.1")

	run := func(envName, slot string, a gantry.Artifact, stopped bool) gantry.Instance {
		s := spec(envName, slot, "web", 0, drivertest.FreePort(t))
		s.Artifact, s.ReleaseID = a, a.Digest[7:19]
		inst := MustStart(t, d, s)
		drivertest.WaitUp(t, inst)
		if stopped {
			if err := d.Stop(ctx, inst, gantry.StopSpec{Signal: "SIGTERM", Timeout: 10 * time.Second}); err != nil {
				t.Fatal(err)
			}
		}
		return inst
	}
	stagingActive := run("pstaging", "blue", img["1.2"], false)
	run("pstaging", "green", img["1.1"], true)
	prodActive := run("pprod", "blue", prod11, false)
	prodStandby := run("pprod", "green", prod10, true) // prod's rollback

	// What every environment on the engine needs: active and standby slots.
	keep := docker.KeepDigests(img["1.2"].Image, img["1.1"].Image, prod11.Image, prod10.Image, testImage.Image)
	res, err := d.Prune(ctx, keep)
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	// Other tests' leftovers may go too; this test's repositories lose one image.
	var removed []string
	for _, r := range res.Removed {
		if strings.HasPrefix(r, stagingRepo+"@") || strings.HasPrefix(r, prodRepo+"@") {
			removed = append(removed, r)
		}
	}
	if want := []string{img["0.9"].Image}; !slices.Equal(removed, want) {
		t.Errorf("Prune removed %v from this test's repositories, want %v", removed, want)
	}
	for _, ref := range []string{img["1.0"].Image, img["1.1"].Image, img["1.2"].Image, prod10.Image, prod11.Image} {
		if _, err := d.Client.ImageInspect(ctx, ref); err != nil {
			t.Errorf("after Prune the engine lacks %s: %v", ref, err)
		}
	}
	if _, err := d.Client.ImageInspect(ctx, img["0.9"].Image); err == nil {
		t.Errorf("after Prune the engine still has %s, which nothing needs", img["0.9"].Image)
	}
	if st, err := d.Inspect(ctx, prodStandby); err != nil || st.State != gantry.InstanceExited {
		t.Errorf("prod's stopped standby after Prune: %+v, %v; want it kept, exited", st, err)
	}

	// Keeping nothing: running containers keep their images all the same.
	res, err = d.Prune(ctx, docker.KeepDigests(testImage.Image))
	if err != nil {
		t.Fatalf("second Prune: %v", err)
	}
	for _, inst := range []gantry.Instance{stagingActive, prodActive} {
		if st, err := d.Inspect(ctx, inst); err != nil || st.State != gantry.InstanceRunning {
			t.Errorf("a running instance after Prune: %+v, %v", st, err)
		}
		drivertest.MustGet(t, inst, "/up")
	}
	for _, ref := range []string{img["1.2"].Image, prod11.Image} {
		if _, err := d.Client.ImageInspect(ctx, ref); err != nil {
			t.Errorf("Prune removed %s, which a running container uses: %v", ref, err)
		}
	}
	if !slices.Contains(res.Removed, prod10.Image) {
		t.Errorf("second Prune removed %v; want %s, which only a stopped container used", res.Removed, prod10.Image)
	}
	if st, _ := d.Inspect(ctx, prodStandby); st.State != gantry.InstanceGone {
		t.Errorf("the stopped container of a pruned image: state %q, want %q", st.State, gantry.InstanceGone)
	}
}

func TestKeepDigests(t *testing.T) {
	d1 := "sha256:" + fmt.Sprintf("%064d", 1)
	d2 := "sha256:" + fmt.Sprintf("%064d", 2)
	keep := docker.KeepDigests("127.0.0.1:5000/shop/web@"+d1, d2)
	for _, tt := range []struct {
		ref  string
		want bool
	}{
		{"127.0.0.1:5000/shop/web@" + d1, true},
		{"127.0.0.1:5001/shop/web@" + d1, true}, // a copy in another registry
		{"127.0.0.1:5000/shop/web@" + d2, true},
		{"127.0.0.1:5000/shop/web@sha256:" + fmt.Sprintf("%064d", 3), false},
	} {
		if got := keep(tt.ref); got != tt.want {
			t.Errorf("keep(%s) = %v, want %v", tt.ref, got, tt.want)
		}
	}
}
