package kubernetes_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/driver/kubernetes"
	"github.com/gantry-dev/gantry/internal/k8stest"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

func dynamicClient(t *testing.T, c *k8stest.Cluster) dynamic.Interface {
	t.Helper()
	dc, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	return dc
}

// routingOf maps each host the app's routing objects of kind in ns claim
// to the Service it goes to, with the role label of the object.
func routingOf(t *testing.T, c *k8stest.Cluster, kind, ns string) map[string]string {
	t.Helper()
	list, err := dynamicClient(t, c).Resource(k8stest.Routing[kind]).Namespace(ns).List(context.Background(), metav1.ListOptions{LabelSelector: kubernetes.LabelManagedBy + "=gantry"})
	if err != nil {
		t.Fatalf("list %s: %v", kind, err)
	}
	out := map[string]string{}
	for _, u := range list.Items {
		cl := k8stest.RoutingClaims(&u)
		for _, h := range cl.Hosts {
			out[h] = u.GetLabels()[kubernetes.LabelRole] + "→" + cl.Service
		}
	}
	return out
}

// TestRoutingObjects: for each kind, a switch makes the environment's
// hosts and preview hosts objects the real API server accepts (the CRDs of
// OpenShift and Gateway API validate them), pointing at the live and
// preview Services; hosts dropped later are removed; routing: none
// removes them all.
func TestRoutingObjects(t *testing.T) {
	c := k8stest.Need(t, cluster)
	for _, kind := range []string{gantry.RoutingIngress, gantry.RoutingRoute, gantry.RoutingHTTPRoute} {
		t.Run(kind, func(t *testing.T) {
			ns := c.Namespace(t, "routing-"+kind)
			d := newDriver(t, c, ns)
			rt := gantry.RuntimeSpec{Driver: "kubernetes", Routing: kind}
			if kind == gantry.RoutingHTTPRoute {
				rt.Gateway = "infra/public"
			}
			ref := gantry.SlotRef{App: "shop", Env: "test", Slot: gantry.SlotBlue, Runtime: rt,
				Hosts: []string{"test.shop.example", "*.test.shop.example"}, PreviewHosts: []string{"preview.test.shop.example"}}
			s := slot("shop", "test", "blue", "rel-1", webSpec(imageV1, "rel-1"), workerSpec(imageV1, "rel-1"))
			s.SlotRef = ref
			MustStartSlot(t, d, s)
			if got, want := routingOf(t, c, kind, ns), map[string]string{"preview.test.shop.example": "preview→shop-web-preview"}; !maps.Equal(got, want) {
				t.Fatalf("after StartSlot: routing %v, want %v (the candidate's preview host only)", got, want)
			}
			MustSwitch(t, d, ref)
			want := map[string]string{
				"test.shop.example":         "live→shop-web",
				"*.test.shop.example":       "live→shop-web",
				"preview.test.shop.example": "preview→shop-web-preview",
			}
			if got := routingOf(t, c, kind, ns); !maps.Equal(got, want) {
				t.Fatalf("after Switch: routing %v, want %v", got, want)
			}

			ref.Hosts = ref.Hosts[:1]
			MustSwitch(t, d, ref)
			delete(want, "*.test.shop.example")
			if got := routingOf(t, c, kind, ns); !maps.Equal(got, want) {
				t.Fatalf("after a host was dropped: routing %v, want %v", got, want)
			}

			ref.Runtime.Routing, ref.Runtime.Gateway = gantry.RoutingNone, ""
			MustSwitch(t, d, ref)
			if got := routingOf(t, c, kind, ns); len(got) != 0 {
				t.Fatalf("with routing: none: routing %v, want none of Gantry's", got)
			}
		})
	}
}

// TestRoutingValidatedByAPIServer: what the API server refuses comes back
// as an invalid-input error naming the object, and the active slot keeps
// its routing. 18 hostnames exceed an HTTPRoute's limit of 16; the
// definition installed in the test cluster says so, as Gateway API's does.
func TestRoutingValidatedByAPIServer(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "routing-bad")
	d := newDriver(t, c, ns)
	ref := gantry.SlotRef{App: "shop", Env: "test", Slot: gantry.SlotBlue,
		Runtime: gantry.RuntimeSpec{Driver: "kubernetes", Routing: gantry.RoutingHTTPRoute, Gateway: "public"},
		Hosts:   []string{"test.shop.example"}}
	s := slot("shop", "test", "blue", "rel-1", webSpec(imageV1, "rel-1"))
	s.SlotRef = ref
	MustStartSlot(t, d, s)
	MustSwitch(t, d, ref)
	for i := range 17 {
		ref.Hosts = append(ref.Hosts, fmt.Sprintf("h%d.shop.example", i))
	}
	err := d.Switch(ctxFor(t), ref)
	if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(err.Error(), "HTTPRoute "+ns+"/shop-test") || !strings.Contains(err.Error(), "spec.hostnames") {
		t.Fatalf("Switch with 18 hostnames: %v, want EINVALID naming the HTTPRoute and spec.hostnames", err)
	}
	if got := routingOf(t, c, gantry.RoutingHTTPRoute, ns); got["test.shop.example"] != "live→shop-web" || len(got) != 1 {
		t.Fatalf("after the refused switch: routing %v, want test.shop.example still live", got)
	}
}

// TestRenameMovesHosts is a rename of testnew to test, test going to
// testold, as the engine runs it on this runtime: switch test under its
// new name testold (its hosts become testold's; its old objects stay),
// switch testnew under the name test (it claims test's hosts), release
// testnew's objects, then the displaced environment's objects of the name
// test. Every environment has its own namespace, which a rename keeps. At
// no change seen by a watch is test's host without an object claiming it.
func TestRenameMovesHosts(t *testing.T) {
	c := k8stest.Need(t, cluster)
	for _, kind := range []string{gantry.RoutingIngress, gantry.RoutingRoute} {
		t.Run(kind, func(t *testing.T) {
			nsTest, nsNew := c.Namespace(t, "rn-test"), c.Namespace(t, "rn-testnew")
			d := newDriver(t, c, "")
			env := func(name, ns string, hosts ...string) gantry.SlotRef {
				return gantry.SlotRef{App: "shop", Env: name, Slot: gantry.SlotBlue, Hosts: hosts, PreviewHosts: []string{"preview." + hosts[0]},
					Runtime: gantry.RuntimeSpec{Driver: "kubernetes", Namespace: ns, Routing: kind}}
			}
			for _, ref := range []gantry.SlotRef{env("test", nsTest, "test.shop.example"), env("testnew", nsNew, "testnew.shop.example")} {
				s := slot("shop", ref.Env, "blue", "rel-"+ref.Env, webSpec(imageV1, "rel-"+ref.Env))
				s.SlotRef = ref
				MustStartSlot(t, d, s)
				MustSwitch(t, d, ref)
			}
			hw := c.WatchHosts(t, kind, kubernetes.LabelApp+"=shop", "test.shop.example", "preview.test.shop.example")

			MustSwitch(t, d, env("testold", nsTest, "testold.shop.example"))
			MustSwitch(t, d, env("test", nsNew, "test.shop.example"))
			if err := d.ReleaseHosts(ctxFor(t), env("testnew", nsNew, "testnew.shop.example")); err != nil {
				t.Fatal(err)
			}
			if err := d.ReleaseHosts(ctxFor(t), env("test", nsTest, "test.shop.example")); err != nil {
				t.Fatal(err)
			}

			want := map[string]string{"test.shop.example": "live→shop-web", "preview.test.shop.example": "preview→shop-web-preview"}
			if got := routingOf(t, c, kind, nsNew); !maps.Equal(got, want) {
				t.Errorf("%s (was testnew's, now test's): routing %v, want %v", nsNew, got, want)
			}
			want = map[string]string{"testold.shop.example": "live→shop-web", "preview.testold.shop.example": "preview→shop-web-preview"}
			if got := routingOf(t, c, kind, nsTest); !maps.Equal(got, want) {
				t.Errorf("%s (was test's, now testold's): routing %v, want %v", nsTest, got, want)
			}
			// The watch is asynchronous: wait until it has seen the last
			// deletion before reading its record.
			gaps, events := hw.Wait(t, nsTest+"/shop-test", waitTimeout)
			if len(gaps) > 0 {
				t.Errorf("hosts without an environment during the rename: %v", gaps)
			}
			if events < 8 {
				t.Errorf("the watch saw %d changes, want at least 8 (4 objects created, 4 deleted)", events)
			}
			// The workloads answer under the new names: the live Service of
			// the renamed environment still selects its pods.
			if got := selectorSlot(t, c, nsNew, "shop-web"); got != gantry.SlotBlue {
				t.Errorf("shop-web in %s selects slot %q after the rename, want blue", nsNew, got)
			}
			if a, err := d.ActiveSlot(ctxFor(t), env("test", nsNew, "test.shop.example")); err != nil || a != gantry.SlotBlue {
				t.Errorf("ActiveSlot of the renamed environment = %q, %v; want blue", a, err)
			}
		})
	}
}

// TestOlderSelectorKept: a Deployment whose (immutable) selector names the
// environment, as drivers before renames made them, is updated in place
// with its selector kept and its pods still labelled to match; the live
// Service, which no longer names the environment, selects them.
func TestOlderSelectorKept(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "older")
	d := newDriver(t, c, ns)
	ref := gantry.SlotRef{App: "shop", Env: "test", Slot: gantry.SlotBlue}
	MustStartSlot(t, d, slot("shop", "test", "blue", "rel-1", webSpec(imageV1, "rel-1")))
	MustSwitch(t, d, ref)
	// Make it an older driver's: the same Deployment, recreated with the
	// environment in its selector and its pods' labels.
	ctx := context.Background()
	dep, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "shop-web-blue", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Client.AppsV1().Deployments(ns).Delete(ctx, dep.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	dep.ResourceVersion, dep.UID, dep.Status = "", "", appsv1.DeploymentStatus{}
	dep.Spec.Selector.MatchLabels[kubernetes.LabelEnv] = "test"
	dep.Spec.Template.Labels[kubernetes.LabelEnv] = "test"
	for {
		_, err = c.Client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			break
		}
		time.Sleep(100 * time.Millisecond) // the deletion is not done yet
	}
	if err != nil {
		t.Fatal(err)
	}
	// The environment renamed: same namespace, new name.
	s := slot("shop", "stage", "blue", "rel-2", webSpec(imageV2, "rel-2"))
	MustStartSlot(t, d, s)
	MustSwitch(t, d, gantry.SlotRef{App: "shop", Env: "stage", Slot: gantry.SlotBlue})
	after, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "shop-web-blue", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.Spec.Selector.MatchLabels[kubernetes.LabelEnv] != "test" || after.Spec.Template.Spec.Containers[0].Image != imageV2 {
		t.Errorf("updated Deployment: selector %v, image %s; want the older selector kept and %s", after.Spec.Selector.MatchLabels, after.Spec.Template.Spec.Containers[0].Image, imageV2)
	}
	if got := len(podIPs(t, c, ns, "shop", "web", "blue")); got != 2 {
		t.Errorf("%d pods of slot blue, want 2", got)
	}
	waitEndpoints(t, c, ns, "shop-web", podIPs(t, c, ns, "shop", "web", "blue"))
}

// TestImageStreamDefinitions: the test control plane serves OpenShift's
// ImageStream as a definition that validates what a promotion by tag
// writes: a tag from an image by digest is accepted; a tag with an unknown
// reference policy is refused.
func TestImageStreamDefinitions(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "images")
	dc := dynamicClient(t, c)
	streams := dc.Resource(schema.GroupVersionResource{Group: "image.openshift.io", Version: "v1", Resource: "imagestreams"}).Namespace(ns)
	tag := func(policy string) map[string]any {
		return map[string]any{"name": "1.0.0", "from": map[string]any{"kind": "DockerImage", "name": imageV1}, "referencePolicy": map[string]any{"type": policy}}
	}
	stream := func(name, policy string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "image.openshift.io/v1", "kind": "ImageStream",
			"metadata": map[string]any{"name": name},
			"spec":     map[string]any{"lookupPolicy": map[string]any{"local": true}, "tags": []any{tag(policy)}},
		}}
	}
	ctx := ctxFor(t)
	if _, err := streams.Create(ctx, stream("web", "Local"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("a valid ImageStream was refused: %v", err)
	}
	if _, err := streams.Create(ctx, stream("bad", "Mirror"), metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "referencePolicy.type") {
		t.Fatalf("an ImageStream with referencePolicy Mirror: %v, want invalid naming referencePolicy.type", err)
	}
}
