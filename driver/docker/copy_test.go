package docker_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/driver/docker"
	"github.com/gantry-dev/gantry/driver/docker/registry"
	"github.com/gantry-dev/gantry/internal/dockertest"
	"github.com/gantry-dev/gantry/internal/drivertest"
)

// TestCopyImageBetweenRegistries promotes the test image from the first
// registry ("test") to the second ("prod"): the digest that arrives is the
// digest that left, prod's engine runs it by prod's reference, and a second
// copy only checks.
func TestCopyImageBetweenRegistries(t *testing.T) {
	env := dockertest.Get(t)
	ctx := context.Background()
	dstRepo := env.Registries[1].Addr + "/prod/testapp"
	got, err := docker.CopyImage(ctx, testImage.Image, dstRepo)
	if err != nil {
		t.Fatalf("CopyImage: %v", err)
	}
	if want := dstRepo + "@" + testImage.Digest; got != want {
		t.Fatalf("CopyImage returned %s, want %s", got, want)
	}
	var rc registry.Client
	ref, err := registry.ParseRef(got)
	if err != nil {
		t.Fatal(err)
	}
	_, body, err := rc.Manifest(ctx, ref)
	if err != nil {
		t.Fatalf("the copy is not served by digest: %v", err)
	}
	if registry.Digest(body) != testImage.Digest {
		t.Errorf("prod serves a manifest with digest %s, want %s", registry.Digest(body), testImage.Digest)
	}
	if again, err := docker.CopyImage(ctx, testImage.Image, dstRepo); err != nil || again != got {
		t.Errorf("second CopyImage: %s, %v; want %s, nil", again, err, got)
	}

	d := MustDriver(t)
	s := spec("prod", "blue", "web", 0, drivertest.FreePort(t))
	s.Artifact = gantry.Artifact{Kind: gantry.ArtifactImage, Image: got, Digest: testImage.Digest}
	inst := MustStart(t, d, s)
	drivertest.WaitUp(t, inst)
	c, err := d.Client.ContainerInspect(ctx, inst.Handle)
	if err != nil {
		t.Fatal(err)
	}
	info, err := d.Client.ImageInspect(ctx, c.Image)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, rd := range info.RepoDigests {
		found = found || rd == got
	}
	if !found {
		t.Errorf("prod's container runs image %s with digests %v, want %s among them", c.Image, info.RepoDigests, got)
	}
}

// TestCopyImageWithinRegistry copies between two repositories of one
// registry, where blobs are mounted instead of sent, and tags the copy.
func TestCopyImageWithinRegistry(t *testing.T) {
	env := dockertest.Get(t)
	dstRepo := env.Registries[0].Addr + "/other/testapp"
	var rc registry.Client
	got, err := rc.Copy(context.Background(), testImage.Image, dstRepo, "1.0.0")
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if want := dstRepo + "@" + testImage.Digest; got != want {
		t.Errorf("Copy returned %s, want %s", got, want)
	}
	if dg := tagDigest(t, dstRepo, "1.0.0"); dg != testImage.Digest {
		t.Errorf("tag 1.0.0 of the copy names %s, want %s", dg, testImage.Digest)
	}

	// Deleting the copy leaves the original alone.
	ref, _ := registry.ParseRef(got)
	ctx := context.Background()
	for range 2 { // the second delete finds nothing, which is fine
		if err := rc.Delete(ctx, ref); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	if ok, err := rc.Has(ctx, ref); ok || err != nil {
		t.Errorf("after Delete the copy is there: %v, %v", ok, err)
	}
	orig, _ := registry.ParseRef(testImage.Image)
	if ok, err := rc.Has(ctx, orig); !ok || err != nil {
		t.Errorf("after deleting the copy, the original: %v, %v; want it there", ok, err)
	}
}

func TestCopyImageErrors(t *testing.T) {
	env := dockertest.Get(t)
	missing := env.Registries[0].Addr + "/nothing/here@sha256:" + strings.Repeat("0", 64)
	for _, tt := range []struct {
		name, src, dst, code string
	}{
		{"tag instead of digest", env.Registries[0].Addr + "/drivertest/testapp:latest", env.Registries[1].Addr + "/x", gantry.EINVALID},
		{"destination with tag", testImage.Image, env.Registries[1].Addr + "/x:1", gantry.EINVALID},
		{"no registry host", "testapp@" + testImage.Digest, env.Registries[1].Addr + "/x", gantry.EINVALID},
		{"missing image", missing, env.Registries[1].Addr + "/x", gantry.ENOTFOUND},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := docker.CopyImage(context.Background(), tt.src, tt.dst)
			if code := gantry.ErrorCode(err); code != tt.code {
				t.Errorf("CopyImage(%s, %s): error %v (code %q), want code %q", tt.src, tt.dst, err, code, tt.code)
			}
		})
	}
}

// TestImageIn: an image is copied only into a registry that lacks it.
func TestImageIn(t *testing.T) {
	env := dockertest.Get(t)
	d := MustDriver(t)
	ctx := context.Background()
	same, err := d.ImageIn(ctx, testImage, env.Registries[0].Addr+"/drivertest", "testapp")
	if err != nil || same != testImage {
		t.Errorf("ImageIn(its own registry) = %+v, %v; want it unchanged", same, err)
	}
	prodReg := env.Registries[1].Addr + "/promoted/"
	got, err := d.ImageIn(ctx, testImage, prodReg, "web")
	if err != nil {
		t.Fatalf("ImageIn(another registry): %v", err)
	}
	want := testImage
	want.Image = env.Registries[1].Addr + "/promoted/web@" + testImage.Digest
	if got != want {
		t.Errorf("ImageIn(another registry) = %+v, want %+v", got, want)
	}
	if _, err := d.ImageIn(ctx, gantry.Artifact{Kind: gantry.ArtifactTarball}, prodReg, "web"); gantry.ErrorCode(err) != gantry.EINVALID {
		t.Errorf("ImageIn(a tarball): %v, want code %q", err, gantry.EINVALID)
	}
}

func TestImportImage(t *testing.T) {
	env := dockertest.Get(t)
	d := MustDriver(t)
	ctx := context.Background()
	a, err := d.ImportImage(ctx, testImage.Image)
	if err != nil || a.Kind != gantry.ArtifactImage || a.Image != testImage.Image || a.Digest != testImage.Digest {
		t.Errorf("ImportImage(%s) = %+v, %v; want the image artifact", testImage.Image, a, err)
	}
	missing := env.Registries[0].Addr + "/drivertest/testapp@sha256:" + strings.Repeat("0", 64)
	if _, err := d.ImportImage(ctx, missing); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("ImportImage of a digest the registry lacks: %v, want code %q", err, gantry.ENOTFOUND)
	}
	if _, err := d.ImportImage(ctx, env.Registries[0].Addr+"/drivertest/testapp:latest"); gantry.ErrorCode(err) != gantry.EINVALID {
		t.Errorf("ImportImage by tag: %v, want code %q", err, gantry.EINVALID)
	}
}
