package kubernetes_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/internal/k8stest"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// volumeFor gives the claim ns/claim a ReadWriteMany volume bound to it in
// advance (the test cluster has no provisioner), before the namespace
// exists if need be.
func volumeFor(t *testing.T, c *k8stest.Cluster, ns, claim string) {
	t.Helper()
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + claim},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + ns}},
			ClaimRef:               &corev1.ObjectReference{Namespace: ns, Name: claim},
		},
	}
	if _, err := c.Client.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Client.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
	})
}

// TestCloneCopiesClaims (routing: none, so that its hosts leave the other
// tests' Ingresses alone): through the real binary, `gantry env clone
// --with-data` of an environment with a persistent directory copies its
// claim into the clone's namespace by a Job, in the journal's files step,
// and the clone serves with its claim; a clone whose copy Job fails exits
// 1 naming the Job and its pod's state, and is removed with its claim.
func TestCloneCopiesClaims(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "files") // a prefix of the environments' namespaces, which the server creates
	manifest := `app: shop
services:
  web:
    docker: {dockerfile: Dockerfile}
    run: /web
    instances: 1
    health: {path: /up}
    persist: [uploads]
environments:
  test:
    hosts: [test.shop.localhost]
    runtime: {driver: kubernetes, namespace: ` + ns + `-test, routing: none}
  stage:
    hosts: [stage.shop.localhost]
    runtime: {driver: kubernetes, namespace: ` + ns + `-stage, routing: none, copy_image: "` + k8stest.CopyFailImage + `"}
`
	for _, env := range []string{"test", "testnew", "stage", "stagenew"} {
		volumeFor(t, c, ns+"-"+env, "shop-persist-uploads")
	}
	g := newServer(t, c, manifest, map[string]string{"1.0.0": "registry.example/shop/web@sha256:" + strings.Repeat("1", 64)})
	ctx := context.Background()
	g.cli(0, "deploy", "test", "--release", "1.0.0")
	g.cli(0, "deploy", "stage", "--release", "1.0.0")

	out := g.cli(0, "env", "clone", "test", "testnew", "--with-data")
	t.Logf("gantry env clone test testnew --with-data:\n%s", out)
	if !strings.Contains(out, "uploads copied from "+ns+"-test/test by Job "+ns+"-testnew/shop-persist-copy-") {
		t.Errorf("clone --with-data does not say the Job copied uploads:\n%s", out)
	}
	claim, err := c.Client.CoreV1().PersistentVolumeClaims(ns+"-testnew").Get(ctx, "shop-persist-uploads", metav1.GetOptions{})
	if err != nil || claim.Labels["gantry.dev/env"] != "testnew" {
		t.Errorf("testnew's claim: %v, %v", claim.GetLabels(), err)
	}
	if got := liveSlot(t, c, ns+"-testnew"); got == "" {
		t.Error("testnew serves no slot after the clone")
	}

	out = g.cli(1, "env", "clone", "stage", "stagenew", "--with-data")
	t.Logf("gantry env clone stage stagenew --with-data:\n%s", out)
	for _, want := range []string{"the copy Job " + ns + "-stagenew/shop-persist-copy-", "exited 1: Error", "tar: invalid tar magic"} {
		if !strings.Contains(out, want) {
			t.Errorf("the failed clone does not say %q:\n%s", want, out)
		}
	}
	if envs := g.cli(0, "status"); !strings.Contains(envs, "testnew") || strings.Contains(envs, "stagenew") {
		t.Errorf("status after stagenew's copy failed: want testnew and no stagenew:\n%s", envs)
	}
	if cl, err := c.Client.CoreV1().PersistentVolumeClaims(ns+"-stagenew").Get(ctx, "shop-persist-uploads", metav1.GetOptions{}); err == nil && cl.DeletionTimestamp == nil {
		t.Error("stagenew's claim is kept after its copy failed")
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}
