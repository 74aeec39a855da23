package kubernetes_test

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/k8stest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
)

// TestMigrationOnKubernetes is W2 of the seeds on this runtime, through the
// real binary: prod runs 1.0.0; prod is cloned into testnew (a namespace of
// its own, its own Ingress for testnew's host); testnew gets 1.1.0; testnew
// is renamed to test, test to testold, and test's host moves to testnew's
// pods with an Ingress claiming it at every moment a watch sees; then 1.1.0
// is promoted from the new test to prod, by digest.
func TestMigrationOnKubernetes(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "w2") // a prefix of the environments' namespaces, which the server creates
	manifest := `app: shop
services:
  web:
    docker: {dockerfile: Dockerfile}
    run: /web
    instances: 1
    health: {path: /up}
environments:
  test:
    hosts: [test.shop.localhost]
    runtime: {driver: kubernetes, namespace: ` + ns + `-test, routing: ingress}
    keep_warm: 10m
  prod:
    hosts: [shop.localhost]
    runtime: {driver: kubernetes, namespace: ` + ns + `-prod, routing: ingress}
    promote_from: test
    keep_warm: 10m
`
	v10 := "registry.example/shop/web@sha256:" + strings.Repeat("1", 64)
	v11 := "registry.example/shop/web@sha256:" + strings.Repeat("2", 64)
	g := newServer(t, c, manifest, map[string]string{"1.0.0": v10, "1.1.0": v11})
	dc, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// hosts maps each host the app's Ingresses claim to namespace/Service.
	hosts := func() map[string]string {
		t.Helper()
		list, err := dc.Resource(k8stest.Routing["ingress"]).List(ctx, metav1.ListOptions{LabelSelector: "gantry.dev/app=shop"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, u := range list.Items {
			cl := k8stest.RoutingClaims(&u)
			for _, h := range cl.Hosts {
				out[h] = u.GetNamespace() + "/" + cl.Service
			}
		}
		return out
	}
	g.cli(0, "deploy", "test", "--release", "1.0.0")
	g.cli(0, "promote", "test", "prod")
	g.cli(0, "env", "clone", "prod", "testnew")
	want := map[string]string{
		"test.shop.localhost": ns + "-test/shop-web", "preview.test.shop.localhost": ns + "-test/shop-web-preview",
		"shop.localhost": ns + "-prod/shop-web", "preview.shop.localhost": ns + "-prod/shop-web-preview",
		"testnew.shop.localhost": ns + "-testnew/shop-web", "preview.testnew.shop.localhost": ns + "-testnew/shop-web-preview",
	}
	if got := hosts(); !maps.Equal(got, want) {
		t.Fatalf("after the clone, hosts → services:\n got %v\nwant %v", got, want)
	}
	g.cli(0, "deploy", "testnew", "--release", "1.1.0")

	hw := c.WatchHosts(t, "ingress", "gantry.dev/app=shop", "test.shop.localhost", "preview.test.shop.localhost", "shop.localhost")
	out := g.cli(0, "env", "rename", "testnew", "test", "--displace-to", "testold")
	gaps, events := hw.Wait(t, ns+"-test/shop-test", 90*time.Second)
	if len(gaps) > 0 {
		t.Errorf("hosts without an environment during the rename: %v", gaps)
	}
	if events < 8 {
		t.Errorf("the watch saw %d changes of Ingresses, want at least 8", events)
	}
	want = map[string]string{
		"test.shop.localhost": ns + "-testnew/shop-web", "preview.test.shop.localhost": ns + "-testnew/shop-web-preview",
		"testold.shop.localhost": ns + "-test/shop-web", "preview.testold.shop.localhost": ns + "-test/shop-web-preview",
		"shop.localhost": ns + "-prod/shop-web", "preview.shop.localhost": ns + "-prod/shop-web-preview",
	}
	if got := hosts(); !maps.Equal(got, want) {
		t.Fatalf("after the rename, hosts → services:\n got %v\nwant %v\n%s", got, want, out)
	}
	if got := liveImage(t, c, ns+"-testnew"); got != v11 {
		t.Errorf("test's host reaches %s, want 1.1.0's image %s", got, v11)
	}
	if status := g.cli(0, "status", "test"); !strings.Contains(status, "1.1.0") {
		t.Errorf("status of the renamed test:\n%s", status)
	}

	g.cli(0, "promote", "test", "prod")
	if got := liveImage(t, c, ns+"-prod"); got != v11 {
		t.Errorf("prod runs %s after the promotion, want the same digest as test: %s", got, v11)
	}
}
