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
